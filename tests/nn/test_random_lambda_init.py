"""The non-HiPPO initialisation of the ablation: stable, orthonormal basis, reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convssm.nn import ConvS5SSM
from convssm.nn.hippo import hippo_diagonal_init, random_diagonal_init


def test_random_init_is_stable_orthonormal_and_not_hippo():
    lam, v = random_diagonal_init(16, torch.Generator().manual_seed(0))
    assert lam.shape == (16,) and v.shape == (32, 16)
    assert (lam.real < 0).all() and (lam.real >= -1).all()
    np.testing.assert_allclose(v.conj().T @ v, np.eye(16), atol=1e-12)
    hippo, _ = hippo_diagonal_init(16)
    assert not np.allclose(np.sort(lam.imag), np.sort(hippo.imag))
    again, _ = random_diagonal_init(16, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(lam, again)


def test_layer_option_and_its_errors():
    g = torch.Generator().manual_seed(1)
    layer = ConvS5SSM(4, 8, lambda_init="random", generator=g)
    y, x = layer(torch.randn(1, 5, 4, 6, 6))
    assert y.shape == (1, 5, 4, 6, 6) and torch.isfinite(y).all()
    with pytest.raises(ValueError, match="lambda_init must be 'hippo', 'random', 'real' or"):
        ConvS5SSM(4, 8, lambda_init="legs")
    with pytest.raises(ValueError, match="has no blocks"):
        ConvS5SSM(4, 8, blocks=2, lambda_init="random")


def test_real_lambda_decays_without_rotating_and_keeps_im_at_zero():
    layer = ConvS5SSM(4, 8, lambda_init="real", generator=torch.Generator().manual_seed(2))
    names = {n for n, _ in layer.named_parameters()}
    assert "lambda_im" not in names and "lambda_re" in names
    assert "lambda_im" in layer.state_dict()
    lam_bar, _, _ = layer.discretize()
    assert torch.all(lam_bar.imag == 0) and torch.all((lam_bar.real > 0) & (lam_bar.real < 1))
    hippo = ConvS5SSM(4, 8, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(layer.lambda_re, hippo.lambda_re)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    y, _ = layer(torch.randn(2, 6, 4, 5, 5))
    y.square().mean().backward()
    opt.step()
    assert torch.all(layer.lambda_im == 0)
    # What the state holds after an impulse is the same pattern at every delay, scaled.
    layer.eval()
    with torch.no_grad():
        u = torch.zeros(1, 40, 4, 5, 5)
        u[:, 0] = torch.randn(4, 5, 5)
        _, x10 = layer(u[:, :11])
        _, x40 = layer(u)
        ratio = x40 / x10
    lam_bar, _, _ = layer.discretize()
    expected = (lam_bar.real**29)[None, :, None, None].expand_as(ratio)
    torch.testing.assert_close(ratio.real, expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ratio.imag, torch.zeros_like(ratio.imag), rtol=0, atol=1e-5)
    again = ConvS5SSM(4, 8, lambda_init="real")
    again.load_state_dict(layer.state_dict())
    torch.testing.assert_close(again(u)[0], layer(u)[0])


def test_real_log_lambda_holds_log_spaced_decay_rates_that_training_does_not_move():
    layer = ConvS5SSM(4, 8, lambda_init="real_log", dt_min=0.01, dt_max=0.1)
    assert {n for n, _ in layer.named_parameters()}.isdisjoint({"lambda_re", "lambda_im"})
    assert {"lambda_re", "lambda_im"} <= set(layer.state_dict())
    rates = -layer.lambda_re.double()
    torch.testing.assert_close(rates[0], torch.tensor(0.5, dtype=torch.float64))
    torch.testing.assert_close(rates[-1], torch.tensor(1e-4, dtype=torch.float64))
    ratios = rates[:-1] / rates[1:]
    torch.testing.assert_close(ratios, ratios[:1].expand_as(ratios))  # evenly log-spaced
    before = layer.lambda_re.clone()
    opt = torch.optim.AdamW(layer.parameters(), lr=0.1)
    y, _ = layer(torch.randn(2, 6, 4, 5, 5))
    y.square().mean().backward()
    opt.step()
    assert torch.equal(layer.lambda_re, before) and torch.all(layer.lambda_im == 0)
    # The slowest mode keeps 96 % of an impulse over 4 096 frames with a gain near Δ.
    lam_bar, b_bar, _ = layer.discretize()
    slow = int(torch.argmax(lam_bar.real))
    assert lam_bar.real[slow] ** 4096 > 0.95
    step = layer.log_step.exp()[slow].double()
    gain = (b_bar[slow].abs() / torch.complex(layer.b_re, layer.b_im)[slow].abs()).double()
    torch.testing.assert_close(gain.mean(), step, rtol=1e-2, atol=0)
    again = ConvS5SSM(4, 8, lambda_init="real_log")
    again.load_state_dict(layer.state_dict())
    u = torch.randn(1, 7, 4, 5, 5)
    torch.testing.assert_close(again(u)[0], layer(u)[0])
