"""The Triton kernels behind :func:`convssm.ops.linear_scan_triton`, and their configurations.

Both kernels walk time in tiles: a program owns ``BLOCK`` channels and one chunk of time
(the whole length unless the launcher splits it, see ``linear_scan_triton``), and for each
tile of ``TILE`` time steps it

1. loads the tile of ``b`` (or ``g``) as one (TILE, BLOCK, 2) block, so every thread has
   ``TILE`` loads in flight instead of one; the loop over tiles is ``tl.range`` with
   ``num_stages=STAGES``, which lets Triton's pipeliner issue the next tiles' loads
   (asynchronous copies, ``cp.async``) while this one is computed;
2. adds the carried state to one row: ``a x_prev`` to the first (forward) or
   ``conj(a) gx_next`` to the last (backward);
3. solves the recurrence inside the tile in registers (``_tile_scan_fn``: log2(TILE)
   Hillis-Steele rounds over its rows);
4. stores the tile as one block and keeps its last (forward) or first (backward) row as
   the next carry.

Forward: ``x[t] = a x[t-1] + b[t]`` over [start, stop) from ``x0`` (per channel, or per chunk
when the launcher passes the chunks' carries). ``WRITE_X`` stores x; ``WRITE_END`` stores the
state at the chunk's end (the launcher's first pass, which needs nothing else).

Backward: ``gx[t] = g[t] + conj(a) gx[t+1]`` over the chunk in reverse from ``gin`` (the
carry from the chunks after it, or zero), accumulating ``sum_t conj(x[t-1]) gx[t]`` for
grad_a (``x[-1] = x0``) per chunk. ``WRITE_FIRST`` stores gx at the chunk's first step.

Complex numbers are float pairs (Triton has no complex dtype): ``a``, ``x0`` (M, 2), ``b``,
``x``, ``g``, ``gx`` (L, M, 2), per-chunk buffers (chunks, M, 2), all contiguous. Time and
chunk offsets are 64-bit (``t * 2M`` passes 2^31 long before M does); channel offsets are
32-bit, which bounds M by :data:`MAX_CHANNELS`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = [
    "ScanKernelConfig",
    "FORWARD_CONFIGS",
    "BACKWARD_CONFIGS",
    "MAX_CHANNELS",
    "check_channels",
    "triton_available",
]

# A program's float offsets reach 2 * (M + BLOCK) in int32; the margin covers blocks up to 4096.
MAX_CHANNELS = 2**30 - 4096

# triton is optional (the ``triton`` extra) and imported on first need: importing it costs
# seconds, which a CPU-only process should not pay. The kernels below find it as these
# module globals when they are compiled.
triton = None
tl = None
_import_error: ImportError | None = None
_tile_scan = _sum_rows = None  # the kernels' jit helpers, made on first need (scan_kernels)


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


def check_channels(m: int) -> None:
    """Raise ValueError when M channels are beyond the kernels' 32-bit indexing."""
    if m > MAX_CHANNELS:
        raise ValueError(
            f"linear_scan_triton: b has {m} channels (prod(b.shape[1:])), more than the "
            f"{MAX_CHANNELS} its kernels index in 32 bits; use the loop path "
            "(linear_scan's 'auto' does, or set_scan_path('loop'))"
        )


@dataclass(frozen=True)
class ScanKernelConfig:
    """One launch configuration: channels per program, time steps per tile, pipeline depth
    (``num_stages`` of the tile loop) and warps per program. BLOCK and TILE are powers of two;
    TILE divides :data:`CHUNK_ALIGN`, so a split of time into chunks never cuts a tile."""

    block: int
    tile: int
    stages: int
    warps: int


CHUNK_ALIGN = 64  # chunk lengths are multiples of this (and so of every TILE below)

