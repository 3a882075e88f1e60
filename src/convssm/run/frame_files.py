"""Array files written one generated frame at a time, so that ``convssm generate`` holds no
more than a frame of its horizon, however long.

- :class:`NpyFrameWriter`: an ``.npy`` array (N, T, *frame) or (T, *frame) whose frames are
  written in place (``os.pwrite`` at their offsets, nothing mapped) as they come.
- :class:`NpzFrameWriter`: a compressed ``.npz`` (the file ``np.savez_compressed`` writes:
  a zip of ``.npy`` members, deflated) whose members are written one after the other, a
  member's frames appended as they come.

Both write under a temporary name beside their path and move the complete file onto it
(fsynced, with the mode the umask gives a new file) in ``close``; ``abort`` removes the
unfinished file, and so does leaving their ``with`` block by an exception.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from convssm._files import move_into_place

__all__ = ["NpyFrameWriter", "NpzFrameWriter"]


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The bytes of an ``.npy`` header (format 1.0, C order) for ``shape`` and ``dtype``."""
    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": tuple(shape)}  # fmt: skip
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


class _TempFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")

    def _publish(self) -> Path:
        return move_into_place(self.tmp, self.path)

    def __enter__(self):
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        if kind is not None:
            self.abort()

    def abort(self) -> None:
        self.tmp.unlink(missing_ok=True)


class NpyFrameWriter(_TempFile):
    """An ``.npy`` file of ``shape`` = (N, T, *frame) (or (T, *frame) with ``single``),
    filled by :meth:`put` one time step of a batch of sequences at a time.

    Args:
        num_sequences, num_frames, frame_shape: the array is (N, T, *frame_shape).
        single: the file holds sequence 0 alone, (T, *frame_shape) (N must be 1).
    """

    def __init__(
        self,
        path: str | Path,
        num_sequences: int,
        num_frames: int,
        frame_shape: tuple[int, ...],
        dtype: Any = np.float32,
        single: bool = False,
    ) -> None:
        if single and num_sequences != 1:
            raise ValueError(f"single holds one sequence, got {num_sequences}")
        super().__init__(path)
        self.dtype = np.dtype(dtype)
        self.num_frames, self.frame_shape = num_frames, tuple(frame_shape)
        self.shape = (num_frames, *self.frame_shape)
        if not single:
            self.shape = (num_sequences, *self.shape)
        header = _npy_header(self.shape, self.dtype)
        self.frame_bytes = int(np.prod(frame_shape)) * self.dtype.itemsize
        self.offset = len(header)
        self.expected = num_sequences * num_frames
        self.written = 0
        self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        os.write(self.fd, header)
        os.ftruncate(self.fd, self.offset + self.expected * self.frame_bytes)

    def put(self, first: int, t: int, frames: np.ndarray) -> None:
        """Frames (B, *frame) of sequences ``first .. first + B - 1`` at time ``t``."""
        frames = np.ascontiguousarray(frames, dtype=self.dtype)
        if frames.shape[1:] != self.frame_shape:
            raise ValueError(f"{self.path}: frames {frames.shape[1:]}, expected {self.frame_shape}")
        for j, frame in enumerate(frames):
            index = (first + j) * self.num_frames + t
            os.pwrite(self.fd, frame.tobytes(), self.offset + index * self.frame_bytes)
        self.written += len(frames)

    def close(self) -> Path:
        """Move the complete file onto its path (ValueError when frames are missing)."""
        os.close(self.fd)
        self.fd = -1
        if self.written != self.expected:
            self.abort()
            raise ValueError(f"{self.path}: {self.written} of {self.expected} frames were written")
        return self._publish()

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        super().abort()


class NpzFrameWriter(_TempFile):
    """A compressed ``.npz`` written member by member: :meth:`write` a whole (small) array,
    or :meth:`begin` a member of known shape, :meth:`append` its frames, :meth:`end` it.
    ``np.load`` reads it as it reads a ``np.savez_compressed`` file."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_DEFLATED)
        self.member: Any = None

    def write(self, name: str, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        self.begin(name, array.shape, array.dtype)
        self.append(array)
        self.end()

    def begin(self, name: str, shape: tuple[int, ...], dtype: Any) -> None:
        """Start member ``name`` of ``shape``; its frames (along the first axis) follow."""
        if self.member is not None:
            raise ValueError(f"{self.path}: member {self.name!r} is still open")
        self.name, self.shape, self.dtype = name, tuple(shape), np.dtype(dtype)
        self.left = int(np.prod(self.shape)) * self.dtype.itemsize
        self.member = self.zip.open(f"{name}.npy", "w", force_zip64=True)
        self.member.write(_npy_header(self.shape, self.dtype))

    def append(self, frames: np.ndarray) -> None:
        """The next frames of the open member, (k, *shape[1:])."""
        data = np.ascontiguousarray(frames, dtype=self.dtype).tobytes()
        if len(data) > self.left:
            raise ValueError(f"{self.path}: more data than {self.name!r} of {self.shape} holds")
        self.member.write(data)
        self.left -= len(data)

    def end(self) -> None:
        if self.left:
            raise ValueError(f"{self.path}: {self.name!r} of {self.shape} is not complete")
        self.member.close()
        self.member = None

    def close(self) -> Path:
        """Finish the zip and move it onto its path."""
        if self.member is not None:
            self.abort()
            raise ValueError(f"{self.path}: member {self.name!r} was not ended")
        self.zip.close()
        return self._publish()

    def abort(self) -> None:
        if self.member is not None:
            self.member.close()
            self.member = None
        self.zip.close()
        super().abort()
