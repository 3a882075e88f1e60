"""``convssm demo [--out DIR] [--minutes M] [--model DIR] [--recall-delay N]``: a published
ConvS5 redrawing a digit seen 1 000 frames earlier beside a ConvLSTM trained on the same
task, a published ConvS5 predicting held-out Moving-MNIST to ten times its training length,
then a small ConvS5 trained from scratch on the CPU, with pictures and metrics, inside the
time budget (``make demo``)."""

from __future__ import annotations

import argparse

from convssm.cli._errors import add_overrides_argument, reports_errors
from convssm.run.demo import run_demo
from convssm.run.recall_demo import RECALL_DELAY


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="show a ConvS5 remembering a digit over 1000 frames and predicting Moving-MNIST, "
        "then train a small one on a CPU",
    )
    p.add_argument("--out", default="demo_output", metavar="DIR", help="output (demo_output)")
    p.add_argument("--minutes", type=float, default=3.5, help="time budget (3.5 minutes)")
    p.add_argument(
        "--model",
        default=None,
        metavar="DIR",
        help="published model to show (pretrained/moving_mnist/convs5_1digit_roll48_24)",
    )
    p.add_argument(
        "--recall-delay",
        type=int,
        default=RECALL_DELAY,
        metavar="FRAMES",
        help="distractor frames between the digit and the cue in the memory phase (1000)",
    )
    p.add_argument("--config", default=None, help="config (configs/cpu/convs5_small.yaml)")
    add_overrides_argument(p, "override a config value (repeatable)")
    p.set_defaults(func=run)


@reports_errors("demo")
def run(args: argparse.Namespace) -> int:
    if args.recall_delay < 0:
        raise ValueError(f"--recall-delay must be >= 0, got {args.recall_delay}")
    run_demo(
        args.out,
        args.minutes,
        args.config,
        args.overrides,
        model_dir=args.model,
        recall_delay=args.recall_delay,
    )
    return 0
