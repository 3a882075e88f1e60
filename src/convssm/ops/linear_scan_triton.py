"""The diagonal linear recurrence as fused Triton kernels: ``linear_scan_triton``.

Same contract as :func:`convssm.ops.linear_scan` (complex64 / complex128, ``b`` (L, *S)
time-major, ``a`` and ``x0`` broadcast to ``S``, gradients for all three). The kernels
(:mod:`convssm.ops.scan_triton_kernels`) keep the time loop inside the kernel, walk it in
tiles of several steps loaded ahead, and run in parallel over channels:

- forward, ``x_k = a x_{k-1} + b_k``: ``b`` read once and ``x`` written once, so it can run
  at memory bandwidth on a GPU (the per-step Python loop launches L small kernels there);
- backward, the same recurrence in reverse with conj(a), ``gx_k = g_k + conj(a) gx_{k+1}``
  (``grad_b = gx``), summing ``grad_a = sum_k conj(x_{k-1}) gx_k``; ``grad_x0 = conj(a) gx_1``.
  Only ``x`` is saved for it.

**Few channels, long time.** One program per block of channels leaves most of a GPU idle
when there are few blocks (32 768 channels make 128 programs for 132 SMs). Then time is
split into chunks, each its own program, in three launches: (1) every chunk's scan from a
zero state, keeping only its end (forward) or its first step's gradient (backward); (2) a
scan over the chunks with ``a^chunk`` that turns those into each chunk's true carry; (3)
every chunk again from its carry, writing the result. ``b`` is read twice and ``x`` written
once: one more read than a single pass, bought back by filling the GPU. :func:`time_chunks`
decides (``time_chunks=`` forces a count); on CPU (the interpreter) it is one chunk.

**Configurations.** Block, tile, pipeline depth and warps are chosen per direction from
:data:`FORWARD_CONFIGS` / :data:`BACKWARD_CONFIGS`: on a GPU each candidate is timed once per
(direction, dtype, channel-count bucket, chunked or not) and the fastest is kept
(:func:`tuned_config`); elsewhere the first candidate. :func:`kernel_config` forces one.

Complex numbers travel as float pairs (``torch.view_as_real``). Inputs are made contiguous
and conjugate views resolved first (a kernel reads the bytes, not the view's conjugate bit).
Broadcasting, and the sums back to the shapes of ``a`` and ``x0``, are ordinary torch ops
around the kernels. More than :data:`MAX_CHANNELS` channels (32-bit indexing) are refused
with ``ValueError`` before any launch; ``linear_scan``'s ``"auto"`` takes the loop for them.

Both directions are ``torch.library.custom_op``s with ``register_fake``
(``convssm::scan_triton`` and ``convssm::scan_triton_backward``), so
``torch.compile(fullgraph=True)`` traces through the scan as one opaque op; the forward
op's autograd formula is registered. The backward op has none: double backward is refused.
With ``TRITON_INTERPRET=1`` set when the kernels are first used, they run in Triton's
interpreter on CPU tensors (slowly: that is how the tests run them without a GPU).
"""

from __future__ import annotations

import contextlib
import math

import torch

from convssm.ops.scan_contract import check_scan_inputs
from convssm.ops.scan_triton_kernels import (
    BACKWARD_CONFIGS,
    FORWARD_CONFIGS,
    MAX_CHANNELS,
    ScanKernelConfig,
    check_channels,
    scan_kernels,
    triton_available,
)
from convssm.ops.scan_triton_plan import (
    cdiv,
    chunk_length,
    kernel_config,
    time_chunks,
    tuned_config,
)

__all__ = [
    "linear_scan_triton",
    "triton_available",
    "check_channels",
    "kernel_config",
    "time_chunks",
    "tuned_config",
    "MAX_CHANNELS",
    "FORWARD_CONFIGS",
    "BACKWARD_CONFIGS",
]


