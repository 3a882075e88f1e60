"""``TrainState``: everything a training run carries from step to step, saved and restored whole.

A checkpoint holds the state's model weights (``model.safetensors``), the config
(``config.json`` + ``experiment.yaml``) and :meth:`TrainState.state_dict` (``training_state.pt``:
optimizer, scheduler, gradient scaler, step, sampler position and RNG states). Restoring it
with :func:`restore_train_state` and running on gives bit-for-bit the run that was not
interrupted (on CPU): the batches of step ``s`` are a function of ``s`` and the torch RNG is
re-seeded from ``(seed, step, data-parallel rank)`` before every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from convssm.train.checkpoint import (
    CheckpointInfo,
    capture_rng_state,
    load_model_weights,
    restore_rng_state,
    save_checkpoint,
)
from convssm.train.config import ExperimentConfig, model_kind
from convssm.train.distributed import DistributedContext, barrier, wrap_model
from convssm.train.sampling import StepSampler
from convssm.train.schedule import build_scheduler, make_optimizer
from convssm.train.tokenizer_loss import TokenizerLoss, TokenizerTraining

__all__ = ["TrainState", "create_train_state", "restore_train_state", "save_train_state"]


@dataclass(eq=False)
class TrainState:
    """The model and what trains it, at optimizer step ``step``.

    Attributes:
        model: the bare module (what checkpoints save).
        optimizer, scheduler: AdamW and its warm-up/cosine schedule.
        scaler: the fp16 gradient scaler (``enabled=False`` unless training in fp16 on CUDA).
        sampler: which samples every step reads; its ``start_step`` is the data position.
        config: the experiment config (``train_step`` reads ``train`` and ``optim``).
        step: optimizer updates done so far.
        ctx: where this process stands (device, rank, world size).
        objective: for a ``vq_tokenizer`` run, the :class:`TokenizerTraining` module that
            holds the model and its loss (with the discriminator, whose weights the
            training state saves); None for the predictors, whose losses are objectives of
            their outputs (:mod:`convssm.train.objectives`).
        ddp_model: the module forward and backward run through: ``objective`` or ``model``, or its
            ``DistributedDataParallel`` wrapper in a multi-process run.
        run_time: the run's training time so far over all its processes (a resumed run
            adds to it): ``wall_s`` and ``cpu_s`` (rank 0's process CPU time); the loop
            sets it before every checkpoint.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    sampler: StepSampler
    config: ExperimentConfig
    step: int = 0
    ctx: DistributedContext = field(default_factory=DistributedContext)
    objective: nn.Module | None = None
    ddp_model: nn.Module | None = None
    run_time: dict[str, float] = field(default_factory=lambda: {"wall_s": 0.0, "cpu_s": 0.0})

    def __post_init__(self) -> None:
        if self.ddp_model is None:
            self.ddp_model = self.objective if self.objective is not None else self.model

    def state_dict(self) -> dict[str, Any]:
        """Everything but the weights, as values ``torch.load(weights_only=True)`` reads."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng_state(),
            "step": self.step,
            "data_position": {
                "step": self.step,
                "samples_seen": self.step * self.sampler.global_batch,
                "sampler": self.sampler.state_dict(),
            },
            "objective": self.objective.loss_fn.state_dict() if self.objective else {},
            "world_size": self.ctx.world_size,
            "sequence_parallel": self.ctx.sequence_parallel,
            "run_time": dict(self.run_time),
            "torch_version": str(torch.__version__),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict` (also reads checkpoints of format version 1)."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):  # empty when the run had no enabled scaler
            self.scaler.load_state_dict(state["scaler"])
        if self.objective is not None:
            self.objective.loss_fn.load_state_dict(state.get("objective") or {})
        restore_rng_state(state["rng"])
        self.step = int(state["step"])
        self.run_time = dict(state.get("run_time") or {"wall_s": 0.0, "cpu_s": 0.0})
        self.sampler.start_step = self.step


def _scaler(ctx: DistributedContext, precision: str) -> torch.amp.GradScaler:
    fp16 = ctx.device.type == "cuda" and (
        precision == "fp16" or (precision == "auto" and not torch.cuda.is_bf16_supported())
    )
    return torch.amp.GradScaler(ctx.device.type, enabled=fp16)


def _objective(config: ExperimentConfig, model: nn.Module) -> nn.Module | None:
    """The tokenizer's training module (its loss has networks of its own), else None."""
    if model_kind(config.model) != "vq_tokenizer":
        return None
    loss = TokenizerLoss(config.loss, model.image_channels)
    return TokenizerTraining(model, loss).to(next(model.parameters()).device)


def create_train_state(
    config: ExperimentConfig,
    model: nn.Module,
    dataset_len: int,
    shuffle: bool,
    ctx: DistributedContext,
) -> TrainState:
    """A fresh state at step 0 around ``model`` (moved to ``ctx.device``, wrapped for DDP,
    with activation checkpointing switched on when the config asks for it)."""
    tc, oc = config.train, config.optim
    model = model.to(ctx.device)
    if tc.activation_checkpointing:
        if not hasattr(model, "set_activation_checkpointing"):
            raise ValueError(
                "train.activation_checkpointing needs a model with set_activation_checkpointing "
                f"(like VideoPredictor); {type(model).__name__} has none"
            )
        model.set_activation_checkpointing(True)
    objective = _objective(config, model)
    trained = objective if objective is not None else model
    optimizer = make_optimizer(trained, oc.lr, oc.betas, oc.weight_decay, oc.eps)
    sampler = StepSampler(
        dataset_len,
        tc.batch_size,
        tc.grad_accum,
        ctx.data_world,  # the ranks sharing a sequence read the same samples
        ctx.data_rank,
        seed=config.data.seed,
        shuffle=shuffle,
        total_steps=tc.steps,
        per_step=True,
    )
    return TrainState(
        model=model,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, oc.warmup_steps, tc.steps),
        scaler=_scaler(ctx, tc.precision),
        sampler=sampler,
        config=config,
        ctx=ctx,
        objective=objective,
        ddp_model=wrap_model(trained, ctx),
    )


