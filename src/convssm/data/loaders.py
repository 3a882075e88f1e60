"""DataLoader helpers for one process and for torch.distributed.

The datasets of this package are map-style and each item is a pure function of
``(seed, epoch, index)``, so reproducibility only needs the *order* of indices to be
seeded: :func:`make_loader` uses a seeded shuffle (one process) or a
``DistributedSampler`` with an explicit rank and world size (several). The world is read
from torch.distributed when it is initialised, and is (rank 0, world 1) otherwise, so the
same code runs under ``torchrun`` and in a plain script.

:func:`seed_worker` additionally seeds Python's, numpy's and torch's global generators in
each worker from the loader's base seed, for any transform that draws from them.
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    SequentialSampler,
)

__all__ = ["rank_and_world", "seed_worker", "make_loader", "set_loader_epoch"]


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of torch.distributed, or (0, 1) when it is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed ``random``, numpy and torch from the worker's torch seed.

    DataLoader gives worker ``k`` the torch seed ``base_seed + k``, with ``base_seed`` drawn
    from the loader's ``generator``; so seeding that generator fixes every worker's state.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the legacy global state is what transforms use)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    rank: int | None = None,
    world_size: int | None = None,
    pin_memory: bool = False,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """A reproducible DataLoader, sharded across ranks when the world has several.

    Args:
        dataset: a map-style dataset (``len`` and integer indexing).
        batch_size: items per batch on this rank.
        shuffle: seeded shuffle of the indices (reshuffled per epoch by
            :func:`set_loader_epoch`).
        seed: seed of the shuffle and of the workers' global generators.
        num_workers: DataLoader workers (0: load in this process).
        drop_last: drop a final incomplete batch (and, with several ranks, pad/trim so every
            rank sees the same number of items, as ``DistributedSampler`` does).
        rank, world_size: override the values read from torch.distributed.

    Workers are not persistent, so :func:`set_loader_epoch` before each epoch reaches them.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative int, got {num_workers!r}")
    if (rank is None) != (world_size is None):
        raise ValueError("pass both rank and world_size, or neither")
    if rank is None:
        rank, world_size = rank_and_world()
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
    generator = torch.Generator().manual_seed(seed)
    if world_size > 1:
        sampler = DistributedSampler(
            dataset,
            num_replicas=world_size,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
    elif shuffle:
        sampler = _EpochRandomSampler(dataset, seed)
    else:
        sampler = SequentialSampler(dataset)
    extra = {}
    if num_workers > 0 and prefetch_factor is not None:
        extra["prefetch_factor"] = prefetch_factor
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        worker_init_fn=seed_worker if num_workers > 0 else None,
        generator=generator,
        persistent_workers=False,
        **extra,
    )


class _EpochRandomSampler(RandomSampler):
    """A RandomSampler whose permutation is a function of (seed, epoch) only."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.seed = seed
        self.epoch = 0
        super().__init__(dataset, generator=torch.Generator().manual_seed(seed))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator.manual_seed(self.seed + 1_000_003 * self.epoch)
        return super().__iter__()


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell the sampler and the dataset (when they have ``set_epoch``) which epoch starts."""
    for obj in (loader.sampler, loader.dataset):
        set_epoch = getattr(obj, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
