"""``train_and_evaluate``: the training loop, one process or many under ``torchrun``.

A plain PyTorch loop: AdamW with warm-up and cosine decay, autocast on GPU (bf16, or fp16
with a gradient scaler), gradient accumulation, a tqdm bar, JSONL/CSV (and TensorBoard)
logs, periodic validation with generation and metrics, periodic atomic checkpoints.

Exact resume: the batches of step ``s`` are a function of ``s`` (:class:`StepSampler`) and
the torch RNG is re-seeded from ``(seed, step, rank)`` before every step, so a run resumed
from a checkpoint computes the same losses as an uninterrupted one (bit for bit on CPU).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from convssm.train.checkpoint import (
    capture_rng_state,
    latest_checkpoint,
    load_checkpoint,
    load_model_weights,
    restore_rng_state,
    save_checkpoint,
)
from convssm.train.config import ExperimentConfig, config_from_dict, config_to_dict, dump_yaml
from convssm.train.distributed import (
    DistributedContext,
    all_reduce_mean,
    barrier,
    init_distributed,
    teardown,
    unwrap_model,
    wrap_model,
)
from convssm.train.evaluation import autocast_context, evaluate_predictions, generate_videos
from convssm.train.factory import build_eval_dataset, build_model, split_item
from convssm.train.runlog import RunLogger
from convssm.train.sampling import StepSampler
from convssm.train.schedule import build_scheduler, make_optimizer

__all__ = ["TrainResult", "train_and_evaluate", "step_seed"]


@dataclass
class TrainResult:
    """What a run ends with: its last step, last loss, workdir and last checkpoint."""

    step: int
    loss: float | None
    workdir: Path
    checkpoint: Path | None
    validation: dict[str, Any] | None
    is_main: bool = True


def step_seed(seed: int, step: int, rank: int) -> int:
    """The torch seed for ``step`` on ``rank`` (independent of how the run was split up)."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] >> 1)


def _collate(items: list[Any]) -> Any:
    return torch.utils.data.default_collate(items)


def _scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    if device.type != "cuda":
        return None
    fp16 = precision == "fp16" or (precision == "auto" and not torch.cuda.is_bf16_supported())
    return torch.amp.GradScaler("cuda") if fp16 else None


def _validate(
    model: torch.nn.Module, cfg: ExperimentConfig, val_set: Dataset, ctx: DistributedContext
) -> dict[str, Any]:
    """Generate on a few held-out videos and score them (rank 0 only)."""
    horizon = cfg.eval.val_horizon or min(cfg.eval.horizons)
    loader = DataLoader(val_set, batch_size=cfg.eval.batch_size, collate_fn=_collate)
    videos = (split_item(b) for b in loader)
    truth, pred = generate_videos(
        model, videos, cfg.eval.context, horizon, ctx.device, cfg.train.precision
    )
    metrics = [m for m in cfg.eval.metrics if m in ("psnr", "ssim")]
    res = evaluate_predictions(truth, pred, cfg.eval.context, [horizon], metrics)
    out = {f"{k}@{horizon}": v for k, v in res.per_horizon[str(horizon)].items()}
    if res.skipped:
        out["skipped"] = res.skipped
    return out


