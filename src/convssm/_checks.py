"""Input checks shared by every level of the package.

Each check raises ``TypeError`` for a wrong type or dtype and ``ValueError`` for a
wrong rank, shape or value, with a message that names the argument and the problem.
This module imports nothing from ``convssm`` so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "check_tensor",
    "check_finite",
    "check_shape",
]


def check_tensor(
    x: object,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    dtypes: Sequence[torch.dtype] | None = None,
    floating: bool = False,
    complex_: bool = False,
    finite: bool = True,
) -> torch.Tensor:
    """Check that ``x`` is a tensor of the expected rank and dtype, and (by default) finite.

    Args:
        x: the value to check.
        name: the argument's name, used in the error message.
        ndim: the allowed rank or ranks.
        dtypes: the allowed dtypes.
        floating: require a real floating-point dtype.
        complex_: require a complex dtype.
        finite: reject NaN and infinity.

    Returns:
        ``x`` unchanged, so the check can be used inline.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValueError(
                f"{name} must have {want} dimensions, got {x.dim()} (shape {tuple(x.shape)})"
            )
    if dtypes is not None and x.dtype not in dtypes:
        raise TypeError(f"{name} must have dtype in {list(dtypes)}, got {x.dtype}")
    if floating and not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a real floating-point tensor, got dtype {x.dtype}")
    if complex_ and not x.dtype.is_complex:
        raise TypeError(f"{name} must be a complex tensor, got dtype {x.dtype}")
    if finite:
        check_finite(x, name)
    return x


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` if ``x`` holds NaN or infinity (skipped while tracing/compiling)."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return x
    if x.numel() and not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise ValueError(f"{name} contains non-finite values ({n_nan} NaN, {n_inf} inf)")
    return x


def check_shape(x: torch.Tensor, name: str, expected: Sequence[int | None]) -> torch.Tensor:
    """Check ``x.shape`` against ``expected``, where ``None`` matches any size."""
    shape = tuple(x.shape)
    ok = len(shape) == len(expected) and all(
        e is None or e == s for s, e in zip(shape, expected, strict=False)
    )
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name} must have shape {want}, got {shape}")
    return x
