"""ConvS5SSM: the parallel mode equals the recurrence written from discretize(), step mode
agrees with it, initialisation follows docs/design.md#initialisation, and bad input is named."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convssm.nn import ConvS5, ConvS5SSM
from convssm.nn.hippo import hippo_legs_normal


def _loop_from_discretize(layer: ConvS5SSM, u: torch.Tensor, x0=None):
    """The layer's definition, written out: complex convs, one frame at a time."""
    lam_bar, b_bar, c_tilde = layer.discretize()
    b, t, _, h, w = u.shape
    x = torch.zeros(b, layer.state_dim, h, w, dtype=lam_bar.dtype) if x0 is None else x0
    ys = []
    for k in range(t):
        uk = u[:, k].to(lam_bar.dtype)
        x = lam_bar[:, None, None] * x + F.conv2d(uk, b_bar, padding="same")
        ys.append(2 * F.conv2d(x, c_tilde, padding="same").real)
    return torch.stack(ys, 1), x


@pytest.fixture
def layer64():
    torch.manual_seed(0)
    return ConvS5SSM(6, 5, kernel_size=3).double()


@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
@pytest.mark.parametrize("length", [1, 2, 7])
def test_forward_equals_loop_from_discretize_float64(discretization, length):
    torch.manual_seed(1)
    layer = ConvS5SSM(4, 3, kernel_size=3, discretization=discretization).double()
    u = torch.randn(2, length, 4, 5, 7, dtype=torch.float64)
    x0 = torch.randn(2, 3, 5, 7, dtype=torch.complex128)
    y, xl = layer(u, x0)
    y_ref, xl_ref = _loop_from_discretize(layer, u, x0)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(xl, xl_ref, rtol=1e-12, atol=1e-12)


def test_gradients_match_loop_float64(layer64):
    u = torch.randn(1, 5, 6, 4, 4, dtype=torch.float64, requires_grad=True)
    x0 = torch.randn(1, 5, 4, 4, dtype=torch.complex128, requires_grad=True)
    y, xl = layer64(u, x0)
    loss = (y**2).sum() + (xl.abs() ** 2).sum()
    grads = torch.autograd.grad(loss, [u, x0, *layer64.parameters()])
    y_r, xl_r = _loop_from_discretize(layer64, u, x0)
    loss_r = (y_r**2).sum() + (xl_r.abs() ** 2).sum()
    grads_r = torch.autograd.grad(loss_r, [u, x0, *layer64.parameters()])
    for g, gr in zip(grads, grads_r, strict=True):
        torch.testing.assert_close(g, gr, rtol=1e-10, atol=1e-10)