def train_and_evaluate(
    config: ExperimentConfig,
    workdir: str | Path,
    *,
    resume: bool = False,
    model_factory: Callable[[ExperimentConfig], torch.nn.Module] | None = None,
    train_dataset: Dataset | None = None,
    val_dataset: Dataset | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``config`` in ``workdir`` (logs, checkpoints); validate and checkpoint periodically.

    Args:
        resume: continue from the newest checkpoint in ``workdir/checkpoints`` (an error if
            there is none); the config must match the checkpoint's apart from the ``train``
            cadence keys and ``train.steps``.
        model_factory, train_dataset, val_dataset: replace the config-built model and data
            (tests and library use); items are (T, C, H, W) in [-1, 1] or dicts with ``video``.
        stop_after: stop after this many steps in total (simulates an interruption).
    """
    cfg, tc = config, config.train
    workdir = Path(workdir)
    if tc.threads is not None:
        torch.set_num_threads(tc.threads)
    ctx = init_distributed(tc.device)
    try:
        return _run(
            cfg, tc, workdir, ctx, resume, model_factory, train_dataset, val_dataset, stop_after
        )
    finally:
        teardown(ctx)


def _run(cfg, tc, workdir, ctx, resume, model_factory, train_dataset, val_dataset, stop_after):
    ckpt_dir = workdir / "checkpoints"
    state = None
    if resume:
        last = latest_checkpoint(ckpt_dir)
        if last is None:
            raise ValueError(f"--resume: no checkpoint under {str(ckpt_dir)!r}")
        info = load_checkpoint(last)
        saved = config_from_dict(yaml.safe_load(info.experiment_yaml))
        for section in ("model", "data", "optim"):
            if getattr(saved, section) != getattr(cfg, section):
                raise ValueError(
                    f"--resume: the {section!r} section differs from the checkpoint's "
                    f"({last}); resume with the same config"
                )
        if saved.train.batch_size != tc.batch_size or saved.train.seed != tc.seed:
            raise ValueError("--resume: train.batch_size and train.seed must match the checkpoint")
        state = info

    torch.manual_seed(tc.seed)
    model = (model_factory or (lambda c: build_model(c.model)))(cfg).to(ctx.device)
    if state is not None:
        load_model_weights(model, state.weights, str(state.path))
        model.to(ctx.device)
    ddp_model = wrap_model(model, ctx)
    optim = make_optimizer(
        model, cfg.optim.lr, cfg.optim.betas, cfg.optim.weight_decay, cfg.optim.eps
    )
    sched = build_scheduler(optim, cfg.optim.warmup_steps, tc.steps)
    scaler = _scaler(ctx.device, tc.precision)
    start = 0
    if state is not None:
        ts = state.training_state
        optim.load_state_dict(ts["optimizer"])
        sched.load_state_dict(ts["scheduler"])
        if scaler is not None and ts.get("scaler"):
            scaler.load_state_dict(ts["scaler"])
        restore_rng_state(ts["rng"])
        start = int(ts["step"])

    if train_dataset is None:
        from convssm.train.factory import build_train_dataset

        train_dataset, shuffle = build_train_dataset(cfg)
    else:
        shuffle = True
    sampler = StepSampler(
        len(train_dataset),
        tc.batch_size,
        tc.grad_accum,
        ctx.world_size,
        ctx.rank,
        seed=cfg.data.seed,
        shuffle=shuffle,
        start_step=start,
        total_steps=tc.steps,
    )
    loader = DataLoader(
        train_dataset,
        batch_sampler=sampler,
        num_workers=cfg.data.num_workers,
        collate_fn=_collate,
        pin_memory=ctx.device.type == "cuda",
        persistent_workers=False,
    )
    if ctx.is_main and val_dataset is None:
        horizon = cfg.eval.val_horizon or min(cfg.eval.horizons)
        val_dataset = build_eval_dataset(cfg, cfg.eval.val_videos, cfg.eval.context + horizon)

    logger = RunLogger(workdir, resume_step=start if resume else None) if ctx.is_main else None
    if ctx.is_main:
        (workdir / "config.yaml").write_text(dump_yaml(cfg))
        if logger.tensorboard_note:
            tqdm.write(logger.tensorboard_note)
    end = tc.steps if stop_after is None else min(tc.steps, stop_after)
    bar = tqdm(
        total=tc.steps,
        initial=start,
        disable=not (ctx.is_main and tc.progress),
        desc=cfg.name,
        dynamic_ncols=True,
    )
    it = iter(loader)
    step, last_loss, last_ckpt, val = start, None, None, None
    t0, window_t, window_steps = time.perf_counter(), time.perf_counter(), 0
    while step < end:
        ddp_model.train()
        torch.manual_seed(step_seed(tc.seed, step, ctx.rank))
        total = torch.zeros((), device=ctx.device)
        for micro in range(tc.grad_accum):
            video, actions = split_item(next(it))
            video = video.to(ctx.device, non_blocking=True)
            if actions is not None:
                actions = actions.to(ctx.device, non_blocking=True)
            sync = micro == tc.grad_accum - 1 or not ctx.is_distributed
            guard = ddp_model.no_sync() if not sync else contextlib.nullcontext()
            with guard:
                with autocast_context(ctx.device, tc.precision):
                    loss = ddp_model(video, actions).loss / tc.grad_accum
                (scaler.scale(loss) if scaler is not None else loss).backward()
            total += loss.detach().float()
        if scaler is not None:
            scaler.unscale_(optim)
        if cfg.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        lr = optim.param_groups[0]["lr"]
        if scaler is not None:
            scaler.step(optim)
            scaler.update()
        else:
            optim.step()
        optim.zero_grad(set_to_none=True)
        sched.step()
        step += 1
        window_steps += 1
        out_of_time = _out_of_time(tc.time_limit_s, t0, ctx)
        if out_of_time:
            end = step
        if step % tc.log_every == 0 or step == end:
            # The loss is read (a host sync, which stalls a GPU) only here, when logged.
            mean_loss = float(all_reduce_mean(total, ctx))
            if not math.isfinite(mean_loss):
                raise FloatingPointError(
                    f"loss is {mean_loss} at step {step} (the mean over the steps since the "
                    f"last log, every train.log_every = {tc.log_every} steps)"
                )
            last_loss = mean_loss
            now = time.perf_counter()
            rate = window_steps / max(now - window_t, 1e-9)
            window_t, window_steps = now, 0
            if ctx.is_main:
                logger.log_train(
                    {
                        "step": step,
                        "loss": mean_loss,
                        "lr": lr,
                        "steps_per_s": rate,
                        "elapsed_s": now - t0,
                    }
                )
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")
        bar.update(1)
        if step % tc.eval_every == 0 or step == tc.steps:
            if ctx.is_main:
                val = _validate(model, cfg, val_dataset, ctx)
                logger.log_val(step, val)
                bar.write(
                    f"step {step}: "
                    + ", ".join(f"{k} {v:.4f}" for k, v in val.items() if isinstance(v, float))
                )
            barrier(ctx)
        if step % tc.checkpoint_every == 0 or step == tc.steps or out_of_time:
            last_ckpt = _save(ckpt_dir, step, model, cfg, optim, sched, scaler, sampler, ctx)
        if out_of_time and ctx.is_main:
            bar.write(f"train.time_limit_s ({tc.time_limit_s:g} s) reached: stopped at step {step}")
    bar.close()
    if logger is not None:
        logger.close()
    last_ckpt = last_ckpt or latest_checkpoint(ckpt_dir)
    return TrainResult(step, last_loss, workdir, last_ckpt, val, ctx.is_main)


def _out_of_time(limit: float | None, t0: float, ctx: DistributedContext) -> bool:
    """Whether the run's time limit has passed (rank 0's clock decides for every rank)."""
    if limit is None:
        return False
    if not ctx.is_distributed:  # no tensor, no host sync
        return time.perf_counter() - t0 > limit
    flag = torch.tensor([float(time.perf_counter() - t0 > limit)], device=ctx.device)
    if ctx.is_distributed:
        torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


def _save(ckpt_dir, step, model, cfg, optim, sched, scaler, sampler, ctx) -> Path | None:
    path = None
    if ctx.is_main:
        bare = unwrap_model(model)
        model_config = getattr(bare, "config", None) or config_to_dict(cfg)["model"]
        training_state = {
            "optimizer": optim.state_dict(),
            "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "rng": capture_rng_state(),
            "data_position": {
                "step": step,
                "samples_seen": step * cfg.train.batch_size,
                "sampler": sampler.state_dict(),
            },
            "world_size": ctx.world_size,
            "torch_version": str(torch.__version__),
        }
        path = save_checkpoint(
            ckpt_dir,
            step,
            bare,
            _jsonable(model_config),
            dump_yaml(cfg),
            training_state,
            keep=cfg.train.keep_checkpoints,
        )
    barrier(ctx)
    return path


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
