"""Inputs shared by the scan tests: decays with |a| in [0.45, 0.95) at any phase."""

from __future__ import annotations

import math

import torch


def decay(shape, dtype, gen: torch.Generator) -> torch.Tensor:
    """Complex a of ``shape``: modulus uniform in [0.45, 0.95), phase uniform in [-pi, pi)."""
    modulus = torch.rand(shape, generator=gen, dtype=torch.float64) * 0.5 + 0.45
    phase = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
    return torch.polar(modulus, phase).to(dtype)
