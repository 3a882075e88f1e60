"""The diagonal linear recurrence x_k = a * x_{k-1} + b_k, time-major.

``linear_scan_ref`` is the plain loop kept for tests; ``linear_scan`` is the one to use.
"""

from __future__ import annotations

import torch

__all__ = ["linear_scan", "linear_scan_ref"]


def linear_scan_ref(
    a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None = None
) -> torch.Tensor:
    """Plain loop: b (L, ...), a and x0 broadcastable to b.shape[1:]; returns x (L, ...)."""
    x = torch.zeros_like(b[0]) if x0 is None else x0.expand_as(b[0]).to(b.dtype)
    out = []
    for bk in b.unbind(0):
        x = a * x + bk
        out.append(x)
    return torch.stack(out, 0)


def linear_scan(a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
    """x_k = a * x_{k-1} + b_k for k = 1..L with x_0 = x0 (zeros when None)."""
    return linear_scan_ref(a, b, x0)
