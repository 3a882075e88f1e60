"""``convssm publish RUN [--step N] --out DIR``: a model folder with a model card, written
from a run's own records (:mod:`convssm.train.publish`)."""

from __future__ import annotations

import argparse

from convssm.cli._errors import reports_errors
from convssm.train.publish import publish_run


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "publish",
        help="write a from_pretrained folder and model card from a training run",
        description="Write the weights of a run's checkpoint, its config, experiment.yaml, "
        "the held-out scores and strip of that step, and a model card (README.md, Hugging "
        "Face format) whose facts (phases through train.init_from, steps, wall and CPU time, "
        "machine, commands) come from the runs' records.",
    )
    p.add_argument("run", metavar="RUN", help="the workdir of a convssm train run")
    p.add_argument(
        "--step", type=int, default=None, help="the checkpoint's step (default: the newest)"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write")
    p.set_defaults(func=run)


@reports_errors("publish")
def run(args: argparse.Namespace) -> int:
    out = publish_run(args.run, args.out, args.step)
    print(f"published {args.run} into {out}")
    return 0
