"""The Bayes predictor (experiments/learning/bayes_predictor.py) on cases with known answers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from convssm.data.trajectories import pixel_positions, trajectory
from convssm.train.config import config_from_dict

LEARNING = Path(__file__).resolve().parents[2] / "experiments" / "learning"


@pytest.fixture
def bayes(monkeypatch):
    monkeypatch.syspath_prepend(str(LEARNING))
    import bayes_predictor

    return bayes_predictor


def _recipe(bayes, step=0.15, num_digits=1, horizon=12):
    """A config whose held-out scoring set is 3 videos, 10 frames in, ``horizon`` out."""
    return config_from_dict({
        "name": "bayes",
        "model": {"image_size": 32},
        "data": {"seq_len": 5, "num_digits": num_digits,
                 "options": {"digit_size": 14, "step": step}},
        "eval": {"score_videos": 3, "score_context": 10, "score_horizon": horizon},
    })  # fmt: skip


def test_posterior_draws_reproduce_the_context_and_cover_the_truth(bayes):
    rng = np.random.default_rng(0)
    free, step, context = 18, 0.15, 10
    start, theta = np.array([[0.31, 0.77]]), 2.2
    direction = np.array([[math.sin(theta), math.cos(theta)]])
    pos, _ = trajectory(start, direction, context + 100, step)
    px = pixel_positions(pos, free)[:, 0]
    s, a = bayes.posterior_samples(px[:context], free, step, rng, num_samples=300)
    assert s.shape == (300, 2) and a.shape == (300,)
    assert bayes._consistent(s, a, px[:context], free, step).all()
    # the truth is one of the consistent trajectories: it lies within the draws' range
    drawn = pixel_positions(bayes._positions(s, a, context + 100, step), free)
    for t in (context, context + 50, context + 99):
        assert np.all(drawn[t].min(0) <= px[t]) and np.all(px[t] <= drawn[t].max(0))
    # the draws fill the posterior: the angle range is a narrow band around the truth
    offset = np.angle(np.exp(1j * (a - theta)))
    assert np.abs(offset).max() < 0.2 and offset.min() < 0 < offset.max()


def test_inconsistent_pixels_are_an_error(bayes):
    jump = np.array([[0, 0], [9, 9], [0, 0]])  # no trajectory moves 9 px and back
    with pytest.raises(RuntimeError, match="reproduces the context pixels"):
        bayes.posterior_samples(jump, 18, 0.15, np.random.default_rng(0), proposals=2000)


def test_a_still_digit_is_predicted_exactly(bayes):
    row, pred, videos = bayes.evaluate(_recipe(bayes, step=0.0), num_samples=16, lpips=False)
    truth = (videos[:, 10:] + 1) / 2
    assert float((pred - truth).abs().max()) < 1e-6
    assert row["rel_empty@10"] < 1e-12 and row["spread_px"]["+1"] == 0.0


def test_moving_digits_beat_the_trivial_predictors(bayes):
    for digits in (1, 2):
        row, pred, _ = bayes.evaluate(_recipe(bayes, num_digits=digits), num_samples=64,
                                      lpips=False)  # fmt: skip
        assert pred.shape == (3, 12, 1, 32, 32)
        assert 0.0 < row["rel_best@10"] < 0.3
        assert row["spread_px"]["+10"] > 0 and row["spread_px"]["+10"] >= row["spread_px"]["+1"]