def _on(device: torch.device):
    """Launch on the tensors' GPU (Triton launches on the current device)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _power(a: torch.Tensor, n: int) -> torch.Tensor:
    """a^n for float pairs (M, 2) by squaring (2 log2 n products, not exp(n log a))."""
    base, result = torch.view_as_complex(a), None
    while n:
        if n & 1:
            result = base if result is None else result * base
        n >>= 1
        if n:
            base = base * base
    return torch.view_as_real(result).contiguous()


def _launch(kernel, config: ScanKernelConfig, m: int, chunks: int, *args) -> None:
    kernel[(cdiv(m, config.block), chunks)](
        *args, config.block, config.tile, config.stages, num_warps=config.warps
    )


def _forward(a, b, x0, x, chunks: int, config: ScanKernelConfig) -> None:
    """x <- the scan of (a, b, x0) in ``chunks`` chunks of time (all float pairs)."""
    fwd, _ = scan_kernels()
    length, m = b.shape[0], b.shape[1]
    chunk = chunk_length(length, chunks)
    n = cdiv(length, chunk)
    has_x0 = x0 is not None
    if n == 1:
        _launch(fwd, config, m, 1, a, b, x0 if has_x0 else a, x, a, length, m, chunk,
                has_x0, False, True, False)  # fmt: skip
        return
    ends = b.new_empty(n, m, 2)  # (1) each chunk's end from a zero state
    _launch(fwd, config, m, n, a, b, a, x, ends, length, m, chunk, False, False, False, True)
    carries = b.new_empty(n, m, 2)  # (2) carries[c + 1] = a^chunk carries[c] + ends[c]
    if has_x0:
        carries[0] = x0
    else:
        carries[0].zero_()
    _launch(fwd, config, m, 1, _power(a, chunk), ends, carries[0], carries[1:], a, n - 1, m, n,
            True, False, True, False)  # fmt: skip
    _launch(fwd, config, m, n, a, b, carries, x, a, length, m, chunk, True, True, True, False)


def _backward(a, x, x0, g, gx, need_a: bool, chunks: int, config: ScanKernelConfig):
    """gx <- the reverse scan of g with conj(a); returns grad_a per channel (M, 2) or None."""
    _, bwd = scan_kernels()
    length, m = x.shape[0], x.shape[1]
    chunk = chunk_length(length, chunks)
    n = cdiv(length, chunk)
    has_x0 = x0 is not None
    x0_arg = x0 if has_x0 else a
    ga = a.new_empty(n, m, 2) if need_a else None
    ga_arg = a if ga is None else ga
    if n == 1:
        _launch(bwd, config, m, 1, a, x, x0_arg, g, a, gx, ga_arg, a, length, m, chunk,
                has_x0, False, need_a, True, False)  # fmt: skip
        return None if ga is None else ga[0]
    first = x.new_empty(n, m, 2)  # (1) gx at each chunk's first step, from a zero carry
    _launch(bwd, config, m, n, a, x, a, g, a, gx, a, first, length, m, chunk,
            False, False, False, False, True)  # fmt: skip
    carries = x.new_empty(n, m, 2)  # (2) carries[c] = gx at chunk c + 1's first step
    carries[n - 1].zero_()
    _launch(bwd, config, m, 1, _power(a, chunk), x, a, first[1:], a, carries[: n - 1], a, a,
            n - 1, m, n, False, False, False, True, False)  # fmt: skip
    _launch(bwd, config, m, n, a, x, x0_arg, g, carries, gx, ga_arg, a, length, m, chunk,
            has_x0, True, need_a, True, False)  # fmt: skip
    return None if ga is None else ga.sum(0)


# ----------------------------------------------------------------------------- custom ops


def _plain(t: torch.Tensor) -> torch.Tensor:
    """t as the kernels read it: contiguous, no negative (or conjugate) bit left in a view."""
    return t.resolve_neg().resolve_conj().contiguous()


def _chunks(requested: int, m: int, length: int, device: torch.device) -> int:
    return requested if requested > 0 else time_chunks(m, length, device)


@torch.library.custom_op("convssm::scan_triton", mutates_args=())
def _scan_op(
    a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None, chunks: int = 0
) -> torch.Tensor:
    """a, x0 (M, 2), b (L, M, 2) real -> x (L, M, 2); chunks 0 chooses (time_chunks)."""
    length, m = b.shape[0], b.shape[1]
    check_channels(m)
    a, b = _plain(a), _plain(b)
    x0 = None if x0 is None else _plain(x0)
    x = torch.empty_like(b)
    if m == 0:
        return x
    n = _chunks(chunks, m, length, b.device)

    def run(config):
        _forward(a, b, x0, x, n, config)

    with _on(b.device):
        run(tuned_config("forward", b.dtype, m, n > 1, b.device, run))
    return x


@_scan_op.register_fake
def _(a, b, x0, chunks=0):
    check_channels(b.shape[1])
    return torch.empty_like(b)


@torch.library.custom_op("convssm::scan_triton_backward", mutates_args=())
def _scan_backward_op(
    a: torch.Tensor,
    x: torch.Tensor,
    x0: torch.Tensor | None,
    g: torch.Tensor,
    need_a: bool,
    chunks: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns gx (L, M, 2) and grad_a (M, 2) per channel (empty (0, 2) when not need_a)."""
    length, m = x.shape[0], x.shape[1]
    check_channels(m)
    a, x, g = _plain(a), _plain(x), _plain(g)
    x0 = None if x0 is None else _plain(x0)
    gx = torch.empty_like(x)
    if m == 0:
        return gx, (torch.zeros_like(a) if need_a else a.new_empty(0, 2))
    n = _chunks(chunks, m, length, x.device)
    out = {}

    def run(config):
        out["ga"] = _backward(a, x, x0, g, gx, need_a, n, config)

    with _on(x.device):
        run(tuned_config("backward", x.dtype, m, n > 1, x.device, run))
    return gx, (out["ga"] if need_a else a.new_empty(0, 2))