# Candidates per (direction, real dtype), the first the default. On a GPU the launcher times
# them once per channel-count bucket and keeps the fastest (linear_scan_triton.tuned_config).
# Each was compiled for sm_90 and read through ptxas -v (benchmarks/inspect_scan_kernels.py;
# docs/benchmarks.md has the table): the tile scan's shuffles cost about 16 registers per
# tile element a thread holds in float32 and twice that in float64, so these keep
# TILE * BLOCK / (32 * warps) at 4-8 elements (float32) or 2-4 (float64): no spills, and
# 2-3 tiles in flight per program through cp.async. Larger tiles spill.
FORWARD_CONFIGS: dict[torch.dtype, tuple[ScanKernelConfig, ...]] = {
    torch.float32: (
        ScanKernelConfig(256, 8, 3, 8),
        ScanKernelConfig(256, 4, 3, 4),
        ScanKernelConfig(128, 8, 2, 4),
        ScanKernelConfig(512, 4, 3, 8),
    ),
    torch.float64: (
        ScanKernelConfig(128, 4, 3, 4),
        ScanKernelConfig(256, 4, 3, 8),
        ScanKernelConfig(256, 4, 2, 4),
    ),
}
BACKWARD_CONFIGS: dict[torch.dtype, tuple[ScanKernelConfig, ...]] = {
    torch.float32: (
        ScanKernelConfig(256, 4, 3, 8),
        ScanKernelConfig(128, 8, 2, 4),
        ScanKernelConfig(256, 8, 2, 8),
        ScanKernelConfig(128, 4, 3, 4),
    ),
    torch.float64: (
        ScanKernelConfig(128, 4, 2, 4),
        ScanKernelConfig(256, 4, 3, 8),
        ScanKernelConfig(128, 4, 3, 4),
    ),
}


def _tile_scan_fn(s_re, s_im, q_re, q_im, TILE: tl.constexpr, REVERSE: tl.constexpr):
    """Scan the rows of a (TILE, BLOCK) tile of complex pairs s in registers:
    ``s[k] <- sum_{j<=k} q^(k-j) s[j]`` (``REVERSE``: ``sum_{j>=k} q^(j-k) s[j]``), q (BLOCK,)
    per channel. Hillis-Steele: log2(TILE) rounds of ``s[k] += q^(2^d) s[k -/+ 2^d]``, the
    neighbour row fetched with ``tl.gather`` (warp shuffles when the rows share a warp)."""
    rows = tl.arange(0, TILE)
    for d in tl.static_range(10):
        if (1 << d) < TILE:
            if REVERSE:
                src = tl.minimum(rows + (1 << d), TILE - 1)
                keep = (rows + (1 << d) < TILE)[:, None]
            else:
                src = tl.maximum(rows - (1 << d), 0)
                keep = (rows >= (1 << d))[:, None]
            idx = tl.broadcast_to(src[:, None], s_re.shape)
            n_re, n_im = tl.gather(s_re, idx, 0), tl.gather(s_im, idx, 0)
            s_re, s_im = (
                s_re + tl.where(keep, q_re[None, :] * n_re - q_im[None, :] * n_im, 0.0),
                s_im + tl.where(keep, q_re[None, :] * n_im + q_im[None, :] * n_re, 0.0),
            )
            q_re, q_im = q_re * q_re - q_im * q_im, 2.0 * q_re * q_im
    return s_re, s_im


def _sum_rows_fn(x):
    """x (TILE, BLOCK) summed over its rows: ``tl.sum(x, 0)`` spelled as the reduction it
    is, because ``tl.sum`` is a JITFunction that the interpreter refuses to call when
    triton was imported before TRITON_INTERPRET was set (the tests set it per test), and
    the interpreter sums with numpy only for this combine function."""
    return tl.reduce(x, 0, tl.standard._sum_combine)


