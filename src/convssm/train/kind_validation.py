"""Periodic validation of the models that do not generate pixels themselves.

- VQ tokenizer: PSNR / SSIM of its reconstructions of the held-out frames (in [0, 1]),
  and the perplexity of their codes (how many codes are in use).
- Latent video predictor: held-out cross-entropy of the next frame's codes under teacher
  forcing, and how often the most likely code is the true one (``accuracy``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from convssm.metrics import psnr, ssim
from convssm.models import LatentVideoPredictor, VQTokenizer

__all__ = ["validate_tokenizer", "validate_latent"]


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
        loss += float(out.loss)
        correct += float((out.logits.argmax(2) == codes[:, 1:]).sum())
        total += codes[:, 1:].numel()
        n += 1
    return {"val_loss": loss / max(n, 1), "accuracy": correct / max(total, 1)}
