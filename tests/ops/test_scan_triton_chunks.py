"""The Triton scan's tiles, chunks of time and configurations, pinned to linear_scan_ref in
Triton's interpreter (TRITON_INTERPRET=1, set per test): lengths that end mid-tile and
mid-chunk, every candidate configuration of either direction, time split into chunks (the
three-launch path a GPU takes for few channels), and one realistic size (32 768 channels,
512 steps) against the loop path."""

from __future__ import annotations

import importlib
import math
from types import SimpleNamespace

import pytest
import torch
from scan_inputs import decay as _decay
from scan_inputs import needs_triton

from convssm.ops import linear_scan, linear_scan_ref, scan_path

pytestmark = needs_triton

launcher = importlib.import_module("convssm.ops.linear_scan_triton")
kernels = importlib.import_module("convssm.ops.scan_triton_kernels")
plan = importlib.import_module("convssm.ops.scan_triton_plan")
RTOL = {torch.complex64: 2e-6, torch.complex128: 1e-13}


@pytest.fixture(autouse=True)
def _interpret(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def _rel(x, y) -> float:
    return ((x - y).abs().max() / y.abs().max().clamp_min(1e-30)).item()


def _run(fn, a, b, x0, w):
    """x and the gradients of a, b (and x0) for the loss Re <w, x>."""
    leaves = [t.detach().clone().requires_grad_(True) for t in (a, b, x0) if t is not None]
    x = fn(*leaves[:2], leaves[2] if x0 is not None else None)
    return (x.detach(), *torch.autograd.grad((w.conj() * x).real.sum(), leaves))


def _inputs(dtype, length, seed, with_x0, channels=(3, 5)):
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(length, *channels, dtype=dtype, generator=g)
    a = _decay(channels[-1:], dtype, g)
    x0 = torch.randn(*channels, dtype=dtype, generator=g) if with_x0 else None
    return a, b, x0, torch.randn(length, *channels, dtype=dtype, generator=g)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize(
    ("length", "chunks", "used"),
    [(65, 2, 2), (129, 2, 2), (300, 4, 3), (300, 2, 2), (64, 2, 1), (1, 3, 1)],
)
@pytest.mark.parametrize("with_x0", [False, True])
def test_time_chunks_give_the_reference_values_and_gradients(
    dtype, length, chunks, used, with_x0, monkeypatch
):
    """Chunk lengths are multiples of 64, so (L, chunks) -> chunks used: 65 steps make two
    chunks (64 + 1: the last chunk one step, mid-tile), 300 in four ask for 128 a chunk and
    use three; 64 and 1 step make one whatever is asked."""
    launched = []
    real = launcher._forward
    monkeypatch.setattr(launcher, "_forward", lambda *args: launched.append(args[4]) or real(*args))
    a, b, x0, w = _inputs(dtype, length, length + chunks, with_x0)
    got = _run(lambda *t: launcher.linear_scan_triton(*t, time_chunks=chunks), a, b, x0, w)
    want = _run(linear_scan_ref, a, b, x0, w)
    assert launched == [chunks]
    assert math.ceil(length / plan.chunk_length(length, chunks)) == used
    for i, (g, r) in enumerate(zip(got, want, strict=True)):
        assert g.shape == r.shape
        assert _rel(g, r) <= (1 if i == 0 else 10) * RTOL[dtype], (i, _rel(g, r))


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_every_candidate_configuration_gives_the_reference(direction, dtype):
    """What a GPU's autotuning chooses between: every candidate, in one pass and in chunks,
    with a width that leaves the last block of channels partly masked."""
    real = torch.float32 if dtype == torch.complex64 else torch.float64
    table = launcher.FORWARD_CONFIGS if direction == "forward" else launcher.BACKWARD_CONFIGS
    a, b, x0, w = _inputs(dtype, 70, 7, True, channels=(2, 150))
    want = _run(linear_scan_ref, a, b, x0, w)
    for config in table[real]:
        forced = {direction: config}
        for chunks in (1, 2):
            with launcher.kernel_config(**forced):
                got = _run(
                    lambda *t, c=chunks: launcher.linear_scan_triton(*t, time_chunks=c),
                    a,
                    b,
                    x0,
                    w,
                )
            for i, (g, r) in enumerate(zip(got, want, strict=True)):
                assert _rel(g, r) <= 10 * RTOL[dtype], (config, chunks, i, _rel(g, r))


def test_time_chunks_rule(monkeypatch):
    """One chunk on CPU; on a GPU, chunks only while the channel blocks (of 256) give fewer
    than 4 programs per SM, each chunk at least 256 steps."""
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert plan.time_chunks(1024, 100_000, cpu) == 1
    props = SimpleNamespace(multi_processor_count=132)  # an H100
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: props)
    assert plan.time_chunks(32_768, 4096, gpu) == 5  # 128 programs; 528 wanted
    assert plan.time_chunks(32_768, 1024, gpu) == 4  # bounded by 256-step chunks
    assert plan.time_chunks(32_768, 300, gpu) == 1
    assert plan.time_chunks(262_144, 4096, gpu) == 1  # 1 024 programs fill it
    assert plan.time_chunks(256, 1 << 20, gpu) == 528


