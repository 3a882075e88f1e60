"""The long-horizon study: ConvS5, ConvLSTM and the frame Transformer trained with
one recipe at the same wall-clock budget, side by side, then compared on held-out videos.

    for m in convs5 convlstm transformer; do
        convssm train configs/learning/study_$m.yaml & done; wait   # into runs/study_$m
    python experiments/learning/study.py runs --fvd-videos 64 --fvd-horizon 10

Reads each arm's ``convssm train`` run (``RUNS/study_<model>/``: ``config.yaml``,
``scores.jsonl``, its newest checkpoint) and writes

- ``--json``: per arm the parameters, steps, wall and CPU seconds, the scores of its last
  scored checkpoint (``convssm.train.heldout``: MSE beside the trivial predictors,
  brightness, PSNR, SSIM, LPIPS), its learning curve, per-frame MSE / SSIM / LPIPS on the
  held-out set,
  milliseconds per generated frame (batch 1, median of 3) and FVD;
- ``--figures``: learning curves against wall-clock minutes, per-frame MSE and LPIPS beside
  the empty frame, and one strip with the truth and every model's rollout.

FVD (docs/design.md#evaluation-protocol at a short horizon): ``--fvd-videos`` held-out videos of
``context + --fvd-horizon`` frames, context included; generated videos are the true
context followed by the model's frames. One set of that many videos, not chunks of 256: the
numbers compare the rows of one table only. The ``real vs real`` row scores a second set of
true videos (another seed) against the first: the floor at this set size. I3D features are
cached under ``RUNS/fvd/`` so ``--fvd-sets`` can split the work over processes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from convssm._files import atomic_write_text
from convssm.metrics import ssim
from convssm.models import VideoPredictor
from convssm.train.checkpoint import load_checkpoint, load_model_weights
from convssm.train.config import ExperimentConfig, config_to_dict, load_config
from convssm.train.factory import build_model
from convssm.train.heldout import held_out_set, lpips_function
from convssm.train.runlog import read_jsonl
from convssm.train.validation import generate_videos

ARMS = ("convs5", "convlstm", "transformer")
STRIP_FRAMES = (1, 2, 3, 5, 10, 20, 30, 50, 75, 100)
FLOOR = "real_vs_real"


def load_arm(runs: Path, arm: str) -> tuple[ExperimentConfig, VideoPredictor, list[dict]]:
    """An arm's config, the model of its newest checkpoint and its scored rows."""
    run = runs / f"study_{arm}"
    scores = read_jsonl(run / "scores.jsonl")
    if not scores:
        raise ValueError(f"{run}: no scored checkpoint yet (scores.jsonl)")
    info = load_checkpoint(run / "checkpoints")
    model = build_model(info.model_config)
    load_model_weights(model, info.weights, str(info.path))
    return load_config(run / "config.yaml"), model.eval(), scores


def videos_of(cfg: ExperimentConfig, **kw) -> torch.Tensor:
    """The held-out scoring set of ``cfg`` as one tensor (N, T, 1, H, W) in [−1, 1];
    ``kw``: :func:`convssm.train.heldout.held_out_set`'s."""
    data = held_out_set(cfg, **kw)
    return torch.stack([data[i] for i in range(len(data))])


def generate01(model, videos: torch.Tensor, context: int, horizon: int) -> torch.Tensor:
    """``horizon`` frames generated after ``context`` (CPU, float32), in [0, 1]."""
    _, pred = generate_videos(model, videos.split(32), context, horizon, torch.device("cpu"))
    return (pred.clamp(-1, 1) + 1) / 2


@torch.no_grad()
def ms_per_frame(model: VideoPredictor, context: torch.Tensor, frames: int) -> float:
    """Median over 3 runs of milliseconds per generated frame, batch 1."""
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _frame in model.iter_generate(context, frames):
            pass
        runs.append((time.perf_counter() - t0) / frames)
    return 1e3 * statistics.median(runs)


def fvd_videos(cfg: ExperimentConfig, n: int, horizon: int, seed: int) -> torch.Tensor:
    """(n, context + horizon, 1, H, W) held-out videos in [−1, 1]."""
    return videos_of(cfg, num_videos=n, horizon=horizon, seed=seed)


