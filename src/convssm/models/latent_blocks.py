"""Pieces of the VQ-latent models: flax-default initialisation and the logits decoder.

The reference builds its latent models from flax defaults (TECO's ``base.py``):

- ``nn.Conv`` / ``nn.Dense`` / ``nn.ConvTranspose``: kernel lecun-normal (a normal truncated
  at ±2σ, rescaled so its variance is 1 / fan_in, fan_in = in_channels · kernel area),
  bias zeros;
- ``nn.Embed``: normal with variance 1 / features;
- norms: scale ones, bias zeros.

:func:`flax_default_init_` applies that to the convolutions, linear layers and embeddings of
a module tree (norms already start at ones and zeros in torch). Call it on the model's own
encoder, decoder, projections and embeddings only: the sequence models have their own
initialisation (HiPPO for ConvS5) which must not be overwritten.

:class:`LogitsDecoder` is the reference's ``ResNetDecoder``: a 3×3 convolution to
``widths[0]``, residual stages on the reversed widths with a nearest 2× upsample between
them, LayerNorm over channels, and a 1×1 convolution (the reference's ``Dense`` on NHWC) to
``out_channels`` logits::

    (N, in_channels, h, w) -> (N, out_channels, h · 2^(S−1), w · 2^(S−1)),  S = len(widths)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from convssm.models.autoencoder import ResidualBlock
from convssm.nn import ChannelLayerNorm

__all__ = ["flax_default_init_", "lecun_normal_", "LogitsDecoder"]

# Standard deviation of a unit normal truncated to [-2, 2] (JAX's truncated_normal rescale).
_TRUNC_STD = 0.87962566103423978


def lecun_normal_(weight: torch.Tensor, fan_in: int) -> torch.Tensor:
    """Fill ``weight`` in place with flax's lecun-normal: truncated normal, variance 1/fan_in."""
    std = math.sqrt(1.0 / fan_in) / _TRUNC_STD
    with torch.no_grad():
        return nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def flax_default_init_(module: nn.Module) -> nn.Module:
    """Re-initialise every Conv2d, ConvTranspose2d, Linear and Embedding under ``module`` as
    flax does by default (see the module docstring). Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            # torch stores (out, in/groups, kh, kw) for Conv2d and (in, out/groups, kh, kw) for
            # ConvTranspose2d; flax's fan_in is the input channels times the kernel area either way.
            area = m.kernel_size[0] * m.kernel_size[1]
            fan_in = (m.in_channels // m.groups) * area
            lecun_normal_(m.weight, fan_in)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            lecun_normal_(m.weight, m.in_features)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            with torch.no_grad():
                nn.init.normal_(m.weight, std=1.0 / math.sqrt(m.embedding_dim))
    return module


class LogitsDecoder(nn.Module):
    """The reference's ResNetDecoder (see the module docstring).

    Args:
        in_channels: channels of the input map.
        widths: the decoder ``depths`` as the reference's configs write them (coarsest
            resolution last); the stages run on them reversed.
        blocks_per_stage: residual blocks per stage (the reference's ``blocks``).
        out_channels: logits per position (the codebook size).
        norm_groups: GroupNorm groups in the residual blocks.
    """

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        blocks_per_stage: int,
        out_channels: int,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if not widths or any(w < 1 for w in widths):
            raise ValueError(f"decoder widths must be a non-empty list of positive ints: {widths}")
        if blocks_per_stage < 1:
            raise ValueError(f"decoder blocks_per_stage must be at least 1, got {blocks_per_stage}")
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        layers: list[nn.Module] = []
        prev = widths[0]
        for i, width in enumerate(reversed(widths)):
            if i > 0:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            for _ in range(blocks_per_stage):
                layers.append(ResidualBlock(prev, width, norm_groups))
                prev = width
        self.stages = nn.Sequential(*layers)
        self.norm = ChannelLayerNorm(prev)
        self.head = nn.Conv2d(prev, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.stages(self.stem(x))))
