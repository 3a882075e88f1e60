"""The ConvS5 step in real arithmetic (``step_real``, and ``step`` which runs it behind the
complex state of its contract) equals the complex reference step (``step_ref``): over
several frames, odd frame sizes, non-zero initial states, float32 and float64, both
discretisations, in value and in gradient; and the real loop of a whole stack equals its
parallel mode."""

from __future__ import annotations

import pytest
import torch

from convssm.nn import ConvS5, ConvS5Block, ConvS5SSM

TOL = {torch.float64: 1e-12, torch.float32: 1e-6}
COMPLEX = {torch.float64: torch.complex128, torch.float32: torch.complex64}


def _frames(dtype, batch=2, length=6, dim=5, height=7, width=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, dim, height, width, generator=g, dtype=dtype)


def _state(dtype, batch, p, height, width, seed=1):
    g = torch.Generator().manual_seed(seed)
    re, im = torch.randn(2, batch, p, height, width, generator=g, dtype=dtype)
    return torch.complex(re, im)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
def test_ssm_step_and_step_real_equal_the_complex_reference(dtype, discretization):
    torch.manual_seed(0)
    layer = ConvS5SSM(5, 3, discretization=discretization).to(dtype).eval()
    u = _frames(dtype)
    x0 = _state(dtype, 2, 3, 7, 9)
    tol = TOL[dtype]
    with torch.no_grad():
        s_ref, s_pub, s_real = x0, x0, layer.to_real_state(x0)
        kernels = layer.real_step_kernels()
        for t in range(u.shape[1]):
            y_ref, s_ref = layer.step_ref(u[:, t], s_ref)
            y_pub, s_pub = layer.step(u[:, t], s_pub)
            y_real, s_real = layer.step_real(u[:, t], s_real, kernels)
            torch.testing.assert_close(y_pub, y_ref, rtol=tol, atol=tol)
            torch.testing.assert_close(y_real, y_ref, rtol=tol, atol=tol)
            assert s_pub.dtype == COMPLEX[dtype] and s_pub.shape == s_ref.shape
            torch.testing.assert_close(s_pub, s_ref, rtol=tol, atol=tol)
            torch.testing.assert_close(layer.from_real_state(s_real), s_ref, rtol=tol, atol=tol)
    assert s_real.shape == (2, 6, 7, 9) and s_real.dtype == dtype


def test_real_state_layout_is_real_then_imaginary_halves():
    layer = ConvS5SSM(2, 3)
    x = _state(torch.float32, 1, 3, 2, 3)
    r = layer.to_real_state(x)
    torch.testing.assert_close(r[:, :3], x.real)
    torch.testing.assert_close(r[:, 3:], x.imag)
    torch.testing.assert_close(layer.from_real_state(r), x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_step_gradients_equal_the_complex_reference(dtype):
    """In training mode (kernels recomputed, not cached), through several frames, with
    respect to the input, the initial complex state and every parameter."""
    torch.manual_seed(2)
    layer = ConvS5SSM(4, 3, kernel_size_b=3, kernel_size_c=1).to(dtype)
    u = _frames(dtype, batch=1, length=4, dim=4, height=5, width=3).requires_grad_()
    x0 = _state(dtype, 1, 3, 5, 3).requires_grad_()
    inputs = [u, x0, *layer.parameters()]

    def loss(step):
        s, total = x0, 0
        for t in range(u.shape[1]):
            y, s = step(u[:, t], s)
            total = total + (y**2).sum()
        return total + (s.abs() ** 2).sum()

    grads = torch.autograd.grad(loss(layer.step), inputs)
    grads_ref = torch.autograd.grad(loss(layer.step_ref), inputs)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, rtol=tol, atol=tol)