def _scan_fwd_kernel(
    a_ptr,
    b_ptr,
    x0_ptr,
    x_ptr,
    end_ptr,
    L,
    M,
    CHUNK,
    HAS_X0: tl.constexpr,
    X0_PER_CHUNK: tl.constexpr,
    WRITE_X: tl.constexpr,
    WRITE_END: tl.constexpr,
    BLOCK: tl.constexpr,
    TILE: tl.constexpr,
    STAGES: tl.constexpr,
):
    """x[t] = a x[t-1] + b[t] for t in this program's chunk; see the module docstring."""
    chunk = tl.program_id(1)
    chan = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    cmask = (chan < M)[:, None]
    offs = chan[:, None] * 2 + tl.arange(0, 2)[None, :]  # (BLOCK, 2): [re, im] per channel
    step = 2 * M
    row = chunk.to(tl.int64) * step  # this chunk's row of a (chunks, M, 2) buffer
    a_re, a_im = tl.split(tl.load(a_ptr + offs, mask=cmask, other=0.0))
    zero = tl.full([BLOCK], 0.0, a_re.dtype)  # (tl.zeros is a jit function)
    if HAS_X0:
        if X0_PER_CHUNK:
            x_re, x_im = tl.split(tl.load(x0_ptr + row + offs, mask=cmask, other=0.0))
        else:
            x_re, x_im = tl.split(tl.load(x0_ptr + offs, mask=cmask, other=0.0))
    else:
        x_re, x_im = zero, zero
    rows = tl.arange(0, TILE)
    head = (rows == 0)[:, None]
    start = chunk * CHUNK
    stop = tl.minimum(start + CHUNK, L)
    for i in tl.range(0, (stop - start + TILE - 1) // TILE, num_stages=STAGES):
        t = start + i * TILE + rows
        mask = (t < stop)[:, None, None] & cmask[None, :, :]
        ptrs = (t.to(tl.int64) * step)[:, None, None] + offs[None, :, :]  # (TILE, BLOCK, 2)
        b_re, b_im = tl.split(tl.load(b_ptr + ptrs, mask=mask, other=0.0))
        # the carried state enters as a x_prev added to the tile's first b
        b_re += tl.where(head, (a_re * x_re - a_im * x_im)[None, :], 0.0)
        b_im += tl.where(head, (a_re * x_im + a_im * x_re)[None, :], 0.0)
        s_re, s_im = _tile_scan(b_re, b_im, a_re, a_im, TILE, False)
        if WRITE_X:
            tl.store(x_ptr + ptrs, tl.join(s_re, s_im), mask=mask)
        last = (rows == tl.minimum(stop - start - i * TILE, TILE) - 1)[:, None]
        x_re = _sum_rows(tl.where(last, s_re, 0.0))
        x_im = _sum_rows(tl.where(last, s_im, 0.0))
    if WRITE_END:
        tl.store(end_ptr + row + offs, tl.join(x_re, x_im), mask=cmask)


def _scan_bwd_kernel(
    a_ptr,
    x_ptr,
    x0_ptr,
    g_ptr,
    gin_ptr,
    gx_ptr,
    ga_ptr,
    first_ptr,
    L,
    M,
    CHUNK,
    HAS_X0: tl.constexpr,
    HAS_CARRY: tl.constexpr,
    NEED_A: tl.constexpr,
    WRITE_GX: tl.constexpr,
    WRITE_FIRST: tl.constexpr,
    BLOCK: tl.constexpr,
    TILE: tl.constexpr,
    STAGES: tl.constexpr,
):
    """gx[t] = g[t] + conj(a) gx[t+1] over this program's chunk in reverse, from gin[chunk]
    (HAS_CARRY) or zero; ga[chunk] = sum_t conj(x[t-1]) gx[t] (x[-1] = x0 or 0).

    Only a chunk that ends at L can end in a partial tile, and its carry is zero: the carry
    enters at the tile's last row, which for a partial tile lies beyond L."""
    chunk = tl.program_id(1)
    chan = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    cmask = (chan < M)[:, None]
    offs = chan[:, None] * 2 + tl.arange(0, 2)[None, :]
    step = 2 * M
    row = chunk.to(tl.int64) * step  # this chunk's row of a (chunks, M, 2) buffer
    a_re, a_im = tl.split(tl.load(a_ptr + offs, mask=cmask, other=0.0))
    a_im = -a_im  # conj(a)
    zero = tl.full([BLOCK], 0.0, a_re.dtype)
    if HAS_CARRY:
        gx_re, gx_im = tl.split(tl.load(gin_ptr + row + offs, mask=cmask, other=0.0))
    else:
        gx_re, gx_im = zero, zero
    acc_re, acc_im = zero, zero
    rows = tl.arange(0, TILE)
    tail = (rows == TILE - 1)[:, None]
    start = chunk * CHUNK
    stop = tl.minimum(start + CHUNK, L)
    n_tiles = (stop - start + TILE - 1) // TILE
    for i in tl.range(0, n_tiles, num_stages=STAGES):
        t = start + (n_tiles - 1 - i) * TILE + rows
        mask = (t < stop)[:, None, None] & cmask[None, :, :]
        ptrs = (t.to(tl.int64) * step)[:, None, None] + offs[None, :, :]
        g_re, g_im = tl.split(tl.load(g_ptr + ptrs, mask=mask, other=0.0))
        if NEED_A:  # x[t-1], loaded with g before the scan needs either
            prev = mask & (t >= 1)[:, None, None]
            xp_re, xp_im = tl.split(tl.load(x_ptr + ptrs - step, mask=prev, other=0.0))
        # the carry enters as conj(a) gx_next added to the tile's last g
        g_re += tl.where(tail, (a_re * gx_re - a_im * gx_im)[None, :], 0.0)
        g_im += tl.where(tail, (a_re * gx_im + a_im * gx_re)[None, :], 0.0)
        s_re, s_im = _tile_scan(g_re, g_im, a_re, a_im, TILE, True)
        if WRITE_GX:
            tl.store(gx_ptr + ptrs, tl.join(s_re, s_im), mask=mask)
        if NEED_A:  # conj(x[t-1]) * gx[t], summed over the tile's rows
            acc_re += _sum_rows(xp_re * s_re + xp_im * s_im)
            acc_im += _sum_rows(xp_re * s_im - xp_im * s_re)
        first = (rows == 0)[:, None]
        gx_re = _sum_rows(tl.where(first, s_re, 0.0))
        gx_im = _sum_rows(tl.where(first, s_im, 0.0))
    if WRITE_FIRST:
        tl.store(first_ptr + row + offs, tl.join(gx_re, gx_im), mask=cmask)
    if NEED_A:
        if HAS_X0:
            if chunk == 0:
                x0_re, x0_im = tl.split(tl.load(x0_ptr + offs, mask=cmask, other=0.0))
                acc_re += x0_re * gx_re + x0_im * gx_im
                acc_im += x0_re * gx_im - x0_im * gx_re
        tl.store(ga_ptr + row + offs, tl.join(acc_re, acc_im), mask=cmask)


_KERNELS: dict[bool, tuple] = {}


def interpreting() -> bool:
    """Whether kernels jitted now run in Triton's interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def scan_kernels() -> tuple:
    """The jitted (forward, backward) kernels for the current TRITON_INTERPRET setting."""
    global _tile_scan, _sum_rows
    if not triton_available():
        raise RuntimeError(
            f"linear_scan_triton needs triton, which does not import ({_import_error}): "
            "pip install 'convssm[triton]' (or use linear_scan's loop path)"
        )
    if _tile_scan is None:

        class Helper(triton.runtime.JITFunction):
            """A jit helper that serves both settings: Triton's compiler inlines a
            JITFunction without calling it, and the interpreter, which runs a kernel as
            Python, calls it; a plain JITFunction refuses that call."""

            def __call__(self, *args, **kwargs):
                return self.fn(*args, **kwargs)

        _tile_scan, _sum_rows = Helper(_tile_scan_fn), Helper(_sum_rows_fn)
    interpret = interpreting()
    if interpret not in _KERNELS:
        # L, M and CHUNK are never specialised (Triton turns an int argument equal to 1 into
        # a constant, and the kernels do arithmetic on them).
        jit = triton.jit(do_not_specialize=["L", "M", "CHUNK"])
        _KERNELS[interpret] = (jit(_scan_fwd_kernel), jit(_scan_bwd_kernel))
    return _KERNELS[interpret]
