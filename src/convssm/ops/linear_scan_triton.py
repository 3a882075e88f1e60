"""The diagonal linear recurrence as fused Triton kernels: ``linear_scan_triton``.

Same contract as :func:`convssm.ops.linear_scan` (complex64 / complex128, ``b`` (L, *S)
time-major, ``a`` and ``x0`` broadcast to ``S``, gradients for all three), computed by two
kernels that keep the time loop inside the kernel and run in parallel over channels:

- forward: one program per block of ``BLOCK`` channels reads ``a`` (and ``x0``) once, then
  for k = 1..L reads ``b_k``, forms ``x_k = a * x_{k-1} + b_k`` in registers and writes it:
  ``b`` is read once and ``x`` written once, so it runs at memory bandwidth on a GPU (the
  per-step Python loop launches L small kernels there and is launch-bound).
- backward: the same recurrence in reverse with conj(a), ``gx_k = g_k + conj(a) gx_{k+1}``
  (``grad_b = gx``), accumulating ``grad_a = sum_k conj(x_{k-1}) gx_k`` per channel in
  registers; ``grad_x0 = conj(a) gx_1``. Only ``x`` is saved for it.

Complex numbers travel as float pairs (``torch.view_as_real``): Triton has no complex dtype.
Inputs are made contiguous first (Triton's interpreter misreads strided tensors; the
kernels index flat (L, M, 2) buffers), and conjugate views (``b.conj()``) are resolved into
memory first: a kernel reads the bytes, not the view's conjugate bit. Broadcasting and the
sums back to the shapes of ``a`` and ``x0`` are ordinary torch ops around the kernels, so
autograd handles them.

The kernels index channels in 32-bit integers, which bounds M = prod(b.shape[1:]) by
:data:`MAX_CHANNELS` (about 1.07e9: 8 GiB of complex64 per time step); beyond it
``linear_scan_triton`` raises ``ValueError`` before launching anything, and
``linear_scan``'s ``"auto"`` takes the loop path, whose per-step kernels are not
launch-bound at such widths.

Both kernels are ``torch.library.custom_op``s with ``register_fake`` (``convssm::scan_triton``
and ``convssm::scan_triton_backward``), so ``torch.compile(fullgraph=True)`` traces through
the scan as one opaque op; the forward op's autograd formula is registered with
``register_autograd``. The backward op has none: double backward is refused.

The kernels are compiled with ``triton.jit`` on first use. With ``TRITON_INTERPRET=1`` set
at that moment they run in Triton's interpreter on CPU tensors (slowly: that is how the
tests run them without a GPU); they are cached per interpreter setting, so a process may
hold both.
"""

from __future__ import annotations

import contextlib
import math
import os

import torch

from convssm.ops.scan_contract import check_scan_inputs

__all__ = ["linear_scan_triton", "triton_available", "check_channels", "BLOCK", "MAX_CHANNELS"]

BLOCK = 256  # channels per program (a power of two); 128 threads hold 2 channels each
NUM_WARPS = 4
# The largest channel count the kernels index correctly in int32: a program's float offsets
# reach 2 * (M + BLOCK) and the per-step stride is 2 * M, both below 2**31; the margin
# covers blocks up to 4096 (the benchmarks sweep BLOCK up to 1024).
MAX_CHANNELS = 2**30 - 4096

# triton is optional (the ``triton`` extra) and imported on first need: importing it costs
# seconds, which a CPU-only process should not pay. The kernels below find it as these
# module globals when they are compiled.
triton = None
tl = None
_import_error: ImportError | None = None


def triton_available() -> bool:
    """Whether triton imports (the kernels can then run on CUDA, or on CPU when interpreted)."""
    global triton, tl, _import_error
    if triton is None and _import_error is None:
        try:
            import triton as _triton
            import triton.language as _tl
        except ImportError as exc:
            _import_error = exc
        else:
            triton, tl = _triton, _tl
    return triton is not None


