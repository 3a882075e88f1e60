"""The loop path of the diagonal linear recurrence: plain torch ops, one time loop.

Used by :func:`convssm.ops.linear_scan` on CPU (and on any device when forced or when
triton is missing). Works on ``b`` flattened to (L, M), M = prod(b.shape[1:]), with ``a``
and ``x0`` expanded to (M,); every step is one ``addcmul`` into the output, and backward
saves only ``x``.

- ``blocked=True`` (CPU): the M channels are split into blocks run by worker threads, each
  block its own time loop (no barrier per time step).
- ``blocked=False`` (any other device): one per-step loop over all M channels.

Backward (PyTorch's convention: for a holomorphic step the incoming gradient is multiplied
by the conjugate derivative) is the same recurrence in reverse:
gx_k = g_k + conj(a) * gx_{k+1}, grad_b = gx, grad_a = sum_k conj(x_{k-1}) * gx_k summed
to a's shape, grad_x0 = conj(a) * gx_1 summed to x0's shape.

Both directions are ``torch.library.custom_op``s (``convssm::scan_loop`` with its autograd
formula, ``convssm::scan_loop_backward`` without one, so double backward is refused) with
``register_fake``: ``torch.compile(fullgraph=True)`` sees the scan as one opaque op instead
of tracing into the loop and the thread pool.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["scan_loop"]

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


@torch.library.custom_op("convssm::scan_loop", mutates_args=())
def scan_loop(
    a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None, blocked: bool
) -> torch.Tensor:
    """x (L, *S) from b (L, *S) and a, x0 broadcastable to S (checked by the caller)."""
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
    return x


@scan_loop.register_fake
def _(a, b, x0, blocked):
    return torch.empty(b.shape, dtype=b.dtype, device=b.device)


@torch.library.custom_op("convssm::scan_loop_backward", mutates_args=())
def _scan_loop_backward(
    a: torch.Tensor,
    x: torch.Tensor,
    x0: torch.Tensor | None,
    g: torch.Tensor,
    need_a: bool,
    blocked: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """gx (L, *S), and grad_a per channel (*S) (an empty tensor when not need_a)."""
    length, state = x.shape[0], x.shape[1:]
    m = math.prod(state)
    ac1 = a.conj().expand(state).reshape(m)
    x01 = None if x0 is None else x0.expand(state).reshape(m)
    g2, x2 = g.reshape(length, m), x.view(length, m)
    gx = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    gx2 = gx.view(length, m)
    # acc accumulates conj(x_{k-1}) * gx_k per channel, summed to a's shape by the caller.
    acc = torch.zeros(m, dtype=x.dtype, device=x.device) if need_a else None

    def fn(j0, j1):
        x0s = None if x01 is None else x01[j0:j1]
        accs = None if acc is None else acc[j0:j1]
        _scan_steps_backward(ac1[j0:j1], g2[:, j0:j1], x2[:, j0:j1], x0s, gx2[:, j0:j1], accs)

    _run_blocks(fn, m, blocked)
    return gx, (acc.view(state) if need_a else x.new_empty(0))


@_scan_loop_backward.register_fake
def _(a, x, x0, g, need_a, blocked):
    grad_a = x.new_empty(x.shape[1:]) if need_a else x.new_empty(0)
    return torch.empty(x.shape, dtype=x.dtype, device=x.device), grad_a


def _setup_context(ctx, inputs, output) -> None:
    a, _, x0, blocked = inputs
    ctx.save_for_backward(a, output, x0)
    ctx.has_x0 = x0 is not None
    ctx.blocked = blocked


def _backward(ctx, g):
    a, x, x0 = ctx.saved_tensors
    need_a, need_b, need_x0 = ctx.needs_input_grad[:3]
    gx, acc = _scan_loop_backward(a, x, x0, g, need_a, ctx.blocked)
    grad_a = acc.sum_to_size(a.shape) if need_a else None
    grad_x0 = None
    if ctx.has_x0 and need_x0:
        grad_x0 = (a.conj() * gx[0]).sum_to_size(x0.shape)
    return grad_a, (gx if need_b else None), grad_x0, None


scan_loop.register_autograd(_backward, setup_context=_setup_context)
