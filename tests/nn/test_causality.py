"""Causality of every sequence model: the output at t ignores frames after t."""

from __future__ import annotations

import pytest
import torch

import convssm.nn  # noqa: F401  (registers the models)
from convssm.nn import build_sequence_model, sequence_model_names

DIM, H, W, T = 4, 6, 6, 10

OPTIONS = {
    "convs5": dict(state_dim=4, depth=2, kernel_size=3, norm_groups=2),
    "convlstm": dict(depth=2, kernel_size=3),
    "transformer": dict(height=H, width=W, embed_dim=16, depth=2, heads=2, mlp_dim=32, window=4),
}


def _build(name: str) -> torch.nn.Module:
    if name not in sequence_model_names():
        pytest.fail(f"sequence model {name!r} is not registered")
    torch.manual_seed(0)
    return build_sequence_model(name, DIM, **OPTIONS[name]).double().eval()


@pytest.mark.parametrize("name", sorted(OPTIONS))
@pytest.mark.parametrize("t", [0, 4, T - 2])
def test_output_up_to_t_ignores_later_frames(name: str, t: int) -> None:
    model = _build(name)
    g = torch.Generator().manual_seed(t)
    x = torch.randn(2, T, DIM, H, W, dtype=torch.float64, generator=g)
    x2 = x.clone()
    x2[:, t + 1 :] = 100.0 * torch.randn(x2[:, t + 1 :].shape, dtype=torch.float64, generator=g)
    y, _ = model(x)
    y2, _ = model(x2)
    assert torch.allclose(y[:, : t + 1], y2[:, : t + 1], atol=1e-12, rtol=0)
    # The test can fail: the next frame's output does depend on the changed frame.
    assert not torch.allclose(y[:, t + 1], y2[:, t + 1], atol=1e-6)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_gradient_of_output_at_t_is_zero_for_later_frames(name: str) -> None:
    model = _build(name)
    x = torch.randn(1, T, DIM, H, W, dtype=torch.float64, requires_grad=True)
    y, _ = model(x)
    y[:, 5].sum().backward()
    grad = x.grad.abs().flatten(2).amax(-1)[0]
    assert torch.all(grad[6:] == 0) and torch.all(grad[:6] > 0)
