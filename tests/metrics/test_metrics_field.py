"""Per-channel RMSE and MAE of fields, against plain numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convssm.metrics import channel_mae, channel_mse, mae_per_channel, rmse_per_channel


def test_field_errors_match_numpy_in_physical_units():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(3, 4, 2, 5, 6)) * [[[[300.0]], [[0.01]]]]
    pred = target + rng.normal(size=target.shape) * [[[[2.0]], [[0.001]]]]
    p, t = torch.from_numpy(pred), torch.from_numpy(target)
    err = pred - target
    np.testing.assert_allclose(channel_mse(p, t).numpy(), (err**2).mean(axis=(3, 4)))
    np.testing.assert_allclose(channel_mae(p, t).numpy(), np.abs(err).mean(axis=(3, 4)))
    rmse = np.sqrt((err**2).transpose(2, 0, 1, 3, 4).reshape(2, -1).mean(axis=1))
    np.testing.assert_allclose(rmse_per_channel(p, t).numpy(), rmse, rtol=1e-12)
    mae = np.abs(err).transpose(2, 0, 1, 3, 4).reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(mae_per_channel(p, t).numpy(), mae, rtol=1e-12)
    assert 1.5 < rmse[0] < 2.5 and 5e-4 < rmse[1] < 2e-3  # units kept per channel


def test_field_errors_check_their_inputs():
    x = torch.zeros(1, 2, 1, 3, 3)
    with pytest.raises(ValueError, match="same shape"):
        channel_mse(x, torch.zeros(1, 2, 2, 3, 3))
    with pytest.raises(TypeError, match="floating"):
        channel_mae(x.long(), x)
    assert channel_mse(x.half(), x).dtype == torch.float32
