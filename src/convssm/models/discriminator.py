"""PatchDiscriminator: the PatchGAN critic of pix2pix and VQ-GAN, for the tokenizer's
optional adversarial loss.

    conv4×4 s2 → LeakyReLU(0.2); (num_layers − 1) × [conv4×4 s2 → GN → LeakyReLU];
    conv4×4 s1 → GN → LeakyReLU; conv4×4 s1 → 1 logit per patch
    (N, C, H, W) -> (N, 1, H', W')

GroupNorm where pix2pix has BatchNorm (no batch statistics to synchronise under DDP).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PatchDiscriminator"]


class PatchDiscriminator(nn.Module):
    """Args: image_channels; channels of the first layer (doubled per layer, at most 8×);
    num_layers strided layers; norm_groups of the GroupNorms."""

    def __init__(
        self,
        image_channels: int = 3,
        channels: int = 64,
        num_layers: int = 3,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        widths = [channels * min(2**i, 8) for i in range(num_layers + 1)]
        bad = [w for w in widths[1:] if w % norm_groups]
        if bad:
            raise ValueError(f"discriminator widths {bad} must be divisible by {norm_groups}")
        layers: list[nn.Module] = [
            nn.Conv2d(image_channels, widths[0], 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        for i in range(1, num_layers + 1):
            stride = 2 if i < num_layers else 1
            layers += [
                nn.Conv2d(widths[i - 1], widths[i], 4, stride=stride, padding=1),
                nn.GroupNorm(norm_groups, widths[i]),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Conv2d(widths[-1], 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        for m in self.modules():  # pix2pix / VQ-GAN initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
