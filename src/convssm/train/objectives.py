"""The training objectives: losses of a model's outputs.

A model's ``forward`` computes predictions (a video predictor's frames, teacher-forced or
rolled out; a latent model's logits); what they are scored by lives here, and
:func:`convssm.train.step.sequence_loss` applies the one a run trains with:

- :func:`pixel_loss`: 0.5 · MSE + 0.5 · L1 (the paper's) or MSE alone, per-pixel means,
  optionally weighted per predicted frame.
- :func:`video_prediction_loss`: a :class:`~convssm.models.VideoPredictorOutput`'s pixel
  loss, computed in the model's working range (a model with a normaliser: normalised
  units, so every channel weighs the same whatever its units).
- :func:`latent_prediction_loss`: a :class:`~convssm.models.LatentVideoPredictorOutput`'s
  cross-entropy against the next frame's codes, with label smoothing and causal masking's
  two-part loss; :func:`drop_loss_positions` draws the positions TECO's drop-loss scores.
- :func:`state_magnitude`: the size of ConvS5's states, which ``train.state_penalty``
  weighs; with :func:`delay_frames_only`, the size of what a delayed-recall video's delay
  frames alone leave in them (``train.distractor_penalty``).

The tokenizer's loss (reconstruction, perceptual, quantizer and adversarial terms) is
:class:`~convssm.train.tokenizer_loss.TokenizerLoss`.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F

from convssm.models import (
    LatentVideoPredictorConfig,
    LatentVideoPredictorOutput,
    VideoPredictorOutput,
)

__all__ = [
    "PIXEL_LOSSES",
    "PixelLoss",
    "drop_loss_positions",
    "latent_prediction_loss",
    "pixel_loss",
    "delay_frames_only",
    "state_magnitude",
    "video_prediction_loss",
]

PixelLoss = Literal["mse_l1", "mse"]  # the paper's 0.5·MSE + 0.5·L1, or MSE alone
PIXEL_LOSSES: tuple[str, ...] = get_args(PixelLoss)


def pixel_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    kind: str = "mse_l1",
    frame_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The pixel loss, per-pixel means: ``"mse_l1"`` 0.5 · MSE + 0.5 · L1 (the paper's; the
    reference sums over width and channels before averaging, ours differs from it by that
    constant factor only), ``"mse"`` MSE alone.

    pred and target (B, T, C, H, W). ``frame_weights`` (B, T) or (T,), summing to one per
    video: each predicted frame's per-pixel loss weighted, then a mean over videos (computed
    in float32 at least); equal weights 1/T give the unweighted loss (to rounding).

    Why the ``"mse"`` option: where the model cannot yet place a digit, the L1 term's best
    constant answer for a pixel is its median — the background whenever the digit covers it
    less than half the time — so it rewards dimming uncertain frames; MSE's is the mean,
    which keeps the expected brightness (docs/learning.md measures the difference)."""
    if kind not in PIXEL_LOSSES:
        raise ValueError(f"pixel_loss must be one of {PIXEL_LOSSES}, got {kind!r}")
    if frame_weights is None:
        if kind == "mse":
            return F.mse_loss(pred, target)
        return 0.5 * F.mse_loss(pred, target) + 0.5 * F.l1_loss(pred, target)
    if pred.ndim < 2 or frame_weights.shape not in (pred.shape[:2], pred.shape[1:2]):
        raise ValueError(
            f"frame_weights must have shape (B, T) = {tuple(pred.shape[:2])} or "
            f"(T,) = ({pred.shape[1]},), got {tuple(frame_weights.shape)}"
        )
    diff = pred - target
    if diff.dtype in (torch.bfloat16, torch.float16):
        diff = diff.float()
    per_frame = diff.square().flatten(2).mean(-1)  # (B, T)
    if kind == "mse_l1":
        per_frame = 0.5 * per_frame + 0.5 * diff.abs().flatten(2).mean(-1)
    return (per_frame * frame_weights.to(per_frame.device)).sum() / pred.shape[0]


