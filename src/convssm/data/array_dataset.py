"""``ArrayDataset``: windows of your own (N, T, C, H, W) array, for physical fields.

The array lives in one file read by :mod:`convssm.data.arrays` (``.npy`` memory-mapped,
``.h5``/``.hdf5``, ``.zarr``): N sequences of T frames of C channels, or one long
(T, C, H, W) sequence. Any number of channels, any real dtype, any value range: items are
float32 in the data's own (physical) units; the model normalises them (see
:meth:`ArrayDataset.channel_stats`).

Splits (never overlapping):

- ``split_by="sequence"``: the last ``val_fraction`` of the N sequences (at least one) are
  the validation split, all their frames; the rest train.
- ``split_by="time"``: every sequence's first frames train and its last ``val_fraction`` of
  frames (at least one) validate; the only choice for a single (T, C, H, W) sequence.
- ``"auto"`` (default): by sequence when there are several, by time otherwise.

Windows: item ``i`` is ``seq_len`` consecutive frames of sequence ``i // w`` of the split
(``w = windows_per_sequence``, by default as many as fit without overlap), starting at a
frame drawn from ``numpy.random.default_rng([seed, epoch, i])`` within the split's time
range. So items depend on (seed, epoch, index) only, as in the other data sets.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from convssm.data.arrays import ArrayFile, open_array
from convssm.data.stats import ChannelStats, StatsAccumulator

__all__ = ["ArrayDataset", "SPLITS", "SPLIT_BY"]

SPLITS = ("train", "val")
SPLIT_BY = ("auto", "sequence", "time")
_BLOCK_VALUES = 1 << 23  # values per block when streaming statistics (64 MiB of float64)


def _positive_int(value: object, name: str) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class ArrayDataset(Dataset):
    """Seeded windows of ``seq_len`` frames from an (N, T, C, H, W) or (T, C, H, W) array.

    Args:
        path: ``.npy``, ``.h5``/``.hdf5`` or ``.zarr`` file.
        key: the dataset / array name inside an HDF5 file or zarr group (``None``: the only
            one).
        split: ``"train"`` or ``"val"``.
        seq_len: frames per item.
        split_by: ``"auto"``, ``"sequence"`` or ``"time"`` (see the module docstring).
        val_fraction: share of sequences or frames held out for ``"val"``, in [0, 1).
        windows_per_sequence: items per sequence (``None``: the number of non-overlapping
            windows that fit, at least 1).
        seed: base seed of the window starts.

    Items:
        (seq_len, C, H, W) float32, in the array's units.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        key: str | None = None,
        split: str = "train",
        seq_len: int = 16,
        split_by: str = "auto",
        val_fraction: float = 0.1,
        windows_per_sequence: int | None = None,
        seed: int = 0,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if split_by not in SPLIT_BY:
            raise ValueError(f"split_by must be one of {SPLIT_BY}, got {split_by!r}")
        self.seq_len = _positive_int(seq_len, "seq_len")
        if windows_per_sequence is not None:
            windows_per_sequence = _positive_int(windows_per_sequence, "windows_per_sequence")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if isinstance(val_fraction, bool) or not 0.0 <= float(val_fraction) < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        self.path, self.key, self.split, self.seed, self.epoch = Path(path), key, split, seed, 0
        with open_array(path, key) as f:
            shape, self.dtype, where = f.shape, f.dtype, f.where
        self.where = where
        if len(shape) not in (4, 5):
            raise ValueError(
                f"{where}: expected shape (N, T, C, H, W) or (T, C, H, W), got {shape}"
            )
        self.single = len(shape) == 4
        n, t = (1, shape[0]) if self.single else shape[:2]
        self.frame_shape = tuple(shape[-3:])
        if split_by == "auto":
            split_by = "sequence" if n > 1 else "time"
        if split_by == "sequence" and self.single:
            raise ValueError(f"{where}: one (T, C, H, W) sequence can only be split by time")
        self.split_by = split_by
        sequences, (t0, t1) = self._split(n, t, float(val_fraction), where)
        self.sequences, self.time_range = sequences, (t0, t1)
        span = t1 - t0
        if span < self.seq_len:
            raise ValueError(
                f"{where}: the {split!r} split has sequences of {span} frames "
                f"(frames {t0}..{t1 - 1}), fewer than the {self.seq_len} asked for"
            )
        self.windows_per_sequence = windows_per_sequence or max(1, span // self.seq_len)
        self._file: ArrayFile | None = None

    def _split(self, n: int, t: int, fraction: float, where: str):
        if fraction == 0.0:
            if self.split == "val":
                raise ValueError(f"{where}: val_fraction is 0, so there is no 'val' split")
            return list(range(n)), (0, t)
        if self.split_by == "sequence":
            n_val = max(1, round(n * fraction))
            if n_val >= n:
                raise ValueError(
                    f"{where}: {n} sequences cannot be split by sequence with "
                    f"val_fraction={fraction} (no training sequence would remain)"
                )
            seqs = list(range(n - n_val, n)) if self.split == "val" else list(range(n - n_val))
            return seqs, (0, t)
        t_val = max(1, round(t * fraction))
        if t_val >= t:
            raise ValueError(f"{where}: {t} frames cannot be split by time at {fraction}")
        return list(range(n)), ((t - t_val, t) if self.split == "val" else (0, t - t_val))

    # ------------------------------------------------------------------ file handle
    def _array(self) -> ArrayFile:
        """The opened file, opened lazily in each process (handles are not picklable)."""
        if self._file is None:
            self._file = open_array(self.path, self.key)
        return self._file

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"] = None
        return state

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # ------------------------------------------------------------------ items
    @property
    def channels(self) -> int:
        return self.frame_shape[0]

    def __len__(self) -> int:
        return len(self.sequences) * self.windows_per_sequence

    def set_epoch(self, epoch: int) -> None:
        """Draw new window starts for ``epoch``."""
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self.epoch = epoch

    def window(self, index: int) -> tuple[int, int]:
        """(sequence, first frame) of item ``index``, from (seed, epoch, index) only."""
        if not isinstance(index, int | np.integer) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} windows")
        t0, t1 = self.time_range
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        start = t0 + int(rng.integers(0, t1 - t0 - self.seq_len + 1))
        return self.sequences[int(index) // self.windows_per_sequence], start

    def read(self, sequence: int, start: int, length: int) -> np.ndarray:
        """Frames ``[start, start + length)`` of ``sequence``: (length, C, H, W), file dtype."""
        frames = slice(start, start + length)
        f = self._array()
        return f.read(frames) if self.single else f.read((sequence, frames))

    def __getitem__(self, index: int) -> torch.Tensor:
        sequence, start = self.window(index)
        block = self.read(sequence, start, self.seq_len)
        return torch.from_numpy(np.array(block, dtype=np.float32))  # a copy, never the map

    # ------------------------------------------------------------------ statistics
    def channel_stats(self) -> ChannelStats:
        """Per-channel statistics of every frame of this split (not only the windows),
        streamed in float64 blocks of bounded size; non-finite values raise ValueError."""
        acc = StatsAccumulator(self.channels)
        t0, t1 = self.time_range
        per_frame = int(np.prod(self.frame_shape))
        block = max(1, _BLOCK_VALUES // per_frame)
        for sequence in self.sequences:
            for start in range(t0, t1, block):
                frames = self.read(sequence, start, min(block, t1 - start))
                acc.update(frames, f"{self.where} ({self.split} split)")
        return acc.result()

    def check_finite(self) -> None:
        """Stream every frame of this split once; raise ``ValueError`` naming the file, the
        sequence index and the frames at the first non-finite value."""
        t0, t1 = self.time_range
        block = max(1, _BLOCK_VALUES // int(np.prod(self.frame_shape)))
        for sequence in self.sequences:
            for start in range(t0, t1, block):
                frames = np.asarray(self.read(sequence, start, min(block, t1 - start)))
                finite = np.isfinite(frames)
                if not finite.all():
                    first = start + int(np.argwhere(~finite)[0][0])
                    raise ValueError(
                        f"{self.where} ({self.split} split): sequence {sequence} holds "
                        f"{int(frames.size - finite.sum())} non-finite values (NaN or inf) in "
                        f"frames {start}..{start + len(frames) - 1}, the first at frame {first}"
                    )

    def __repr__(self) -> str:
        t0, t1 = self.time_range
        return (
            f"ArrayDataset({self.where}, split={self.split!r} by {self.split_by}, "
            f"{len(self.sequences)} sequences x frames {t0}..{t1 - 1}, seq_len={self.seq_len}, "
            f"{len(self)} windows, frames {self.frame_shape} {self.dtype})"
        )
