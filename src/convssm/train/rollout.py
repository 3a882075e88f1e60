"""Multi-step ("rollout") training: a loss on frames the model generates from its own output.

Teacher forcing trains every prediction from true past frames, but generation feeds the
model its own predictions; the errors it never saw in training then compound and the digits
fade or blur within a few frames past the training length. A rollout step instead conditions
on the first ``context`` frames in parallel mode (teacher forcing) and then, exactly like
:meth:`VideoPredictor.iter_generate`, feeds each predicted frame back through the recurrent
step, with gradients flowing through the fed-back frames (or not, ``detach_feedback``)::

    frames 0..C−1  --parallel-->  predictions of 1..C
    prediction of C --step--> prediction of C+1 --step--> ... --> prediction of T−1

All T−1 predictions are scored with the usual 0.5·MSE + 0.5·L1 (per-pixel means), so with
``context = T − 1`` the loss is exactly the teacher-forcing loss of ``model(video)``.
"""

from __future__ import annotations

import torch

from convssm.models import VideoPredictor
from convssm.models.video_predictor import prediction_loss

__all__ = ["rollout_predictions", "rollout_loss"]


def rollout_predictions(
    model: VideoPredictor,
    video: torch.Tensor,
    context: int,
    actions: torch.Tensor | None = None,
    *,
    detach_feedback: bool = False,
) -> torch.Tensor:
    """Predictions (B, T−1, C, H, W) of frames 1..T−1 of ``video`` (B, T, C, H, W).

    Frames 1..``context`` are predicted from true frames (parallel mode); every later frame
    from the model's own previous prediction (recurrent step). ``actions`` (B, T) or None.
    """
    length = video.shape[1]
    if not isinstance(context, int) or isinstance(context, bool):
        raise TypeError(f"context must be an int, got {type(context).__name__}")
    if not 1 <= context <= length - 1:
        raise ValueError(f"context must be in [1, T−1] = [1, {length - 1}], got {context}")
    y, states = model.sequence(model.encode(video[:, :context], actions))
    predictions = [model.decode(y)]
    frame = predictions[0][:, -1:]
    for k in range(context, length - 1):
        fed = frame.detach() if detach_feedback else frame
        a = None if actions is None else actions[:, k : k + 1]
        y_t, states = model.sequence.step(model.encode(fed, a)[:, 0], states)
        frame = model.decode(y_t[:, None])
        predictions.append(frame)
    return torch.cat(predictions, dim=1)


def rollout_loss(
    model: VideoPredictor,
    video: torch.Tensor,
    context: int,
    actions: torch.Tensor | None = None,
    *,
    detach_feedback: bool = False,
) -> torch.Tensor:
    """0.5·MSE + 0.5·L1 of :func:`rollout_predictions` against frames 1..T−1."""
    pred = rollout_predictions(model, video, context, actions, detach_feedback=detach_feedback)
    return prediction_loss(pred.float(), video[:, 1:].float())
