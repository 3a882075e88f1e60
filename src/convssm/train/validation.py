"""Periodic validation during training, on a few held-out videos, for each kind of model.

- Video predictor: generate ``eval.val_horizon`` frames after ``eval.context`` and score
  them (:func:`convssm.metrics.evaluate_predictions`: PSNR / SSIM / MSE, per-channel RMSE /
  MAE of physical fields). :func:`iter_generated` (batch by batch) and
  :func:`generate_videos` (all at once) are the generation, shared with ``convssm.run``.
- VQ tokenizer: PSNR / SSIM of its reconstructions of the held-out frames (in [0, 1]),
  and the perplexity of their codes (how many codes are in use).
- Latent video predictor: held-out cross-entropy of the next frame's codes under teacher
  forcing, and how often the most likely code is the true one (``accuracy``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from convssm._precision import autocast_context
from convssm.metrics import evaluate_predictions, psnr, ssim
from convssm.models import TECO, LatentVideoPredictor, VQTokenizer
from convssm.train.objectives import latent_prediction_loss

__all__ = [
    "iter_generated",
    "generate_videos",
    "validate_predictor",
    "validate_tokenizer",
    "validate_latent",
    "CODE_VALIDATORS",
]

Batches = Iterable[torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]]


@torch.no_grad()
def iter_generated(
    model: torch.nn.Module,
    videos: Batches,
    context: int,
    horizon: int,
    device: torch.device,
    precision: str = "fp32",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Generate ``horizon`` frames after ``context`` for one batch of ``videos`` at a time.

    Args:
        videos: batches (B, T, C, H, W) in [-1, 1] with ``T >= context + horizon``, or
            (video, actions) pairs.
    Yields:
        (ground truth (B, context + horizon, C, H, W), predictions (B, horizon, C, H, W)),
        float32 on the CPU.
    """
    model.eval()
    for batch in videos:
        video, actions = batch if isinstance(batch, tuple) else (batch, None)
        if video.shape[1] < context + horizon:
            raise ValueError(
                f"evaluation videos have {video.shape[1]} frames, need context {context} "
                f"+ horizon {horizon}"
            )
        video = video[:, : context + horizon]
        kwargs = {}
        if actions is not None:
            kwargs["actions"] = actions[:, : context + horizon].to(device)
        with autocast_context(device, precision):
            pred = model.generate(video[:, :context].to(device), horizon, **kwargs)
        yield video.float().cpu(), pred.float().cpu()
        del batch, video, pred  # hold no batch while the next one is generated


def generate_videos(
    model: torch.nn.Module,
    videos: Batches,
    context: int,
    horizon: int,
    device: torch.device,
    precision: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor]:
    """All of :func:`iter_generated` at once: (truth (N, context + horizon, C, H, W),
    predictions (N, horizon, C, H, W)). Memory grows with N: for small sets only."""
    truths, preds = [], []
    for truth, pred in iter_generated(model, videos, context, horizon, device, precision):
        truths.append(truth)
        preds.append(pred)
    return torch.cat(truths), torch.cat(preds)


def validate_predictor(
    model: torch.nn.Module,
    batches: Batches,
    context: int,
    horizon: int,
    metrics: Iterable[str],
    device: torch.device,
    precision: str = "fp32",
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Scores ``name@horizon`` of the ``horizon`` frames generated after ``context`` (only
    the cheap metrics among ``metrics``: psnr, ssim, rmse, mae; mse always), and ``skipped``
    with the reasons when some could not run. ``normalize``: a field model's normaliser."""
    truth, pred = generate_videos(model, batches, context, horizon, device, precision)
    names = [m for m in metrics if m in ("psnr", "ssim", "rmse", "mae")]
    res = evaluate_predictions(truth, pred, context, [horizon], names, normalize=normalize)
    out: dict[str, Any] = {f"{k}@{horizon}": v for k, v in res.per_horizon[str(horizon)].items()}
    if res.skipped:
        out["skipped"] = res.skipped
    return out


@torch.no_grad()
def validate_tokenizer(
    model: VQTokenizer, batches: Iterable[tuple[torch.Tensor, Any]], device: torch.device
) -> dict[str, float]:
    """Mean PSNR, SSIM and code perplexity over ``batches`` of (video, actions)."""
    model.eval()
    sums, n = {"psnr": 0.0, "ssim": 0.0, "perplexity": 0.0}, 0
    for video, _ in batches:
        video = video.to(device)
        out = model(video)
        recon = (out.reconstruction.clamp(-1, 1) + 1) / 2
        truth = (video + 1) / 2
        sums["psnr"] += float(psnr(recon, truth).mean())
        sums["ssim"] += float(ssim(recon, truth).mean())
        sums["perplexity"] += float(out.perplexity)
        n += 1
    return {k: v / max(n, 1) for k, v in sums.items()}


@torch.no_grad()
def validate_latent(
    model: LatentVideoPredictor,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]],
    device: torch.device,
) -> dict[str, float]:
    """Mean teacher-forced cross-entropy and next-code accuracy over ``batches``."""
    model.eval()
    loss = correct = total = 0.0
    n = 0
    for codes, actions in batches:
        codes = codes.to(device)
        actions = actions.to(device) if actions is not None and model.num_actions else None
        out = model(codes, actions)
        loss += float(latent_prediction_loss(out, codes, model.config))
        correct += float((out.logits.argmax(2) == codes[:, 1:]).sum())
        total += codes[:, 1:].numel()
        n += 1
    return {"val_loss": loss / max(n, 1), "accuracy": correct / max(total, 1)}


@torch.no_grad()
def validate_teco(
    model: TECO,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]],
    device: torch.device,
) -> dict[str, float]:
    """Means of TECO's held-out loss and its parts, and ``recon_accuracy``: how often the
    decoder's most likely code is the true one given the posterior (the next frame's own
    posterior codes: an autoencoding score, not a prediction from the past)."""
    model.eval()
    names = ("loss", "recon_loss", "prior_loss", "codebook_loss", "commitment_loss")
    sums = dict.fromkeys(names, 0.0)
    correct = total = 0.0
    n = 0
    for codes, actions in batches:
        codes = codes.to(device)
        actions = actions.to(device) if actions is not None and model.num_actions else None
        out = model(codes, actions)
        for name in names:
            sums[name] += float(getattr(out, name))
        correct += float((out.logits.argmax(2) == codes[:, 1:]).sum())
        total += codes[:, 1:].numel()
        n += 1
    res = {("val_loss" if k == "loss" else k): v / max(n, 1) for k, v in sums.items()}
    return {**res, "recon_accuracy": correct / max(total, 1)}


# how the kinds that do not generate frames are validated (the others: validate_predictor)
CODE_VALIDATORS: dict[str, Callable[..., dict[str, float]]] = {
    "vq_tokenizer": validate_tokenizer,
    "latent_video_predictor": validate_latent,
    "teco": validate_teco,
}
