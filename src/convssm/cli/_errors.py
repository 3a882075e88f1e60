"""Turn the library's ValueError/TypeError into one clear line on stderr and exit code 1."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import wraps

__all__ = ["reports_errors", "add_overrides_argument"]


def reports_errors(command: str) -> Callable:
    """Decorator for a sub-command's ``func``: bad input -> ``convssm CMD: error: ...``, 1."""

    def wrap(fn: Callable[..., int]) -> Callable[..., int]:
        @wraps(fn)
        def run(args) -> int:
            try:
                return int(fn(args) or 0)
            except (ValueError, TypeError, FileNotFoundError, FloatingPointError) as err:
                print(f"convssm {command}: error: {err}", file=sys.stderr)
                return 1

        return run

    return wrap


def add_overrides_argument(
    parser: argparse.ArgumentParser, help: str, metavar: str = "KEY=VALUE"
) -> None:
    """The repeatable ``--set KEY=VALUE`` option, collected into ``args.overrides``."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar=metavar, help=help
    )