def test_step_under_autocast_equals_the_reference():
    torch.manual_seed(3)
    layer = ConvS5SSM(8, 4).eval()
    u = _frames(torch.float32, dim=8, length=3)
    x0 = _state(torch.float32, 2, 4, 7, 9)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        s, s_ref = x0, x0
        for t in range(u.shape[1]):
            y, s = layer.step(u[:, t], s)
            y_ref, s_ref = layer.step_ref(u[:, t], s_ref)
            assert y.dtype == y_ref.dtype and s.dtype == s_ref.dtype == torch.complex64
            torch.testing.assert_close(y, y_ref)
            torch.testing.assert_close(s, s_ref)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_block_step_equals_its_reference(dtype):
    torch.manual_seed(4)
    block = ConvS5Block(8, 3, norm_groups=4).to(dtype).eval()
    x = _frames(dtype, dim=8, length=4)
    x0 = _state(dtype, 2, 3, 7, 9)
    tol = TOL[dtype] * 10  # after the output block's norms
    with torch.no_grad():
        s, s_ref = x0, x0
        for t in range(x.shape[1]):
            y, s = block.step(x[:, t], s)
            y_ref, s_ref = block.step_ref(x[:, t], s_ref)
            torch.testing.assert_close(y, y_ref, rtol=tol, atol=tol)
            torch.testing.assert_close(s, s_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_stack_real_loop_equals_parallel_mode_and_step(dtype):
    """A prefix in parallel mode, then step_real on converted states: the parallel mode's
    outputs and final states, and those of the public (complex-state) step."""
    torch.manual_seed(5)
    model = ConvS5(8, 3, depth=2, norm_groups=4).to(dtype).eval()
    x = _frames(dtype, dim=8, length=9, height=5, width=7)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    with torch.no_grad():
        y_all, states_all = model(x)
        y_pre, states = model(x[:, :4])
        real, kernels = model.to_real_states(states), model.real_step_kernels()
        ys, ys_pub = [y_pre], [y_pre]
        for t in range(4, 9):
            yt, real = model.step_real(x[:, t], real, kernels)
            yp, states = model.step(x[:, t], states)
            ys.append(yt[:, None])
            ys_pub.append(yp[:, None])
    torch.testing.assert_close(torch.cat(ys, 1), y_all, rtol=tol, atol=tol)
    torch.testing.assert_close(torch.cat(ys_pub, 1), y_all, rtol=tol, atol=tol)
    for s, s_pub, s_all in zip(model.from_real_states(real), states, states_all, strict=True):
        torch.testing.assert_close(s, s_all, rtol=tol, atol=tol)
        torch.testing.assert_close(s_pub, s_all, rtol=tol, atol=tol)


def test_real_step_kernels_follow_parameter_changes():
    layer = ConvS5SSM(3, 2).eval()
    u = _frames(torch.float32, batch=1, length=1, dim=3, height=4, width=4)[:, 0]
    s = layer.to_real_state(_state(torch.float32, 1, 2, 4, 4))
    with torch.no_grad():
        k1 = layer.real_step_kernels()
        assert all(a is b for a, b in zip(k1, layer.real_step_kernels(), strict=True))
        y1, _ = layer.step_real(u, s)
        layer.lambda_im.mul_(2.0)
        k2 = layer.real_step_kernels()
        assert not torch.equal(k1[1], k2[1])  # the rotation part of Λ̄ changed
        y2, _ = layer.step_real(u, s)
        y_ref, _ = layer.step_ref(u, layer.from_real_state(s))
    assert not torch.allclose(y1, y2)
    torch.testing.assert_close(y2, y_ref)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("batch", "height", "width"), [(1, 16, 16), (1, 13, 11), (2, 9, 12)])
def test_block_step_real_at_width_64_equals_the_reference(dtype, batch, height, width):
    """At the width where the step's convolutions leave PyTorch's own path (batch 1, two
    threads, float32: oneDNN, ``convssm.ops.step_conv2d``), over frames from a non-zero
    state: the same as the complex reference step, whose convolutions are plain F.conv2d."""
    torch.manual_seed(6)
    block = ConvS5Block(64, 32).to(dtype).eval()
    x = _frames(dtype, batch=batch, length=3, dim=64, height=height, width=width)
    x0 = _state(dtype, batch, 32, height, width)
    tol = TOL[dtype] * 10  # after the output block's norms
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            s, s_ref = block.ssm.to_real_state(x0), x0
            kernels = block.ssm.real_step_kernels()
            for t in range(x.shape[1]):
                y, s = block.step_real(x[:, t], s, kernels)
                y_ref, s_ref = block.step_ref(x[:, t], s_ref)
                torch.testing.assert_close(y, y_ref, rtol=tol, atol=tol)
                torch.testing.assert_close(block.ssm.from_real_state(s), s_ref, rtol=tol, atol=tol)
            with torch.profiler.profile() as prof:
                block.step_real(x[:, 0], s, kernels)
    finally:
        torch.set_num_threads(before)
    names = {e.name for e in prof.events()}
    onednn = dtype == torch.float32 and torch.backends.mkldnn.is_available()  # batch 2: PyTorch's
    assert ("aten::mkldnn_convolution" in names) == onednn
    assert ("aten::_slow_conv2d_forward" in names) == (not onednn)
