"""The long-horizon study at CPU scale (issue 7), in one command.

Trains ConvS5, ConvLSTM and the frame Transformer on 32x32 Moving-MNIST with the same
wall-clock budget each, then evaluates each with the SPEC section 5 protocol on the same
seeded evaluation videos: condition on the context, generate far beyond the training length,
score PSNR / SSIM / LPIPS per horizon (FVD on request: I3D at 224x224 costs ~0.2 s per frame
on this CPU), and time training steps and generated frames.

    python experiments/long_horizon/run.py --minutes 12 --out runs/long_horizon

Writes under --out: one training run per model, its evaluation (metrics.json, videos_*.npy,
GIF/MP4/PNG), ``results.json`` with everything, and the figures and pretrained models under
--docs (docs/figures/long_horizon, pretrained/long_horizon by default).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from convssm.metrics import evaluate_predictions
from convssm.run.demo import seconds_per_step
from convssm.run.inference import evaluate_checkpoint, load_trained
from convssm.train.checkpoint import write_experiment_yaml
from convssm.train.config import load_config
from convssm.train.loop import train_and_evaluate
from convssm.train.runlog import read_jsonl

HERE = Path(__file__).resolve().parent
MODELS = ("convs5", "convlstm", "transformer")


def plan_steps(cfg, budget_s: float) -> tuple[int, float]:
    """Steps that fit the budget by a short timing probe; the time limit guards the rest."""
    step_s = seconds_per_step(cfg, probes=5)
    steps = max(50, int(budget_s / step_s))
    cfg.train.steps = steps
    cfg.train.time_limit_s = budget_s * 1.05
    cfg.train.checkpoint_every = max(1, steps // 4)
    cfg.train.eval_every = steps  # one small validation at the end
    return steps, step_s


@torch.no_grad()
def time_generation(model, context: torch.Tensor, horizon: int, repeats: int = 3) -> dict:
    """Median seconds per generated frame, batch 1, after ``context`` frames."""
    per_run = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _frame in model.iter_generate(context, horizon):
            pass
        per_run.append((time.perf_counter() - t0) / horizon)
    return {"ms_per_frame": 1e3 * statistics.median(per_run), "horizon": horizon, "batch": 1}


def run_model(name: str, args, out: Path) -> dict:
    cfg = load_config(HERE / "configs" / f"{name}.yaml")
    torch.set_num_threads(cfg.train.threads)
    workdir = out / name
    if workdir.exists():
        shutil.rmtree(workdir)
    steps, probe_s = plan_steps(cfg, args.minutes * 60.0)
    print(f"[{name}] probe {probe_s:.3f} s/step -> {steps} steps in {args.minutes} min", flush=True)
    t0 = time.perf_counter()
    result = train_and_evaluate(cfg, workdir)
    train_s = time.perf_counter() - t0
    log = read_jsonl(workdir / "train_log.jsonl")
    print(f"[{name}] trained {result.step} steps in {train_s:.0f} s, loss {result.loss:.4f}")

    ev, _ = evaluate_checkpoint(
        result.checkpoint, out / f"{name}_eval", num_videos=args.eval_videos
    )
    fvd = None
    if args.fvd_videos:  # on a short horizon: I3D costs ~0.2 s per 224x224 frame on a CPU
        fvd_ev, _ = evaluate_checkpoint(
            result.checkpoint,
            out / f"{name}_fvd",
            num_videos=args.fvd_videos,
            overrides=[
                f"eval.horizons=[{args.fvd_horizon}]",
                "eval.metrics=[fvd]",
                f"eval.fvd_chunk={args.fvd_videos}",
                "eval.save_videos=false",
            ],
        )
        fvd = fvd_ev.to_dict()

    tm = load_trained(result.checkpoint, device="cpu")
    gen = torch.Generator().manual_seed(0)
    context = torch.rand(1, cfg.eval.context, 1, 32, 32, generator=gen) * 2 - 1
    timing = time_generation(tm.model, context, max(cfg.eval.horizons))
    if name == "transformer":
        tm.model.sequence.cache = False  # the reference's sampling: re-run the window
        timing["no_cache_ms_per_frame"] = time_generation(
            tm.model, context, max(cfg.eval.horizons), repeats=1
        )["ms_per_frame"]
        tm.model.sequence.cache = True

    pretrained = Path(args.pretrained) / name
    tm.model.save_pretrained(pretrained)
    write_experiment_yaml(pretrained, tm.config)  # its data and evaluation settings
    n_params = sum(p.numel() for p in tm.model.parameters())
    return {
        "model": name,
        "parameters": n_params,
        "steps": result.step,
        "train_seconds": train_s,
        "seconds_per_step": train_s / max(result.step, 1),
        "probe_seconds_per_step": probe_s,
        "final_loss": result.loss,
        "loss_curve": [(r["step"], r["loss"]) for r in log],
        "eval": ev.to_dict(),
        "fvd": fvd,
        "generation": timing,
        "pretrained": str(pretrained),
        "config": str(HERE / "configs" / f"{name}.yaml"),
    }


def blank_baseline(out: Path, cfg) -> dict:
    """The same protocol scored for a model that predicts an empty (background) frame.

    Pixel metrics reward a blurred or empty guess once a model has lost track of the
    digits; this row shows what "predicting nothing" scores, to read the others against.
    """
    truth = np.load(out / f"{MODELS[0]}_eval" / "videos_truth.npy")
    truth = torch.from_numpy(truth).float() / 127.5 - 1
    pred = torch.full_like(truth[:, cfg.eval.context :], -1.0)
    ev = evaluate_predictions(truth, pred, cfg.eval.context, cfg.eval.horizons, cfg.eval.metrics)
    return ev.to_dict()


def plot_curves(
    results: list[dict], figdir: Path, train_len: int, context: int, blank: dict | None = None
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for metric, label in [
        ("mse", "MSE (per pixel, [0,1])"),
        ("ssim", "SSIM"),
        ("psnr", "PSNR (dB)"),
        ("lpips", "LPIPS"),
    ]:
        fig, ax = plt.subplots(figsize=(7, 4))
        for r in results:
            curve = r["eval"]["per_frame"].get(metric)
            if curve:
                ax.plot(range(1, len(curve) + 1), curve, label=r["model"])
        if blank and blank["per_frame"].get(metric):
            curve = blank["per_frame"][metric]
            ax.plot(range(1, len(curve) + 1), curve, "k:", lw=1, label="empty frame")
        ax.axvline(train_len - context, color="grey", ls="--", lw=1, label="training length")
        ax.set_xlabel("generated frame")
        ax.set_ylabel(label)
        ax.set_xscale("log")
        ax.legend()
        ax.set_title(f"Moving-MNIST 32x32, context {context}, trained on {train_len} frames")
        fig.tight_layout()
        path = figdir / f"per_frame_{metric}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        steps, losses = zip(*r["loss_curve"], strict=True)
        secs = np.asarray(steps) * r["seconds_per_step"] / 60
        ax.plot(secs, losses, label=r["model"])
    ax.set_xlabel("training time (min)")
    ax.set_ylabel("training loss (0.5 MSE + 0.5 L1)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    path = figdir / "training_loss.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths


def rollout_strip(out: Path, figdir: Path, context: int, video: int = 0) -> Path:
    """One PNG: ground truth and each model's rollout at chosen generated frames."""
    from PIL import Image, ImageDraw

    frames = [1, 2, 4, 8, 16, 32, 64, 120, 180, 240]
    rows, names = [], ["truth"]
    truth = np.load(out / f"{MODELS[0]}_eval" / "videos_truth.npy", mmap_mode="r")[video]
    rows.append([truth[context + f - 1, 0] for f in frames])
    for name in MODELS:
        pred = np.load(out / f"{name}_eval" / "videos_pred.npy", mmap_mode="r")[video]
        rows.append([pred[f - 1, 0] for f in frames])
        names.append(name)
    size, scale, pad, left, top = truth.shape[-1], 3, 4, 90, 18
    cell = size * scale + pad
    img = Image.new("L", (left + cell * len(frames), top + cell * len(rows)), 255)
    draw = ImageDraw.Draw(img)
    for j, f in enumerate(frames):
        draw.text((left + j * cell, 2), f"t+{f}", fill=0)
    for i, (row, name) in enumerate(zip(rows, names, strict=True)):
        draw.text((4, top + i * cell + cell // 2 - 6), name, fill=0)
        for j, frame in enumerate(row):
            tile = Image.fromarray(frame).resize((size * scale, size * scale), Image.NEAREST)
            img.paste(tile, (left + j * cell, top + i * cell))
    path = figdir / f"rollouts_video{video}.png"
    img.save(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="training budget per model")
    parser.add_argument("--out", default="runs/long_horizon")
    parser.add_argument("--figures", default="docs/figures/long_horizon")
    parser.add_argument("--pretrained", default="pretrained/long_horizon")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--eval-videos", type=int, default=None, help="default: the config's")
    parser.add_argument("--fvd-videos", type=int, default=0, help="0: no FVD (CPU cost)")
    parser.add_argument("--fvd-horizon", type=int, default=16)
    parser.add_argument(
        "--summarize-only", action="store_true", help="redo tables and figures from --out"
    )
    args = parser.parse_args()
    out, figdir = Path(args.out), Path(args.figures)
    out.mkdir(parents=True, exist_ok=True)
    figdir.mkdir(parents=True, exist_ok=True)
    previous = out / "results.json"
    if args.summarize_only:  # tables and figures again from an earlier run's results
        results = json.loads(previous.read_text())["results"]
    else:
        results = [run_model(name, args, out) for name in args.models]
    if not args.summarize_only and set(args.models) != set(MODELS) and previous.is_file():
        # Re-running some models: keep the others' results from the earlier run.
        done = {r["model"]: r for r in json.loads(previous.read_text())["results"]}
        done.update({r["model"]: r for r in results})
        results = [done[m] for m in MODELS if m in done]
    cfg = load_config(HERE / "configs" / "convs5.yaml")
    commands = []
    if previous.is_file():
        old = json.loads(previous.read_text())
        commands = old.get("commands", [old["command"]] if "command" in old else [])
    summary = {
        "commands": [*commands, " ".join(["python", *sys.argv])],
        "machine": f"{platform.machine()} {platform.processor()}",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "train_length": cfg.data.seq_len,
        "context": cfg.eval.context,
        "results": results,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    if [r["model"] for r in results] == list(MODELS):
        summary["blank_baseline"] = blank_baseline(out, cfg)
        (out / "results.json").write_text(json.dumps(summary, indent=2))
        plot_curves(results, figdir, cfg.data.seq_len, cfg.eval.context, summary["blank_baseline"])
        for v in (0, 1):
            rollout_strip(out, figdir, cfg.eval.context, v)
    print_table(results)
    print(f"wrote {out / 'results.json'} and figures in {figdir}")
    return 0


def print_table(results: list[dict]) -> None:
    horizons = results[0]["eval"]["horizons"]
    head = "| model | params | steps | s/step | gen ms/frame |"
    for h in horizons:
        head += f" PSNR@{h} | SSIM@{h} | LPIPS@{h} |"
    print(head)
    for r in results:
        row = (
            f"| {r['model']} | {r['parameters']:,} | {r['steps']} | {r['seconds_per_step']:.3f} "
            f"| {r['generation']['ms_per_frame']:.1f} |"
        )
        for h in horizons:
            m = r["eval"]["per_horizon"][str(h)]
            row += f" {m.get('psnr', float('nan')):.2f} | {m.get('ssim', float('nan')):.3f} |"
            row += f" {m.get('lpips', float('nan')):.3f} |"
        print(row)


if __name__ == "__main__":
    sys.exit(main())
