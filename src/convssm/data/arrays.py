"""One reader and one writer for array files: ``.npy``, ``.h5``/``.hdf5`` and ``.zarr``.

- ``.npy``: opened memory-mapped (nothing is read until a slice is taken); no keys.
- ``.h5`` / ``.hdf5``: read with h5py (``pip install 'convssm[arrays]'``); ``key`` names the
  dataset (``"fields/u"``); without a key, the file must hold exactly one dataset.
- ``.zarr``: read with zarr (the same extra); a zarr array, or a group with ``key`` naming
  the array (without a key, the group must hold exactly one array).

Every error names the file and the problem (missing file, unknown suffix, missing key,
non-numeric dtype, missing optional package). Writing is atomic: a crash leaves either the
old file or the complete new one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convssm._files import atomic_write, default_mode, fsync_dir

__all__ = [
    "ARRAY_FORMATS",
    "ArrayFile",
    "array_format",
    "channel_labels",
    "open_array",
    "read_array",
    "write_array",
]

ARRAY_FORMATS = {".npy": "npy", ".h5": "hdf5", ".hdf5": "hdf5", ".zarr": "zarr"}
_EXTRA = "pip install 'convssm[arrays]'"


def array_format(path: str | os.PathLike) -> str:
    """``"npy"``, ``"hdf5"`` or ``"zarr"`` from the file's suffix (ValueError otherwise)."""
    suffix = Path(path).suffix.lower()
    if suffix not in ARRAY_FORMATS:
        raise ValueError(
            f"{str(path)!r}: unsupported array file type {suffix or '(none)'!r}; "
            f"expected one of {', '.join(ARRAY_FORMATS)}"
        )
    return ARRAY_FORMATS[suffix]


def _import(name: str, path: Path):
    try:
        return __import__(name)
    except ImportError as err:
        raise ValueError(f"reading or writing {str(path)!r} needs {name}: {_EXTRA}") from err


def _check_dtype(dtype: np.dtype, where: str) -> None:
    dtype = np.dtype(dtype)
    if dtype == np.bool_ or not (
        np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)
    ):
        raise TypeError(f"{where}: expected a real numeric array (float or int), got {dtype}")


@dataclass
class ArrayFile:
    """An opened array: ``shape``, ``dtype`` and slicing (``read``) without loading it all.

    Attributes:
        path: the file (or zarr directory).
        format: ``"npy"``, ``"hdf5"`` or ``"zarr"``.
        key: the dataset / array name inside the file, or ``None``.
        array: the array-like (numpy memmap, h5py Dataset or zarr Array).
    """

    path: Path
    format: str
    key: str | None
    array: Any
    _handle: Any = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.array.dtype)

    @property
    def where(self) -> str:
        """The file and key, for messages."""
        return f"{str(self.path)!r}" + (f" (key {self.key!r})" if self.key else "")

    def read(self, index: Any = ...) -> np.ndarray:
        """``array[index]`` as an in-memory numpy array."""
        return np.asarray(self.array[index])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> ArrayFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _h5_datasets(h5py, group) -> list[str]:
    names: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            names.append(name)

    group.visititems(visit)
    return names


def _pick(key: str | None, names: list[str], path: Path, kind: str) -> str:
    if key is None:
        if len(names) == 1:
            return names[0]
        raise ValueError(
            f"{str(path)!r} holds {len(names)} {kind}s ({', '.join(names) or 'none'}); "
            "name one with a key"
        )
    if key not in names:
        raise ValueError(f"{str(path)!r} has no {kind} {key!r} (it has: {', '.join(names)})")
    return key


