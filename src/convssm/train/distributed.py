"""torch.distributed set-up that runs unchanged as one process or under ``torchrun``.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; when they are present :func:`init_distributed` joins the process group
(NCCL when the run uses CUDA, gloo on CPU) and picks ``cuda:LOCAL_RANK``; when they are
absent the run is a single process and no process group is created. Only rank 0 logs,
writes files and shows a progress bar (:attr:`DistributedContext.is_main`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "DistributedContext",
    "init_distributed",
    "wrap_model",
    "unwrap_model",
    "all_reduce_mean",
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

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


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


def wrap_model(model: torch.nn.Module, ctx: DistributedContext) -> torch.nn.Module:
    """DistributedDataParallel when the world has more than one process, else the model."""
    if not ctx.is_distributed:
        return model
    if ctx.device.type == "cuda":
        return DistributedDataParallel(model, device_ids=[ctx.device.index])
    return DistributedDataParallel(model)


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
