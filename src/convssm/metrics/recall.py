"""The delayed-recall score: how much of a pattern shown long ago a model can redraw.

``rel_recall`` puts a model's error on the recall frames of a
:class:`convssm.data.DelayedRecall` video beside the error of the best answer without
memory, the mean training pattern frame (:meth:`convssm.data.DelayedRecall.mean_pattern`):

    rel_recall = MSE(pred, truth) / MSE(mean_pattern, truth)     over the recall frames

0 is a perfect recall, 1 is no memory at all (a model that learned the average and nothing
else), above 1 is worse than that. The ratio does not depend on the scale of the frames as
long as all three are in the same one (the data's [−1, 1] here).

How a model is conditioned (every frame up to and including the cue, then the recall frames
generated free-running) is the caller's part; every model is scored by this function.
"""

from __future__ import annotations

import torch

from convssm._checks import check_tensor

__all__ = ["rel_recall", "recall_errors"]


def recall_errors(
    pred: torch.Tensor, truth: torch.Tensor, mean_pattern: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-video squared errors of the model and of the mean pattern.

    Args:
        pred, truth: (B, R, C, H, W) recall frames, predicted and true.
        mean_pattern: (C, H, W) the mean training pattern frame.
    Returns:
        (model MSE (B,), baseline MSE (B,)), float64: sums over the recall frames and pixels
        divided by their number, so that streaming callers can average them over batches.
    """
    pred = check_tensor(pred, "pred", ndim=5, floating=True)
    truth = check_tensor(truth, "truth", ndim=5, floating=True)
    mean_pattern = check_tensor(mean_pattern, "mean_pattern", ndim=3, floating=True)
    if pred.shape != truth.shape:
        raise ValueError(
            f"pred and truth must have the same shape (B, R, C, H, W), got "
            f"{tuple(pred.shape)} and {tuple(truth.shape)}"
        )
    if tuple(mean_pattern.shape) != tuple(truth.shape[2:]):
        raise ValueError(
            f"mean_pattern must have shape {tuple(truth.shape[2:])} (C, H, W), got "
            f"{tuple(mean_pattern.shape)}"
        )
    pred, truth = pred.double(), truth.double()
    base = mean_pattern.to(truth.device).double()
    model = (pred - truth).square().flatten(1).mean(1)
    baseline = (base - truth).square().flatten(1).mean(1)
    return model, baseline


def rel_recall(pred: torch.Tensor, truth: torch.Tensor, mean_pattern: torch.Tensor) -> float:
    """The recall score over a batch of videos: mean model MSE / mean baseline MSE (see the
    module docstring). Shapes as in :func:`recall_errors`."""
    model, baseline = recall_errors(pred, truth, mean_pattern)
    denominator = float(baseline.mean())
    if denominator <= 0:
        raise ValueError("the mean pattern equals every true recall frame: rel_recall undefined")
    return float(model.mean()) / denominator
