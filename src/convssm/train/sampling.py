"""A resumable data stream: the samples of every optimizer step are a pure function of it.

Optimizer step ``s`` consumes the global sample positions ``s*B .. s*B + B - 1`` (``B`` the
global batch). Micro-step ``m`` of ``A`` (gradient accumulation) takes the ``m``-th of ``A``
equal chunks, and rank ``r`` of ``W`` the ``r``-th of ``W`` equal slices of that chunk. A
position ``g`` maps to dataset index ``perm_e[g mod N]`` with ``e = g // N`` the epoch and
``perm_e`` a permutation seeded by ``(seed, e)`` (the identity when ``shuffle`` is off).

So resuming at step ``s`` needs nothing but ``s``, any number of DataLoader workers gives the
same batches, and ``W`` processes see exactly the samples one process would see in its
global batch — which is what lets a 2-process run match a 1-process run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["StepSampler"]


@dataclass
class StepSampler:
    """Batch sampler over ``dataset_len`` items, starting at optimizer step ``start_step``.

    Iterating yields, for each step from ``start_step`` to ``total_steps - 1`` and each
    micro-step, the list of dataset indices this rank loads; with ``per_step``, one list per
    step instead: the micro-steps' lists one after another (``train_step`` splits the batch
    back into ``grad_accum`` equal parts).
    """

    dataset_len: int
    global_batch: int
    grad_accum: int = 1
    world_size: int = 1
    rank: int = 0
    seed: int = 0
    shuffle: bool = True
    start_step: int = 0
    total_steps: int | None = None
    per_step: bool = False

    def __post_init__(self) -> None:
        if self.dataset_len < 1:
            raise ValueError(f"dataset_len must be positive, got {self.dataset_len}")
        parts = self.grad_accum * self.world_size
        if self.global_batch % parts:
            raise ValueError(
                f"global batch {self.global_batch} must be divisible by grad_accum "
                f"({self.grad_accum}) x world size ({self.world_size})"
            )
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} outside world size {self.world_size}")
        self._perm_cache: dict[int, np.ndarray] = {}

    @property
    def local_batch(self) -> int:
        """Samples per rank per micro-step."""
        return self.global_batch // (self.grad_accum * self.world_size)

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._perm_cache:
            if len(self._perm_cache) > 2:
                self._perm_cache.clear()
            rng = np.random.default_rng([self.seed, epoch])
            self._perm_cache[epoch] = rng.permutation(self.dataset_len)
        return self._perm_cache[epoch]

    def position_to_index(self, position: int) -> int:
        epoch, offset = divmod(position, self.dataset_len)
        if not self.shuffle:
            return offset
        return int(self._permutation(epoch)[offset])

    def indices(self, step: int, micro: int = 0) -> list[int]:
        """Dataset indices this rank loads at (``step``, ``micro``)."""
        if not 0 <= micro < self.grad_accum:
            raise ValueError(f"micro-step {micro} outside grad_accum {self.grad_accum}")
        chunk = self.global_batch // self.grad_accum
        start = step * self.global_batch + micro * chunk + self.rank * self.local_batch
        return [self.position_to_index(p) for p in range(start, start + self.local_batch)]

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while self.total_steps is None or step < self.total_steps:
            if self.per_step:
                yield [i for m in range(self.grad_accum) for i in self.indices(step, m)]
            else:
                for micro in range(self.grad_accum):
                    yield self.indices(step, micro)
            step += 1

    def __len__(self) -> int:
        if self.total_steps is None:
            raise TypeError("an endless StepSampler has no length")
        lists_per_step = 1 if self.per_step else self.grad_accum
        return max(self.total_steps - self.start_step, 0) * lists_per_step

    def state_dict(self) -> dict[str, int]:
        return {
            "seed": self.seed,
            "global_batch": self.global_batch,
            "dataset_len": self.dataset_len,
            "shuffle": int(self.shuffle),
        }
