"""``convssm generate MODEL [--input video.mp4|file.npz|array.npy|.h5|.zarr [--key K] |
--moving-mnist-seed S] [--context N] [--horizon N] [--out DIR]``: GIF, MP4, PNG strip and
PNG error plot, and the predictions (in the input's format for an array); when the input
runs past the context, the model's error beside the trivial predictors (empty frame, repeat
last frame), printed and in ``baselines.json``."""

from __future__ import annotations

import argparse
from pathlib import Path

from convssm.cli._errors import add_runtime_arguments, reports_errors
from convssm.run.inference import default_out_dir, generate_from_checkpoint, resolve_model


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="continue a video with a trained model and draw the result",
        description="Condition on the first N frames of a video file (mp4, or npz with "
        "'video'), of every sequence of an array file (.npy, .h5, .zarr: predictions are "
        "written in its format and units), or of a fresh Moving-MNIST sample, and generate "
        "the horizon.",
    )
    p.add_argument(
        "checkpoint",
        metavar="MODEL",
        help="checkpoint directory, run workdir, published model folder, or a Hugging Face "
        "Hub id owner/name[@revision] (HF_HUB_OFFLINE=1: from the hub cache only)",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--input",
        default=None,
        metavar="FILE",
        help="video.mp4, file.npz, or an (N, T, C, H, W) / (T, C, H, W) array .npy/.h5/.zarr",
    )
    src.add_argument(
        "--moving-mnist-seed",
        type=int,
        default=None,
        metavar="S",
        help="a fresh held-out Moving-MNIST video from seed S (the default, S=0)",
    )
    p.add_argument("--key", default=None, help="dataset / array name inside an --input array")
    p.add_argument("--context", type=int, default=None, help="context frames (config default)")
    p.add_argument("--horizon", type=int, default=None, help="frames to generate (config default)")
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output (default: RUN/generate/step_N beside a training run; for a published or "
        "hub model ./convssm_outputs/NAME/generate under the working directory)",
    )
    add_runtime_arguments(p)
    p.set_defaults(func=run)


@reports_errors("generate")
def run(args: argparse.Namespace) -> int:
    for name in ("context", "horizon", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be positive, got {value}")
    ckpt = resolve_model(args.checkpoint)
    out = Path(args.out) if args.out else default_out_dir(ckpt, "generate")
    paths = generate_from_checkpoint(
        ckpt,
        out,
        input_path=args.input,
        key=args.key,
        moving_mnist_seed=args.moving_mnist_seed,
        context=args.context,
        horizon=args.horizon,
        device=args.device,
        threads=args.threads,
        log=print,
    )
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