def test_gradcheck_tiny():
    torch.manual_seed(2)
    layer = ConvS5SSM(2, 2, kernel_size=3).double()
    u = torch.randn(1, 3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    x0 = torch.randn(1, 2, 3, 3, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: layer(a, b)[0], (u, x0))


def test_parallel_equals_step_by_step_64_frames():
    torch.manual_seed(3)
    layer = ConvS5SSM(8, 8, clip_eigs=True)
    u = torch.randn(2, 64, 8, 6, 6)
    y, xl = layer(u)
    state, ys = None, []
    with torch.no_grad():
        for k in range(64):
            yk, state = layer.step(u[:, k], state)
            ys.append(yk)
    torch.testing.assert_close(torch.stack(ys, 1), y.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state, xl.detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [1, 17, 40])
def test_parallel_prefix_then_steps_equals_parallel_whole(k):
    torch.manual_seed(4)
    layer = ConvS5SSM(8, 8)
    u = torch.randn(2, 48, 8, 5, 6)
    x0 = torch.randn(2, 8, 5, 6, dtype=torch.complex64)
    with torch.no_grad():
        y_all, x_all = layer(u, x0)
        y_pre, state = layer(u[:, :k], x0)
        ys = [y_pre]
        for t in range(k, 48):
            yt, state = layer.step(u[:, t], state)
            ys.append(yt[:, None])
    torch.testing.assert_close(torch.cat(ys, 1), y_all, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state, x_all, rtol=1e-5, atol=1e-5)


def test_any_spatial_size():
    layer = ConvS5SSM(4, 4)
    for h, w in [(1, 1), (16, 16), (33, 20)]:
        y, x = layer(torch.randn(1, 3, 4, h, w))
        assert y.shape == (1, 3, 4, h, w) and x.shape == (1, 4, h, w)


@pytest.mark.parametrize("blocks", [1, 2, 4])
def test_init_lambda_is_half_hippo_spectrum(blocks):
    p = 8
    layer = ConvS5SSM(4, p, blocks=blocks)
    lam = torch.complex(layer.lambda_re, layer.lambda_im).detach().numpy().astype(np.complex128)
    torch.testing.assert_close(layer.lambda_re.detach(), torch.full((p,), -0.5))
    full = np.linalg.eigvals(hippo_legs_normal(2 * p // blocks))
    block = lam[: p // blocks]
    # One of each conjugate pair: the kept ones and their conjugates are the whole spectrum.
    both = np.concatenate([block, block.conj()])
    np.testing.assert_allclose(np.sort(both.imag), np.sort(full.imag), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(full.real, -0.5, atol=1e-9)
    assert np.all(block.imag < 0)
    np.testing.assert_array_equal(lam, np.tile(block, blocks))


@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
def test_discretization_formulas(discretization):
    torch.manual_seed(5)
    layer = ConvS5SSM(3, 4, discretization=discretization).double()
    lam_bar, b_bar, c_tilde = layer.discretize()
    lam = torch.complex(layer.lambda_re, layer.lambda_im)
    dt = torch.exp(layer.log_step)
    b_tilde = torch.complex(layer.b_re, layer.b_im)
    if discretization == "zoh":
        want_lam = torch.exp(lam * dt)
        want_b = ((want_lam - 1) / lam)[:, None, None, None] * b_tilde
    else:
        want_lam = (1 + lam * dt / 2) / (1 - lam * dt / 2)
        want_b = (dt / (1 - lam * dt / 2))[:, None, None, None] * b_tilde
    torch.testing.assert_close(lam_bar, want_lam)
    torch.testing.assert_close(b_bar, want_b)
    assert bool((lam_bar.abs() < 1).all())
    assert lam_bar.shape == (4,) and b_bar.shape == (4, 3, 3, 3) and c_tilde.shape == (3, 4, 3, 3)


def test_timescale_init_range():
    layer = ConvS5SSM(2, 128, generator=torch.Generator().manual_seed(0))
    dt = torch.exp(layer.log_step.detach())
    assert dt.min() >= 0.001 * (1 - 1e-6) and dt.max() <= 0.1 * (1 + 1e-6)
    assert dt.min() < 0.002 and dt.max() > 0.05  # spread over the range


def test_he_normal_scale_of_projections():
    torch.manual_seed(6)
    dim, p, k = 32, 64, 3
    layer = ConvS5SSM(dim, p, kernel_size=k)
    # |B̃|² summed over state rows equals ||V Vᴴ b||² ≤ ||b||², about half of E||b||² = 2P·2/fan_in.
    b_power = (layer.b_re**2 + layer.b_im**2).sum(0).mean().item()
    assert 0.3 * (2 * p * 2 / (dim * k * k)) < b_power < 0.7 * (2 * p * 2 / (dim * k * k))


def test_clip_eigs_keeps_decay():
    layer = ConvS5SSM(2, 4, clip_eigs=True)
    with torch.no_grad():
        layer.lambda_re.fill_(0.3)
    lam_bar, _, _ = layer.discretize()
    assert bool((lam_bar.abs() < 1).all())
    assert torch.allclose(layer.continuous_lambda().real, torch.full((4,), -1e-4))


def test_s5_is_kernel_one_on_one_pixel():
    """k_B = k_C = 1 on a 1x1 grid: the vector S5 recurrence with matrices B̄, C̃."""
    torch.manual_seed(7)
    u_dim, p, t = 5, 6, 20
    layer = ConvS5SSM(u_dim, p, kernel_size=1).double()
    u = torch.randn(3, t, u_dim, 1, 1, dtype=torch.float64)
    y, _ = layer(u)
    lam_bar, b_bar, c_tilde = layer.discretize()
    bmat, cmat = b_bar[:, :, 0, 0], c_tilde[:, :, 0, 0]  # (P, U), (U, P)
    x = torch.zeros(3, p, dtype=torch.complex128)
    for k in range(t):
        x = lam_bar * x + u[:, k, :, 0, 0].to(torch.complex128) @ bmat.T
        torch.testing.assert_close(y[:, k, :, 0, 0], 2 * (x @ cmat.T).real)


def test_bad_input_is_named():
    layer = ConvS5SSM(4, 3)
    with pytest.raises(ValueError, match="5 dimensions"):
        layer(torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="4 channels"):
        layer(torch.randn(2, 3, 5, 5, 5))
    with pytest.raises(TypeError, match="dtype"):
        layer(torch.randn(2, 3, 4, 5, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating"):
        layer(torch.ones(2, 3, 4, 5, 5, dtype=torch.int64))
    # A single layer reads no values (no host sync per layer): the stacks check NaN/inf.
    nan = torch.full((1, 2, 4, 3, 3), math.nan)
    assert torch.isnan(layer(nan)[0]).all()
    with pytest.raises(ValueError, match="x contains non-finite"):
        ConvS5(4, 3, depth=1, norm_groups=1)(nan)
    with pytest.raises(ValueError, match="state must have shape"):
        layer(torch.randn(2, 3, 4, 5, 5), torch.zeros(2, 3, 4, 4, dtype=torch.complex64))
    with pytest.raises(TypeError, match="complex"):
        layer(torch.randn(2, 3, 4, 5, 5), torch.zeros(2, 3, 5, 5))
    with pytest.raises(ValueError, match="4 dimensions"):
        layer.step(torch.randn(2, 1, 4, 5, 5))
    with pytest.raises(ValueError, match="discretization"):
        ConvS5SSM(4, 3, discretization="euler")
    with pytest.raises(ValueError, match="divisible by blocks"):
        ConvS5SSM(4, 6, blocks=4)
