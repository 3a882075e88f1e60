"""linear_scan_triton (fused Triton kernels) pinned to linear_scan_ref, run on CPU tensors in
Triton's interpreter (TRITON_INTERPRET=1, set per test so it does not leak into other tests:
the kernels are jitted on first use and cached per interpreter setting)."""

from __future__ import annotations

import importlib
import warnings

import pytest
import torch
from scan_inputs import decay as _decay
from scan_inputs import needs_triton

from convssm.ops import (
    get_scan_path,
    linear_scan,
    linear_scan_ref,
    linear_scan_triton,
    scan_path,
    set_scan_path,
)

pytestmark = needs_triton

RTOL = {torch.complex64: 2e-6, torch.complex128: 1e-13}

# The modules (their names are shadowed by functions in convssm.ops).
dispatch = importlib.import_module("convssm.ops.linear_scan")
kernels = importlib.import_module("convssm.ops.linear_scan_triton")


@pytest.fixture(autouse=True)
def _interpret(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _close(x, y, rtol):
    scale = y.abs().max().clamp_min(1e-30)
    err = (x - y).abs().max() / scale
    assert err <= rtol, f"relative error {err:.3g} > {rtol:.3g}"


def _values_and_grads(fn, a, b, x0, w):
    leaves = [
        t.detach().clone().requires_grad_(True) for t in (a, b) + ((x0,) if x0 is not None else ())
    ]
    x = fn(*leaves) if x0 is not None else fn(*leaves, None)
    grads = torch.autograd.grad((w.conj() * x).real.sum(), leaves)
    return x.detach(), grads


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("length", [1, 2, 7, 65])
@pytest.mark.parametrize("with_x0", [False, True])
def test_values_and_all_gradients_match_reference(dtype, length, with_x0):
    g = _gen(length + 100 * with_x0)
    b = torch.randn(length, 3, 5, dtype=dtype, generator=g)
    a = _decay((5,), dtype, g)  # broadcast over the first state dimension
    x0 = torch.randn(3, 5, dtype=dtype, generator=g) if with_x0 else None
    w = torch.randn(length, 3, 5, dtype=dtype, generator=g)
    x, grads = _values_and_grads(linear_scan_triton, a, b, x0, w)
    xr, grads_ref = _values_and_grads(linear_scan_ref, a, b, x0, w)
    assert x.shape == b.shape and x.dtype == dtype and x.is_contiguous()
    _close(x, xr, RTOL[dtype])
    for got, want in zip(grads, grads_ref, strict=True):
        assert got.shape == want.shape and got.dtype == dtype
        _close(got, want, 10 * RTOL[dtype])  # grad_a sums L * 3 products


def test_broadcast_a_and_x0_non_contiguous_b_and_partial_grads():
    """The ConvS5 layout (L, B, P, H, W) with a (P, 1, 1), strided b and x0, more channels
    than one program's block (two programs, the second one partly masked)."""
    g = _gen(7)
    dtype = torch.complex64
    base = torch.randn(9, 2, 5, 6, 30, dtype=dtype, generator=g)
    b = base.permute(0, 1, 4, 2, 3)[:, :, ::2]  # (9, 2, 15, 5, 6): 900 channels, strided
    assert not b.is_contiguous()
    a = _decay((15, 1, 1), dtype, g)
    x0 = torch.randn(5, 6, 2, 15, dtype=dtype, generator=g).permute(2, 3, 0, 1)
    w = torch.randn(b.shape, dtype=dtype, generator=g)
    x, grads = _values_and_grads(linear_scan_triton, a, b, x0, w)
    xr, grads_ref = _values_and_grads(linear_scan_ref, a, b, x0, w)
    _close(x, xr, RTOL[dtype])
    for got, want in zip(grads, grads_ref, strict=True):
        _close(got, want, 20 * RTOL[dtype])
    # Only some inputs need a gradient (the kernel skips grad_a when a does not need it).
    bb = b.detach().clone().requires_grad_(True)
    (gb,) = torch.autograd.grad((w.conj() * linear_scan_triton(a, bb, x0)).real.sum(), bb)
    _close(gb, grads_ref[1], 20 * RTOL[dtype])


def test_gradcheck_complex128():
    g = _gen(3)
    a = _decay((2, 1), torch.complex128, g).requires_grad_(True)
    b = torch.randn(4, 2, 3, dtype=torch.complex128, generator=g).requires_grad_(True)
    x0 = torch.randn(3, dtype=torch.complex128, generator=g).requires_grad_(True)
    assert torch.autograd.gradcheck(
        linear_scan_triton, (a, b, x0), eps=1e-6, atol=1e-8, fast_mode=True
    )


def test_double_backward_is_refused():
    a = _decay((2,), torch.complex128, _gen(4)).requires_grad_(True)
    b = torch.randn(3, 2, dtype=torch.complex128).requires_grad_(True)
    (ga,) = torch.autograd.grad(linear_scan_triton(a, b).abs().sum(), a, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(ga.abs().sum(), b)


def test_bad_input_is_refused_with_the_shared_messages():
    a, b = torch.ones(3, dtype=torch.complex64), torch.ones(4, 2, 3, dtype=torch.complex64)
    with pytest.raises(TypeError, match="b must be complex"):
        linear_scan_triton(a, b.real)
    with pytest.raises(ValueError, match="does not broadcast"):
        linear_scan_triton(torch.ones(4, dtype=torch.complex64), b)


def test_forced_path_dispatch_and_custom_op_registration():
    """set_scan_path('triton') sends linear_scan to the kernels; opcheck tests the custom
    op's fake (meta) function and autograd registration; torch.compile(fullgraph=True)
    traces through the op (aot_eager: dynamo and AOT autograd on fake tensors, which is what
    register_fake serves)."""
    g = _gen(5)
    a = _decay((4,), torch.complex64, g)
    b = torch.randn(6, 2, 4, dtype=torch.complex64, generator=g)
    x0 = torch.randn(2, 4, dtype=torch.complex64, generator=g)
    assert get_scan_path() == "auto"
    with scan_path("triton"):
        x = linear_scan(a, b, x0)
        compiled = torch.compile(linear_scan, fullgraph=True, backend="aot_eager")
        bb = b.clone().requires_grad_(True)
        xc = compiled(a, bb, x0)
        xc.abs().sum().backward()
    assert get_scan_path() == "auto"
    _close(x, linear_scan_ref(a, b, x0), RTOL[torch.complex64])
    _close(xc.detach(), x, RTOL[torch.complex64])
    bref = b.clone().requires_grad_(True)
    linear_scan_ref(a, bref, x0).abs().sum().backward()
    _close(bb.grad, bref.grad, 10 * RTOL[torch.complex64])
    pairs = torch.view_as_real
    args = (pairs(a).contiguous(), pairs(b.view(6, 8)).contiguous(), pairs(x0.view(8)))
    args = (args[0].expand(2, 4, 2).reshape(8, 2).contiguous(), args[1], args[2])
    for x0_arg in (args[2], None):
        for chunks in (0, 2):  # the chunk count, an int argument of the op (0: chosen)
            leaf = [t.clone().requires_grad_(True) for t in args[:2]]
            torch.library.opcheck(torch.ops.convssm.scan_triton, (*leaf, x0_arg, chunks))
    with pytest.raises(ValueError, match="scan path must be one of"):
        set_scan_path("fast")


def test_backward_op_registration():
    """opcheck on the backward custom op: schema, fake (meta) function, dispatch under AOT
    autograd; with and without x0 and grad_a. (It has no autograd formula: double backward
    is refused, see test_double_backward_is_refused.)"""
    g = _gen(6)
    a = torch.view_as_real(_decay((8,), torch.complex64, g))
    x, grad = (torch.randn(5, 8, 2, generator=g) for _ in range(2))
    x0 = torch.randn(8, 2, generator=g)
    for x0_arg in (x0, None):
        for need_a in (True, False):
            for chunks in (0, 2):
                torch.library.opcheck(
                    torch.ops.convssm.scan_triton_backward, (a, x, x0_arg, grad, need_a, chunks)
                )


# --------------------------------------------------------------- "auto": the first-use check


@pytest.fixture
def auto_on_cpu(monkeypatch):
    """'auto' counts CPU tensors as a Triton device (the kernels run interpreted), with no
    verdict cached yet."""
    monkeypatch.setattr(dispatch, "_triton_device", lambda device: True)
    monkeypatch.setattr(dispatch, "_proven", {})
    assert get_scan_path() == "auto"


def _small(seed=9):
    g = _gen(seed)
    a = _decay((4,), torch.complex64, g)
    return (
        a,
        torch.randn(6, 3, 4, dtype=torch.complex64, generator=g),
        torch.randn(3, 4, dtype=torch.complex64, generator=g),
    )


def test_auto_checks_triton_once_per_device_then_uses_it(auto_on_cpu, monkeypatch):
    calls = []
    real = dispatch.linear_scan_triton
    monkeypatch.setattr(
        dispatch, "linear_scan_triton", lambda *a, **k: calls.append(k) or real(*a, **k)
    )
    a, b, x0 = _small()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a passing check says nothing
        x = linear_scan(a, b, x0)
        # the check (one pass, then two chunks of time), then the scan itself
        assert calls == [{}, {"time_chunks": 2}, {}]
        linear_scan(a, b)
    assert len(calls) == 4  # no second check
    assert dispatch._proven == {torch.device("cpu"): True}
    _close(x, linear_scan_ref(a, b, x0), RTOL[torch.complex64])


@pytest.mark.parametrize("failure", ["no C compiler", "wrong values", "NaN gradients"])
def test_auto_falls_back_to_the_loop_with_one_warning(auto_on_cpu, monkeypatch, failure):
    """The failures a first run on a new machine meets, injected: Triton's launcher cannot
    be built (raised from inside the custom op), or the kernels compute something else."""
    real = dispatch.linear_scan_triton
    if failure == "no C compiler":

        def broken_kernels():
            raise RuntimeError("Failed to find C compiler. Please specify via CC environment")

        monkeypatch.setattr(kernels, "scan_kernels", broken_kernels)
        why = "raised RuntimeError: Failed to find C compiler"
    elif failure == "wrong values":
        monkeypatch.setattr(dispatch, "linear_scan_triton", lambda *a, **k: real(*a, **k) * 1.001)
        why = "x differs from the loop path's by 0.001"
    else:

        class NanGrad(torch.autograd.Function):
            forward = staticmethod(lambda ctx, x: x.clone())
            backward = staticmethod(lambda ctx, g: g * float("nan"))

        monkeypatch.setattr(
            dispatch, "linear_scan_triton", lambda *a, **k: NanGrad.apply(real(*a, **k))
        )
        why = "grad a differs from the loop path's by nan"
    a, b, x0 = _small()
    with pytest.warns(RuntimeWarning, match=f"first-use check on cpu .*{why}") as record:
        x = linear_scan(a, b, x0)
    assert len(record) == 1
    _close(x, linear_scan_ref(a, b, x0), RTOL[torch.complex64])  # the loop's answer
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the verdict is cached: no second check or warning
        _close(linear_scan(a, b), linear_scan_ref(a, b), RTOL[torch.complex64])
    assert dispatch._proven == {torch.device("cpu"): False}
    if failure == "no C compiler":
        with scan_path("triton"), pytest.raises(RuntimeError, match="C compiler"):
            linear_scan(a, b, x0)  # forcing Triton shows its error


@pytest.mark.parametrize("verdict", [True, False])
def test_auto_under_torch_compile_follows_the_eager_verdict(auto_on_cpu, verdict):
    """torch.compile(fullgraph=True) traces linear_scan without running the check (fake
    tensors), taking the path the eager check chose."""
    dispatch._proven[torch.device("cpu")] = verdict
    graphs = []

    def record(gm, example_inputs):
        graphs.append(str(gm.graph))
        return gm

    a, b, x0 = _small()
    x = torch.compile(linear_scan, fullgraph=True, backend=record)(a, b, x0, check_values=False)
    _close(x, linear_scan_ref(a, b, x0), RTOL[torch.complex64])
    (graph,) = graphs
    assert ("scan_triton" in graph) == verdict and ("scan_loop" in graph) != verdict, graph
