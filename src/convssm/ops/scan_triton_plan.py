"""How the Triton scan is launched: chunks of time, and the kernels' configuration.

:func:`time_chunks` decides when time is split (few channels on a GPU), :func:`chunk_length`
how long a chunk is, :func:`tuned_config` which candidate configuration a direction runs
with (timed once per shape bucket on a GPU), :func:`kernel_config` forces one. Used by
:mod:`convssm.ops.linear_scan_triton`; no Triton import here.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from convssm.ops.scan_triton_kernels import (
    BACKWARD_CONFIGS,
    CHUNK_ALIGN,
    FORWARD_CONFIGS,
    ScanKernelConfig,
)

__all__ = ["time_chunks", "chunk_length", "kernel_config", "tuned_config"]

MIN_CHUNK = 256  # time steps a chunk keeps at least: the carry passes must stay small
PROGRAMS_PER_SM = 4  # programs a GPU needs in flight per SM before chunking stops paying
_REFERENCE_BLOCK = 256  # channel programs are counted at this block, whatever is tuned

_forced: dict[str, ScanKernelConfig | None] = {"forward": None, "backward": None}
_tuned: dict[tuple, ScanKernelConfig] = {}


def cdiv(n: int, d: int) -> int:
    """ceil(n / d) for non-negative ints."""
    return -(-n // d)


def time_chunks(m: int, length: int, device: torch.device) -> int:
    """Chunks of time for M channels and L steps: 1 unless the channel blocks alone give a
    GPU fewer than PROGRAMS_PER_SM programs per SM and L has room for MIN_CHUNK-step chunks."""
    if device.type != "cuda":
        return 1
    want = PROGRAMS_PER_SM * torch.cuda.get_device_properties(device).multi_processor_count
    programs = cdiv(m, _REFERENCE_BLOCK)
    if programs >= want:
        return 1
    return max(1, min(cdiv(want, programs), length // MIN_CHUNK))


def chunk_length(length: int, chunks: int) -> int:
    """Steps per chunk: L shared by ``chunks``, rounded up to CHUNK_ALIGN (no tile is cut)."""
    return cdiv(cdiv(length, chunks), CHUNK_ALIGN) * CHUNK_ALIGN


@contextlib.contextmanager
def kernel_config(
    forward: ScanKernelConfig | None = None, backward: ScanKernelConfig | None = None
):
    """Within the block, launch with these configurations (benchmarks sweep them this way)."""
    saved = dict(_forced)
    _forced.update(forward=forward, backward=backward)
    try:
        yield
    finally:
        _forced.update(saved)


def tuned_config(direction: str, dtype: torch.dtype, m: int, chunked: bool, device, run):
    """The configuration for one direction ("forward" / "backward") and float dtype: the
    forced one, else on a GPU the fastest candidate for this (dtype, bucket of M, chunked),
    timed once with ``run(config)`` and cached; elsewhere the first candidate.

    A candidate that raises while tuning (a compile that fails on this GPU) is left out with
    one warning naming it; when every candidate fails, the first error is raised."""
    if _forced[direction] is not None:
        return _forced[direction]
    candidates = (FORWARD_CONFIGS if direction == "forward" else BACKWARD_CONFIGS)[dtype]
    if device.type != "cuda" or len(candidates) == 1 or torch.cuda.is_current_stream_capturing():
        return candidates[0]
    key = (direction, dtype, device.index, m.bit_length(), chunked)
    if key not in _tuned:
        times, failures = {}, []
        for config in candidates:
            try:
                times[config] = _milliseconds(run, config)
            except Exception as exc:  # noqa: BLE001 - reported below, or re-raised
                failures.append((config, exc))
        if not times:
            raise failures[0][1]
        if failures:
            warnings.warn(
                f"linear_scan_triton: {len(failures)} of {len(candidates)} {direction} "
                f"configurations failed on {device} and are left out: "
                + "; ".join(f"{c} ({type(e).__name__}: {str(e)[:200]})" for c, e in failures),
                RuntimeWarning,
                stacklevel=2,
            )
        _tuned[key] = min(times, key=times.get)
    return _tuned[key]


def _milliseconds(run, config: ScanKernelConfig) -> float:
    """GPU time of three ``run(config)`` after one that compiles and warms up."""
    run(config)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(3):
        run(config)
    end.record()
    end.synchronize()
    return start.elapsed_time(end)
