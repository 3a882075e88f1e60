"""The one command-line face: ``convssm train | publish | evaluate | generate | demo | bench |
data``.

Each sub-command lives in its own module under ``convssm.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to the function
that runs it with the parsed arguments.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Sub-command modules, in the order ``convssm --help`` lists them.
COMMAND_MODULES: list[str] = ["train", "publish", "evaluate", "generate", "demo", "bench", "data"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convssm",
        description="Convolutional state space models for long spatiotemporal sequences.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"convssm.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
