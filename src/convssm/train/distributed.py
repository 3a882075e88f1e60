"""torch.distributed set-up that runs unchanged as one process or under ``torchrun``.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; when they are present :func:`init_distributed` joins the process group
(NCCL when the run uses CUDA, gloo on CPU) and picks ``cuda:LOCAL_RANK``; when they are
absent the run is a single process and no process group is created. Only rank 0 logs,
writes files and shows a progress bar (:attr:`DistributedContext.is_main`).

Context parallelism (``train.sequence_parallel`` N): :func:`split_sequence_groups` cuts the
world into groups of N consecutive ranks (one node's GPUs first, where the state
exchange is cheapest) that share each sequence; rank r is part ``r % N`` of its sequence and
data-parallel replica ``r // N``. Gradients are still all-reduced over the whole world by
DDP (a mean over W = D·N ranks); the training step scales each rank's loss by N, so the
result is the sum over a sequence group averaged over the D replicas. Nothing here is
backend-specific (gloo and NCCL alike).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "DistributedContext",
    "init_distributed",
    "wrap_model",
    "unwrap_model",
    "all_reduce_mean",
    "split_sequence_groups",
    "barrier",
    "teardown",
]


@dataclass
class DistributedContext:
    """Where this process stands: rank, world size, device and whether it owns the group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None
    owns_group: bool = False
    sequence_parallel: int = 1
    sequence_group: Any = None  # the process group of the ranks sharing this rank's sequence

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def sequence_rank(self) -> int:
        """Which part of the shared sequence this rank holds (0 with no context parallelism)."""
        return self.rank % self.sequence_parallel

    @property
    def data_rank(self) -> int:
        """This rank's data-parallel replica: the shard of every batch it reads."""
        return self.rank // self.sequence_parallel

    @property
    def data_world(self) -> int:
        """Data-parallel replicas: world size / sequence_parallel."""
        return self.world_size // self.sequence_parallel


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def resolve_device(requested: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:LOCAL_RANK`` when CUDA is present, else ``cpu``; else as given."""
    if requested == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} asked for, but CUDA is not available")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistributedContext:
    """Join the torchrun process group when its environment is set, else run single-process."""
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK") or 0
    if rank is None or world is None or world == 1 and not dist.is_initialized():
        if world is not None and world > 1:
            raise ValueError("WORLD_SIZE > 1 but RANK is not set; launch with torchrun")
        return DistributedContext(device=resolve_device(device, local_rank))
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world}")
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend, rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s)
        )
        owns = True
    return DistributedContext(
        rank=rank,
        world_size=world,
        local_rank=local_rank,
        device=dev,
        backend=backend,
        owns_group=owns,
    )


def split_sequence_groups(ctx: DistributedContext, sequence_parallel: int) -> DistributedContext:
    """``ctx`` with groups of ``sequence_parallel`` consecutive ranks sharing each sequence.

    Every rank creates every group (``new_group`` is collective) and keeps its own. The
    world size must be a multiple of ``sequence_parallel``; 1 leaves ``ctx`` as it is.
    """
    n = sequence_parallel
    if n == 1:
        return ctx
    if ctx.world_size % n:
        raise ValueError(
            f"train.sequence_parallel={n} needs a world size divisible by {n} (data-parallel "
            f"replicas x {n} ranks per sequence), got {ctx.world_size} process(es); launch "
            f"with torchrun --nproc-per-node (x --nnodes) a multiple of {n}"
        )
    mine = None
    for first in range(0, ctx.world_size, n):
        group = dist.new_group(list(range(first, first + n)))
        if first <= ctx.rank < first + n:
            mine = group
    return replace(ctx, sequence_parallel=n, sequence_group=mine)


def wrap_model(model: torch.nn.Module, ctx: DistributedContext) -> torch.nn.Module:
    """DistributedDataParallel when the world has more than one process, else the model.

    Under context parallelism the ranks of a sequence group may run different numbers of
    forward passes per step (their shares of ``tbptt_chunk`` pieces), so DDP does not
    broadcast buffers at each forward (a collective every rank would have to join); the
    models' buffers are constants set at construction, equal on every rank.
    """
    if not ctx.is_distributed:
        return model
    options = {"broadcast_buffers": ctx.sequence_parallel == 1}
    if ctx.device.type == "cuda":
        return DistributedDataParallel(model, device_ids=[ctx.device.index], **options)
    return DistributedDataParallel(model, **options)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def all_reduce_mean(value: torch.Tensor, ctx: DistributedContext) -> torch.Tensor:
    """Mean of ``value`` over all ranks (a copy; the input is left alone)."""
    out = value.detach().clone()
    if ctx.is_distributed:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= ctx.world_size
    return out


def barrier(ctx: DistributedContext) -> None:
    if ctx.is_distributed:
        dist.barrier()


def teardown(ctx: DistributedContext) -> None:
    """Destroy the process group this context created (no-op otherwise)."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()
        ctx.owns_group = False
