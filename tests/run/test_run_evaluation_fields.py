"""Evaluation picks its metrics by data kind: fields per channel in physical units."""

from __future__ import annotations

import numpy as np
import torch

from convssm.cli.evaluate import format_row
from convssm.metrics import evaluate_predictions
from convssm.models.normalizer import Normalizer
from convssm.run.baselines import TrivialBaselines, channel_titles


def test_fields_are_scored_per_channel_in_their_units():
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([10.0, 1e-3]).view(1, 1, 2, 1, 1)
    truth = torch.rand(3, 7, 2, 8, 8, generator=g) * scale + torch.tensor([280.0, 0]).view(
        1, 1, 2, 1, 1
    )
    pred = truth[:, 3:] + torch.randn(3, 4, 2, 8, 8, generator=g) * scale * 0.1
    stats = {"count": 1, "mean": [285.0, 5e-4], "std": [3.0, 3e-4], "min": [280.0, 0.0],
             "max": [290.0, 1e-3]}  # fmt: skip
    norm = Normalizer(stats, 2)
    res = evaluate_predictions(truth, pred, 3, [2, 4], ["psnr", "lpips", "fvd"],
                               normalize=norm.normalize)  # fmt: skip
    err = (pred - truth[:, 3:]).double().numpy()
    for h in (2, 4):
        row = res.per_horizon[str(h)]
        want = np.sqrt((err[:, :h] ** 2).mean(axis=(0, 1, 3, 4)))
        np.testing.assert_allclose(row["rmse"], want, rtol=1e-6)
        mae = np.abs(err[:, :h]).mean(axis=(0, 1, 3, 4))
        np.testing.assert_allclose(row["mae"], mae, rtol=1e-6)
        assert 10 < row["psnr"] < 60  # through the normaliser: the training range is [0, 1]
    assert np.asarray(res.per_frame["rmse"]).shape == (4, 2)
    assert set(res.skipped) == {"lpips", "fvd"} and "natural video" in res.skipped["lpips"]


def test_video_kind_is_unchanged_and_may_ask_for_rmse():
    truth = torch.zeros(2, 5, 1, 8, 8)
    pred = torch.full((2, 3, 1, 8, 8), 0.5)
    res = evaluate_predictions(truth, pred, 2, [3], ["psnr", "rmse"])
    row = res.per_horizon["3"]
    assert abs(row["mse"] - 0.0625) < 1e-7  # in [0, 1]: (0.25)^2
    assert row["rmse"] == [0.5]  # in the frames' own [-1, 1] units
    assert "mae" not in row and not res.skipped


def test_field_channels_are_printed_with_their_names_and_units():
    titles = channel_titles(2, ["velocity", "tracer"], ["m/s", "kg/m^3"])
    assert titles == ["velocity [m/s]", "tracer [kg/m^3]"]
    assert channel_titles(2) == ["channel 0 (data units)", "channel 1 (data units)"]
    assert channel_titles(1, ["u"]) == ["u (data units)"]
    row = {"psnr": 30.0, "rmse": [0.8388, 0.0001885]}
    assert format_row(row, titles) == (
        "psnr 30.0000, rmse (velocity [m/s]: 0.8388, tracer [kg/m^3]: 0.0001885)"
    )
    assert format_row(row) == "psnr 30.0000, rmse [0.8388, 0.0001885]"  # no titles: as before
    b = TrivialBaselines(1, 2, field=True, mean=[0.0, 0.0])
    b.update(0, torch.ones(1, 2, 4, 4), torch.ones(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))
    assert "channel 1 (data units)" in b.verdict()
