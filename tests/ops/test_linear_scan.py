"""linear_scan (its loop path, a custom op with autograd) pinned to linear_scan_ref and to
gradcheck; value checks on and off; the path switch."""

from __future__ import annotations

import importlib
import math
import multiprocessing
import os

import pytest
import torch

from convssm import value_checks
from convssm.ops import (
    get_scan_path,
    linear_scan,
    linear_scan_ref,
    scan_path,
    set_scan_path,
    triton_available,
)

# The loop path's module (the CPU blocks on worker threads live there).
linear_scan_module = importlib.import_module("convssm.ops.scan_loop")

C64_RTOL = 1e-5  # complex64 tolerance, relative to the largest |x|, stated once


def _rand_c(*shape, dtype=torch.complex128, gen=None):
    return torch.randn(*shape, dtype=dtype, generator=gen)


def _decay(shape, modulus, dtype=torch.complex128, gen=None):
    """Complex a with |a| = modulus (a scalar or tensor) and random phase in [-pi, pi)."""
    phase = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
    return torch.polar(torch.as_tensor(modulus, dtype=torch.float64).expand(shape), phase).to(dtype)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _close(x, y, rtol):
    scale = y.abs().max().clamp_min(1e-30)
    err = (x - y).abs().max() / scale
    assert err <= rtol, f"relative error {err:.3g} > {rtol:.3g}"


@pytest.mark.parametrize("length", [1, 2, 7, 300])
@pytest.mark.parametrize("with_x0", [False, True])
def test_forward_and_grads_match_reference(length, with_x0):
    g = _gen(length)
    b = _rand_c(length, 3, 5, gen=g)
    a = _decay((5,), torch.rand(5, generator=g, dtype=torch.float64) * 0.5 + 0.45, gen=g)
    x0 = _rand_c(3, 5, gen=g) if with_x0 else None
    leaves = [a, b] + ([x0] if with_x0 else [])
    for t in leaves:
        t.requires_grad_(True)
    x = linear_scan(a, b, x0)
    xr = linear_scan_ref(a, b, x0)
    assert x.shape == b.shape and x.dtype == b.dtype
    _close(x, xr, 1e-12)
    w = _rand_c(*b.shape, gen=g)  # a generic real loss: Re <w, x>
    grads = torch.autograd.grad((w.conj() * x).real.sum(), leaves)
    grads_ref = torch.autograd.grad((w.conj() * xr).real.sum(), leaves)
    for got, want in zip(grads, grads_ref, strict=True):
        assert got.shape == want.shape
        _close(got, want, 1e-12)


