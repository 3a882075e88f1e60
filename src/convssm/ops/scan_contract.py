"""The contract shared by every path of the diagonal linear recurrence: input checks.

Type, dtype, device and shape only: these cost nothing (no tensor values are read, so no
host synchronisation) and run on every call.
"""

from __future__ import annotations

import torch

__all__ = ["check_scan_inputs"]

_COMPLEX = (torch.complex64, torch.complex128)


def check_scan_inputs(a: object, b: object, x0: object) -> None:
    """Type, dtype, device and shape checks (no finiteness check: see ``linear_scan``)."""
    named = [("a", a), ("b", b)] + ([] if x0 is None else [("x0", x0)])
    for name, t in named:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _COMPLEX:
            raise TypeError(f"{name} must be complex64 or complex128, got dtype {t.dtype}")
    for name, t in named[:1] + named[2:]:
        if t.dtype != b.dtype:
            raise TypeError(
                f"{name} has dtype {t.dtype} but b has dtype {b.dtype}; they must match"
            )
        if t.device != b.device:
            raise ValueError(f"{name} is on {t.device} but b is on {b.device}")
    if b.dim() < 1:
        raise ValueError("b must have a leading time dimension: shape (L, ...), got a 0-d tensor")
    if b.shape[0] == 0:
        raise ValueError(f"b has L = 0 time steps (shape {tuple(b.shape)}); need L >= 1")
    state = b.shape[1:]
    for name, t in named[:1] + named[2:]:
        try:
            ok = torch.broadcast_shapes(t.shape, state) == state
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"{name} of shape {tuple(t.shape)} does not broadcast to the state shape "
                f"b.shape[1:] = {tuple(state)}"
            )
