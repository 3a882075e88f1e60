"""Per-channel statistics of (…, C, H, W) data, streamed in float64.

:class:`ChannelStats` holds, per channel, the count of values, their mean, standard
deviation (population), minimum and maximum. :class:`StatsAccumulator` builds them from
blocks of any size, one block at a time, so memory stays that of one block: each block's
(count, mean, M2) is computed in float64 and merged with Chan et al.'s pairwise update,
which is exact up to float64 rounding however the data are cut (no catastrophic
cancellation as in a running sum of squares). :func:`channel_stats_ref` is the plain
reference (the whole array in float64 at once); tests pin the two together.

``ChannelStats.to_dict()`` is the plain mapping ``{"count", "mean", "std", "min", "max"}``
that a model stores in its config to normalise its inputs (models never import this module).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ChannelStats", "StatsAccumulator", "channel_stats_ref"]


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel count, mean, std (population), min and max, each a tuple of C floats."""

    count: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    min: tuple[float, ...]
    max: tuple[float, ...]

    @property
    def channels(self) -> int:
        return len(self.mean)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": int(self.count),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "min": [float(v) for v in self.min],
            "max": [float(v) for v in self.max],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChannelStats:
        keys = {"count", "mean", "std", "min", "max"}
        if not isinstance(d, dict) or set(d) != keys:
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"channel statistics need exactly the keys {sorted(keys)}, got {got}")
        lists = [tuple(float(v) for v in d[k]) for k in ("mean", "std", "min", "max")]
        if len({len(v) for v in lists}) != 1:
            raise ValueError("channel statistics: mean, std, min and max differ in length")
        return cls(int(d["count"]), *lists)


class StatsAccumulator:
    """Streamed per-channel statistics: ``update(block)`` any number of times, then
    ``result()``.

    Args:
        channels: C.
        channel_axis: the axis of C in every block, counted from the end (default -3, as in
            (…, C, H, W)).
    """

    def __init__(self, channels: int, channel_axis: int = -3) -> None:
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        self.channels = channels
        self.channel_axis = channel_axis
        self.count = 0
        self.mean = np.zeros(channels, dtype=np.float64)
        self.m2 = np.zeros(channels, dtype=np.float64)
        self.min = np.full(channels, np.inf)
        self.max = np.full(channels, -np.inf)

    def update(self, block: np.ndarray, where: str = "data") -> None:
        """Add a block (…, C, H, W) of any real dtype; non-finite values raise ValueError."""
        block = np.moveaxis(np.asarray(block), self.channel_axis, 0)
        if block.shape[0] != self.channels:
            raise ValueError(
                f"{where}: a block has {block.shape[0]} channels, expected {self.channels}"
            )
        x = block.reshape(self.channels, -1).astype(np.float64, copy=False)
        n = x.shape[1]
        if n == 0:
            return
        if not np.isfinite(x).all():
            bad = int(x.size - np.isfinite(x).sum())
            raise ValueError(f"{where} holds {bad} non-finite values (NaN or inf)")
        mean = x.mean(axis=1)
        m2 = ((x - mean[:, None]) ** 2).sum(axis=1)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total
        np.minimum(self.min, x.min(axis=1), out=self.min)
        np.maximum(self.max, x.max(axis=1), out=self.max)

    def result(self) -> ChannelStats:
        if self.count == 0:
            raise ValueError("no values were seen: cannot compute channel statistics")
        std = np.sqrt(self.m2 / self.count)
        return ChannelStats(
            count=self.count,
            mean=tuple(float(v) for v in self.mean),
            std=tuple(float(v) for v in std),
            min=tuple(float(v) for v in self.min),
            max=tuple(float(v) for v in self.max),
        )


def channel_stats_ref(array: np.ndarray, channel_axis: int = -3) -> ChannelStats:
    """Plain reference of :class:`StatsAccumulator`: the whole array in float64 at once."""
    x = np.moveaxis(np.asarray(array, dtype=np.float64), channel_axis, 0)
    x = x.reshape(x.shape[0], -1)
    return ChannelStats(
        count=int(x.shape[1]),
        mean=tuple(float(v) for v in x.mean(axis=1)),
        std=tuple(float(math.sqrt(v)) for v in x.var(axis=1)),
        min=tuple(float(v) for v in x.min(axis=1)),
        max=tuple(float(v) for v in x.max(axis=1)),
    )