@pytest.mark.parametrize("with_x0", [False, True])
@pytest.mark.parametrize("a_shape", [(3,), (2, 3), (1, 3), ()])
def test_gradcheck_complex128(a_shape, with_x0):
    g = _gen(1)
    b = _rand_c(4, 2, 3, gen=g).requires_grad_(True)
    a = _decay(a_shape, 0.8, gen=g).requires_grad_(True)
    inputs = (a, b, _rand_c(2, 3, gen=g).requires_grad_(True) if with_x0 else None)
    assert torch.autograd.gradcheck(linear_scan, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


def test_gradcheck_broadcast_x0_and_subsets_of_requires_grad():
    g = _gen(2)
    a = _decay((1, 3), 0.9, gen=g)
    b = _rand_c(5, 2, 3, gen=g)
    x0 = _rand_c(3, gen=g)  # broadcast over the first state dimension
    for mask in [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (0, 1, 1)]:
        ins = [
            t.detach().clone().requires_grad_(bool(m))
            for t, m in zip((a, b, x0), mask, strict=True)
        ]
        assert torch.autograd.gradcheck(linear_scan, tuple(ins), eps=1e-6, atol=1e-8)
        x = linear_scan(*ins)
        grads = torch.autograd.grad(x.abs().square().sum(), [t for t in ins if t.requires_grad])
        ref_ins = [t.detach().clone().requires_grad_(t.requires_grad) for t in ins]
        xr = linear_scan_ref(*ref_ins)
        ref = torch.autograd.grad(xr.abs().square().sum(), [t for t in ref_ins if t.requires_grad])
        for got, want in zip(grads, ref, strict=True):
            assert got.shape == want.shape
            _close(got, want, 1e-12)


def test_modulus_close_to_one_complex64_against_complex128():
    g = _gen(3)
    length, p = 300, 16
    a128 = _decay((p,), 1 - 1e-4, gen=g)
    b128 = _rand_c(length, 4, p, gen=g)
    x0_128 = _rand_c(4, p, gen=g)
    ref = linear_scan_ref(a128, b128, x0_128)
    a, b, x0 = (t.to(torch.complex64).requires_grad_(True) for t in (a128, b128, x0_128))
    x = linear_scan(a, b, x0)
    _close(x.detach().to(torch.complex128), ref, C64_RTOL)
    # Gradients in complex64 against the complex128 loop, same loss.
    w = _rand_c(length, 4, p, gen=g)
    leaves128 = [t.detach().clone().requires_grad_(True) for t in (a128, b128, x0_128)]
    ref_grads = torch.autograd.grad((w.conj() * linear_scan_ref(*leaves128)).real.sum(), leaves128)
    grads = torch.autograd.grad((w.to(torch.complex64).conj() * x).real.sum(), [a, b, x0])
    for got, want in zip(grads, ref_grads, strict=True):
        _close(got.to(torch.complex128), want, 2e-5)  # grad_a sums 300*4 terms


def test_long_scan_complex64_does_not_accumulate_error():
    """L = 300, |a| < 1: complex64 stays within ~1e-5 relative of complex128 at every step."""
    g = _gen(4)
    length, n, p = 300, 8, 32
    modulus = torch.rand(p, generator=g, dtype=torch.float64) * 0.999
    a128 = _decay((p,), modulus, gen=g)
    b128 = _rand_c(length, n, p, gen=g)
    ref = linear_scan_ref(a128, b128)
    x = linear_scan(a128.to(torch.complex64), b128.to(torch.complex64)).to(torch.complex128)
    err_per_step = (x - ref).abs().amax(dim=(1, 2)) / ref.abs().amax()
    assert err_per_step.max() <= C64_RTOL
    # No drift: the error over the last 50 steps is not much larger than over the first 50.
    assert err_per_step[-50:].max() <= 4 * err_per_step[:50].max() + 1e-7


def test_no_grad_noncontiguous_and_complex64():
    g = _gen(5)
    base = _rand_c(6, 7, 10, gen=g).to(torch.complex64)
    b = base.transpose(1, 2)[:, ::2]  # (6, 5, 7), non-contiguous
    a = _decay((10,), 0.9, dtype=torch.complex64, gen=g)[::2, None]  # (5, 1), strided
    x0 = _rand_c(7, 5, gen=g).to(torch.complex64).t()  # (5, 7), non-contiguous
    assert not b.is_contiguous() and not x0.is_contiguous()
    with torch.no_grad():
        x = linear_scan(a, b, x0)
    assert not x.requires_grad and x.is_contiguous()
    _close(x, linear_scan_ref(a, b, x0), C64_RTOL)
    # non-contiguous gradient flowing back (expanded, zero-stride upstream grad)
    b2 = b.detach().clone().requires_grad_(True)
    linear_scan(a, b2, x0).sum().real.backward()
    b3 = b.detach().clone().requires_grad_(True)
    linear_scan_ref(a, b3, x0).sum().real.backward()
    _close(b2.grad, b3.grad, C64_RTOL)


def test_state_layout_of_convs5():
    """b (L, B, P, H, W) with a (P, 1, 1), as ConvS5SSM uses it; last state is x[-1]."""
    g = _gen(6)
    b = _rand_c(5, 2, 4, 3, 3, gen=g)
    a = _decay((4, 1, 1), 0.7, gen=g)
    x0 = _rand_c(2, 4, 3, 3, gen=g)
    x = linear_scan(a, b, x0)
    manual = a * (a * (a * (a * (a * x0 + b[0]) + b[1]) + b[2]) + b[3]) + b[4]
    _close(x[-1], manual, 1e-13)
    # Splitting the sequence and carrying the state gives the same result.
    x_split = torch.cat([linear_scan(a, b[:2], x0), linear_scan(a, b[2:], x[1])])
    _close(x_split, x, 1e-13)


def test_backward_saves_only_the_output():
    b = _rand_c(4, 3).requires_grad_(True)
    a = _decay((3,), 0.5).requires_grad_(True)
    x = linear_scan(a, b)
    saved = [t for t in x.grad_fn.saved_tensors if t is not None]
    assert max(t.numel() for t in saved) == b.numel()  # one (L, ...) tensor: x itself
    assert sum(t.numel() == b.numel() for t in saved) == 1


def test_double_backward_is_refused():
    b = _rand_c(3, 2).requires_grad_(True)
    a = _decay((2,), 0.5).requires_grad_(True)
    x = linear_scan(a, b)
    (ga,) = torch.autograd.grad(x.abs().sum(), a, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(ga.abs().sum(), b)


# --- bad input ------------------------------------------------------------------------------


def _ok():
    return _decay((3,), 0.5), _rand_c(4, 2, 3)


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda a, b: (a.real, b, None), TypeError, "a must be complex"),
        (lambda a, b: (a, b.real, None), TypeError, "b must be complex"),
        (lambda a, b: (a, b, torch.zeros(2, 3)), TypeError, "x0 must be complex"),
        (lambda a, b: (a.to(torch.complex64), b, None), TypeError, "a has dtype"),
        (lambda a, b: (a, b, torch.zeros(3, dtype=torch.complex64)), TypeError, "x0 has dtype"),
        (lambda a, b: (a.tolist(), b, None), TypeError, "a must be a torch.Tensor"),
        (lambda a, b: (a, b.numpy(), None), TypeError, "b must be a torch.Tensor"),
        (lambda a, b: (a, b[:0], None), ValueError, "L = 0"),
        (lambda a, b: (a, b[0, 0, 0], None), ValueError, "leading time dimension"),
        (lambda a, b: (torch.ones(4, dtype=b.dtype), b, None), ValueError, "a of shape"),
        (lambda a, b: (a.expand(2, 2, 3), b, None), ValueError, "does not broadcast"),
        (lambda a, b: (a, b, torch.zeros(3, 3, dtype=b.dtype)), ValueError, "x0 of shape"),
        (lambda a, b: (a, b, torch.zeros(4, 2, 3, dtype=b.dtype)), ValueError, "x0 of shape"),
    ],
)
def test_bad_input_raises(make, exc, match):
    a, b, x0 = make(*_ok())
    with pytest.raises(exc, match=match):
        linear_scan(a, b, x0)
    if not isinstance(b, torch.Tensor) or b.dim() == 0 or isinstance(a, list):
        return
    with pytest.raises(exc, match=match):
        linear_scan_ref(a, b, x0)


