"""``CodeFolder``: a video folder's frames as cached tokenizer codes (``convssm data encode``).

Layout of a cache (written by ``convssm.run.encode_folder``)::

    <cache>/manifest.json                 format, tokenizer, codebook_size, latent_size, ...
    <cache>/<split>/**/<stem>.npz         codes (T, h, w) uint16 or int32; actions (T,) int64
                                          when the source video has them

mirroring the source folder's ``<split>/**`` tree file for file. Items are random windows of
``seq_len`` frames whose start is drawn from ``(seed, epoch, index)`` alone, as in
:class:`~convssm.data.VideoFolder`. A cache whose manifest is missing (an interrupted
encoding) is refused.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["CodeFolder", "CODES_FORMAT", "CODES_VERSION", "read_codes_manifest"]

CODES_FORMAT = "convssm.codes"
CODES_VERSION = 1
MANIFEST_NAME = "manifest.json"


def read_codes_manifest(root: str | os.PathLike) -> dict[str, Any]:
    """The checked manifest of a code cache (ValueError naming the file when it is not one)."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise ValueError(
            f"{path} is missing: {root} is not a finished code cache (run `convssm data encode`)"
        )
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != CODES_FORMAT:
        raise ValueError(f"{path} does not describe a convssm code cache")
    if meta.get("format_version") != CODES_VERSION:
        raise ValueError(
            f"{path} has format_version {meta.get('format_version')}, this convssm reads "
            f"{CODES_VERSION}"
        )
    for key in ("codebook_size", "latent_size"):
        if not isinstance(meta.get(key), int) or meta[key] < 1:
            raise ValueError(f"{path}: {key} must be a positive int, got {meta.get(key)!r}")
    return meta


def _num_frames(path: Path) -> tuple[int, bool]:
    """(T, has actions) from the npz headers, without reading the arrays."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if "codes.npy" not in names:
                raise ValueError(f"{path} has no array 'codes'")
            with zf.open("codes.npy") as f:
                version = np.lib.format.read_magic(f)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, _ = read(f)
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"unreadable code file {path}: {err}") from err
    if len(shape) != 3:
        raise ValueError(f"{path}: codes must have shape (T, h, w), got {shape}")
    return int(shape[0]), "actions.npy" in names


class CodeFolder(Dataset):
    """Random ``seq_len``-frame windows of cached codes.

    Args:
        root: the cache directory (holding ``manifest.json``).
        split: sub-folder, e.g. ``"train"`` or ``"test"``.
        seq_len: frames per item.
        actions: ``"auto"`` (return them when every file has them), ``"require"`` or
            ``"ignore"``.
        seed: base seed of the window starts.

    Items: dict with ``"codes"`` (seq_len, h, w) int64 and, when present, ``"actions"``
    (seq_len,) int64.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        seq_len: int = 300,
        *,
        actions: str = "auto",
        seed: int = 0,
    ) -> None:
        if actions not in ("auto", "require", "ignore"):
            raise ValueError(f"actions must be 'auto', 'require' or 'ignore', got {actions!r}")
        if not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(f"seq_len must be a positive int, got {seq_len!r}")
        self.manifest = read_codes_manifest(root)
        self.codebook_size = self.manifest["codebook_size"]
        self.latent_size = self.manifest["latent_size"]
        directory = Path(root) / split
        if not directory.is_dir():
            raise ValueError(f"code directory not found: {directory}")
        files = sorted(p for p in directory.rglob("*.npz") if p.is_file())
        if not files:
            raise ValueError(f"no code files under {directory}")
        self.directory, self.seq_len, self.seed, self.epoch = directory, seq_len, seed, 0
        self.files: list[tuple[Path, int]] = []
        has = []
        for path in files:
            t, a = _num_frames(path)
            if t < seq_len:
                raise ValueError(f"{path}: {t} frames, shorter than seq_len={seq_len}")
            self.files.append((path, t))
            has.append(a)
        if actions == "require" and not all(has):
            missing = files[has.index(False)]
            raise ValueError(f"{missing}: no actions but actions='require'")
        if actions == "auto" and any(has) and not all(has):
            raise ValueError(f"some code files under {directory} have actions and some do not")
        self.with_actions = actions != "ignore" and all(has)

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int) -> None:
        """Draw new window starts for ``epoch``."""
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self.epoch = epoch

    def window_start(self, index: int) -> int:
        """First frame of item ``index``'s window, from ``(seed, epoch, index)`` only."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return int(rng.integers(0, self.files[index][1] - self.seq_len + 1))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not isinstance(index, int | np.integer) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} code files")
        path, _ = self.files[index]
        s = self.window_start(int(index))
        try:
            with np.load(path, allow_pickle=False) as data:
                codes = data["codes"][s : s + self.seq_len]
                acts = data["actions"][s : s + self.seq_len] if self.with_actions else None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
            raise ValueError(f"unreadable code file {path}: {err}") from err
        k, h = self.codebook_size, self.latent_size
        if codes.shape[1:] != (h, h):
            raise ValueError(f"{path}: codes must be (T, {h}, {h}), got {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() >= k):
            raise ValueError(f"{path}: codes outside [0, {k})")
        item = {"codes": torch.from_numpy(codes.astype(np.int64))}
        if acts is not None:
            item["actions"] = torch.from_numpy(acts.astype(np.int64))
        return item
