"""Initialisers and norm epsilon of the reference's flax layers, for torch modules.

The reference (NVlabs/ConvSSM, with the encoder and decoder from TECO's ``base.py``) builds
its layers from flax defaults, which differ from torch's:

===========================  =====================================  ============================
layer                        flax default (the reference)           torch default
===========================  =====================================  ============================
``nn.Conv`` / ``nn.Dense``   lecun-normal: truncated normal,        kaiming-uniform(a=√5):
                             std 1/√fan_in; bias 0                  std 1/√(3·fan_in); bias
                                                                    uniform ±1/√fan_in
``nn.ConvTranspose``         lecun-normal, fan_in = in·k·k; bias 0  fan_in taken as out·k·k
``nn.Embed``                 normal, std 1/√features                normal, std 1
``GroupNorm``/``LayerNorm``  eps 1e-6                               eps 1e-5
===========================  =====================================  ============================

"Truncated normal" is JAX's: a normal cut at ±2 of its own σ, rescaled so that the result
has exactly the requested std (σ = std / 0.8796…). ``fan_in`` of a torch weight is
in_channels/groups × kernel area (``weight[0].numel()``); for a transposed convolution it
is in_channels × kernel area (flax's convention, not torch's).

Every function here works in place under ``torch.no_grad`` and returns its argument, like
``torch.nn.init``; pass a ``torch.Generator`` for a reproducible draw.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "FLAX_NORM_EPS",
    "TRUNCATED_NORMAL_STD",
    "variance_scaling_",
    "lecun_normal_",
    "he_normal_",
    "fan_in_normal_",
    "fan_in",
    "flax_conv_",
    "flax_linear_",
    "flax_embedding_",
]

FLAX_NORM_EPS = 1e-6
"""Epsilon of flax's ``GroupNorm`` and ``LayerNorm`` (torch's default is 1e-5)."""

TRUNCATED_NORMAL_STD = 0.87962566103423978
"""Std of a standard normal truncated to [−2, 2] (JAX divides by it)."""

_DISTRIBUTIONS = ("truncated_normal", "normal")


def fan_in(weight: torch.Tensor, *, transposed: bool = False) -> int:
    """Inputs per output unit of a Linear (out, in) or Conv (out, in/groups, *k) weight.

    ``transposed``: a ConvTranspose weight (in, out/groups, *k), whose fan-in is in × k area.
    """
    if weight.dim() < 2:
        raise ValueError(f"fan_in needs a weight with at least 2 dims, got shape {weight.shape}")
    if transposed:
        return weight.shape[0] * weight[0, 0].numel()
    return weight[0].numel()


def variance_scaling_(
    weight: torch.Tensor,
    scale: float,
    fan: int,
    distribution: str = "truncated_normal",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """JAX's ``variance_scaling(scale, "fan_in", distribution)``: std √(scale / fan).

    ``truncated_normal`` cuts the normal at ±2σ and rescales so the std is exact.
    """
    if distribution not in _DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {_DISTRIBUTIONS}, got {distribution!r}")
    if scale <= 0 or fan < 1:
        raise ValueError(f"need scale > 0 and fan >= 1, got scale={scale}, fan={fan}")
    std = math.sqrt(scale / fan)
    with torch.no_grad():
        if distribution == "normal":
            return weight.normal_(0.0, std, generator=generator)
        sigma = std / TRUNCATED_NORMAL_STD
        return nn.init.trunc_normal_(weight, 0.0, sigma, -2 * sigma, 2 * sigma, generator=generator)


def lecun_normal_(
    weight: torch.Tensor,
    fan: int | None = None,
    generator: torch.Generator | None = None,
    *,
    transposed: bool = False,
) -> torch.Tensor:
    """flax's default kernel init: truncated normal, std 1/√fan_in (fan from the weight)."""
    fan = fan_in(weight, transposed=transposed) if fan is None else fan
    return variance_scaling_(weight, 1.0, fan, "truncated_normal", generator)


def he_normal_(
    weight: torch.Tensor, fan: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """JAX's ``he_normal``: truncated normal, std √(2/fan_in) (fan from the weight if None)."""
    fan = fan_in(weight) if fan is None else fan
    return variance_scaling_(weight, 2.0, fan, "truncated_normal", generator)


def fan_in_normal_(
    weight: torch.Tensor, fan: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``variance_scaling(1.0, "fan_in", "normal")``: untruncated normal, std 1/√fan_in."""
    fan = fan_in(weight) if fan is None else fan
    return variance_scaling_(weight, 1.0, fan, "normal", generator)


def _zero_bias(module: nn.Module) -> None:
    if getattr(module, "bias", None) is not None:
        with torch.no_grad():
            module.bias.zero_()


def flax_conv_(
    conv: nn.Conv2d | nn.ConvTranspose2d, generator: torch.Generator | None = None
) -> nn.Module:
    """As flax's ``nn.Conv`` / ``nn.ConvTranspose`` default: lecun-normal kernel, zero bias."""
    if not isinstance(conv, nn.Conv2d | nn.ConvTranspose2d):
        raise TypeError(f"flax_conv_ takes a Conv2d or ConvTranspose2d, got {type(conv).__name__}")
    transposed = isinstance(conv, nn.ConvTranspose2d)
    lecun_normal_(conv.weight, generator=generator, transposed=transposed)
    _zero_bias(conv)
    return conv


def flax_linear_(
    linear: nn.Linear, generator: torch.Generator | None = None, *, truncated: bool = True
) -> nn.Linear:
    """As flax's ``nn.Dense`` default: lecun-normal kernel, zero bias.

    ``truncated=False``: untruncated normal of the same std (``variance_scaling(1, "fan_in",
    "normal")``, the init of TECO's attention projections).
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"flax_linear_ takes an nn.Linear, got {type(linear).__name__}")
    if truncated:
        lecun_normal_(linear.weight, generator=generator)
    else:
        fan_in_normal_(linear.weight, generator=generator)
    _zero_bias(linear)
    return linear


def flax_embedding_(
    embedding: nn.Embedding, generator: torch.Generator | None = None
) -> nn.Embedding:
    """As flax's ``nn.Embed`` default: normal with std 1/√features (torch's: std 1)."""
    if not isinstance(embedding, nn.Embedding):
        raise TypeError(f"flax_embedding_ takes an nn.Embedding, got {type(embedding).__name__}")
    fan_in_normal_(embedding.weight, embedding.embedding_dim, generator)
    return embedding