def restore_train_state(state: TrainState, info: CheckpointInfo) -> None:
    """Load a checkpoint's weights and training state into ``state``.

    The checkpoint's config must match ``state.config`` apart from the ``train`` cadence
    keys and ``train.steps`` (so a run can be extended).
    """
    saved, cfg = info.config, state.config
    for section in ("model", "data", "optim"):
        if getattr(saved, section) != getattr(cfg, section):
            raise ValueError(
                f"--resume: the {section!r} section differs from the checkpoint's "
                f"({info.path}); resume with the same config"
            )
    if saved.train.batch_size != cfg.train.batch_size or saved.train.seed != cfg.train.seed:
        raise ValueError("--resume: train.batch_size and train.seed must match the checkpoint")
    _check_layout(info, state.ctx)
    load_model_weights(state.model, info.weights, str(info.path))
    state.model.to(state.ctx.device)
    state.load_state_dict(info.training_state)


def _check_layout(info: CheckpointInfo, ctx: DistributedContext) -> None:
    """Refuse to resume a context-parallel run (now or then) on another layout: another
    ``train.sequence_parallel`` or, with it, another world size."""
    saved = info.training_state
    world, parallel = saved.get("world_size", 1), saved.get("sequence_parallel", 1)
    if parallel == ctx.sequence_parallel and (parallel == 1 or world == ctx.world_size):
        return
    raise ValueError(
        f"--resume: the checkpoint ({info.path}) was written by {world} process(es) with "
        f"train.sequence_parallel={parallel}; this run has {ctx.world_size} with "
        f"train.sequence_parallel={ctx.sequence_parallel}. A context-parallel run resumes "
        f"exactly on the same layout only: relaunch with {world} processes and "
        f"train.sequence_parallel={parallel}"
    )


def save_train_state(directory: str | Path, state: TrainState) -> Path | None:
    """Checkpoint ``state`` into ``directory`` (rank 0 writes; every rank waits for it)."""
    path = None
    if state.ctx.is_main:
        path = save_checkpoint(
            directory,
            state.step,
            state.model,
            state.config,
            state.state_dict(),
            keep=state.config.train.keep_checkpoints,
        )
    barrier(state.ctx)
    return path
