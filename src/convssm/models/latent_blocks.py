"""Pieces of the VQ-latent models: flax-default initialisation of a module tree and the
logits decoder.

The reference builds its latent models from flax defaults (TECO's ``base.py``);
:func:`flax_default_init_` applies them (:mod:`convssm.nn.init`: lecun-normal kernels,
zero biases, embeddings N(0, 1/features)) to every Conv2d, ConvTranspose2d, Linear and
Embedding under a module. Call it on the model's own encoder, decoder, projections and
embeddings only: the sequence models have their own initialisation (HiPPO for ConvS5),
which must not be overwritten.

:class:`LogitsDecoder` is the reference's ``ResNetDecoder``: a 3×3 convolution to
``widths[0]``, residual stages on the reversed widths with a nearest 2× upsample between
them, LayerNorm over channels, and a 1×1 convolution (the reference's ``Dense`` on NHWC) to
``out_channels`` logits::

    (N, in_channels, h, w) -> (N, out_channels, h · 2^(S−1), w · 2^(S−1)),  S = len(widths)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convssm.models.autoencoder import ResidualBlock
from convssm.nn.common import ChannelLayerNorm
from convssm.nn.init import flax_conv_, flax_embedding_, flax_linear_

__all__ = ["flax_default_init_", "LogitsDecoder"]


def flax_default_init_(module: nn.Module) -> nn.Module:
    """Re-initialise every Conv2d, ConvTranspose2d, Linear and Embedding under ``module`` as
    flax does by default. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            flax_conv_(m)
        elif isinstance(m, nn.Linear):
            flax_linear_(m)
        elif isinstance(m, nn.Embedding):
            flax_embedding_(m)
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
