"""Warm-up then cosine schedule, AdamW settings and the step sampler."""

from __future__ import annotations

import math

import pytest
import torch

from convssm.train.sampling import StepSampler
from convssm.train.schedule import build_scheduler, make_optimizer, warmup_cosine_factor


def test_warmup_then_cosine_to_zero():
    assert warmup_cosine_factor(0, 10, 110) == 0.0
    assert warmup_cosine_factor(5, 10, 110) == 0.5
    assert warmup_cosine_factor(10, 10, 110) == 1.0
    assert warmup_cosine_factor(60, 10, 110) == pytest.approx(0.5)
    assert warmup_cosine_factor(35, 10, 110) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert warmup_cosine_factor(110, 10, 110) == 0.0
    assert warmup_cosine_factor(0, 0, 10) == 1.0
    with pytest.raises(ValueError):
        warmup_cosine_factor(0, 10, 0)


def test_scheduler_drives_adamw_with_spec_betas():
    model = torch.nn.Linear(2, 2)
    opt = make_optimizer(model, lr=1e-3)
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)
    assert opt.param_groups[0]["weight_decay"] == 1e-5
    sched = build_scheduler(opt, warmup_steps=4, total_steps=8)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:5] == pytest.approx([0, 2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert lrs[5] < lrs[4] and opt.param_groups[0]["lr"] == 0.0


def test_sampler_splits_global_batch_over_micro_steps_and_ranks():
    one = StepSampler(100, 8, shuffle=True, seed=1)
    parts = [StepSampler(100, 8, grad_accum=2, world_size=2, rank=r, seed=1) for r in range(2)]
    for step in (0, 3, 12, 13):  # 12, 13 cross an epoch boundary
        combined = [i for m in range(2) for p in parts for i in p.indices(step, m)]
        assert sorted(combined) == sorted(one.indices(step))
    # every item once per epoch
    seen = [i for s in range(12) for i in one.indices(s)] + one.indices(12)[:4]
    assert sorted(seen) == list(range(100))
    resumed = StepSampler(100, 8, seed=1, start_step=5, total_steps=7)
    assert list(resumed) == [one.indices(5), one.indices(6)] and len(resumed) == 2
    with pytest.raises(ValueError, match="divisible"):
        StepSampler(100, 6, grad_accum=4)
