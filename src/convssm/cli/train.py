"""``convssm train CONFIG [--workdir DIR] [--set k=v ...] [--resume | --overwrite]``.

Runs as one process, or under ``torchrun --nproc-per-node N -m convssm train CONFIG``.
Exit status: 0 done, 1 an error (one line on stderr), :data:`EXIT_RESUMABLE` (75) stopped by
SIGTERM/SIGINT after writing a checkpoint: the same command with ``--resume`` continues.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from convssm._files import relative_command
from convssm.cli._errors import add_overrides_argument, reports_errors
from convssm.train.config import load_config
from convssm.train.loop import train_and_evaluate

EXIT_RESUMABLE = 75  # sysexits' EX_TEMPFAIL: stopped by a signal, a checkpoint to resume from


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a video prediction model from a YAML config",
        description="Train from an experiment YAML (see configs/). Works unchanged under "
        "torchrun (gloo on CPU, NCCL on GPU).",
    )
    p.add_argument(
        "config", metavar="CONFIG", help="experiment YAML, e.g. configs/cpu/convs5_small.yaml"
    )
    p.add_argument("--workdir", default=None, help="output directory (default runs/<name>)")
    add_overrides_argument(p, "override a config value, e.g. --set train.steps=100 (repeatable)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue exactly from the newest checkpoint in the workdir (start fresh, "
        "saying so, when it holds none: one command to start or resume)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in a workdir that holds a run, moving that run into "
        "WORKDIR/archive/<time>/ (nothing is deleted)",
    )
    p.set_defaults(func=run)


def train_command(args: argparse.Namespace) -> str:
    """The ``convssm train`` command line of ``args`` (the run records it), with paths
    inside the working directory written relative to it (:func:`relative_command`)."""
    words = ["convssm", "train", args.config]
    if args.workdir:
        words += ["--workdir", args.workdir]
    for override in args.overrides:
        words += ["--set", override]
    words += ["--resume"] * args.resume + ["--overwrite"] * args.overwrite
    return relative_command(shlex.join(words))


@reports_errors("train")
def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    workdir = Path(args.workdir) if args.workdir else Path("runs") / cfg.name
    result = train_and_evaluate(
        cfg, workdir, resume=args.resume, overwrite=args.overwrite, command=train_command(args)
    )
    if result.is_main and result.checkpoint is not None:  # one report under torchrun
        print(f"trained {result.step} steps; last checkpoint: {result.checkpoint}")
        print(f"logs: {workdir / 'train_log.jsonl'}, {workdir / 'train_log.csv'}")
    if result.stopped_by is not None:
        if result.is_main:
            print(
                f"stopped by {result.stopped_by} at step {result.step}; continue with the "
                "same command and --resume",
            )
        return EXIT_RESUMABLE
    return 0
