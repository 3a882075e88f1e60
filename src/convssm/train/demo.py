"""``convssm demo``: train the small CPU ConvS5 on Moving-MNIST for a few minutes, then
generate ten times its training length and write pictures and metrics.

The number of training steps is chosen from a short timing probe so that training takes
about 80% of the time budget, and ``train.time_limit_s`` stops it there if the machine
turns out slower; the rest goes to evaluation and the pictures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from convssm._resources import config_path as shipped_config
from convssm.train.config import ExperimentConfig, load_config
from convssm.train.evaluation import autocast_context
from convssm.train.factory import build_model, build_train_dataset
from convssm.train.inference import evaluate_checkpoint, generate_from_checkpoint
from convssm.train.loop import train_and_evaluate

__all__ = [
    "DEMO_CONFIG",
    "find_demo_config",
    "step_times",
    "seconds_per_step",
    "plan_demo",
    "run_demo",
]

DEMO_CONFIG = Path("configs") / "cpu" / "convs5_small.yaml"
TRAIN_SHARE = 0.8  # of the time budget; the rest is start-up, validation, evaluation, pictures


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
            loss = model(batch).loss
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
    return cfg


def run_demo(
    out_dir: str | Path = "demo_output",
    minutes: float = 3.0,
    config_path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    log: Callable[[str], None] = print,
) -> dict[str, Path]:
    """Train, evaluate and draw; return the paths of what was written."""
    if minutes <= 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    out = Path(out_dir)
    cfg = load_config(config_path or find_demo_config(), overrides)
    step_s = seconds_per_step(cfg)
    cfg = plan_demo(cfg, minutes, step_s)
    log(
        f"demo: {cfg.name}: {cfg.model.sequence_model} on {cfg.model.image_size}x"
        f"{cfg.model.image_size} Moving-MNIST, {cfg.data.seq_len}-frame sequences; "
        f"{step_s:.2f} s/step -> {cfg.train.steps} steps (~{cfg.train.steps * step_s / 60:.1f} min)"
    )
    run = out / "run"
    t0 = time.perf_counter()
    result = train_and_evaluate(cfg, run)
    log(
        f"demo: trained {result.step} steps in {time.perf_counter() - t0:.0f} s, "
        f"last loss {result.loss:.4f}"
    )
    ev_result, paths = evaluate_checkpoint(result.checkpoint, out / "eval")
    gen = generate_from_checkpoint(result.checkpoint, out / "generate", moving_mnist_seed=7)
    paths.update({f"generate_{k}": v for k, v in gen.items()})
    paths["run"] = run
    longest = str(max(cfg.eval.horizons))
    row = ev_result.per_horizon[longest]
    shown = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float))
    log(
        f"demo: context {cfg.eval.context}, {longest} generated frames "
        f"({int(longest) // cfg.data.seq_len}x the training length): {shown}"
    )
    if ev_result.skipped:
        for name, why in ev_result.skipped.items():
            log(f"demo: metric {name} skipped: {why}")
    log("demo: wrote")
    for name, path in paths.items():
        log(f"  {name:>18}: {path}")
    return paths
