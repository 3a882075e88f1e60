"""The diagonal linear recurrence x_k = a * x_{k-1} + b_k, time-major.

``linear_scan_ref`` is the plain loop kept for tests; ``linear_scan`` is the one to use.

Shapes: ``b`` is (L, *S) with L >= 1 time steps; ``a`` and ``x0`` broadcast to ``S``
(for ConvS5, ``b`` is (L, B, P, H, W) and ``a`` is (P, 1, 1)); the result ``x`` is
(L, *S) with ``x[k]`` the state after step ``k + 1``. All three are complex64 or
complex128, of one dtype, on one device.

Paths (one contract, ``scan_contract.check_scan_inputs``; tests pin each to the reference):

- ``"loop"`` (``scan_loop``): plain torch ops, a sequential loop over time. On CPU the
  channels are split into blocks on worker threads. Why a loop: the recurrence is
  elementwise over the ``S`` channels (1e5-1e6 of them at paper scale), so each time step
  is already a large, memory-bound vector operation. On the shared 2-core CPU it is 6-30x
  faster than torch's generic associative scan and moves bytes at 12-53 % of the speed of
  copying ``b`` (see ``docs/benchmarks.md``), and it is more accurate in complex64 because
  it forms no products of many ``a``'s. On a GPU it is launch-bound (a kernel per step).
- ``"triton"`` (``linear_scan_triton``): fused Triton kernels, the time loop inside the
  kernel, ``b`` read once and ``x`` written once (memory-bound, for GPUs).

Which path runs: ``"auto"`` (the default) takes Triton for CUDA tensors when triton
imports and the device has passed the first-use check, the loop otherwise (CPU is
unchanged). The first-use check runs once per device, on the first ``"auto"`` scan there: a
tiny scan (values and gradients) by the Triton kernels compared with the loop. When it
raises (no host C compiler for Triton's launcher, a Triton that does not match torch) or
disagrees, one ``RuntimeWarning`` says why and that device keeps the loop path for the
rest of the process. Widths beyond the kernels' 32-bit indexing
(``linear_scan_triton.MAX_CHANNELS``) also take the loop. :func:`set_scan_path` (or the
``CONVSSM_SCAN_PATH`` environment variable read at import) forces ``"loop"`` or
``"triton"`` for tests and benchmarks; :func:`scan_path` does it for a ``with`` block.
Forcing ``"triton"`` on CPU tensors works only with ``TRITON_INTERPRET=1`` (the tests).

Value checks (NaN/inf in ``a``, ``x0``; ``b`` through the last state) read tensor values,
which stalls a GPU: ``linear_scan`` does them when ``check_values`` is True, or when it is
None and value checks are on (``convssm.set_value_checks``). Layers call it with
``check_values=False``; their models check their own inputs once.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import warnings
from collections.abc import Iterator

import torch

from convssm._checks import check_finite, resolve_check_values
from convssm.ops.linear_scan_triton import MAX_CHANNELS, linear_scan_triton, triton_available
from convssm.ops.scan_context_parallel import context_parallel_scan
from convssm.ops.scan_contract import check_scan_inputs
from convssm.ops.scan_loop import scan_loop

__all__ = ["linear_scan", "linear_scan_ref", "set_scan_path", "get_scan_path", "scan_path"]

SCAN_PATHS = ("auto", "loop", "triton")


def _path_from_env() -> str:
    path = os.environ.get("CONVSSM_SCAN_PATH", "auto")
    if path not in SCAN_PATHS:
        raise ValueError(f"CONVSSM_SCAN_PATH must be one of {SCAN_PATHS}, got {path!r}")
    return path


_path = _path_from_env()


def set_scan_path(path: str) -> None:
    """Choose the path of every later ``linear_scan``: "auto", "loop" or "triton"."""
    global _path
    if path not in SCAN_PATHS:
        raise ValueError(f"scan path must be one of {SCAN_PATHS}, got {path!r}")
    _path = path


def get_scan_path() -> str:
    """The current setting: "auto", "loop" or "triton"."""
    return _path


@contextlib.contextmanager
def scan_path(path: str) -> Iterator[None]:
    """``with scan_path("loop"): ...`` forces a path inside the block, then restores it."""
    old = _path
    set_scan_path(path)
    try:
        yield
    finally:
        set_scan_path(old)


def _triton_device(device: torch.device) -> bool:
    """Whether "auto" considers Triton for tensors on this device (CUDA only; tests widen it)."""
    return device.type == "cuda"


# The first-use check's verdict per device: True (Triton agreed with the loop) or False.
_proven: dict[torch.device, bool] = {}


def _device_key(device: torch.device) -> torch.device:
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _check_triton(device: torch.device) -> str | None:
    """Run a tiny scan by Triton and by the loop on ``device``; None when they agree, else why.

    Complex64 with x0, more channels than one program's block (so the masked tail runs),
    values and the gradients of a, b and x0 (so both kernels are compiled and launched), in
    one pass and in two chunks of time (the launches a GPU makes for few channels); on a GPU
    this also tunes, and so compiles, every candidate configuration of both.
    """
    gen = torch.Generator().manual_seed(0)
    length, shape = 70, (3, 97)  # 291 channels: two programs of 256; two chunks of 64 steps
    b = torch.randn(length, *shape, dtype=torch.complex64, generator=gen)
    modulus, phase = torch.rand(2, *shape[1:], generator=gen)
    a = torch.polar(modulus * 0.5 + 0.4, phase * 6).to(torch.complex64)
    x0 = torch.randn(shape, dtype=torch.complex64, generator=gen)
    w = torch.randn(b.shape, dtype=torch.complex64, generator=gen)
    a, b, x0, w = (t.to(device) for t in (a, b, x0, w))
    results = []
    with torch.inference_mode(False), torch.enable_grad():
        for run in (
            lambda a, b, x0: scan_loop(a, b, x0, False),
            linear_scan_triton,
            functools.partial(linear_scan_triton, time_chunks=2),
        ):
            leaves = [t.clone().requires_grad_(True) for t in (a, b, x0)]
            x = run(*leaves)
            grads = torch.autograd.grad((w.conj() * x).real.sum(), leaves)
            results.append([x.detach(), *grads])
    names = ("x", "grad a", "grad b", "grad x0")
    want = results[0]
    for label, got in zip(("", " (in two chunks of time)"), results[1:], strict=True):
        for name, g, w in zip(names, got, want, strict=True):
            err = float((g - w).abs().max() / w.abs().max().clamp_min(1e-30))
            if not err <= 1e-4:  # complex64 agrees to ~1e-6; also catches NaN
                return f"{name}{label} differs from the loop path's by {err:.3g} (relative)"
    return None


def _triton_proven(device: torch.device) -> bool:
    """The first-use check's verdict for ``device``, running it on the first call there."""
    key = _device_key(device)
    verdict = _proven.get(key)
    if verdict is not None:
        return verdict
    if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
        warnings.warn(
            f"linear_scan: the first scan on {key} runs inside CUDA graph capture, where the "
            "Triton path's first-use check cannot run; this scan takes the loop path (run "
            "one scan before capturing to use Triton)",
            RuntimeWarning,
            stacklevel=4,
        )
        return False
    try:
        why = _check_triton(device)
    except Exception as exc:  # noqa: BLE001 - any failure means: do not use Triton here
        why = f"it raised {type(exc).__name__}: {str(exc)[:500]}"
    _proven[key] = why is None
    if why is not None:
        warnings.warn(
            f"linear_scan: the Triton scan failed its first-use check on {key} ({why}); "
            "this device uses the loop path from now on (set_scan_path('triton') forces "
            "Triton and shows its error)",
            RuntimeWarning,
            stacklevel=4,
        )
    return why is None


