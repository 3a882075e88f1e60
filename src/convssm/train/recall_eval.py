"""Score a video predictor on delayed recall: condition on every frame up to the cue,
generate the recall frames, and put their error beside the mean pattern's.

One function for every model and every caller (the loop's held-out validation, the recall
benchmark, the demo): :func:`recall_scores`. The score itself is
:func:`convssm.metrics.rel_recall`; this module only runs the model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from convssm._precision import autocast_context
from convssm.data import DelayedRecall
from convssm.metrics import recall_errors

__all__ = ["recall_predictions", "recall_scores", "recall_strip"]


@torch.no_grad()
def recall_predictions(
    model: torch.nn.Module,
    dataset: DelayedRecall,
    *,
    num_videos: int | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    context_chunk: int | None = 256,
    blank_delay: bool = False,
):
    """Yield (predicted, true) recall frames (B, R, C, H, W) in [−1, 1], batch by batch.

    Each video's frames 0..cue go in as context (``context_chunk`` frames at a time, carrying
    the states, so a fixed-state model conditions in bounded memory); the ``R`` recall frames
    are generated free-running from the cue on. ``blank_delay``: a diagnostic — the delay
    frames go in as background (no distractor), which tells a memory that fades with time
    from one that the distractor disturbs.
    """
    if not isinstance(dataset, DelayedRecall):
        raise TypeError(f"dataset must be a DelayedRecall set, got {type(dataset).__name__}")
    device = torch.device(device)
    n = len(dataset) if num_videos is None else min(num_videos, len(dataset))
    loader = DataLoader(Subset(dataset, range(n)), batch_size=batch_size)
    cue, recall = dataset.cue_index, dataset.recall_frames
    was_training = model.training
    model.eval()
    try:
        for batch in loader:
            video = batch["video"].to(device)
            context = video[:, : cue + 1]
            if blank_delay:
                context = context.clone()
                context[:, 1:cue] = -1.0
            with autocast_context(device, precision):
                pred = model.generate(
                    context, recall, context_chunk=context_chunk, check_values=False
                )
            yield pred.float().clamp(-1, 1), video[:, cue + 1 :]
    finally:
        model.train(was_training)


def recall_scores(
    model: torch.nn.Module,
    dataset: DelayedRecall,
    *,
    num_videos: int | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    context_chunk: int | None = 256,
    blank_delay: bool = False,
) -> dict[str, float]:
    """``rel_recall`` of ``model`` on ``dataset`` (its first ``num_videos`` videos), with the
    two MSEs it is the ratio of (in [−1, 1] units) and the number of videos
    (``blank_delay`` as in :func:`recall_predictions`).

    Streams over batches: memory does not grow with the number of videos."""
    errors, baselines = [], []
    mean = dataset.mean_pattern()
    for pred, truth in recall_predictions(
        model,
        dataset,
        num_videos=num_videos,
        batch_size=batch_size,
        device=device,
        precision=precision,
        context_chunk=context_chunk,
        blank_delay=blank_delay,
    ):
        err, base = recall_errors(pred.cpu(), truth.cpu(), mean)
        errors.append(err)
        baselines.append(base)
    err, base = torch.cat(errors), torch.cat(baselines)
    mse, mse_mean = float(err.mean()), float(base.mean())
    return {
        "rel_recall": mse / mse_mean,
        "mse_recall": mse,
        "mse_mean_pattern": mse_mean,
        "videos": len(err),
    }


def recall_strip(
    first: torch.Tensor, truth: torch.Tensor, rows: dict[str, torch.Tensor], scale: int = 4
) -> np.ndarray:
    """A picture of recalls, one block of rows per video: the frame shown at the start,
    then the true recall frames, then one row per model's generated recall frames.

    first: (N, C, H, W) the pattern frames; truth: (N, R, C, H, W); rows: label ->
    (N, R, C, H, W) predictions, all in [−1, 1]. Returns (rows·H·scale, (R+1)·W·scale)
    uint8 grey, a 1-pixel gap between frames and a wider one between videos; the labels
    are left to the caption (the order of ``rows``)."""
    n, r, _, h, w = truth.shape
    lines = [truth] + list(rows.values())
    cell_h, cell_w = h + 1, w + 1
    height = n * (len(lines) * cell_h + 3)
    out = np.full((height, (r + 1) * cell_w), 96, dtype=np.uint8)

    def u8(frame: torch.Tensor) -> np.ndarray:
        return ((frame[0].clamp(-1, 1) + 1) * 127.5).round().byte().numpy()

    for i in range(n):
        top = i * (len(lines) * cell_h + 3)
        out[top : top + h, :w] = u8(first[i])
        for k, line in enumerate(lines):
            y = top + k * cell_h
            for j in range(r):
                x = (j + 1) * cell_w
                out[y : y + h, x : x + w] = u8(line[i, j])
    return np.kron(out, np.ones((scale, scale), dtype=np.uint8))
