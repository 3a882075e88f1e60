"""The VQ tokenizer's training loss: reconstruction, perceptual, codebook and (optional)
adversarial terms, as VQ-GAN trains it (Esser et al. 2021).

For frames x and their reconstruction x̂ (the tokenizer's forward)::

    loss = l1_weight · |x − x̂|₁ + perceptual_weight · LPIPS(x, x̂)
           + codebook_loss + commitment_loss                          (the quantizer's)
           + adversarial_weight · g_loss + d_loss      (weight 0 before adversarial_start)
    g_loss = −mean D(x̂)                    (the discriminator's weights held fixed)
    d_loss = mean relu(1 − D(x)) + mean relu(1 + D(sg(x̂)))        (hinge)

LPIPS is the project's AlexNet port (``convssm.metrics.LPIPS``, frozen), fed frames
clamped to [−1, 1]; all terms are means over frames and pixels. The adversarial loss is
off by default (``adversarial_weight: 0``); when on, a :class:`PatchDiscriminator` is
trained by the same optimizer: g_loss reaches only the tokenizer (the discriminator's
weights enter it detached) and d_loss only the discriminator (the reconstruction enters it
detached), so one backward pass and one optimizer step make both updates. VQ-GAN's
adaptive weight (a ratio of gradient norms at the decoder's last layer) is not used: the
weight is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from convssm.metrics import LPIPS
from convssm.models import VQTokenizer
from convssm.models.discriminator import PatchDiscriminator
from convssm.train.config import TokenizerLossConfig

__all__ = ["TokenizerLoss", "TokenizerTraining", "TokenizerTrainingOutput"]


class TokenizerLoss(nn.Module):
    """``loss(tokenizer, video, step) -> (loss, metrics)``; holds the discriminator (a
    trained submodule when the adversarial loss is on) and the frozen LPIPS network (not a
    submodule: it is neither trained nor saved).

    Args:
        config: the weights.
        image_channels: C of the frames (the discriminator's input).
        lpips: an LPIPS network to use (default: ``LPIPS.from_pretrained()`` when
            perceptual_weight > 0).
    """

    def __init__(
        self, config: TokenizerLossConfig, image_channels: int, lpips: LPIPS | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.discriminator = (
            PatchDiscriminator(
                image_channels, config.disc_channels, config.disc_layers, config.disc_norm_groups
            )
            if config.adversarial_weight > 0
            else None
        )
        if lpips is None and config.perceptual_weight > 0:
            lpips = LPIPS.from_pretrained()
        self._lpips = (lpips,)  # a tuple: not registered, not saved, not in .parameters()

    def _perceptual(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        net = self._lpips[0]
        if net.shift.device != x.device:
            net.to(x.device)
        return net(x.clamp(-1, 1), y.clamp(-1, 1)).mean()

    def forward(
        self, tokenizer: VQTokenizer, video: torch.Tensor, step: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """video (B, T, C, H, W) in [−1, 1] -> the scalar loss and its detached terms."""
        cfg = self.config
        out = tokenizer(video)
        x = video.flatten(0, 1)
        x_hat = out.reconstruction.flatten(0, 1)
        l1 = (x_hat - x).abs().mean()
        loss = cfg.l1_weight * l1 + out.codebook_loss + out.commitment_loss
        terms = {
            "l1": l1,
            "codebook": out.codebook_loss,
            "commitment": out.commitment_loss,
            "perplexity": out.perplexity,
        }
        if cfg.perceptual_weight > 0:
            p = self._perceptual(x_hat, x)
            loss = loss + cfg.perceptual_weight * p
            terms["perceptual"] = p
        if self.discriminator is not None:
            # Before adversarial_start both terms count with weight 0 (as VQ-GAN's disc
            # factor): the discriminator still takes part, which DDP requires of every
            # parameter in every step.
            on = 1.0 if step >= cfg.adversarial_start else 0.0
            frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
            g_loss = -functional_call(self.discriminator, frozen, (x_hat,)).mean()
            d_loss = (
                F.relu(1 - self.discriminator(x)).mean()
                + F.relu(1 + self.discriminator(x_hat.detach())).mean()
            )
            loss = loss + on * (cfg.adversarial_weight * g_loss + d_loss)
            terms["g_loss"], terms["d_loss"] = g_loss, d_loss
        return loss, {k: v.detach() for k, v in terms.items()}


@dataclass
class TokenizerTrainingOutput:
    """loss (scalar, with gradient) and its detached terms."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]


class TokenizerTraining(nn.Module):
    """What a ``vq_tokenizer`` run optimises (and DDP wraps): the tokenizer and its loss,
    whose discriminator trains alongside. ``step`` (set by ``train_step`` before every
    update) switches the adversarial loss on at ``loss.adversarial_start``.

    forward(video (B, T, C, H, W), actions=None) -> :class:`TokenizerTrainingOutput`.
    """

    def __init__(self, tokenizer: VQTokenizer, loss: TokenizerLoss) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.loss_fn = loss
        self.step = 0

    def forward(
        self, video: torch.Tensor, actions: torch.Tensor | None = None
    ) -> TokenizerTrainingOutput:
        loss, terms = self.loss_fn(self.tokenizer, video, self.step)
        return TokenizerTrainingOutput(loss, terms)
