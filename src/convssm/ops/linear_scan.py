"""The diagonal linear recurrence x_k = a * x_{k-1} + b_k, time-major.

``linear_scan_ref`` is the plain loop kept for tests; ``linear_scan`` is the one to use.

Shapes: ``b`` is (L, *S) with L >= 1 time steps; ``a`` and ``x0`` broadcast to ``S``
(for ConvS5, ``b`` is (L, B, P, H, W) and ``a`` is (P, 1, 1)); the result ``x`` is
(L, *S) with ``x[k]`` the state after step ``k + 1``. All three are complex64 or
complex128, of one dtype, on one device.

Why a sequential loop: the recurrence is elementwise over the ``S`` channels (1e5-1e6
of them at paper scale), so each time step is already a large, memory-bound vector
operation. On the shared 2-core CPU the loop below is 6-30x faster than torch's generic
associative scan and moves bytes at 12-53 % of the speed of copying ``b`` (the gap is
mostly page faults on the fresh output; see ``docs/benchmarks.md``), and it is more
accurate in complex64 because it forms no products of many ``a``'s.

Device dispatch: both paths are ``_LinearScanFn`` (plain torch ops, saving only x). On CPU
the state channels are split into blocks run by worker threads, each block its own time
loop. CUDA (and any other device) runs the same Function as one per-step loop over all
channels: device-agnostic torch code, tested on CPU. No fused GPU kernel ships here because
none could be tested on a GPU; on a GPU this loop is launch-bound (one small kernel per
step), and a fused Triton kernel is the planned replacement once one can be tested.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

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


# CPU work is split into blocks of state channels smaller than ATen's parallel grain (32768
# elements), so every op runs on one thread, and the blocks are shared out to
# torch.get_num_threads() Python worker threads (torch ops release the GIL). Each worker then
# runs its own time loop: no barrier per time step. Per-step ops over all channels, each split
# by OpenMP over the cores, were 3-20x slower at 262 144 channels on the shared 2-core machine
# while other jobs kept it busy (each of the L steps waits for a descheduled thread); at
# 32 768 channels the two were within about 2x either way (docs/benchmarks.md).
_BLOCK = 32_000  # elements: 250 KiB of complex64 per step, well inside L2

_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] | None = None
_pool_lock = threading.Lock()


def _forget_pool_after_fork() -> None:
    """In a forked child the parent's worker threads and lock state are gone: start over."""
    global _pool, _pool_key, _pool_lock
    _pool, _pool_key, _pool_lock = None, None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _worker_pool(n: int) -> ThreadPoolExecutor:
    """n worker threads, rebuilt after a fork (threads do not survive it) or for a new n.

    A pool replaced because n changed is left to finish its work and then collected (not
    shut down), so a call still using it from another thread is unaffected.
    """
    global _pool, _pool_key
    key = (os.getpid(), n)
    with _pool_lock:
        if _pool is None or _pool_key != key:
            _pool = ThreadPoolExecutor(n, thread_name_prefix="convssm-scan")
            _pool_key = key
        return _pool


