"""LPIPS port against distances of the original JAX module (tools/make_metric_fixtures.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convssm.metrics.lpips import lpips


def _images(arr: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, C, H, W) in [-1, 1], as the fixture script does."""
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@pytest.mark.parametrize("kind", ["rgb", "grey"])
def test_lpips_matches_jax_reference(lpips_model, lpips_reference, kind):
    a = _images(lpips_reference[f"{kind}_a"])
    b = _images(lpips_reference[f"{kind}_b"])
    with torch.no_grad():
        d = lpips_model(a, b)
    ref = torch.from_numpy(lpips_reference[f"{kind}_dist"])
    assert d.shape == ref.shape == (2,)
    assert float((d - ref).abs().max()) < 1e-5


def test_lpips_video_function_is_per_frame(lpips_model, lpips_reference):
    # (2, 64, 64, 1) grey pairs as a (1, 2, 1, 64, 64) video in [0, 1].
    a = torch.from_numpy(lpips_reference["grey_a"]).permute(0, 3, 1, 2).float() / 255.0
    b = torch.from_numpy(lpips_reference["grey_b"]).permute(0, 3, 1, 2).float() / 255.0
    d = lpips(a[None], b[None], lpips_model, batch_size=1)
    assert d.shape == (1, 2)
    # x / 255 * 2 - 1 equals x / 127.5 - 1 up to rounding.
    ref = torch.from_numpy(lpips_reference["grey_dist"])
    assert float((d[0] - ref).abs().max()) < 1e-5


def test_lpips_zero_for_identical_and_symmetric(lpips_model):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 40, 48, generator=gen) * 2 - 1
    y = torch.rand(2, 3, 40, 48, generator=gen) * 2 - 1
    with torch.no_grad():
        assert float(lpips_model(x, x).abs().max()) == 0.0
        torch.testing.assert_close(lpips_model(x, y), lpips_model(y, x))


def test_lpips_rejects_bad_inputs(lpips_model):
    x = torch.zeros(1, 3, 64, 64)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        lpips_model(x + 2, x)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        lpips_model(torch.zeros(1, 2, 64, 64), torch.zeros(1, 2, 64, 64))
    with pytest.raises(ValueError, match="at least 31x31"):
        lpips_model(torch.zeros(1, 3, 16, 64), torch.zeros(1, 3, 16, 64))
    with pytest.raises(ValueError, match="same shape"):
        lpips_model(x, torch.zeros(1, 3, 64, 32))
    with pytest.raises(ValueError, match="dimensions"):
        lpips_model(x[0], x[0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lpips(torch.full((1, 1, 1, 64, 64), -0.5), torch.zeros(1, 1, 1, 64, 64), lpips_model)