@_scan_backward_op.register_fake
def _(a, x, x0, g, need_a, chunks=0):
    check_channels(x.shape[1])
    return torch.empty_like(x), (torch.empty_like(a) if need_a else a.new_empty(0, 2))


def _setup_context(ctx, inputs, output) -> None:
    a, _, x0, chunks = inputs
    ctx.save_for_backward(a, output, x0)
    ctx.has_x0 = x0 is not None
    ctx.chunks = chunks


def _backward_formula(ctx, g):
    a, x, x0 = ctx.saved_tensors
    need_a, need_b, need_x0 = ctx.needs_input_grad[:3]
    gx, ga = _scan_backward_op(a, x, x0, g, need_a, ctx.chunks)
    grad_x0 = None
    if ctx.has_x0 and need_x0:
        ac, g0 = torch.view_as_complex(a).conj(), torch.view_as_complex(gx[0])
        grad_x0 = torch.view_as_real(ac * g0)
    grads = (ga if need_a else None), (gx if need_b else None), grad_x0
    return grads + (None,) * (len(ctx.needs_input_grad) - 3)


_scan_op.register_autograd(_backward_formula, setup_context=_setup_context)


def _as_pairs(t: torch.Tensor, shape: torch.Size, rows: tuple[int, ...]) -> torch.Tensor:
    """Complex t broadcast to ``shape`` -> contiguous float pairs (*rows, 2).

    A conjugate view is resolved (one copy): ``view_as_real`` refuses it, and the kernels
    would read the unconjugated bytes.
    """
    t = t.expand(shape).reshape(rows).resolve_conj().resolve_neg()
    return torch.view_as_real(t.contiguous())


def linear_scan_triton(
    a: torch.Tensor,
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    *,
    time_chunks: int | None = None,
) -> torch.Tensor:
    """x_k = a * x_{k-1} + b_k for k = 1..L with x_0 = x0 (zeros when None), fused kernels.

    Args and returns as :func:`convssm.ops.linear_scan`: ``a`` and ``x0`` complex,
    broadcastable to ``b.shape[1:]``; ``b`` complex (L, ...), any strides; returns ``x``
    (L, ...) contiguous, differentiable with respect to ``a``, ``b`` and ``x0`` (once).
    ``time_chunks``: split time into this many chunks (forward and backward), as the
    launcher does by itself for few channels on a GPU; None lets it decide. Conjugate views
    are accepted (resolved by a copy). Runs on CUDA tensors, or on CPU tensors when the
    kernels were compiled with ``TRITON_INTERPRET=1``. Shape, dtype and size checks only: no
    value checks (no host syncs). Raises ValueError beyond :data:`MAX_CHANNELS` channels.
    """
    check_scan_inputs(a, b, x0)
    if time_chunks is not None and (
        isinstance(time_chunks, bool) or not isinstance(time_chunks, int) or time_chunks < 1
    ):
        raise ValueError(f"time_chunks must be a positive int or None, got {time_chunks!r}")
    length, state = b.shape[0], b.shape[1:]
    m = math.prod(state)
    check_channels(m)
    b2 = _as_pairs(b, b.shape, (length, m))
    x01 = None if x0 is None else _as_pairs(x0, state, (m,))
    x = _scan_op(_as_pairs(a, state, (m,)), b2, x01, time_chunks or 0)
    return torch.view_as_complex(x).view(b.shape)
