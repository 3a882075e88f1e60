"""Turn the library's ValueError/TypeError (and OSError: a read-only or full disk, a missing
file) into one clear line on stderr and exit code 1; and the options several sub-commands
share (``--set``, ``--device`` / ``--threads``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import wraps

__all__ = ["reports_errors", "add_overrides_argument", "add_runtime_arguments"]


def reports_errors(command: str) -> Callable:
    """Decorator for a sub-command's ``func``: bad input -> ``convssm CMD: error: ...``, 1."""

    def wrap(fn: Callable[..., int]) -> Callable[..., int]:
        @wraps(fn)
        def run(args) -> int:
            try:
                return int(fn(args) or 0)
            except (ValueError, TypeError, FloatingPointError) as err:
                print(f"convssm {command}: error: {err}", file=sys.stderr)
                return 1
            except OSError as err:  # str() names the path when the OS error carries one
                print(f"convssm {command}: error: {_describe(err)}", file=sys.stderr)
                return 1

        return run

    return wrap


def _describe(err: OSError) -> str:
    text = str(err)
    if err.filename is not None and str(err.filename) not in text:  # pragma: no cover
        text += f": {err.filename}"
    return text.replace("\n", " ")


def add_overrides_argument(
    parser: argparse.ArgumentParser, help: str, metavar: str = "KEY=VALUE"
) -> None:
    """The repeatable ``--set KEY=VALUE`` option, collected into ``args.overrides``."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar=metavar, help=help
    )


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a trained model runs: ``--device`` (default auto) and ``--threads`` (CPU threads,
    ``torch.set_num_threads``), for the commands that load one (generate, evaluate)."""
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default auto)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads (torch.set_num_threads; default: a training checkpoint's "
        "train.threads, else torch's); on a small CPU one thread can be faster at batch 1",
    )
