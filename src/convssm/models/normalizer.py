"""The per-channel map between a data set's physical units and a model's working range.

A model that predicts physical fields (temperature in K, velocity in m/s, ...) holds a
:class:`Normalizer` built from per-channel statistics of its training data (computed by
``convssm.data``, stored in the model's config as a plain mapping with the keys ``count``,
``mean``, ``std``, ``min``, ``max``, each a list of C numbers; this module never imports the
data level). Inputs are mapped on the way in and predictions inverted on the way out, so the
model's users speak the data's units while the network works where its tanh output lives:

    normalize(x)   = (x − center) / half_range      center = (max + min) / 2
    denormalize(y) = y · half_range + center        half_range = (max − min) / 2

so the training data's range maps onto [−1, 1] channel by channel (a z-score would put a
third of the values outside the decoder's tanh range). A constant channel (max = min) gets
half_range 1. Without statistics the normaliser is the identity: video models keep their
frames in [−1, 1] as before.

The two numbers per channel are non-persistent buffers: they follow ``.to()`` and
``.double()``, but the weights file does not hold them — the config does, once.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["Normalizer", "check_statistics", "STAT_KEYS"]

STAT_KEYS = ("count", "mean", "std", "min", "max")


def check_statistics(stats: Any, channels: int, where: str = "normalization") -> dict[str, Any]:
    """Check a statistics mapping for ``channels`` channels; return it with plain floats."""
    if not isinstance(stats, dict):
        raise TypeError(f"{where} must be a mapping of per-channel statistics or null")
    if set(stats) != set(STAT_KEYS):
        raise ValueError(
            f"{where} must have exactly the keys {list(STAT_KEYS)}, got {sorted(stats)}"
        )
    out: dict[str, Any] = {"count": stats["count"]}
    if isinstance(out["count"], bool) or not isinstance(out["count"], int) or out["count"] < 1:
        raise ValueError(f"{where}.count must be a positive int, got {out['count']!r}")
    for key in STAT_KEYS[1:]:
        values = stats[key]
        if not isinstance(values, list | tuple) or len(values) != channels:
            raise ValueError(
                f"{where}.{key} must be a list of {channels} numbers (one per channel), "
                f"got {values!r}"
            )
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
            raise TypeError(f"{where}.{key} must hold numbers, got {values!r}")
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{where}.{key} must be finite, got {values!r}")
        out[key] = [float(v) for v in values]
    if any(lo > hi for lo, hi in zip(out["min"], out["max"], strict=True)):
        raise ValueError(f"{where}: min exceeds max in some channel")
    return out


class Normalizer(nn.Module):
    """Per-channel affine map of (…, C, H, W) tensors; the identity without statistics.

    Args:
        stats: ``None`` or a mapping with ``count``, ``mean``, ``std``, ``min``, ``max``.
        channels: C.
    """

    def __init__(self, stats: dict[str, Any] | None, channels: int) -> None:
        super().__init__()
        self.enabled = stats is not None
        self.stats = None if stats is None else check_statistics(stats, channels)
        center = torch.zeros(channels, 1, 1, dtype=torch.float64)
        half = torch.ones(channels, 1, 1, dtype=torch.float64)
        if self.stats is not None:
            lo = torch.tensor(self.stats["min"], dtype=torch.float64)
            hi = torch.tensor(self.stats["max"], dtype=torch.float64)
            center = ((hi + lo) / 2).view(channels, 1, 1)
            spread = (hi - lo) / 2
            half = torch.where(spread > 0, spread, torch.ones_like(spread)).view(channels, 1, 1)
        self.register_buffer("center", center.float(), persistent=False)
        self.register_buffer("half_range", half.float(), persistent=False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Physical units -> working range: (x − center) / half_range, in x's dtype."""
        if not self.enabled:
            return x
        return (x - self.center.to(x.dtype)) / self.half_range.to(x.dtype)

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        """Working range -> physical units: y · half_range + center, in y's dtype."""
        if not self.enabled:
            return y
        return y * self.half_range.to(y.dtype) + self.center.to(y.dtype)

    def extra_repr(self) -> str:
        return "identity" if not self.enabled else f"channels={self.center.shape[0]}"
