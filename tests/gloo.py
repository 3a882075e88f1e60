"""Joining a gloo process group from a worker that a test spawned: one place for the setup."""

from __future__ import annotations

import datetime

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