def _resolve_path(device: torch.device, channels: int) -> str:
    if _path != "auto":
        return _path
    if not (_triton_device(device) and triton_available()) or channels > MAX_CHANNELS:
        return "loop"
    if torch.compiler.is_compiling():
        # No check while tracing (fake tensors); the verdict of an eager scan still holds.
        return "loop" if _proven.get(_device_key(device)) is False else "triton"
    return "triton" if _triton_proven(device) else "loop"


def linear_scan_ref(
    a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None = None
) -> torch.Tensor:
    """Plain loop: b (L, ...), a and x0 broadcastable to b.shape[1:]; returns x (L, ...).

    Iterates over ``b.unbind(0)`` (not ``b[k]``) so autograd's backward stays O(L).
    """
    check_scan_inputs(a, b, x0)
    x = torch.zeros_like(b[0]) if x0 is None else x0
    out = []
    for bk in b.unbind(0):
        x = a * x + bk
        out.append(x)
    return torch.stack(out, 0)


def _check_finite_inputs(
    a: torch.Tensor, x0: torch.Tensor | None, b: torch.Tensor, x: torch.Tensor
):
    """Full NaN/inf checks on the small a and x0; a cheap one on b through the result.

    A NaN or inf anywhere in b reaches the last state of its channel: a product with a
    finite factor and a sum with finite terms keep a value non-finite (0 * inf and
    inf - inf are NaN). So a finite x[-1] proves a finite b at the cost of one step; b is
    scanned in full only to tell a non-finite b from an overflow.
    """
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return
    if bool(torch.isfinite(x[-1]).all()):
        return
    check_finite(b, "b")
    raise ValueError(
        "linear_scan overflowed: a, b and x0 are finite but the state became non-finite "
        f"(max |a| = {a.abs().max().item():.6g}; |a| > 1 makes the recurrence grow)"
    )