def test_bad_time_chunks_are_refused():
    a, b, _, _ = _inputs(torch.complex64, 4, 0, False)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="time_chunks must be a positive int"):
            launcher.linear_scan_triton(a, b, time_chunks=bad)


def test_tuning_is_skipped_off_a_gpu_and_forced_configurations_win():
    cfg = kernels.ScanKernelConfig(64, 4, 2, 2)
    device = torch.device("cpu")

    def run(config):
        raise AssertionError("nothing is timed off a GPU")

    first = launcher.FORWARD_CONFIGS[torch.float32][0]
    assert plan.tuned_config("forward", torch.float32, 10, False, device, run) == first
    with launcher.kernel_config(forward=cfg):
        assert plan.tuned_config("forward", torch.float32, 10, False, device, run) == cfg
        back = launcher.BACKWARD_CONFIGS[torch.float64][0]
        assert plan.tuned_config("backward", torch.float64, 10, True, device, run) == back


def test_tuning_leaves_out_a_configuration_that_fails_and_raises_when_all_do(monkeypatch):
    """On a GPU (faked: the timer and the capture query replaced) the fastest candidate that
    runs is kept, a failing one is named in one warning; if none runs, its error is raised."""
    gpu = torch.device("cuda", 0)
    candidates = launcher.FORWARD_CONFIGS[torch.float32]
    broken = candidates[1]
    times = dict(zip(candidates, (3.0, 0.5, 1.0, 2.0), strict=True))

    def milliseconds(run, config):
        if config == broken:
            raise RuntimeError("PassManager::run failed")
        return times[config]

    monkeypatch.setattr(plan, "_milliseconds", milliseconds)
    monkeypatch.setattr(plan, "_tuned", {})
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    with pytest.warns(RuntimeWarning, match=r"1 of 4 forward configurations failed.*PassManager"):
        chosen = plan.tuned_config("forward", torch.float32, 5000, False, gpu, None)
    assert chosen == candidates[2]
    assert plan.tuned_config("forward", torch.float32, 6000, False, gpu, None) == chosen

    def nothing_runs(run, config):
        raise RuntimeError(f"no kernel for {config.block}")

    monkeypatch.setattr(plan, "_milliseconds", nothing_runs)
    with pytest.raises(RuntimeError, match=f"no kernel for {candidates[0].block}"):
        plan.tuned_config("forward", torch.float32, 5000, True, gpu, None)


def test_realistic_width_and_length_match_the_loop():
    """32 768 channels (B 1, P 128, 16 x 16) over 512 steps, values and gradients against the
    loop path, in three chunks of time, so every launch runs: the chunks' ends, the carry
    scan (the one-pass kernel) and the final pass. One chunk as well would cost the suite
    14 s and run no code the chunked launches do not. Run with a wide test-only
    configuration (4 096 channels, 64-step tiles: the interpreter's cost is per program and
    tile, and the same kernel code runs whatever the sizes); the GPU candidates are checked
    on smaller inputs above."""
    g = torch.Generator().manual_seed(11)
    length, m = 512, 32_768
    b = torch.randn(length, m, dtype=torch.complex64, generator=g)
    a = _decay((m,), torch.complex64, g)
    x0 = torch.randn(m, dtype=torch.complex64, generator=g)
    w = torch.randn(length, m, dtype=torch.complex64, generator=g)
    wide = kernels.ScanKernelConfig(4096, 64, 1, 4)
    with launcher.kernel_config(wide, wide):
        got = _run(lambda *t: launcher.linear_scan_triton(*t, time_chunks=3), a, b, x0, w)
    with scan_path("loop"):
        want = _run(lambda *t: linear_scan(*t, check_values=False), a, b, x0, w)
    for i, (x, y) in enumerate(zip(got, want, strict=True)):
        assert _rel(x, y) <= 10 * RTOL[torch.complex64], (i, _rel(x, y))
