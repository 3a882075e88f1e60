"""``convssm demo``: show what a ConvS5 remembers, what it predicts, then train a small one.

Three phases inside the time budget, each reporting as it goes:

1. **Memory** (:mod:`convssm.run.recall_demo`): a digit shown once, a moving distractor for
   1 000 frames, a cue — the published ConvS5 recall model and the ConvLSTM trained on the
   same task redraw the digit; ``rel_recall`` for both, the task's frames and a strip of the
   recalls (docs/recall.md: which delays each model remembers).
2. **A published Moving-MNIST model** (``pretrained/moving_mnist/convs5_1digit_roll48_24`` by
   default) predicts held-out videos (digits it never saw) from 10 context frames to ten
   times its training length; a picture strip, a GIF and scores beside the trivial
   predictors. Its limit, stated as it runs: it tracks the digit for about 20 frames, then
   the digit fades into a cloud.
3. **Training from scratch**: the small CPU config for the rest of the budget (steps from a
   short timing probe, ``train.time_limit_s`` as a guard), then a short evaluation and the
   model's own predictions; a loss curve shows it falling.

The budget is measured as the demo goes: generation stops early (and says so) when its
share runs out, and a slow machine gets fewer training steps, not a longer demo.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convssm._files import atomic_write_text
from convssm._precision import autocast_context
from convssm._resources import config_path as shipped_config
from convssm._resources import shipped_dir
from convssm.data import MovingMNIST, MovingMNISTParams
from convssm.metrics import trivial_predictor_scores
from convssm.metrics.scoring import json_safe
from convssm.models import VideoPredictor
from convssm.run.baselines import TrivialBaselines
from convssm.run.inference import evaluate_checkpoint, generate_from_checkpoint
from convssm.run.media import side_by_side, write_gif, write_strip
from convssm.run.recall_demo import RECALL_DELAY, show_recall
from convssm.train.checkpoint import read_experiment_yaml
from convssm.train.config import ExperimentConfig, load_config
from convssm.train.factory import build_model, build_train_dataset
from convssm.train.loop import train_and_evaluate
from convssm.train.objectives import video_prediction_loss
from convssm.train.runlog import read_jsonl

__all__ = [
    "DEMO_CONFIG",
    "DEMO_MODEL",
    "find_demo_model",
    "show_published_model",
    "published_summary",
    "find_demo_config",
    "step_times",
    "seconds_per_step",
    "plan_demo",
    "published_moving_mnist_data",
    "run_demo",
]

DEMO_CONFIG = Path("configs") / "cpu" / "convs5_small.yaml"
DEMO_MODEL = Path("pretrained") / "moving_mnist" / "convs5_1digit_roll48_24"
TRAIN_SHARE = 0.7  # of the training phase's budget; the rest is validation, evaluation, pictures
SHOW_SHARE = 0.2  # of the whole budget, for the published model's phase
DEMO_EVAL_VIDEOS = 8  # held-out videos the from-scratch model is evaluated on


def find_demo_model() -> Path:
    """The published demo model, shipped with the package (package data in a wheel, the
    repository's ``pretrained/`` in a source checkout)."""
    path = shipped_dir("pretrained") / DEMO_MODEL.relative_to("pretrained")
    if not any((path / name).is_file() for name in ("experiment.yaml", "training.json")):
        raise ValueError(
            f"this installation has no published demo model at {path}; pass --model DIR (a "
            "folder written by convssm publish, with experiment.yaml)"
        )
    return path


def published_moving_mnist_data(model_dir: Path) -> dict[str, Any]:
    """The Moving-MNIST parameters a published model was trained on: ``image_size``,
    ``num_digits``, ``digit_size``, ``step``, ``seq_len``. From ``experiment.yaml`` (a folder
    written by ``convssm publish``) or ``training.json`` (the former learning harness's)."""
    if (model_dir / "experiment.yaml").is_file():
        model = VideoPredictor.from_pretrained(model_dir)
        data = read_experiment_yaml(model_dir, model.config).data
        if data.dataset != "moving_mnist":
            raise ValueError(f"{model_dir} was trained on {data.dataset!r}, not moving_mnist")
        return {
            "image_size": model.config.image_size,
            "num_digits": data.num_digits,
            "digit_size": data.options.get("digit_size", MovingMNISTParams.digit_size),
            "step": data.options.get("step", MovingMNISTParams.step),
            "seq_len": data.seq_len,
        }
    if (model_dir / "training.json").is_file():
        return json.loads((model_dir / "training.json").read_text())["data"]
    raise ValueError(
        f"{model_dir} has neither experiment.yaml nor training.json (the data the model was "
        "trained on)"
    )


def find_demo_config() -> Path:
    """``configs/cpu/convs5_small.yaml``, shipped with the package (package data in a wheel,
    the repository's ``configs/`` in a source checkout)."""
    return shipped_config(DEMO_CONFIG.relative_to("configs").as_posix())


def step_times(cfg: ExperimentConfig, probes: int = 5) -> list[float]:
    """Wall times of ``probes`` optimizer steps (forward + backward + AdamW) for ``cfg``,
    after one warm-up step, on one batch of its training data (CPU)."""
    if cfg.train.threads is not None:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dataset, _ = build_train_dataset(cfg)
    batch = torch.stack([dataset[i] for i in range(cfg.train.batch_size)])
    times = []
    for _ in range(probes + 1):
        t0 = time.perf_counter()
        with autocast_context(torch.device("cpu"), cfg.train.precision):
            loss = video_prediction_loss(model(batch))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return times[1:]


def seconds_per_step(cfg: ExperimentConfig, probes: int = 5) -> float:
    """Median wall time of one optimizer step (forward + backward + AdamW) for ``cfg``."""
    times = sorted(step_times(cfg, probes))
    return times[len(times) // 2]


def plan_demo(cfg: ExperimentConfig, minutes: float, step_s: float) -> ExperimentConfig:
    """Fit ``cfg`` to the time budget: steps, warm-up, cadence, and a 10x-length horizon."""
    budget = TRAIN_SHARE * minutes * 60.0
    steps = max(20, min(cfg.train.steps, int(budget / max(step_s, 1e-6))))
    cfg.train.steps = steps
    cfg.train.time_limit_s = budget  # a guard when the machine gets busier than the probe saw
    cfg.optim.warmup_steps = min(cfg.optim.warmup_steps, steps // 10)
    cfg.train.eval_every = -(-steps // 2)  # ceil: validate half-way and at the end
    cfg.train.checkpoint_every = -(-steps // 4)
    cfg.train.log_every = max(1, min(cfg.train.log_every, steps // 20))
    longest = 10 * cfg.data.seq_len
    if max(cfg.eval.horizons) < longest:
        cfg.eval.horizons = sorted({*cfg.eval.horizons, longest})
    # evaluation runs after the training budget: 8 videos keep it to tens of seconds
    cfg.eval.num_videos = min(cfg.eval.num_videos, DEMO_EVAL_VIDEOS)
    return cfg


def _uint8(video: torch.Tensor) -> np.ndarray:
    """(T, C, H, W) in [−1, 1] -> uint8."""
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


@torch.no_grad()
def show_published_model(
    model_dir: str | Path,
    out_dir: str | Path,
    budget_s: float,
    *,
    videos: int = 4,
    context: int = 10,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Phase 1: the published model predicts ``videos`` held-out videos to 10× its training
    length from ``context`` frames, inside ``budget_s`` seconds; strip, GIF and scores.

    ``model_dir`` holds the model (``save_pretrained``) and the Moving-MNIST parameters it
    was trained on (:func:`published_moving_mnist_data`). Returns the paths written and the
    scores."""
    t0 = time.perf_counter()
    model_dir, out = Path(model_dir), Path(out_dir)
    data = published_moving_mnist_data(model_dir)
    model = VideoPredictor.from_pretrained(model_dir).eval()
    horizon = 10 * int(data["seq_len"])
    ds = MovingMNIST(videos, num_frames=context + horizon, image_size=data["image_size"],
                     num_digits=data["num_digits"], digit_size=data["digit_size"],
                     step=data.get("step", 0.15), split="eval", seed=7)  # fmt: skip
    truth = torch.stack([ds[i] for i in range(videos)])
    log(
        f"demo [2/3]: published model {model_dir.name}: {data['num_digits']} digit(s) on "
        f"{data['image_size']}x{data['image_size']}, trained on {data['seq_len']}-frame "
        f"sequences; predicting {videos} held-out videos, {context} context frames -> "
        f"{horizon} frames (10x the training length), budget {budget_s:.0f} s"
    )
    frames, report_every = [], max(1, horizon // 4)
    for k, frame in enumerate(model.iter_generate(truth[:, :context], horizon), start=1):
        frames.append(frame)
        elapsed = time.perf_counter() - t0
        if k % report_every == 0 or k == horizon:
            log(f"demo [2/3]: {k}/{horizon} frames generated ({elapsed:.0f} s)")
        if elapsed > budget_s and k < horizon:
            log(f"demo [2/3]: time share used up: stopped at {k} of {horizon} frames")
            break
    pred = torch.stack(frames, dim=1)
    made = pred.shape[1]
    unit_pred = (pred + 1) / 2
    unit_truth = (truth[:, context : context + made] + 1) / 2
    horizons = [h for h in (10, 100, made) if h <= made]
    scores = trivial_predictor_scores(
        unit_pred, unit_truth, (truth[:, context - 1] + 1) / 2, sorted(set(horizons)),
        (50, 100) if made >= 100 else None,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    t_np, p_np = _uint8(truth[0, : context + made]), _uint8(pred[0])
    paths = {
        "published_strip": write_strip(out / "strip.png", t_np, p_np, context, columns=12,
                                       title=f"{model_dir.name}: truth (top), predicted "
                                       f"(bottom), {made} frames after {context}"),
        "published_gif": write_gif(out / "predicted.gif", side_by_side(t_np, p_np, context),
                                   fps=10, scale=3),
    }  # fmt: skip
    baselines = TrivialBaselines(made, truth.shape[2])
    baselines.update(0, truth[:, context : context + made], pred, truth[:, context - 1])
    record = {"frames": made, **scores, "baselines": baselines.to_dict(horizons)}
    atomic_write_text(out / "scores.json", json.dumps(json_safe(record), indent=1))
    paths["published_scores"] = out / "scores.json"
    log(
        f"demo [2/3]: the picture ({paths['published_strip'].name}, "
        f"{paths['published_gif'].name}): truth on top (left in the GIF), the model's "
        f"prediction below (right), {context} context frames then {made} predicted"
    )
    for line in published_summary(baselines, scores, horizons):
        log(f"demo [2/3]: {line}")
    return {"paths": paths, "scores": scores, "frames": made}


def published_summary(
    baselines: TrivialBaselines, scores: dict[str, float], horizons: list[int]
) -> list[str]:
    """What phase 2's numbers mean, in words: the trivial predictors, the model's MSE over
    each horizon beside them, from which frame on it is worse than an empty frame, and how
    bright its frames are against the true ones."""
    lines = baselines.lines(horizons)
    brightness = next((k for k in scores if k.startswith("brightness@")), None)
    if brightness is not None:
        span = brightness.split("@", 1)[1]
        lines.append(
            f"brightness over frames {span}: the predicted frames hold "
            f"{100 * scores[brightness]:.0f}% of the true frames' light (100% is right; "
            "less: the digit fades)"
        )
    return lines


def _plot_loss(run: Path, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = read_jsonl(run / "train_log.jsonl")
    fig = Figure(figsize=(5, 3), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (0.5 MSE + 0.5 L1)")
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path)
    return path


def run_demo(
    out_dir: str | Path = "demo_output",
    minutes: float = 4.0,
    config_path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    log: Callable[[str], None] = print,
    model_dir: str | Path | None = None,
    recall_delay: int = RECALL_DELAY,
) -> dict[str, Path]:
    """The three phases inside ``minutes``; return the paths of what was written."""
    if minutes <= 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    t_start = time.perf_counter()
    out = Path(out_dir)
    budget = minutes * 60.0
    recall = show_recall(out / "recall", delay=recall_delay, log=log)
    paths = dict(recall["paths"])
    log(
        "demo [2/3]: next, Moving-MNIST: this model tracks a digit for about 20 frames, then "
        "it fades into a cloud (docs/results.md says why and how far that is from the best "
        "possible prediction)"
    )
    shown = show_published_model(model_dir or find_demo_model(), out / "published",
                                 SHOW_SHARE * budget, log=log)  # fmt: skip
    paths.update(shown["paths"])

    cfg = load_config(config_path or find_demo_config(), overrides)
    step_s = seconds_per_step(cfg)
    remaining = budget - (time.perf_counter() - t_start)
    cfg = plan_demo(cfg, max(remaining, 1.0) / 60.0, step_s)
    log(
        f"demo [3/3]: training from scratch: {cfg.name}: {cfg.model.sequence_model} on "
        f"{cfg.model.image_size}x{cfg.model.image_size} Moving-MNIST, {cfg.data.seq_len}-frame "
        f"sequences; {step_s:.2f} s/step -> {cfg.train.steps} steps "
        f"(~{cfg.train.steps * step_s / 60:.1f} min of the {remaining / 60:.1f} min left)"
    )
    run = out / "run"
    t0 = time.perf_counter()
    result = train_and_evaluate(cfg, run, overwrite=True)  # a rerun archives the last
    losses = [r["loss"] for r in read_jsonl(run / "train_log.jsonl")]
    k = max(1, len(losses) // 10)
    log(
        f"demo [3/3]: trained {result.step} steps in {time.perf_counter() - t0:.0f} s; loss "
        f"{sum(losses[:k]) / k:.4f} (first {k} logged) -> {sum(losses[-k:]) / k:.4f} (last {k})"
    )
    paths["loss_curve"] = _plot_loss(run, out / "loss.png")
    log("demo [3/3]: evaluating and drawing its predictions")
    compared: list[str] = []
    ev_result, ev_paths = evaluate_checkpoint(result.checkpoint, out / "eval", log=compared.append)
    paths.update(ev_paths)
    gen = generate_from_checkpoint(result.checkpoint, out / "generate", moving_mnist_seed=7)
    paths.update({f"generate_{k}": v for k, v in gen.items()})
    paths["run"] = run
    longest = str(max(cfg.eval.horizons))
    row = ev_result.per_horizon[longest]
    shown_metrics = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float))
    log(
        f"demo [3/3]: context {cfg.eval.context}, {longest} generated frames "
        f"({int(longest) // cfg.data.seq_len}x the training length): {shown_metrics}"
    )
    log(
        f"demo [3/3]: the pictures ({out / 'eval'}, {out / 'generate'}): truth left, the "
        "model's prediction right; its error beside the trivial predictors over "
        f"{ev_result.num_videos} held-out videos:"
    )
    for line in compared:
        log(f"demo [3/3]: {line}")
    if ev_result.skipped:
        for name, why in ev_result.skipped.items():
            log(f"demo: metric {name} skipped: {why}")
    log(f"demo: done in {time.perf_counter() - t_start:.0f} s of the {budget:.0f} s budget; wrote")
    for name, path in paths.items():
        log(f"  {name:>18}: {path}")
    return paths