def linear_scan(
    a: torch.Tensor,
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    *,
    group=None,
    check_values: bool | None = None,
) -> torch.Tensor:
    """x_k = a * x_{k-1} + b_k for k = 1..L with x_0 = x0 (zeros when None).

    Args:
        a: complex (broadcastable to b.shape[1:]), the per-channel decay.
        b: complex (L, ...), the inputs, time-major; any strides.
        x0: optional complex initial state, broadcastable to b.shape[1:]. With a group: the
            initial state of the whole sequence, used on the group's first rank only.
        group: a ``torch.distributed`` process group for context parallelism: ``b`` is this
            rank's contiguous chunk of time (ranks in group order, lengths may differ, none
            empty) and the result is this rank's chunk of the whole-sequence scan. ``b``'s
            gradient is its chunk of the whole one; ``a``'s and ``x0``'s summed over the
            group are the whole ones. Forward and backward each run one ``all_gather``, so
            every rank must call both. See ``convssm.ops.scan_context_parallel``.
        check_values: raise on NaN/inf in the inputs (host syncs); None follows
            ``convssm.set_value_checks`` (on by default).

    Returns:
        x: (L, ...) contiguous, same dtype as b; ``x[-1]`` is the last state.

    Differentiable with respect to a, b and x0 (once; double backward is not supported).
    Raises TypeError for a non-tensor, a non-complex dtype or mixed dtypes; ValueError for
    L = 0, shapes that do not broadcast, mixed devices, or (when checking values) NaN/inf
    in the inputs.
    """
    if group is not None:
        return context_parallel_scan(
            a, b, x0, group, lambda a, b, x0: linear_scan(a, b, x0, check_values=check_values)
        )
    check_scan_inputs(a, b, x0)
    check = resolve_check_values(check_values)
    if check:
        check_finite(a, "a")
        if x0 is not None:
            check_finite(x0, "x0")
    if _resolve_path(b.device, math.prod(b.shape[1:])) == "triton":
        x = linear_scan_triton(a, b, x0)
    else:
        x = scan_loop(a, b, x0, b.device.type == "cpu")
    if check:
        _check_finite_inputs(a, x0, b, x)
    return x
