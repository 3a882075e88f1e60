"""``convssm bench [NAME]``: run the scripts in ``benchmarks/`` (all, or ``bench_NAME.py``)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from convssm._resources import shipped_dir
from convssm.cli._errors import reports_errors


def benchmarks_dir() -> Path:
    """The benchmark scripts shipped with the package (wheel) or of the source checkout."""
    return shipped_dir("benchmarks")


def available() -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(benchmarks_dir().glob("bench_*.py"))}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="run the benchmark scripts in benchmarks/")
    p.add_argument("name", nargs="?", default=None, help="e.g. scan for bench_scan.py (all)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("args", nargs=argparse.REMAINDER, help="passed on to the script")
    p.set_defaults(func=run)


@reports_errors("bench")
def run(args: argparse.Namespace) -> int:
    scripts = available()
    if args.list:
        print("\n".join(scripts) or "(no benchmarks)")
        return 0
    if args.name is not None:
        if args.name not in scripts:
            raise ValueError(f"no benchmark {args.name!r}; available: {', '.join(scripts)}")
        scripts = {args.name: scripts[args.name]}
    status = 0
    for name, script in scripts.items():
        print(f"== bench {name}: {script}", flush=True)
        status |= subprocess.call([sys.executable, str(script), *args.args])
    return status
