"""Write MazeWorld videos in TECO's DMLab layout, for ``VideoFolder`` and ``convssm data``.

``<root>/<split>/<index>.npz`` (index zero-padded so that sorted names are index order) with
``video`` (T, H, W, 3) uint8 and ``actions`` (T,) int64, compressed; plus
``<root>/mazeworld-<split>.json`` recording the generator (version, seed, split, parameters).

Every npz is written atomically. The manifest is written first with ``"complete": false``
and rewritten with ``true`` at the end, so an interrupted write is resumed exactly by running
the same command again (existing files are complete, and the manifest proves they were made
by the same generator); a different generator in the same place is an error unless
``overwrite``.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from convssm._files import atomic_write, atomic_write_text
from convssm.data.maze_world import MAZE_GENERATOR_VERSION, MazeWorld

__all__ = ["write_maze_folder", "maze_manifest_path", "MAZE_FOLDER_FORMAT"]

MAZE_FOLDER_FORMAT = "convssm-mazeworld-npz"


def maze_manifest_path(root: str | os.PathLike, split: str) -> Path:
    """Where the manifest of ``split`` lives (beside the split folder, not inside it)."""
    return Path(root) / f"mazeworld-{split}.json"


def _write_npz(path: Path, video: np.ndarray, actions: np.ndarray) -> None:
    """An npz as ``np.savez_compressed`` writes it, at zlib level 1 (3-4x faster than its 6,
    files ~10 % larger), atomically."""

    def write(tmp: str) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for name, array in (("video", video), ("actions", actions)):
                with zf.open(name + ".npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)

    atomic_write(path, write)


def write_maze_folder(
    root: str | os.PathLike,
    num_videos: int,
    *,
    num_frames: int = 300,
    image_size: int = 64,
    seed: int = 0,
    split: str = "train",
    overwrite: bool = False,
    progress: bool = False,
    **options,
) -> Path:
    """Generate ``MazeWorld(num_videos, ...)`` into ``root/split`` (see the module docstring).

    Returns:
        the manifest path.
    """
    dataset = MazeWorld(
        num_videos, num_frames=num_frames, image_size=image_size, seed=seed, split=split, **options
    )
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root} exists and is not a directory")
    folder = root / split
    manifest_path = maze_manifest_path(root, split)
    width = max(5, len(str(num_videos - 1)))
    manifest = {
        "format": MAZE_FOLDER_FORMAT,
        "generator_version": MAZE_GENERATOR_VERSION,
        "seed": seed,
        "split": split,
        "num_videos": num_videos,
        "params": dataset.params.to_dict(),
        "name_width": width,
        "layout": "TECO DMLab: <split>/<index>.npz with video (T, H, W, 3) uint8, actions (T,)",
        "actions": list(dataset.actions),
        "complete": False,
    }
    existing = sorted(folder.glob("*.npz")) if folder.is_dir() else []
    if overwrite:
        for path in existing:
            path.unlink()
        existing = []
    elif manifest_path.exists() or existing:
        _check_resumable(manifest_path, manifest, folder, existing)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1))
    indices = range(num_videos)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=f"MazeWorld {split}", unit="video")
    for i in indices:
        path = folder / f"{i:0{width}d}.npz"
        if path.exists():
            continue  # written whole by an earlier run of the same generator
        video, actions = dataset.video_uint8(i)
        _write_npz(path, video, actions)
    manifest["complete"] = True
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1))
    return manifest_path


def _check_resumable(
    manifest_path: Path, manifest: dict, folder: Path, existing: list[Path]
) -> None:
    if not manifest_path.is_file():
        raise ValueError(
            f"{folder} already holds {len(existing)} npz files but no {manifest_path.name}: "
            "not a MazeWorld folder of this split; pass overwrite=True (--overwrite) to replace"
        )
    try:
        old = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"corrupt manifest {manifest_path}: {err}") from err
    differ = [k for k in manifest if k != "complete" and old.get(k) != manifest[k]]
    if differ:
        raise ValueError(
            f"{manifest_path} records a different MazeWorld ({', '.join(differ)} differ); "
            "pass overwrite=True (--overwrite) to replace it"
        )
    pattern = re.compile(rf"\d{{{manifest['name_width']}}}\.npz")
    strays = [p.name for p in existing if not pattern.fullmatch(p.name)]
    strays += [p.name for p in existing if pattern.fullmatch(p.name)
               and int(p.stem) >= manifest["num_videos"]]  # fmt: skip
    if strays:
        raise ValueError(f"{folder} holds npz files this MazeWorld does not write: {strays[:3]}")
