"""``VideoFolder``: TECO's 3-D environment datasets (docs/design.md#3-d-environment-data).

Layout: ``<root>/<split>/**/*.npz`` (each with ``video`` (T, H, W, 3) uint8 and ``actions``
(T,) int, as DMLab) or ``<root>/<split>/**/*.mp4`` with an optional same-stem ``.npz``
holding ``actions`` (as Minecraft and Habitat). Each item is a random window of ``seq_len``
frames; its start is drawn from ``(seed, epoch, index)`` alone, so it does not depend on
workers or ranks.

Bad files are never passed over silently: by default the first one raises ``ValueError``
naming it; with ``on_error="skip"`` it is left out with a ``warnings.warn`` naming it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from convssm.data.video_files import VideoFileInfo, probe_video_file, read_video_file

__all__ = ["VideoFolder"]

_FORMATS = ("auto", "npz", "mp4")
_ACTIONS = ("auto", "require", "ignore")
_ON_ERROR = ("raise", "skip")


def _find_files(directory: Path, fmt: str) -> list[Path]:
    mp4 = sorted(p for p in directory.rglob("*") if p.suffix.lower() == ".mp4" and p.is_file())
    npz = sorted(p for p in directory.rglob("*") if p.suffix.lower() == ".npz" and p.is_file())
    if fmt == "mp4" or (fmt == "auto" and mp4):
        return mp4
    return npz


def _layout(root: Path) -> str:
    """What a video folder should look like, and what ``root`` holds instead."""
    expected = (
        f"a video folder holds its videos under <root>/<split>/ ({root}/train/, {root}/test/, "
        "sub-folders allowed; TECO's layout), as .npz files with 'video' (T, H, W, 3) uint8 "
        "(and 'actions') or .mp4 files"
    )
    if not root.is_dir():
        return f"{expected}; {root} does not exist"
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    loose = [p.name for p in root.iterdir() if p.suffix.lower() in (".npz", ".mp4")]
    found = f"{root} holds the folders {folders}" if folders else f"{root} holds no folders"
    if loose:
        found += f" and {len(loose)} video file(s) directly (move them into a split folder)"
    return f"{expected}; {found}"


def _shape(chw: tuple[int, int, int]) -> str:
    c, h, w = chw
    return f"{h}x{w} with {c} channel{'s' if c != 1 else ''}"


class VideoFolder(Dataset):
    """Random ``seq_len``-frame windows from a folder of npz or mp4 videos.

    Args:
        root: dataset root; videos are searched under ``root/split`` recursively.
        split: sub-folder, e.g. ``"train"`` or ``"test"``.
        seq_len: frames per item.
        format: ``"npz"``, ``"mp4"``, or ``"auto"`` (mp4 when any mp4 exists, else npz;
            in mp4 mode, npz files are only read as the mp4s' actions).
        actions: ``"auto"`` returns actions when every video has them (a folder where only
            some have them is an error: batches could not be collated); ``"require"``
            makes a video without actions an error; ``"ignore"`` never returns them.
        on_error: ``"raise"`` (default) or ``"skip"`` (warn and leave the file out).
        seed: base seed of the window starts.
        frame_shape: (C, H, W) every frame must have (a model's); a file with other
            frames is a bad file. Without it the first file's shape sets it: a folder of
            mixed sizes could not be batched.

    Items:
        dict with ``"video"`` (seq_len, C, H, W) float32 in [-1, 1] and, when present,
        ``"actions"`` (seq_len,) int64.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        seq_len: int = 300,
        *,
        format: str = "auto",
        actions: str = "auto",
        on_error: str = "raise",
        seed: int = 0,
        frame_shape: tuple[int, int, int] | None = None,
    ) -> None:
        if format not in _FORMATS:
            raise ValueError(f"format must be one of {_FORMATS}, got {format!r}")
        if actions not in _ACTIONS:
            raise ValueError(f"actions must be one of {_ACTIONS}, got {actions!r}")
        if on_error not in _ON_ERROR:
            raise ValueError(f"on_error must be one of {_ON_ERROR}, got {on_error!r}")
        if not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(f"seq_len must be a positive int, got {seq_len!r}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        directory = Path(root) / split
        if not directory.is_dir():
            raise ValueError(f"dataset directory not found: {directory}; {_layout(Path(root))}")
        self.directory = directory
        self.seq_len = seq_len
        self.on_error = on_error
        self.seed = seed
        self.epoch = 0
        files = _find_files(directory, format)
        if not files:
            kind = "npz or mp4" if format == "auto" else format
            raise ValueError(f"no {kind} video files under {directory}; {_layout(Path(root))}")
        self.files: list[VideoFileInfo] = []
        expected = tuple(frame_shape) if frame_shape is not None else None
        source = "the model"
        for path in files:
            try:
                info = probe_video_file(path)
                if info.num_frames < seq_len:
                    raise ValueError(
                        f"{path}: video has {info.num_frames} frames, shorter than "
                        f"seq_len={seq_len}"
                    )
                if actions == "require" and info.actions_path is None:
                    raise ValueError(f"{path}: no actions found but actions='require'")
                if expected is None:
                    expected, source = info.frame_shape, f"the first file, {path.name},"
                elif info.frame_shape != expected:
                    raise ValueError(
                        f"{path}: frames are {_shape(info.frame_shape)}, but {source} "
                        f"needs {_shape(expected)}"
                    )
            except (ValueError, TypeError) as err:
                self._fail(err)
                continue
            self.files.append(info)
        if not self.files:
            raise ValueError(f"no usable videos under {directory} (all were skipped)")
        with_actions = [f.actions_path is not None for f in self.files]
        if actions == "auto" and any(with_actions) and not all(with_actions):
            missing = next(f.path for f in self.files if f.actions_path is None)
            raise ValueError(
                f"some videos under {directory} have actions and some do not (e.g. {missing}); "
                "pass actions='ignore' to load the videos alone"
            )
        self.with_actions = actions != "ignore" and all(with_actions)

    def _fail(self, err: Exception) -> None:
        if self.on_error == "raise":
            raise err
        warnings.warn(f"skipping bad video file: {err}", RuntimeWarning, stacklevel=3)

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int) -> None:
        """Draw new window starts for ``epoch`` (call before creating the iterator)."""
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self.epoch = epoch

    def window_start(self, index: int) -> int:
        """First frame of item ``index``'s window, from ``(seed, epoch, index)`` only."""
        info = self.files[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return int(rng.integers(0, info.num_frames - self.seq_len + 1))

    def _load(self, index: int) -> dict[str, torch.Tensor]:
        info = self.files[index]
        video, actions = read_video_file(
            info, self.window_start(index), self.seq_len, with_actions=self.with_actions
        )
        frames = torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2)
        item = {"video": frames.to(torch.float32).div_(127.5).sub_(1.0).contiguous()}
        if actions is not None:
            item["actions"] = torch.from_numpy(actions)
        return item

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not isinstance(index, int | np.integer) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} videos")
        for attempt in range(len(self)):
            current = (int(index) + attempt) % len(self)
            try:
                return self._load(current)
            except (ValueError, TypeError) as err:
                # A file that probed fine can still fail to decode (corrupt frame data).
                self._fail(err)
        raise ValueError(f"no video under {self.directory} could be read")