def _scan_fwd_kernel(a_ptr, b_ptr, x0_ptr, x_ptr, L, M, HAS_X0: tl.constexpr, BLOCK: tl.constexpr):
    """x[t] = a * x[t-1] + b[t] on float pairs: a, x0 (M, 2), b and x (L, M, 2), contiguous."""
    pid = tl.program_id(0)
    chan = pid * BLOCK + tl.arange(0, BLOCK)
    mask = (chan < M)[:, None]
    offs = chan[:, None] * 2 + tl.arange(0, 2)[None, :]  # (BLOCK, 2): [re, im] per channel
    a_re, a_im = tl.split(tl.load(a_ptr + offs, mask=mask, other=0.0))
    if HAS_X0:
        x_re, x_im = tl.split(tl.load(x0_ptr + offs, mask=mask, other=0.0))
    else:
        zero = tl.full([BLOCK], 0.0, a_re.dtype)  # (tl.zeros is a jit function)
        x_re, x_im = zero, zero
    b_ptrs = b_ptr + offs
    x_ptrs = x_ptr + offs
    step = 2 * M
    nxt = tl.load(b_ptrs, mask=mask, other=0.0)
    for t in range(L):
        cur = nxt
        b_ptrs += step
        nxt = tl.load(b_ptrs, mask=mask & (t + 1 < L), other=0.0)  # prefetch b[t + 1]
        b_re, b_im = tl.split(cur)
        x_re, x_im = a_re * x_re - a_im * x_im + b_re, a_re * x_im + a_im * x_re + b_im
        tl.store(x_ptrs, tl.join(x_re, x_im), mask=mask)
        x_ptrs += step


