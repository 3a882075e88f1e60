"""The diagonal linear recurrence x_k = a * x_{k-1} + b_k, time-major.

``linear_scan_ref`` is the plain loop kept for tests; ``linear_scan`` is the one to use.

Shapes: ``b`` is (L, *S) with L >= 1 time steps; ``a`` and ``x0`` broadcast to ``S``
(for ConvS5, ``b`` is (L, B, P, H, W) and ``a`` is (P, 1, 1)); the result ``x`` is
(L, *S) with ``x[k]`` the state after step ``k + 1``. All three are complex64 or
complex128, of one dtype, on one device.

Why a sequential loop: the recurrence is elementwise over the ``S`` channels (1e5-1e6
of them at paper scale), so each time step is already a large, memory-bound vector
operation. On a 2-core CPU the loop below runs near the speed of copying ``b``, several
times faster than associative scans (see ``docs/benchmarks.md``), and is more accurate
in complex64 because it does no products of many ``a``'s.

Device dispatch: CPU runs ``_LinearScanFn``. CUDA (and any other device) runs the same
Function: it is plain device-agnostic torch code. No fused GPU kernel ships here because
none has been tested on a GPU; on a GPU this loop is launch-bound (one small kernel per
step), and a fused Triton kernel is the planned replacement once it can be tested.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from convssm._checks import check_finite

__all__ = ["linear_scan", "linear_scan_ref"]

_COMPLEX = (torch.complex64, torch.complex128)


def _check_inputs(a: object, b: object, x0: object) -> None:
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


def linear_scan_ref(
    a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None = None
) -> torch.Tensor:
    """Plain loop: b (L, ...), a and x0 broadcastable to b.shape[1:]; returns x (L, ...).

    Iterates over ``b.unbind(0)`` (not ``b[k]``) so autograd's backward stays O(L).
    """
    _check_inputs(a, b, x0)
    x = torch.zeros_like(b[0]) if x0 is None else x0
    out = []
    for bk in b.unbind(0):
        x = a * x + bk
        out.append(x)
    return torch.stack(out, 0)


class _LinearScanFn(torch.autograd.Function):
    """x_k = a * x_{k-1} + b_k written into one output; saves only x for backward.

    Backward (PyTorch's convention: for a holomorphic step the incoming gradient is
    multiplied by the conjugate derivative) is the same recurrence in reverse:
    gx_k = g_k + conj(a) * gx_{k+1}, grad_b = gx, grad_a = sum_k conj(x_{k-1}) * gx_k
    summed to a's shape, grad_x0 = conj(a) * gx_1 summed to x0's shape.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
        x = torch.empty(b.shape, dtype=b.dtype, device=b.device)
        bs, xs = b.unbind(0), x.unbind(0)  # unbind once: cheaper than indexing per step
        if x0 is None:
            xs[0].copy_(bs[0])
        else:
            torch.addcmul(bs[0], a, x0, out=xs[0])
        for k in range(1, len(xs)):
            torch.addcmul(bs[k], a, xs[k - 1], out=xs[k])
        ctx.save_for_backward(a, x, x0)
        ctx.has_x0 = x0 is not None
        return x

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):
        a, x, x0 = ctx.saved_tensors
        need_a, need_b, need_x0 = ctx.needs_input_grad
        ac = a.conj().resolve_conj()
        gx = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        gs, gxs, xs = g.unbind(0), gx.unbind(0), x.unbind(0)
        length = len(gxs)
        gxs[-1].copy_(gs[-1])
        acc = None
        if need_a:  # acc accumulates conj(x_{k-1}) * gx_k at full state shape
            acc = torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device)
        for k in range(length - 2, -1, -1):
            torch.addcmul(gs[k], ac, gxs[k + 1], out=gxs[k])
            if acc is not None:
                acc.addcmul_(xs[k].conj(), gxs[k + 1])
        grad_a = grad_x0 = None
        if acc is not None:
            if ctx.has_x0:
                acc.addcmul_(x0.conj(), gxs[0])
            grad_a = acc.sum_to_size(a.shape)
        if ctx.has_x0 and need_x0:
            grad_x0 = (ac * gxs[0]).sum_to_size(x0.shape)
        return grad_a, (gx if need_b else None), grad_x0


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


def linear_scan(a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
    """x_k = a * x_{k-1} + b_k for k = 1..L with x_0 = x0 (zeros when None).

    Args:
        a: complex (broadcastable to b.shape[1:]), the per-channel decay.
        b: complex (L, ...), the inputs, time-major; any strides.
        x0: optional complex initial state, broadcastable to b.shape[1:].

    Returns:
        x: (L, ...) contiguous, same dtype as b; ``x[-1]`` is the last state.

    Differentiable with respect to a, b and x0 (once; double backward is not supported).
    Raises TypeError for a non-tensor, a non-complex dtype or mixed dtypes; ValueError for
    L = 0, shapes that do not broadcast, mixed devices, or NaN/inf in the inputs.
    """
    _check_inputs(a, b, x0)
    check_finite(a, "a")
    if x0 is not None:
        check_finite(x0, "x0")
    # Same Function on every device; see the module docstring for why CUDA has no kernel.
    x = _LinearScanFn.apply(a, b, x0)
    _check_finite_inputs(a, x0, b, x)
    return x
