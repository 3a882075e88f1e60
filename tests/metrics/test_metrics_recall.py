"""rel_recall: 0 for a perfect recall, 1 for the mean pattern, scale-free, shape errors."""

from __future__ import annotations

import pytest
import torch

from convssm.metrics import recall_errors, rel_recall


def _truth(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, 4, 1, 8, 8, generator=g) * 2 - 1


def test_perfect_and_memoryless_answers():
    truth = _truth()
    mean = truth.mean(dim=(0, 1))
    assert rel_recall(truth, truth, mean) == 0.0
    assert rel_recall(mean.expand_as(truth), truth, mean) == pytest.approx(1.0)
    half = 0.5 * truth + 0.5 * mean  # halfway between: a quarter of the baseline's error
    assert rel_recall(half, truth, mean) == pytest.approx(0.25)


def test_ratio_of_means_and_scale_free():
    truth, pred = _truth(0), _truth(1)
    mean = torch.zeros(1, 8, 8)
    err, base = recall_errors(pred, truth, mean)
    assert err.shape == base.shape == (3,) and err.dtype == torch.float64
    expected = float(((pred - truth).double() ** 2).mean() / (truth.double() ** 2).mean())
    assert rel_recall(pred, truth, mean) == pytest.approx(expected, rel=1e-12)
    assert rel_recall(pred * 0.5, truth * 0.5, mean) == pytest.approx(expected, rel=1e-12)


def test_errors_name_the_problem():
    truth = _truth()
    with pytest.raises(ValueError, match="same shape"):
        rel_recall(truth[:, :2], truth, torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="mean_pattern must have shape"):
        rel_recall(truth, truth, torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="rel_recall undefined"):
        same = torch.zeros(1, 2, 1, 8, 8)
        rel_recall(same, same, torch.zeros(1, 8, 8))