def _run_blocks(fn, m: int, blocked: bool) -> None:
    """Call fn(j0, j1) over channel ranges covering [0, m): one range, or blocks on workers."""
    if not blocked or m <= _BLOCK:
        fn(0, m)
        return
    n = torch.get_num_threads()
    # Equal blocks, as many as a multiple of n (so no worker is left with a short tail),
    # each at most _BLOCK and, when large, a multiple of 8 elements (64-byte aligned slices).
    count = -(-m // _BLOCK)
    count = -(-count // n) * n
    size = -(-m // count)
    if size > 64:
        size = -(-size // 8) * 8
    bounds = [(j, min(j + size, m)) for j in range(0, m, size)]
    if n <= 1:
        for j0, j1 in bounds:
            fn(j0, j1)
        return

    def work(jj: tuple[int, int]) -> None:
        with torch.no_grad():  # grad mode is per thread; these ops write into out= buffers
            fn(*jj)

    for _ in _worker_pool(n).map(work, bounds):
        pass


def _scan_steps(a, b, x0, x) -> None:
    """Forward loop on one channel range: a, x0 (M,), b and x (L, M); writes x."""
    bs, xs = b.unbind(0), x.unbind(0)  # unbind once: cheaper than indexing per step
    if x0 is None:
        xs[0].copy_(bs[0])
    else:
        torch.addcmul(bs[0], a, x0, out=xs[0])
    for k in range(1, len(xs)):
        torch.addcmul(bs[k], a, xs[k - 1], out=xs[k])


def _scan_steps_backward(ac, g, x, x0, gx, acc) -> None:
    """Reverse loop on one channel range: gx_k = g_k + conj(a) gx_{k+1}.

    Also acc += conj(x_{k-1}) gx_k when acc is given (the gradient of a, per channel).
    """
    gs, gxs, xs = g.unbind(0), gx.unbind(0), x.unbind(0)
    gxs[-1].copy_(gs[-1])
    for k in range(len(gxs) - 2, -1, -1):
        torch.addcmul(gs[k], ac, gxs[k + 1], out=gxs[k])
        if acc is not None:
            acc.addcmul_(xs[k].conj(), gxs[k + 1])
    if acc is not None and x0 is not None:
        acc.addcmul_(x0.conj(), gxs[0])


class _LinearScanFn(torch.autograd.Function):
    """x_k = a * x_{k-1} + b_k written into one output; saves only x for backward.

    Works on b flattened to (L, M), M = prod(b.shape[1:]), a and x0 expanded to (M,).
    ``blocked`` (CPU) splits M into blocks on worker threads; otherwise (any other device)
    one loop covers all M channels.

    Backward (PyTorch's convention: for a holomorphic step the incoming gradient is
    multiplied by the conjugate derivative) is the same recurrence in reverse:
    gx_k = g_k + conj(a) * gx_{k+1}, grad_b = gx, grad_a = sum_k conj(x_{k-1}) * gx_k
    summed to a's shape, grad_x0 = conj(a) * gx_1 summed to x0's shape.
    """

    @staticmethod
    def forward(ctx, a, b, x0, blocked: bool) -> torch.Tensor:
        length, state = b.shape[0], b.shape[1:]
        m = math.prod(state)
        b2 = b.reshape(length, m)  # a view when b's state dims are contiguous
        a1 = a.expand(state).reshape(m)
        x01 = None if x0 is None else x0.expand(state).reshape(m)
        x = torch.empty(b.shape, dtype=b.dtype, device=b.device)
        x2 = x.view(length, m)

        def fn(j0, j1):
            x0s = None if x01 is None else x01[j0:j1]
            _scan_steps(a1[j0:j1], b2[:, j0:j1], x0s, x2[:, j0:j1])

        _run_blocks(fn, m, blocked)
        ctx.save_for_backward(a, x, x0)
        ctx.has_x0 = x0 is not None
        ctx.blocked = blocked
        return x

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):
        a, x, x0 = ctx.saved_tensors
        need_a, need_b, need_x0, _ = ctx.needs_input_grad
        length, state = x.shape[0], x.shape[1:]
        m = math.prod(state)
        ac1 = a.conj().expand(state).reshape(m)
        x01 = x0.expand(state).reshape(m) if ctx.has_x0 else None
        g2, x2 = g.reshape(length, m), x.view(length, m)
        gx = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        gx2 = gx.view(length, m)
        # acc accumulates conj(x_{k-1}) * gx_k per channel, summed to a's shape at the end.
        acc = torch.zeros(m, dtype=x.dtype, device=x.device) if need_a else None

        def fn(j0, j1):
            x0s = None if x01 is None else x01[j0:j1]
            accs = None if acc is None else acc[j0:j1]
            _scan_steps_backward(ac1[j0:j1], g2[:, j0:j1], x2[:, j0:j1], x0s, gx2[:, j0:j1], accs)

        _run_blocks(fn, m, ctx.blocked)
        grad_a = None if acc is None else acc.view(state).sum_to_size(a.shape)
        grad_x0 = None
        if ctx.has_x0 and need_x0:
            grad_x0 = (ac1 * gx2[0]).view(state).sum_to_size(x0.shape)
        return grad_a, (gx if need_b else None), grad_x0, None


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
    # CPU: channel blocks on worker threads. CUDA and any other device: the same Function as
    # one per-step loop over all channels (tested on CPU); there is no GPU kernel, because none
    # could be tested on a GPU (see the module docstring).
    x = _LinearScanFn.apply(a, b, x0, b.device.type == "cpu")
    _check_finite_inputs(a, x0, b, x)
    return x
