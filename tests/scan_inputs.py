"""What the scan tests share: decays with |a| in [0.45, 0.95) at any phase, and the marker
that skips a Triton test where triton is not installed."""

from __future__ import annotations

import math

import pytest
import torch

from convssm.ops import triton_available

needs_triton = pytest.mark.skipif(
    not triton_available(),
    reason="triton is not installed (pip install 'convssm[triton]'); its kernels are untested",
)


def decay(shape, dtype, gen: torch.Generator) -> torch.Tensor:
    """Complex a of ``shape``: modulus uniform in [0.45, 0.95), phase uniform in [-pi, pi)."""
    modulus = torch.rand(shape, generator=gen, dtype=torch.float64) * 0.5 + 0.45
    phase = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
    return torch.polar(modulus, phase).to(dtype)
