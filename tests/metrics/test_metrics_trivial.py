"""Scores beside the trivial predictors, on cases with known answers."""

from __future__ import annotations

import pytest
import torch

from convssm.metrics import brightness_ratio, trivial_predictor_scores


def _videos(seed=0, b=3, t=12):
    g = torch.Generator().manual_seed(seed)
    truth = (torch.rand(b, t, 1, 8, 8, generator=g) > 0.7).float() * torch.rand(
        b, t, 1, 8, 8, generator=g
    )
    last = torch.rand(b, 1, 8, 8, generator=g)
    return truth, last


def test_perfect_predictor_scores_zero():
    truth, last = _videos()
    s = trivial_predictor_scores(truth.clone(), truth, last, horizons=(5, 12),
                                 brightness_frames=(3, 12))  # fmt: skip
    assert s["mse@5"] == 0 and s["mse@12"] == 0
    assert s["rel_empty@12"] == 0 and s["rel_best@12"] == 0
    assert s["brightness@3-12"] == pytest.approx(1.0, abs=1e-12)


def test_empty_predictor_is_exactly_one_times_empty():
    truth, last = _videos(1)
    s = trivial_predictor_scores(
        torch.zeros_like(truth), truth, last, horizons=(4, 12), brightness_frames=None
    )
    assert s["rel_empty@4"] == 1.0 and s["rel_empty@12"] == 1.0
    assert s["mse@12"] == s["mse_empty@12"]
    assert s["rel_best@12"] >= 1.0


def test_repeat_last_predictor_matches_its_own_baseline():
    truth, last = _videos(2)
    pred = last[:, None].expand_as(truth).clone()
    s = trivial_predictor_scores(pred, truth, last, horizons=(12,), brightness_frames=None)
    assert s["mse@12"] == s["mse_repeat@12"]
    assert s["rel_best@12"] == pytest.approx(
        s["mse_repeat@12"] / min(s["mse_empty@12"], s["mse_repeat@12"])
    )


def test_fading_predictor_fails_the_brightness_check():
    truth, last = _videos(3, t=100)
    fade = torch.linspace(1.0, 0.0, 100).view(1, 100, 1, 1, 1)
    s = trivial_predictor_scores(truth * fade, truth, last, horizons=(10, 100))
    assert s["brightness@50-100"] < 0.5  # outside the 0.5-1.5 band of the targets
    assert s["rel_empty@10"] < 0.05  # early frames are still nearly right
    assert brightness_ratio(truth, truth * 0.5) == pytest.approx(2.0)


def test_errors_name_the_problem():
    truth, last = _videos()
    with pytest.raises(ValueError, match="horizons"):
        trivial_predictor_scores(truth, truth, last, horizons=(13,))
    with pytest.raises(ValueError, match="last_context"):
        trivial_predictor_scores(truth, truth, last[:, :, :4], horizons=(3,))
    with pytest.raises(ValueError, match="brightness_frames"):
        trivial_predictor_scores(truth, truth, last, horizons=(3,), brightness_frames=(5, 40))
    with pytest.raises(ValueError, match="all zero"):
        brightness_ratio(truth, torch.zeros_like(truth))
