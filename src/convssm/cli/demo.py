"""``convssm demo [--out DIR] [--minutes M]``: train the small CPU ConvS5 on Moving-MNIST,
generate ten times its training length, write pictures and metrics (``make demo``)."""

from __future__ import annotations

import argparse

from convssm.cli._errors import add_overrides_argument, reports_errors


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="train a small ConvS5 on Moving-MNIST in minutes on a CPU and show what it predicts",
    )
    p.add_argument("--out", default="demo_output", metavar="DIR", help="output (demo_output)")
    p.add_argument("--minutes", type=float, default=3.0, help="time budget (3 minutes)")
    p.add_argument("--config", default=None, help="config (configs/cpu/convs5_small.yaml)")
    add_overrides_argument(p, "override a config value (repeatable)")
    p.set_defaults(func=run)


@reports_errors("demo")
def run(args: argparse.Namespace) -> int:
    from convssm.train.demo import run_demo

    run_demo(args.out, args.minutes, args.config, args.overrides)
    return 0
