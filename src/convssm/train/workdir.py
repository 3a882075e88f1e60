"""A run's workdir: one writer at a time, and a new run that never destroys an old one.

:class:`WorkdirLock` holds an exclusive ``fcntl.flock`` on ``<workdir>/.lock`` for the run's
life. The OS releases it when the process ends in any way (``kill -9`` included), so a lock
is never stale; the file itself stays and records the holder's PID and host, which a
refused second process names.

:func:`claim_workdir` decides what a run does with what it finds:

- an empty or absent workdir: a fresh run (with ``resume``, saying that it starts fresh);
- a workdir holding a run (a checkpoint or a training log) and ``resume``: continue it;
- a workdir holding a run, no ``resume``: refused, unless ``overwrite``, which moves the old
  run into ``<workdir>/archive/<UTC time>/`` (never deletes it) and starts fresh.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from pathlib import Path

from convssm._files import fsync_dir

__all__ = ["WorkdirBusyError", "WorkdirLock", "claim_workdir", "holds_run", "archive_run"]

LOCK_NAME = ".lock"
ARCHIVE_NAME = "archive"
# what a run writes in its workdir (moved aside together by --overwrite)
RUN_ENTRIES = (
    "checkpoints",
    "train_log.jsonl",
    "train_log.csv",
    "val_log.jsonl",
    "config.yaml",
    "tensorboard",
)


class WorkdirBusyError(ValueError):
    """Another process holds the workdir's lock."""


class WorkdirLock:
    """An exclusive lock on ``<workdir>/.lock``, held until :meth:`release` (or death)."""

    def __init__(self, workdir: str | os.PathLike) -> None:
        self.workdir = Path(workdir)
        self.path = self.workdir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> WorkdirLock:
        self.workdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(fd, 256, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise WorkdirBusyError(
                    f"workdir {str(self.workdir)!r} is in use by another run ({holder}); "
                    "wait for it to finish, stop it, or choose another --workdir"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> WorkdirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holds_run(workdir: str | os.PathLike) -> bool:
    """Whether ``workdir`` holds a run: a checkpoint folder or a non-empty training log."""
    workdir = Path(workdir)
    ckpts = workdir / "checkpoints"
    if ckpts.is_dir() and any(p.name.startswith("step_") for p in ckpts.iterdir()):
        return True
    return any(
        (workdir / name).is_file() and (workdir / name).stat().st_size > 0
        for name in ("train_log.jsonl", "val_log.jsonl")
    )


def archive_run(workdir: str | os.PathLike) -> Path | None:
    """Move the run's files into ``<workdir>/archive/<UTC time>/``; return that folder
    (``None`` when there was nothing to move). Nothing is deleted."""
    workdir = Path(workdir)
    present = [workdir / name for name in RUN_ENTRIES if (workdir / name).exists()]
    if not present:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = workdir / ARCHIVE_NAME / stamp
    n = 1
    while dest.exists():
        n += 1
        dest = workdir / ARCHIVE_NAME / f"{stamp}-{n}"
    dest.mkdir(parents=True)
    for path in present:
        os.replace(path, dest / path.name)
    fsync_dir(dest)
    fsync_dir(workdir)
    return dest


def claim_workdir(
    workdir: str | os.PathLike, *, resume: bool, overwrite: bool
) -> tuple[bool, str | None]:
    """Decide whether the run in ``workdir`` resumes; return (resume, a note for the user
    when the outcome is not the one asked for, else None).

    Call with the workdir's lock held. Raises ``ValueError`` for a workdir that holds a run
    when neither ``resume`` nor ``overwrite`` is given (nothing is touched).
    """
    workdir = Path(workdir)
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    has_ckpt = (workdir / "checkpoints").is_dir() and any(
        p.name.startswith("step_") for p in (workdir / "checkpoints").iterdir()
    )
    if resume:
        if has_ckpt:
            return True, None
        moved = archive_run(workdir)  # logs of a run that never checkpointed: kept aside
        note = f" (its logs without a checkpoint moved to {str(moved)!r})" if moved else ""
        return False, f"no checkpoint in {str(workdir)!r}: starting a fresh run{note}"
    if holds_run(workdir):
        if not overwrite:
            raise ValueError(
                f"workdir {str(workdir)!r} already holds a run; add --resume to continue it, "
                "choose another --workdir, or add --overwrite to move the old run into "
                f"{str(workdir / ARCHIVE_NAME)!r} and start afresh"
            )
        moved = archive_run(workdir)
        return False, f"the previous run in {str(workdir)!r} was moved to {str(moved)!r}"
    archive_run(workdir)  # stray files of a run that logged nothing (config.yaml): aside
    return False, None
