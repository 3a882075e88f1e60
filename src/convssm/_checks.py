"""Input checks shared by every level of the package.

Each check raises ``TypeError`` for a wrong type or dtype and ``ValueError`` for a
wrong rank, shape or value, with a message that names the argument and the problem.
This module imports nothing from ``convssm`` so every layer may use it.

Shape, rank and dtype checks are free and run everywhere. Checks that read values
(NaN/inf, ranges) copy a result to the host, which stalls a GPU pipeline: they run once at
the public entry points (``VideoPredictor.forward``/``generate``, the sequence models'
``forward``/``step`` when called directly), never inside per-layer or per-step code, and
can be switched off with :func:`set_value_checks` (or ``CONVSSM_VALUE_CHECKS=0`` in the
environment at import). :func:`check_all_finite` checks many tensors for one host sync.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import torch

__all__ = [
    "check_tensor",
    "check_finite",
    "check_all_finite",
    "check_shape",
    "check_codes",
    "check_optional_actions",
    "set_value_checks",
    "value_checks_enabled",
    "value_checks",
    "resolve_check_values",
]

_value_checks = os.environ.get("CONVSSM_VALUE_CHECKS", "1") not in ("0", "false", "off")


def set_value_checks(enabled: bool) -> None:
    """Turn the value checks (NaN/inf, ranges: host syncs) at the entry points on or off."""
    global _value_checks
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
    _value_checks = enabled


def value_checks_enabled() -> bool:
    """Whether entry points check values (the default; see :func:`set_value_checks`)."""
    return _value_checks


@contextlib.contextmanager
def value_checks(enabled: bool) -> Iterator[None]:
    """``with value_checks(False): ...`` switches the value checks for a block."""
    old = _value_checks
    set_value_checks(enabled)
    try:
        yield
    finally:
        set_value_checks(old)


def resolve_check_values(flag: bool | None) -> bool:
    """An entry point's ``check_values`` argument: None follows the global switch.

    Always False while tracing or compiling (a value check would break the graph).
    """
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    return _value_checks if flag is None else bool(flag)


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


def check_all_finite(named: Sequence[tuple[str, torch.Tensor | None]]) -> None:
    """Raise ``ValueError`` naming the first of ``(name, tensor)`` that holds NaN or inf.

    One host sync for all of them (the per-tensor counts are read only on failure); None
    entries are skipped.
    """
    tensors = [(n, t) for n, t in named if t is not None and t.numel()]
    if not tensors:
        return
    flags = torch.stack([torch.isfinite(t).all() for _, t in tensors])
    if bool(flags.all()):
        return
    for name, t in tensors:
        check_finite(t, name)


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


def check_codes(codes: object, name: str, size: int, codebook_size: int) -> torch.Tensor:
    """Integer codes (B, T, size, size) in [0, codebook_size), as int64."""
    codes = check_tensor(codes, name, ndim=4, dtypes=(torch.int64, torch.int32), finite=False)
    if tuple(codes.shape[2:]) != (size, size):
        raise ValueError(f"{name} must have shape (B, T, {size}, {size}), got {tuple(codes.shape)}")
    if codes.numel() and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(f"{name} must hold codes in [0, {codebook_size})")
    return codes.long()


def check_optional_actions(
    actions: object, num_actions: int, batch: int, length: int
) -> torch.Tensor | None:
    """None, or (B, ≥ length) integer actions in [0, num_actions), cut to ``length`` (int64);
    actions given to a model without any (``num_actions`` 0) are an error."""
    if actions is None:
        return None
    if num_actions == 0:
        raise ValueError("this model takes no actions (num_actions=0), got actions")
    actions = check_tensor(actions, "actions", ndim=2, finite=False)
    if actions.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"actions must be an integer tensor, got {actions.dtype}")
    if actions.shape[0] != batch or actions.shape[1] < length:
        raise ValueError(
            f"actions must have shape (B={batch}, T>={length}), got {tuple(actions.shape)}"
        )
    if actions.numel() and (actions.min() < 0 or actions.max() >= num_actions):
        raise ValueError(f"actions must lie in [0, {num_actions})")
    return actions[:, :length].long()