def video_prediction_loss(
    output: VideoPredictorOutput,
    kind: str = "mse_l1",
    frame_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The pixel loss of a video predictor's output (teacher-forced or rolled out, as its
    ``forward`` computed it): :func:`pixel_loss` of ``output.working_predictions`` against
    ``output.working_targets``, both in the model's working range, so a model with a
    normaliser is scored in normalised units exactly as it predicts them."""
    return pixel_loss(output.working_predictions, output.working_targets, kind, frame_weights)


def drop_loss_positions(
    frames: int, rate: float, device: torch.device | str | None = None
) -> torch.Tensor | None:
    """TECO's drop-loss draw: max(1, ⌊(1 − rate) · frames⌋) of the ``frames`` predicted
    positions, drawn without replacement (sorted), for a latent model's ``forward(...,
    positions=)`` to decode and :func:`latent_prediction_loss` to score; None for rate 0
    (every position). Draws from torch's global generator."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"drop_loss_rate must be in [0, 1), got {rate}")
    if rate == 0:
        return None
    n = max(1, int((1 - rate) * frames))
    return torch.randperm(frames, device=device)[:n].sort().values


def latent_prediction_loss(
    output: LatentVideoPredictorOutput,
    codes: torch.Tensor,
    config: LatentVideoPredictorConfig,
) -> torch.Tensor:
    """The latent model's loss: cross-entropy of ``output.logits`` against the next frame's
    codes, with ``config.label_smoothing`` (the reference's 0.99 · one-hot + 0.01 / K is
    torch's ``label_smoothing=0.01``), a mean over positions (the reference sums over h×w;
    ours differs from it by that constant factor only); in float32 at least.

    codes (B, T, h, w): the codes the output was computed from (frames 1..T−1 are the
    targets; only ``output.positions`` of them when the output covers those). With
    ``config.causal_masking``, the reference's two-part loss: positions ≥ mask_context − 1
    of the action-conditioned samples (``output.conditioned``) plus all positions of the
    others, each a mean over its batch and positions.
    """
    target = codes[:, 1:].long()
    if output.positions is not None:
        if config.causal_masking:
            raise ValueError("causal masking's loss scores every position; got positions")
        target = target[:, output.positions]
    logits = output.logits
    if logits.dtype in (torch.bfloat16, torch.float16):
        logits = logits.float()
    ce = F.cross_entropy(
        logits.transpose(1, 2),
        target,
        label_smoothing=config.label_smoothing,
        reduction="none",
    ).mean(dim=(-2, -1))  # (B, T')
    if not config.causal_masking:
        return ce.mean()
    first = max(config.mask_context - 1, 0)
    cond = output.conditioned[:, None].to(ce.dtype)
    loss = (ce * (1 - cond)).mean()
    if first < ce.shape[1]:
        loss = loss + (ce[:, first:] * cond).mean()
    return loss


def state_magnitude(states: list[torch.Tensor], norm: str = "l2") -> torch.Tensor:
    """The mean of |x|² (``norm="l2"``) or of |x| (``"l1"``) over each layer's state,
    averaged over the layers (ConvS5's states: one (B, P, h, w) complex tensor per layer);
    what ``train.state_penalty`` and ``train.distractor_penalty`` weigh."""
    if norm == "l2":
        return torch.stack([s.abs().square().mean() for s in states]).mean()
    if norm == "l1":
        return torch.stack([s.abs().mean() for s in states]).mean()
    raise ValueError(f"norm must be 'l2' or 'l1', got {norm!r}")


def delay_frames_only(
    video: torch.Tensor, recall: torch.Tensor, blank: float = -1.0
) -> torch.Tensor:
    """A delayed-recall batch with everything but the delay frames blanked.

    video (B, T, C, H, W); recall (B, T) bool, each row's recall frames (the
    :class:`~convssm.data.DelayedRecall` layout: the patterns at frame 0, the delay frames,
    the cue on the frame before the first recall frame). Frame 0 and every frame from the cue
    on become ``blank`` (the task's background, −1), so a model run on the result holds in
    its state what the delay frames put there and nothing of the patterns or the cue: what
    ``train.distractor_penalty`` weighs. Returns a new (B, T, C, H, W) tensor.
    """
    if recall.ndim != 2 or recall.shape != video.shape[:2]:
        raise ValueError(
            f"recall must be (B, T) = {tuple(video.shape[:2])} like the video's first two "
            f"dimensions; got {tuple(recall.shape)}"
        )
    has_recall = recall.any(dim=1)
    if not bool(has_recall.all()):
        raise ValueError("a video of the batch has no recall frame: its delay frames are unknown")
    cue = recall.to(torch.int64).argmax(dim=1) - 1  # (B,): the first recall frame's index − 1
    t = torch.arange(video.shape[1], device=video.device)
    keep = (t[None] >= 1) & (t[None] < cue.to(video.device)[:, None])  # (B, T)
    return torch.where(keep[:, :, None, None, None], video, torch.full_like(video, blank))
