"""DataLoader helpers: seeded shuffles, rank sharding, per-worker seeding, epochs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from convssm.data import make_loader, rank_and_world, set_loader_epoch


class _Indices(Dataset):
    def __init__(self, n):
        self.n = n
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.tensor([i, self.epoch])


class _GlobalRandom(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.tensor(np.random.random())  # noqa: NPY002 (what seed_worker seeds)


def _order(loader):
    return torch.cat([b[:, 0] for b in loader]).tolist()


def test_world_without_distributed_is_one_process():
    assert not dist.is_initialized()
    assert rank_and_world() == (0, 1)


def test_seeded_shuffle_and_epochs():
    ds = _Indices(20)
    a = make_loader(ds, 4, seed=1)
    b = make_loader(_Indices(20), 4, seed=1)
    first = _order(a)
    assert first == _order(b) == _order(a)  # same seed, same order, every pass
    assert sorted(first) == list(range(20)) and first != list(range(20))
    assert _order(make_loader(ds, 4, seed=2)) != first
    set_loader_epoch(a, 3)
    set_loader_epoch(b, 3)
    assert _order(a) == _order(b) != first
    assert ds.epoch == 3 and next(iter(a))[0, 1] == 3  # the dataset heard it too
    assert _order(make_loader(ds, 4, shuffle=False)) == list(range(20))


def test_ranks_get_disjoint_shards_covering_the_data():
    shards = []
    for rank in range(3):
        loader = make_loader(_Indices(30), 5, seed=4, rank=rank, world_size=3)
        shards.append(_order(loader))
    assert all(len(s) == 10 for s in shards)
    assert sorted(sum(shards, [])) == list(range(30))
    again = _order(make_loader(_Indices(30), 5, seed=4, rank=1, world_size=3))
    assert again == shards[1]
    with pytest.raises(ValueError, match="both"):
        make_loader(_Indices(3), 1, rank=0)
    with pytest.raises(ValueError, match="rank"):
        make_loader(_Indices(3), 1, rank=3, world_size=3)


def test_workers_global_generators_are_seeded():
    values = [
        torch.cat(list(make_loader(_GlobalRandom(), 2, shuffle=False, seed=9, num_workers=2)))
        for _ in range(2)
    ]
    assert torch.equal(values[0], values[1])
    assert len(set(values[0].tolist())) == 8  # the two workers do not repeat each other


def test_reads_an_initialised_process_group(tmp_path):
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        assert rank_and_world() == (0, 1)
        assert sorted(_order(make_loader(_Indices(6), 2))) == list(range(6))
    finally:
        dist.destroy_process_group()