def open_array(path: str | os.PathLike, key: str | None = None) -> ArrayFile:
    """Open an array file for reading (see the module docstring for the formats and keys)."""
    path = Path(path)
    fmt = array_format(path)
    if not path.exists():
        raise ValueError(f"array file {str(path)!r} does not exist")
    if fmt == "npy":
        if key is not None:
            raise ValueError(f"{str(path)!r}: .npy files hold one array and take no key")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise ValueError(f"unreadable .npy file {str(path)!r}: {err}") from None
        opened = ArrayFile(path, fmt, None, array)
    elif fmt == "hdf5":
        h5py = _import("h5py", path)
        try:
            handle = h5py.File(path, "r")
        except OSError as err:
            raise ValueError(f"unreadable HDF5 file {str(path)!r}: {err}") from None
        try:
            name = _pick(key, _h5_datasets(h5py, handle), path, "dataset")
        except ValueError:
            handle.close()
            raise
        opened = ArrayFile(path, fmt, name, handle[name], handle)
    else:
        zarr = _import("zarr", path)
        try:
            node = zarr.open(str(path), mode="r")
        except Exception as err:  # noqa: BLE001 - zarr raises many kinds for a bad store
            raise ValueError(f"unreadable zarr store {str(path)!r}: {err}") from None
        if isinstance(node, zarr.Array):
            if key is not None:
                raise ValueError(f"{str(path)!r} is a single zarr array and takes no key")
            opened = ArrayFile(path, fmt, None, node)
        else:
            names = sorted(name for name, _ in node.arrays())
            name = _pick(key, names, path, "array")
            opened = ArrayFile(path, fmt, name, node[name])
    try:
        _check_dtype(opened.dtype, opened.where)
    except TypeError:
        opened.close()
        raise
    return opened


CHANNEL_ATTRS = {"channel_names": "channel_names", "units": "channel_units"}  # -> data.*


def _strings(value: Any) -> list[str]:
    """An attribute's value as a list of strings (HDF5 stores bytes or numpy arrays)."""
    if isinstance(value, (str, bytes)):
        value = [value]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(value).ravel()]


def channel_labels(
    path: str | os.PathLike, key: str | None = None
) -> tuple[list[str] | None, list[str] | None]:
    """The array's ``channel_names`` and ``units`` attributes (HDF5 and zarr; ``None`` where
    absent, and for ``.npy``), each one string per channel (ValueError naming the file when
    their length is not its channel count, axis -3)."""
    with open_array(path, key) as opened:
        attrs = getattr(opened.array, "attrs", None)
        if attrs is None:
            return None, None
        channels = opened.shape[-3] if len(opened.shape) >= 3 else None
        out: list[list[str] | None] = []
        for attr, config_key in CHANNEL_ATTRS.items():
            if attr not in attrs:
                out.append(None)
                continue
            values = _strings(attrs[attr])
            if channels is not None and len(values) != channels:
                raise ValueError(
                    f"{opened.where}: its {attr!r} attribute has {len(values)} entries for "
                    f"{channels} channels; give one per channel (or set data.{config_key} "
                    "in the config)"
                )
            out.append(values)
        return out[0], out[1]


def read_array(path: str | os.PathLike, key: str | None = None) -> np.ndarray:
    """The whole array of a file, in memory."""
    with open_array(path, key) as f:
        return f.read()


def _write_npy(tmp: str, array: np.ndarray) -> None:
    with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a name
        np.save(f, array, allow_pickle=False)


def _write_zarr(path: Path, array: np.ndarray, key: str | None) -> None:
    zarr = _import("zarr", path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, default_mode(directory=True))  # mkdtemp makes 0700; follow the umask
    try:
        if key is None:
            out = zarr.create_array(str(tmp), shape=array.shape, dtype=array.dtype, overwrite=True)
        else:
            group = zarr.open_group(str(tmp), mode="w")
            out = group.create_array(key, shape=array.shape, dtype=array.dtype)
        out[...] = array
        if path.exists():  # replace: move the old store aside, then drop it
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(path.parent)


def write_array(path: str | os.PathLike, array: np.ndarray, key: str | None = None) -> Path:
    """Write ``array`` to ``path`` in the format its suffix names, atomically.

    ``key`` names the dataset (HDF5; default ``"data"``) or the array inside a zarr group
    (zarr; default: a plain zarr array). ``.npy`` takes no key.
    """
    path = Path(path)
    fmt = array_format(path)
    array = np.ascontiguousarray(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "npy":
        if key is not None:
            raise ValueError(f"{str(path)!r}: .npy files hold one array and take no key")
        return atomic_write(path, lambda tmp: _write_npy(tmp, array))
    if fmt == "hdf5":
        h5py = _import("h5py", path)

        def write(tmp: str) -> None:
            with h5py.File(tmp, "w") as f:
                f.create_dataset(key or "data", data=array)

        return atomic_write(path, write)
    _write_zarr(path, array, key)
    return path
