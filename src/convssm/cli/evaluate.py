"""``convssm evaluate CHECKPOINT [--eval-set PATH] [--out DIR]``: the checkpoint's protocol
(``eval.protocol``: SPEC section 5, or TECO's for the 3-D environment sets)."""

from __future__ import annotations

import argparse
from pathlib import Path

from convssm.cli._errors import add_overrides_argument, reports_errors


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a checkpoint on a fixed evaluation set (PSNR, SSIM, LPIPS, FVD)",
        description="Condition on the config's context frames, generate its horizons, and "
        "write metrics.json, videos_truth.npy / videos_pred.npy (uint8) and pictures of the "
        "first video; scores batch by batch, so memory does not grow with the number of videos.",
    )
    p.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a checkpoint directory, or a run's workdir (its newest checkpoint)",
    )
    p.add_argument(
        "--eval-set",
        default=None,
        metavar="PATH",
        help="fixed set from `convssm data make-eval-set`, or mnist_test_seq.npy "
        "(default: the config's eval.eval_set, else its seeded held-out videos)",
    )
    p.add_argument("--out", default=None, metavar="DIR", help="output (default CHECKPOINT/eval)")
    p.add_argument(
        "--videos", type=int, default=None, metavar="N", help="evaluate only the first N videos"
    )
    add_overrides_argument(
        p,
        "change an evaluation setting, e.g. --set eval.metrics=[psnr,ssim,lpips,fvd]",
        metavar="eval.KEY=VALUE",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default auto)")
    p.set_defaults(func=run)


@reports_errors("evaluate")
def run(args: argparse.Namespace) -> int:
    from convssm.train.checkpoint import resolve_checkpoint
    from convssm.train.inference import evaluate_checkpoint

    if args.videos is not None and args.videos < 1:
        raise ValueError(f"--videos must be positive, got {args.videos}")
    ckpt = resolve_checkpoint(args.checkpoint)
    out = Path(args.out) if args.out else ckpt / "eval"
    result, paths = evaluate_checkpoint(
        ckpt,
        out,
        eval_set=args.eval_set,
        num_videos=args.videos,
        device=args.device,
        overrides=args.overrides,
    )
    if hasattr(result, "per_horizon"):
        rows = {f"horizon {h}": row for h, row in result.per_horizon.items()}
    else:  # TECO protocol: one row per setting
        rows = {
            f"{name} (context {s['context']}, {s['horizon']} predicted)": s["metrics"]
            for name, s in result.settings.items()
        }
    for label, row in rows.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float))
        print(f"{label}: {shown}")
    for name, why in result.skipped.items():
        print(f"skipped {name}: {why}")
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
