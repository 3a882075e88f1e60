"""Atomic file writes shared by every level (model directories, checkpoints, eval sets).

A crash at any moment leaves either the old file or the complete new one: the data goes to a
temporary file in the same directory, is fsynced, renamed over the target with
``os.replace``, and the directory is fsynced so the rename itself is durable.
This module imports nothing from ``convssm``.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "fsync_file",
    "fsync_dir",
    "atomic_write",
    "move_into_place",
    "atomic_write_bytes",
    "atomic_write_text",
    "sha256_file",
    "default_mode",
]


def _umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):  # pragma: no cover - not Linux
        pass
    mask = os.umask(0o022)  # pragma: no cover
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def default_mode(directory: bool = False) -> int:
    """The mode ``open``/``mkdir`` would give a new file (0666) or folder (0777) under the
    current umask; ``tempfile`` makes 0600/0700 ones, which atomic writes widen to this."""
    return (0o777 if directory else 0o666) & ~_umask()


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file's data to disk."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory entry (a rename or a new file) to disk, where the OS allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_into_place(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Finish an atomic write: give the written ``tmp`` the umask's mode (``tempfile`` makes
    0600), fsync it, rename it onto ``path`` and fsync the directory."""
    path = Path(path)
    os.chmod(tmp, default_mode())
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` to produce the file, then move it atomically onto ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        return move_into_place(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def relative_command(command: str, root: str | os.PathLike | None = None) -> str:
    """``command`` (a shell command line) with every absolute path inside ``root`` (default:
    the working directory) written relative to it, also after ``=`` (``--set k=/abs/p``): a
    recorded command run again from ``root`` reads the same files, and a published card
    holds no machine's paths. Paths outside ``root`` are left as they are."""
    base = Path(root if root is not None else os.getcwd()).resolve()

    def word(w: str) -> str:
        key, eq, value = ("", "", w) if w.startswith("/") else w.rpartition("=")
        if Path(value).is_absolute():
            try:
                value = Path(value).resolve().relative_to(base).as_posix()
            except ValueError:
                return w
        return f"{key}{eq}{value}"

    return shlex.join(word(w) for w in shlex.split(command))
