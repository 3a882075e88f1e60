"""Joining a gloo process group from a worker that a test spawned: one place for the setup."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator

import torch.distributed as dist


def init_gloo(rank: int, world: int, init_file: str, timeout_s: float = 60) -> None:
    """Join the ``world``-rank gloo group rendezvousing at ``init_file`` (a fresh path)."""
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=timeout_s),
    )


def close_gloo() -> None:
    """Leave the group once every rank is done with it.

    The barrier keeps a rank from tearing down its connections while a peer is still
    finishing its last collective: without it, gloo now and then aborts that peer
    ("terminate called without an active exception", SIGABRT) at shutdown.
    """
    dist.barrier()
    dist.destroy_process_group()


@contextlib.contextmanager
def gloo_group(rank: int, world: int, init_file: str, timeout_s: float = 60) -> Iterator[None]:
    """``init_gloo`` for the body; on success a barrier, then the group is destroyed.

    On an exception the barrier is skipped (the other ranks may never reach it) and the
    group is destroyed at once, so the failing rank exits and the test reports it.
    """
    init_gloo(rank, world, init_file, timeout_s)
    try:
        yield
    except BaseException:
        dist.destroy_process_group()
        raise
    close_gloo()
