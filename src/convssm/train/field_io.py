"""Arrays in and out of ``convssm generate`` / ``evaluate``, and pictures of physical fields.

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

import numpy as np
import torch

__all__ = ["is_array_file", "read_input_array", "write_predictions", "display_frames"]


def is_array_file(path: str | Path) -> bool:
    """Whether ``path`` names an array file (by suffix) rather than a video."""
    from convssm.data import ARRAY_FORMATS

    return Path(path).suffix.lower() in ARRAY_FORMATS


def read_input_array(path: str | Path, key: str | None = None) -> tuple[torch.Tensor, bool]:
    """(sequences (N, T, C, H, W) float32, whether the file held one (T, C, H, W) sequence)."""
    from convssm.data import read_array

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
    from convssm.data import array_format, write_array

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
