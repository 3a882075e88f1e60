"""``convssm evaluate CHECKPOINT [--eval-set PATH] [--out DIR]``: the checkpoint's protocol
(``eval.protocol``: docs/design.md#evaluation-protocol, or TECO's for the 3-D environment sets)."""

from __future__ import annotations

import argparse
from pathlib import Path

from convssm.cli._errors import add_overrides_argument, add_runtime_arguments, reports_errors
from convssm.run.inference import default_out_dir, evaluate_checkpoint, resolve_model


def format_row(row: dict, channels: list[str] | None = None) -> str:
    """``psnr 21.3, rmse [0.512, 0.031]``: numbers and per-channel lists of one horizon;
    with ``channels`` (``name [unit]`` each) ``rmse (velocity [m/s]: 0.512, ...)``."""
    shown = []
    for k, v in row.items():
        if isinstance(v, float):
            shown.append(f"{k} {v:.4f}")
        elif isinstance(v, list) and all(isinstance(x, float) for x in v):
            if channels is not None and len(channels) == len(v):
                pairs = ", ".join(f"{c}: {x:.4g}" for c, x in zip(channels, v, strict=True))
                shown.append(f"{k} ({pairs})")
            else:
                shown.append(f"{k} [" + ", ".join(f"{x:.4g}" for x in v) + "]")
    return ", ".join(shown)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a model on held-out videos or arrays (PSNR, SSIM, LPIPS, FVD; "
        "per-channel RMSE and MAE for physical fields)",
        description="Condition on the config's context frames, generate its horizons, and "
        "write metrics.json and pictures of the first video. Videos are scored batch by "
        "batch (memory does not grow with their number) and saved as videos_truth.npy / "
        "videos_pred.npy (uint8); models trained on physical arrays, and --input arrays, are "
        "scored in memory (fields per channel in the data's units) and saved as videos.npz.",
    )
    p.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a checkpoint directory, a run's workdir (its newest checkpoint), or a "
        "published model folder (config.json + model.safetensors), or a Hugging Face Hub id "
        "owner/name[@revision] (HF_HUB_OFFLINE=1: from the hub cache only)",
    )
    p.add_argument(
        "--eval-set",
        default=None,
        metavar="PATH",
        help="fixed set from `convssm data make-eval-set`, or mnist_test_seq.npy "
        "(default: the config's eval.eval_set, else its seeded held-out videos)",
    )
    p.add_argument(
        "--input",
        default=None,
        metavar="FILE",
        help="an (N, T, C, H, W) or (T, C, H, W) array (.npy, .h5, .zarr) to evaluate on; "
        "its predictions are written in the same format",
    )
    p.add_argument("--key", default=None, help="dataset / array name inside --input")
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output (default: RUN/eval/step_N beside a training run, never inside a checkpoint; "
        "for a published or hub model ./convssm_outputs/NAME/eval under the working directory)",
    )
    p.add_argument(
        "--videos", type=int, default=None, metavar="N", help="evaluate only the first N videos"
    )
    add_overrides_argument(
        p,
        "change an evaluation setting, e.g. --set eval.metrics=[psnr,ssim,lpips,fvd]",
        metavar="eval.KEY=VALUE",
    )
    add_runtime_arguments(p)
    p.add_argument(
        "--tokenizer",
        default=None,
        metavar="PATH",
        help="for a latent model: the VQTokenizer directory that encodes the context and "
        "decodes the sampled codes (TECO protocol on the code cache's source videos)",
    )
    p.set_defaults(func=run)


@reports_errors("evaluate")
def run(args: argparse.Namespace) -> int:
    if args.videos is not None and args.videos < 1:
        raise ValueError(f"--videos must be positive, got {args.videos}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be positive, got {args.threads}")
    ckpt = resolve_model(args.checkpoint)
    out = Path(args.out) if args.out else default_out_dir(ckpt, "eval")
    baselines: list[str] = []  # the trivial predictors' lines, printed after the table
    result, paths = evaluate_checkpoint(
        ckpt,
        out,
        eval_set=args.eval_set,
        input_path=args.input,
        key=args.key,
        num_videos=args.videos,
        device=args.device,
        threads=args.threads,
        overrides=args.overrides,
        tokenizer=args.tokenizer,
        log=baselines.append,
    )
    if hasattr(result, "per_horizon"):
        rows = {f"horizon {h}": row for h, row in result.per_horizon.items()}
    else:  # TECO protocol: one row per setting
        rows = {
            f"{name} (context {s['context']}, {s['horizon']} predicted)": s["metrics"]
            for name, s in result.settings.items()
        }
    channels = getattr(result, "channels", None)  # fields: name [unit] per channel
    for label, row in rows.items():
        print(f"{label}: {format_row(row, channels)}")
    for line in baselines:
        print(line)
    for name, why in result.skipped.items():
        print(f"skipped {name}: {why}")
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