def fvd_features(name: str, videos: torch.Tensor, cache: Path) -> torch.Tensor:
    """I3D features (N, 400) of videos in [0, 1], cached in ``cache/<name>.pt``."""
    from convssm.metrics.fvd import i3d_features
    from convssm.metrics.i3d import InceptionI3d

    path = cache / f"{name}_{videos.shape[0]}x{videos.shape[1]}.pt"
    if path.is_file():
        return torch.load(path)
    t0 = time.perf_counter()
    feats = i3d_features(videos, InceptionI3d.from_pretrained(), batch_size=4)
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(feats, path)
    print(f"I3D features of {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return feats


def compute_fvd(runs: Path, arms: dict, n: int, horizon: int, sets: list[str]) -> dict:
    from convssm.metrics.frechet import FeatureStats, fvd_from_stats

    cfg = next(iter(arms.values()))[0]
    c = cfg.eval.score_context
    real = fvd_videos(cfg, n, horizon, cfg.eval.score_seed)
    cache = runs / "fvd"
    feats = {}
    if "real" in sets:
        feats["real"] = fvd_features("real", (real + 1) / 2, cache)
    if FLOOR in sets:
        other = fvd_videos(cfg, n, horizon, cfg.eval.score_seed + 1)
        feats[FLOOR] = fvd_features(FLOOR, (other + 1) / 2, cache)
    for arm, (_, model, _) in arms.items():
        if arm in sets:
            pred = generate01(model, real, c, horizon)
            whole = torch.cat([(real[:, :c] + 1) / 2, pred], dim=1)
            feats[arm] = fvd_features(arm, whole, cache)
    if "real" not in feats:
        return {}
    ref = FeatureStats.of(feats.pop("real"))
    return {k: fvd_from_stats(ref, FeatureStats.of(v)) for k, v in feats.items()}


def per_frame(arms: dict) -> tuple[dict, dict, torch.Tensor]:
    """Per generated frame MSE / SSIM / LPIPS (mean over the held-out videos) of each arm and
    of the empty frame; also the predictions, for the strip."""
    cfg = next(iter(arms.values()))[0]
    videos = videos_of(cfg)
    context = cfg.eval.score_context
    truth = (videos[:, context:] + 1) / 2
    lpips_fn = lpips_function(cfg, torch.device("cpu"))
    curves, preds = {}, {}
    for arm, (_, model, _) in {"empty": (cfg, None, None), **arms}.items():
        if model is None:
            pred = torch.zeros_like(truth)
        else:
            pred = generate01(model, videos, context, cfg.eval.score_horizon)
            preds[arm] = pred
        c = {
            "mse": (pred - truth).pow(2).mean(dim=(0, 2, 3, 4)).tolist(),
            "ssim": ssim(pred, truth).mean(0).tolist(),
        }
        if lpips_fn is not None:
            c["lpips"] = lpips_fn(pred, truth).mean(0).tolist()
        curves[arm] = c
    return curves, preds, truth


def plot(arms: dict, curves: dict, figdir: Path, train_len: int, context: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figdir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for arm, (_, _, scores) in arms.items():
        minutes = [r["wall_s"] / 60 for r in scores]
        for ax, key in zip(axes, ("rel_best@10", "rel_empty@100"), strict=True):
            values = [r.get(key, float("nan")) for r in scores]
            ax.plot(minutes, values, marker="o", ms=3, label=arm)
    for ax, key in zip(axes, ("rel_best@10", "rel_empty@100"), strict=True):
        ax.axhline(1.0, color="k", ls=":", lw=1)
        ax.set_xlabel("wall-clock minutes (training and scoring)")
        ax.set_title(key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(figdir / "learning_curves.png", dpi=110)
    plt.close(fig)
    for metric in ("mse", "lpips", "ssim"):
        if metric not in curves["empty"]:
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        for arm, c in curves.items():
            style = {"color": "k", "ls": ":", "lw": 1} if arm == "empty" else {}
            ax.plot(range(1, len(c[metric]) + 1), c[metric], label=arm, **style)
        ax.axvline(train_len - context, color="grey", ls="--", lw=1, label="training length")
        ax.set_xlabel("generated frame")
        ax.set_ylabel(metric)
        ax.set_xscale("log")
        ax.legend()
        fig.tight_layout()
        fig.savefig(figdir / f"per_frame_{metric}.png", dpi=110)
        plt.close(fig)


def strip(preds: dict, truth: torch.Tensor, path: Path, videos=(0, 1, 2)) -> None:
    """Truth and each model's frames at :data:`STRIP_FRAMES`, one block per video."""
    from PIL import Image, ImageDraw

    size, scale, pad, left, top = truth.shape[-1], 3, 3, 96, 16
    cell = size * scale + pad
    names = ["truth", *preds]
    videos = [v for v in videos if v < truth.shape[0]]
    rows = len(videos) * (len(names) + 1) - 1
    img = Image.new("L", (left + cell * len(STRIP_FRAMES), top + cell * rows), 255)
    draw = ImageDraw.Draw(img)
    shown = [f for f in STRIP_FRAMES if f <= truth.shape[1]]
    for j, f in enumerate(shown):
        draw.text((left + j * cell, 2), f"+{f}", fill=0)
    r = 0
    for v in videos:
        for name in names:
            frames = truth[v] if name == "truth" else preds[name][v]
            draw.text((4, top + r * cell + cell // 2 - 6), f"{name} #{v}", fill=0)
            for j, f in enumerate(shown):
                tile = (frames[f - 1, 0].clamp(0, 1) * 255).round().byte().numpy()
                tile = Image.fromarray(tile).resize((size * scale,) * 2, Image.NEAREST)
                img.paste(tile, (left + j * cell, top + r * cell))
            r += 1
        r += 1
    img.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("runs", type=Path)
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    ap.add_argument("--json", type=Path, default=Path("docs/results/study.json"))
    ap.add_argument("--figures", type=Path, default=Path("docs/figures/study"))
    ap.add_argument("--fvd-videos", type=int, default=0, help="0: no FVD")
    ap.add_argument("--fvd-horizon", type=int, default=10)
    ap.add_argument("--fvd-sets", nargs="+", default=None,
                    help=f"compute (or read cached) only these: real, {FLOOR}, and arm names; "
                    "the results are written only with all of them")  # fmt: skip
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    arms = {a: load_arm(args.runs, a) for a in args.arms}
    sets = args.fvd_sets or ["real", FLOOR, *arms]
    fvd = compute_fvd(args.runs, arms, args.fvd_videos, args.fvd_horizon, sets) \
        if args.fvd_videos else {}  # fmt: skip
    if args.fvd_sets is not None and set(sets) != {"real", FLOOR, *arms}:
        print(f"FVD features computed for {sets}; run without --fvd-sets for the results")
        return
    cfg = next(iter(arms.values()))[0]
    curves, preds, truth = per_frame(arms)
    args.figures.mkdir(parents=True, exist_ok=True)
    plot(arms, curves, args.figures, cfg.data.seq_len, cfg.eval.score_context)
    strip(preds, truth, args.figures / "rollouts.png")
    context = videos_of(cfg, num_videos=1)[:, : cfg.eval.score_context]
    rows = {}
    for arm, (arm_cfg, model, scores) in arms.items():
        last = scores[-1]
        rows[arm] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "steps": last["step"],
            "wall_s": last["wall_s"],
            "cpu_s": last.get("cpu_s"),
            "ms_per_step": 1e3 * last["wall_s"] / last["step"],
            "ms_per_generated_frame": ms_per_frame(model, context, arm_cfg.eval.score_horizon),
            "final": last,
            "learning_curve": scores,
            "per_frame": curves[arm],
            "fvd": fvd.get(arm),
            "config": config_to_dict(arm_cfg),
        }
    result = {
        "command": " ".join(["python", *sys.argv]),
        "torch": torch.__version__,
        "fvd_protocol": {
            "videos": args.fvd_videos,
            "context": cfg.eval.score_context,
            "generated": args.fvd_horizon,
            "real_vs_real": fvd.get(FLOOR),
        }
        if fvd
        else None,  # fmt: skip
        "empty_per_frame": curves["empty"],
        "arms": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.json, json.dumps(result, indent=1))
    keys = ("rel_best@10", "rel_empty@100", "brightness@50-100", "mse@100", "lpips@10",
            "lpips@100", "ssim@100", "psnr@100")  # fmt: skip
    print("| model | params | steps | ms/step | gen ms/frame | " + " | ".join(keys) + " | FVD |")
    for arm, r in rows.items():
        cells = [f"{r['final'][k]:.4g}" if k in r["final"] else "" for k in keys]
        f = "" if r["fvd"] is None else f"{r['fvd']:.1f}"
        head = f"| {arm} | {r['parameters']:,} | {r['steps']} | {r['ms_per_step']:.0f} | "
        print(head + f"{r['ms_per_generated_frame']:.1f} | " + " | ".join(cells) + f" | {f} |")
    if fvd:
        print(f"FVD real vs real (another seed): {fvd[FLOOR]:.1f}")
    print(f"wrote {args.json} and {args.figures}/")


if __name__ == "__main__":
    main()
