"""Per-frame ResNet encoder and its mirrored decoder (docs/design.md#video-predictor).

Encoder, for widths (64, 128, 256) and a 64×64×1 frame::

    conv3×3 → 64, ResBlock×n  |  avgpool 2×, ResBlock×n → 128  |  avgpool 2×, ResBlock×n → 256
    (N, 1, 64, 64) → (N, 256, 16, 16)

Decoder, the mirror image: ResBlock×n at 256, then for 128 and 64 a nearest 2× upsample and
ResBlock×n, then LayerNorm over channels, 1×1 conv to the image channels and tanh.

Residual block: ``shortcut(x) + 0.1 · conv(ELU(GN(conv(ELU(GN(x))))))``, with a 1×1
shortcut when the width changes. With ``activation_checkpointing`` set, each residual block
keeps only its input and is recomputed during backward.

Initialised as the reference (TECO's ``base.py``, built from flax defaults): every
convolution lecun-normal with zero bias, GroupNorm and LayerNorm eps 1e-6. The reference's
1×1 shortcut has no bias at all; ours keeps one, starting at zero (so the two agree at
initialisation and the saved-weights layout is unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convssm.nn.common import ChannelLayerNorm, checkpointed
from convssm.nn.init import FLAX_NORM_EPS, flax_conv_

__all__ = ["ResidualBlock", "FrameEncoder", "FrameDecoder"]


def _group_norm(groups: int, channels: int) -> nn.GroupNorm:
    if channels % groups:
        raise ValueError(
            f"width {channels} is not divisible by norm_groups={groups}; choose widths that "
            "are multiples of norm_groups or lower norm_groups"
        )
    return nn.GroupNorm(groups, channels, eps=FLAX_NORM_EPS)


class ResidualBlock(nn.Module):
    """(N, C_in, H, W) -> (N, C_out, H, W): GN → ELU → conv3×3 → GN → ELU → conv3×3, ×0.1."""

    def __init__(self, in_channels: int, out_channels: int, norm_groups: int = 32) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            _group_norm(norm_groups, in_channels),
            nn.ELU(),
            flax_conv_(nn.Conv2d(in_channels, out_channels, 3, padding=1)),
            _group_norm(norm_groups, out_channels),
            nn.ELU(),
            flax_conv_(nn.Conv2d(out_channels, out_channels, 3, padding=1)),
        )
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels
            else flax_conv_(nn.Conv2d(in_channels, out_channels, 1))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + 0.1 * self.branch(x)


def _run_stages(stages: nn.Sequential, x: torch.Tensor, checkpoint: bool) -> torch.Tensor:
    """Run ``stages`` in order, each residual block checkpointed when asked."""
    for layer in stages:
        x = checkpointed(layer, x, enabled=checkpoint and isinstance(layer, ResidualBlock))
    return x


def _check_widths(widths: Sequence[int], blocks_per_stage: int) -> tuple[int, ...]:
    widths = tuple(int(w) for w in widths)
    if not widths or any(w < 1 for w in widths):
        raise ValueError(f"encoder widths must be a non-empty list of positive ints, got {widths}")
    if blocks_per_stage < 1:
        raise ValueError(f"blocks_per_stage must be at least 1, got {blocks_per_stage}")
    return widths


class FrameEncoder(nn.Module):
    """(N, C, H, W) in [−1, 1] -> (N, widths[-1], H / 2^(S−1), W / 2^(S−1)), S = len(widths)."""

    def __init__(
        self,
        image_channels: int,
        widths: Sequence[int] = (64, 128, 256),
        blocks_per_stage: int = 1,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        widths = _check_widths(widths, blocks_per_stage)
        self.stem = flax_conv_(nn.Conv2d(image_channels, widths[0], 3, padding=1))
        layers: list[nn.Module] = []
        prev = widths[0]
        for i, width in enumerate(widths):
            if i > 0:
                layers.append(nn.AvgPool2d(2))
            for _ in range(blocks_per_stage):
                layers.append(ResidualBlock(prev, width, norm_groups))
                prev = width
        self.stages = nn.Sequential(*layers)
        self.activation_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run_stages(self.stages, self.stem(x), self.activation_checkpointing)


class FrameDecoder(nn.Module):
    """(N, widths[-1], h, w) -> (N, C, h·2^(S−1), w·2^(S−1)) in [−1, 1]: the encoder's mirror."""

    def __init__(
        self,
        image_channels: int,
        widths: Sequence[int] = (64, 128, 256),
        blocks_per_stage: int = 1,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        widths = _check_widths(widths, blocks_per_stage)[::-1]
        layers: list[nn.Module] = []
        prev = widths[0]
        for i, width in enumerate(widths):
            if i > 0:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            for _ in range(blocks_per_stage):
                layers.append(ResidualBlock(prev, width, norm_groups))
                prev = width
        self.stages = nn.Sequential(*layers)
        self.norm = ChannelLayerNorm(prev)
        self.head = flax_conv_(nn.Conv2d(prev, image_channels, 1))
        self.activation_checkpointing = False

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = _run_stages(self.stages, z, self.activation_checkpointing)
        return torch.tanh(self.head(self.norm(z)))
