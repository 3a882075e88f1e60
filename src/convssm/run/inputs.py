"""What ``convssm generate`` / ``evaluate`` read and write besides the model: input videos
and arrays, predictions in the input's format, pictures and error curves of fields.

- :func:`read_input_video`: a video file (mp4, npz) through :func:`convssm.data.read_video`.

- :func:`read_input_array`: an (N, T, C, H, W) or (T, C, H, W) array file (``.npy``,
  ``.h5``/``.hdf5``, ``.zarr``, read by :func:`convssm.data.read_array`) as float32.
- :func:`write_predictions`: predictions in the input's own format, beside the other outputs
  (``predictions.npy`` for a ``.npy`` input, ``predictions.h5`` with the same dataset key for
  an HDF5 input, ``predictions.zarr`` for zarr), with the input's rank.
- :func:`display_frames`: what the GIF/PNG writers need ([-1, 1], 1 or 3 channels) from
  frames in any units: mapped through the model's normaliser and clamped; fields with other
  than 1 or 3 channels show their first channel.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convssm.data import (
    ARRAY_FORMATS,
    MovingMNIST,
    array_format,
    read_array,
    read_video,
    write_array,
)
from convssm.train.config import ExperimentConfig

__all__ = [
    "is_array_file",
    "read_input_video",
    "read_input_array",
    "fit_video_to_model",
    "check_array_fits",
    "write_predictions",
    "display_frames",
    "moving_mnist_sample",
]


def is_array_file(path: str | Path) -> bool:
    """Whether ``path`` names an array file (by suffix) rather than a video."""
    return Path(path).suffix.lower() in ARRAY_FORMATS


def read_input_array(path: str | Path, key: str | None = None) -> tuple[torch.Tensor, bool]:
    """(sequences (N, T, C, H, W) float32, whether the file held one (T, C, H, W) sequence)."""
    array = read_array(path, key)
    if array.ndim not in (4, 5):
        raise ValueError(
            f"input {str(path)!r}: expected an (N, T, C, H, W) or (T, C, H, W) array, "
            f"got shape {array.shape}"
        )
    single = array.ndim == 4
    video = torch.from_numpy(np.array(array, dtype=np.float32))
    return (video[None] if single else video), single


def write_predictions(
    out_dir: str | Path,
    input_path: str | Path,
    pred: torch.Tensor,
    *,
    single: bool,
    key: str | None = None,
) -> Path:
    """Write ``pred`` (N, horizon, C, H, W) as ``out_dir/predictions<suffix of the input>``."""
    suffix = Path(input_path).suffix.lower()
    fmt = array_format(input_path)
    values = pred.float().cpu().numpy()
    if single:
        values = values[0]
    path = Path(out_dir) / f"predictions{suffix}"
    return write_array(path, values, key=None if fmt == "npy" else key)


def display_frames(
    video: torch.Tensor, normalize: Callable[[torch.Tensor], torch.Tensor] | None
) -> torch.Tensor:
    """(…, C, H, W) in any units -> [-1, 1] with 1 or 3 channels, for pictures only."""
    video = video.float()
    if normalize is not None:
        video = normalize(video).clamp(-1.0, 1.0)
    if video.shape[-3] not in (1, 3):
        video = video[..., :1, :, :]
    return video


def read_input_video(path: str | Path) -> torch.Tensor:
    """A video file (mp4, or npz with ``video``) -> (T, C, H, W) float in [-1, 1], read by
    :func:`convssm.data.read_video`."""

    return torch.from_numpy(read_video(path)).float().div(127.5).sub(1.0)


def fit_video_to_model(video: torch.Tensor, model_cfg: Any, where: str) -> torch.Tensor:
    c, size = model_cfg.image_channels, model_cfg.image_size
    if video.shape[1] == 3 and c == 1:
        video = video.mean(dim=1, keepdim=True)  # RGB -> grey for a grey model
    if video.shape[1] != c:
        raise ValueError(f"{where}: video has {video.shape[1]} channels, the model takes {c}")
    if tuple(video.shape[-2:]) != (size, size):
        raise ValueError(
            f"{where}: frames are {tuple(video.shape[-2:])}, the model takes {size}x{size}"
        )
    return video


def check_array_fits(videos: torch.Tensor, model_cfg: Any, where: str) -> None:
    """An array's frames must match the model exactly (no colour conversion for fields)."""
    c, size = model_cfg.image_channels, model_cfg.image_size
    if videos.shape[2] != c or tuple(videos.shape[-2:]) != (size, size):
        raise ValueError(
            f"{where}: frames of {videos.shape[2]} channels x {videos.shape[-2]}x"
            f"{videos.shape[-1]}, but the model takes {c} channels x {size}x{size}"
        )


def moving_mnist_sample(cfg: ExperimentConfig, num_frames: int, seed: int) -> torch.Tensor:

    if cfg.data.dataset != "moving_mnist":
        raise ValueError("this model was not trained on Moving-MNIST: pass --input")
    return MovingMNIST(
        1,
        num_frames=num_frames,
        image_size=cfg.model.image_size,
        num_digits=cfg.data.num_digits,
        split="eval",
        seed=seed,
        digits=cfg.data.mnist_path,
        **cfg.data.options,
    )[0]