@pytest.mark.parametrize("where", ["a", "b_first", "b_last", "b_imag", "x0"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_raises(where, bad):
    a, b = _ok()
    x0 = _rand_c(2, 3)
    if where == "a":
        a[1] = complex(bad, 0)
    elif where == "b_first":
        b[0, 1, 2] = complex(bad, 0)
    elif where == "b_last":
        b[-1, 0, 0] = complex(0.0, bad)
    elif where == "b_imag":
        b[2, 1, 1] = complex(1.0, -bad)
    else:
        x0[0, 0] = complex(bad, bad)
    name = where.split("_")[0]
    with pytest.raises(ValueError, match=f"{name} contains non-finite"):
        linear_scan(a, b, x0)


def test_non_finite_a_caught_when_unused():
    """L = 1 and no x0: a never touches the result, but a NaN in it is still an error."""
    a, b = _ok()
    a[0] = complex(float("nan"), 0)
    with pytest.raises(ValueError, match="a contains non-finite"):
        linear_scan(a, b[:1])


def test_overflow_is_reported_not_returned():
    b = torch.ones(300, 2, dtype=torch.complex64)
    a = torch.full((2,), 2.0 + 0j, dtype=torch.complex64)  # 2**300 overflows complex64
    with pytest.raises(ValueError, match="overflowed"):
        linear_scan(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("path", ["loop", "triton", "auto"])
def test_cuda_paths_match_cpu(path):
    if path == "triton" and not triton_available():
        pytest.skip("triton is not installed")
    g = _gen(7)
    a, b, x0 = _decay((4,), 0.9, gen=g), _rand_c(9, 3, 4, gen=g), _rand_c(3, 4, gen=g)
    ins = [t.cuda().requires_grad_(True) for t in (a, b, x0)]
    with scan_path(path):
        x = linear_scan(*ins)
        grads = torch.autograd.grad(x.abs().square().sum(), ins)
    _close(x.detach().cpu(), linear_scan_ref(a, b, x0), 1e-12)
    cpu = [t.clone().requires_grad_(True) for t in (a, b, x0)]
    ref = torch.autograd.grad(linear_scan(*cpu).abs().square().sum(), cpu)
    for got, want in zip(grads, ref, strict=True):
        _close(got.cpu(), want, 1e-12)


def test_value_checks_can_be_switched_off_and_then_read_no_values(monkeypatch):
    """check_values=False (or the global switch off) reads no tensor value: NaN passes."""
    a, b = _ok()
    b[1, 0, 0] = complex(float("nan"), 0)
    reads = []
    for attr in ("__bool__", "item", "__float__", "__int__"):
        orig = getattr(torch.Tensor, attr)

        def counted(self, *args, _orig=orig, **kwargs):
            reads.append(1)
            return _orig(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, attr, counted)
    x = linear_scan(a, b, check_values=False)
    assert not reads
    assert torch.isnan(x[1:, 0, 0].real).all()  # (this assert reads a value itself)
    reads.clear()
    with value_checks(False):
        linear_scan(a, b)
    assert not reads
    with pytest.raises(ValueError, match="b contains non-finite"):
        linear_scan(a, b)
    with value_checks(False), pytest.raises(ValueError, match="b contains non-finite"):
        linear_scan(a, b, check_values=True)


def test_scan_path_switch():
    a, b = _ok()
    assert get_scan_path() == "auto"
    with scan_path("loop"):
        assert get_scan_path() == "loop"
        _close(linear_scan(a, b), linear_scan_ref(a, b), 1e-12)
    assert get_scan_path() == "auto"
    with pytest.raises(ValueError, match="scan path must be one of"):
        set_scan_path("fused")


@pytest.mark.parametrize("block, threads", [(7, 2), (7, 1), (4, 3)])
def test_cpu_blocks_on_worker_threads_match_reference(monkeypatch, block, threads):
    """Small blocks force the multi-block path: uneven last block, 1..3 worker threads."""
    monkeypatch.setattr(linear_scan_module, "_BLOCK", block)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = _gen(8)
        a = _decay((5,), 0.95, gen=g).requires_grad_(True)
        b = _rand_c(11, 3, 2, 5, gen=g).requires_grad_(True)  # M = 30 channels
        x0 = _rand_c(2, 1, gen=g).requires_grad_(True)  # broadcast (2, 1) -> (3, 2, 5)
        x = linear_scan(a, b, x0)
        xr = linear_scan_ref(a, b, x0)
        _close(x, xr, 1e-12)
        w = _rand_c(*b.shape, gen=g)
        grads = torch.autograd.grad((w.conj() * x).real.sum(), [a, b, x0])
        ref = torch.autograd.grad((w.conj() * xr).real.sum(), [a, b, x0])
        for got, want in zip(grads, ref, strict=True):
            _close(got, want, 1e-12)
        small = (a, b[:3, 0].detach().requires_grad_(True), x0)  # M = 10: two blocks of 7
        assert torch.autograd.gradcheck(linear_scan, small, eps=1e-6, atol=1e-8)
    finally:
        torch.set_num_threads(old)


def test_per_step_path_of_other_devices_matches_reference():
    """The path CUDA takes (one loop over all channels, blocked=False), run here on CPU."""
    g = _gen(9)
    a = _decay((4, 1), 0.9, gen=g).requires_grad_(True)
    b = _rand_c(6, 4, 3, gen=g).requires_grad_(True)
    x0 = _rand_c(3, gen=g).requires_grad_(True)

    def per_step(a, b, x0):
        return linear_scan_module.scan_loop(a, b, x0, False)

    _close(per_step(a, b, x0), linear_scan_ref(a, b, x0), 1e-12)
    assert torch.autograd.gradcheck(per_step, (a, b, x0), eps=1e-6, atol=1e-8)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_blocks_work_in_a_forked_child(monkeypatch):
    """DataLoader-style fork after the worker pool exists: the child must not hang."""
    monkeypatch.setattr(linear_scan_module, "_BLOCK", 4)
    a, b = _decay((3,), 0.9), _rand_c(5, 4, 3)
    want = linear_scan_ref(a, b)
    _close(linear_scan(a, b), want, 1e-12)  # the parent's pool now exists
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_scan_in_child, (a, b)).get(timeout=60)
    _close(got, want, 1e-12)


def _scan_in_child(a, b):
    linear_scan_module._BLOCK = 4
    return linear_scan(a, b)
