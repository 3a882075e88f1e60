"""Learning-rate schedule: linear warm-up, then cosine decay to zero (docs/design.md#optimiser).

``lr(step) = peak * step / warmup`` for ``step < warmup``, then
``peak * 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup)))``, reaching exactly 0
at ``step == total``. ``step`` counts optimizer updates already done, so the first
update uses ``lr(0)``; with ``warmup == 0`` that is the peak rate.
"""

from __future__ import annotations

import math

import torch

__all__ = ["warmup_cosine_factor", "build_scheduler", "make_optimizer"]


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """The multiplier on the peak learning rate at optimizer update ``step`` (0-based)."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < warmup_steps:
        return step / warmup_steps
    if step >= total_steps:
        return 0.0
    span = max(total_steps - warmup_steps, 1)
    progress = (step - warmup_steps) / span
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` that applies :func:`warmup_cosine_factor` to every parameter group."""
    warmup_cosine_factor(0, warmup_steps, total_steps)  # validate arguments early
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine_factor(s, warmup_steps, total_steps)
    )


def make_optimizer(
    model: torch.nn.Module,
    lr: float,
    betas: tuple[float, float] | list[float] = (0.9, 0.95),
    weight_decay: float = 1e-5,
    eps: float = 1e-8,
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters (weight decay on all of them, like the reference)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, eps=eps)
