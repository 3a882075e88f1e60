"""``train.minutes``: the steps that fit a time budget, from a timing probe.

The probe trains a copy of the model (its own optimizer, fresh data loader) for
:data:`PROBE_WARMUP` untimed then :data:`PROBE_STEPS` timed steps of the rollout loss (the
slower objective, so the plan holds when the rollout starts) and takes the median seconds
per step on ``train.time_clock``. The run gets ``budget / step`` steps, at least
``optim.warmup_steps + 10`` and at most ``train.steps``, so its cosine schedule ends with the
budget. Nothing of the probe reaches the run: its copy, optimizer and batches are thrown
away, and every training step re-seeds the RNG (:func:`convssm.train.step.step_seed`).
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from convssm.train.config import ExperimentConfig
from convssm.train.distributed import DistributedContext
from convssm.train.state import create_train_state
from convssm.train.step import train_step

__all__ = ["PROBE_STEPS", "PROBE_WARMUP", "StepPlan", "plan_steps"]

PROBE_WARMUP = 3
PROBE_STEPS = 10


@dataclass(frozen=True)
class StepPlan:
    """What ``plan.json`` records: the budget, the probe's seconds per step, the steps."""

    minutes: float
    clock: str
    step_s: float
    probe_steps: int
    steps: int


def plan_steps(
    cfg: ExperimentConfig,
    model: torch.nn.Module,
    dataset: Dataset,
    shuffle: bool,
    ctx: DistributedContext,
) -> StepPlan:
    """The steps of ``train.minutes`` for ``cfg`` (rank 0's probe decides for every rank)."""
    tc = cfg.train
    probed = PROBE_WARMUP + PROBE_STEPS  # a run shorter than the probe still gets probed
    probe_train = dataclasses.replace(tc, rollout_start=0, steps=max(tc.steps, probed))
    probe_cfg = dataclasses.replace(cfg, train=probe_train)
    probe = create_train_state(probe_cfg, copy.deepcopy(model), len(dataset), shuffle, ctx)
    batches = iter(DataLoader(dataset, batch_sampler=probe.sampler, collate_fn=_collate))
    clock = time.process_time if tc.time_clock == "cpu" else time.perf_counter
    times = []
    for i in range(probed):
        batch = next(batches)
        _sync(ctx)
        t0 = clock()
        train_step(probe, batch)
        _sync(ctx)
        if i >= PROBE_WARMUP:
            times.append(clock() - t0)
    del probe, batches
    step_s = torch.tensor([statistics.median(times)], dtype=torch.float64, device=ctx.device)
    if ctx.is_distributed:
        torch.distributed.broadcast(step_s, src=0)
    per_step = float(step_s.item())
    budget = 60.0 * tc.minutes
    steps = min(tc.steps, max(cfg.optim.warmup_steps + 10, int(budget / max(per_step, 1e-9))))
    return StepPlan(tc.minutes, tc.time_clock, per_step, probed, steps)


def _collate(items):
    return torch.utils.data.default_collate(items)


def _sync(ctx: DistributedContext) -> None:
    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)