def _scan_bwd_kernel(
    a_ptr,
    x_ptr,
    x0_ptr,
    g_ptr,
    gx_ptr,
    ga_ptr,
    L,
    M,
    HAS_X0: tl.constexpr,
    NEED_A: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """gx[t] = g[t] + conj(a) gx[t+1]; ga = sum_t conj(x[t-1]) gx[t] (x[-1] = x0 or 0)."""
    pid = tl.program_id(0)
    chan = pid * BLOCK + tl.arange(0, BLOCK)
    mask = (chan < M)[:, None]
    offs = chan[:, None] * 2 + tl.arange(0, 2)[None, :]
    a_re, a_im = tl.split(tl.load(a_ptr + offs, mask=mask, other=0.0))
    a_im = -a_im  # conj(a)
    zero = tl.full([BLOCK], 0.0, a_re.dtype)  # (tl.zeros is a jit function)
    gx_re, gx_im = zero, zero
    acc_re, acc_im = zero, zero
    step = 2 * M
    last = (L - 1).to(tl.int64) * step
    g_ptrs = g_ptr + last + offs
    gx_ptrs = gx_ptr + last + offs
    xp_ptrs = x_ptr + last - step + offs  # x[t - 1]
    for i in range(L):
        g_re, g_im = tl.split(tl.load(g_ptrs, mask=mask, other=0.0))
        gx_re, gx_im = (
            g_re + a_re * gx_re - a_im * gx_im,
            g_im + a_re * gx_im + a_im * gx_re,
        )
        tl.store(gx_ptrs, tl.join(gx_re, gx_im), mask=mask)
        if NEED_A:
            xp = tl.load(xp_ptrs, mask=mask & (i < L - 1), other=0.0)
            xp_re, xp_im = tl.split(xp)
            acc_re += xp_re * gx_re + xp_im * gx_im  # conj(x_prev) * gx
            acc_im += xp_re * gx_im - xp_im * gx_re
        g_ptrs -= step
        gx_ptrs -= step
        xp_ptrs -= step
    if NEED_A:
        if HAS_X0:
            x0_re, x0_im = tl.split(tl.load(x0_ptr + offs, mask=mask, other=0.0))
            acc_re += x0_re * gx_re + x0_im * gx_im
            acc_im += x0_re * gx_im - x0_im * gx_re
        tl.store(ga_ptr + offs, tl.join(acc_re, acc_im), mask=mask)


_KERNELS: dict[bool, tuple] = {}


def _kernels() -> tuple:
    """The jitted (forward, backward) kernels for the current TRITON_INTERPRET setting."""
    if not triton_available():
        raise RuntimeError(
            f"linear_scan_triton needs triton, which does not import ({_import_error}): "
            "pip install 'convssm[triton]' (or use linear_scan's loop path)"
        )
    interpret = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    if interpret not in _KERNELS:
        # L and M are never specialised (Triton turns an int argument equal to 1 into a
        # constant, and the kernels do arithmetic on them).
        jit = triton.jit(do_not_specialize=["L", "M"])
        _KERNELS[interpret] = (jit(_scan_fwd_kernel), jit(_scan_bwd_kernel))
    return _KERNELS[interpret]


def check_channels(m: int) -> None:
    """Raise ValueError when M channels are beyond the kernels' 32-bit indexing."""
    if m > MAX_CHANNELS:
        raise ValueError(
            f"linear_scan_triton: b has {m} channels (prod(b.shape[1:])), more than the "
            f"{MAX_CHANNELS} its kernels index in 32 bits; use the loop path "
            "(linear_scan's 'auto' does, or set_scan_path('loop'))"
        )


def _grid(m: int) -> tuple[int]:
    return (triton.cdiv(m, BLOCK),)


def _on(device: torch.device):
    """Launch on the tensors' GPU (Triton launches on the current device)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


# ----------------------------------------------------------------------------- custom ops


def _plain(t: torch.Tensor) -> torch.Tensor:
    """t as the kernels read it: contiguous, no negative (or conjugate) bit left in a view."""
    return t.resolve_neg().resolve_conj().contiguous()


@torch.library.custom_op("convssm::scan_triton", mutates_args=())
def _scan_op(a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
    """a, x0 (M, 2), b (L, M, 2) real -> x (L, M, 2)."""
    fwd, _ = _kernels()
    length, m = b.shape[0], b.shape[1]
    check_channels(m)
    a, b = _plain(a), _plain(b)
    x0 = None if x0 is None else _plain(x0)
    x = torch.empty_like(b)
    with _on(b.device):
        fwd[_grid(m)](
            a, b, a if x0 is None else x0, x, length, m, x0 is not None, BLOCK, num_warps=NUM_WARPS
        )
    return x


@_scan_op.register_fake
def _(a, b, x0):
    check_channels(b.shape[1])
    return torch.empty_like(b)


@torch.library.custom_op("convssm::scan_triton_backward", mutates_args=())
def _scan_backward_op(
    a: torch.Tensor, x: torch.Tensor, x0: torch.Tensor | None, g: torch.Tensor, need_a: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns gx (L, M, 2) and grad_a (M, 2) per channel (empty (0, 2) when not need_a)."""
    _, bwd = _kernels()
    length, m = x.shape[0], x.shape[1]
    check_channels(m)
    a, x, g = _plain(a), _plain(x), _plain(g)
    x0 = None if x0 is None else _plain(x0)
    gx = torch.empty_like(x)
    ga = torch.empty_like(a) if need_a else a.new_empty(0, 2)
    x0_arg = a if x0 is None else x0
    with _on(x.device):
        bwd[_grid(m)](
            a,
            x,
            x0_arg,
            g,
            gx,
            ga if need_a else gx,
            length,
            m,
            x0 is not None,
            need_a,
            BLOCK,
            num_warps=NUM_WARPS,
        )
    return gx, ga


@_scan_backward_op.register_fake
def _(a, x, x0, g, need_a):
    check_channels(x.shape[1])
    return torch.empty_like(x), (torch.empty_like(a) if need_a else a.new_empty(0, 2))


def _setup_context(ctx, inputs, output) -> None:
    a, _, x0 = inputs
    ctx.save_for_backward(a, output, x0)
    ctx.has_x0 = x0 is not None


def _backward(ctx, g):
    a, x, x0 = ctx.saved_tensors
    need_a, need_b, need_x0 = ctx.needs_input_grad
    gx, ga = _scan_backward_op(a, x, x0, g, need_a)
    grad_x0 = None
    if ctx.has_x0 and need_x0:
        ac, g0 = torch.view_as_complex(a).conj(), torch.view_as_complex(gx[0])
        grad_x0 = torch.view_as_real(ac * g0)
    return (ga if need_a else None), (gx if need_b else None), grad_x0


_scan_op.register_autograd(_backward, setup_context=_setup_context)


def _as_pairs(t: torch.Tensor, shape: torch.Size, rows: tuple[int, ...]) -> torch.Tensor:
    """Complex t broadcast to ``shape`` -> contiguous float pairs (*rows, 2).

    A conjugate view is resolved (one copy): ``view_as_real`` refuses it, and the kernels
    would read the unconjugated bytes.
    """
    t = t.expand(shape).reshape(rows).resolve_conj().resolve_neg()
    return torch.view_as_real(t.contiguous())


def linear_scan_triton(
    a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None = None
) -> torch.Tensor:
    """x_k = a * x_{k-1} + b_k for k = 1..L with x_0 = x0 (zeros when None), fused kernels.

    Args and returns as :func:`convssm.ops.linear_scan`: ``a`` and ``x0`` complex,
    broadcastable to ``b.shape[1:]``; ``b`` complex (L, ...), any strides; returns ``x``
    (L, ...) contiguous, differentiable with respect to ``a``, ``b`` and ``x0`` (once).
    Conjugate views are accepted (resolved by a copy). Runs on CUDA tensors, or on CPU
    tensors when the kernels were compiled with ``TRITON_INTERPRET=1``. Shape, dtype and
    size checks only: no value checks (no host syncs). Raises ValueError beyond
    :data:`MAX_CHANNELS` channels (the kernels' 32-bit indexing).
    """
    check_scan_inputs(a, b, x0)
    length, state = b.shape[0], b.shape[1:]
    m = math.prod(state)
    check_channels(m)
    b2 = _as_pairs(b, b.shape, (length, m))
    x01 = None if x0 is None else _as_pairs(x0, state, (m,))
    x = _scan_op(_as_pairs(a, state, (m,)), b2, x01)
    return torch.view_as_complex(x).view(b.shape)
