"""Array files (.npy, .h5, .zarr), ArrayDataset splits and windows, streamed statistics."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from convssm.data import (
    ArrayDataset,
    StatsAccumulator,
    channel_labels,
    channel_stats_ref,
    open_array,
    read_array,
    write_array,
)
from convssm.data import array_dataset as array_dataset_module

h5py = pytest.importorskip("h5py")
zarr = pytest.importorskip("zarr")


def _field(n=4, t=20, c=2, h=6, w=6, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, c, h, w)) * np.array([3.0, 0.01])[:c, None, None]
    return (x + np.array([1000.0, -5.0])[:c, None, None]).astype(dtype)


FORMATS = [("a.npy", None), ("a.h5", "fields/u"), ("a.hdf5", None), ("a.zarr", None),
           ("g.zarr", "u")]  # fmt: skip


@pytest.mark.parametrize("name, key", FORMATS)
def test_every_format_round_trips_and_feeds_the_same_windows(tmp_path, name, key):
    data = _field()
    path = write_array(tmp_path / name, data, key=key)
    np.testing.assert_array_equal(read_array(path, key), data)
    with open_array(path, key) as f:
        assert f.shape == data.shape and f.dtype == np.float32
        np.testing.assert_array_equal(f.read((1, slice(2, 5))), data[1, 2:5])
    ds = ArrayDataset(path, key=key, seq_len=5, seed=3)
    ref = ArrayDataset(write_array(tmp_path / "ref.npy", data), seq_len=5, seed=3)
    assert len(ds) == len(ref) == 3 * 4  # 3 training sequences x 4 non-overlapping windows
    for i in range(len(ds)):
        seq, start = ds.window(i)
        assert torch.equal(ds[i], ref[i])
        np.testing.assert_array_equal(ds[i].numpy(), data[seq, start : start + 5])
    clone = pickle.loads(pickle.dumps(ds))  # DataLoader workers: handles reopen lazily
    assert torch.equal(clone[2], ds[2])
    ds.close()


def test_keys_and_bad_files_are_named(tmp_path):
    data = _field(n=1)
    two = tmp_path / "two.h5"
    with h5py.File(two, "w") as f:
        f["u"], f["v"] = data, data
    with pytest.raises(ValueError, match="holds 2 datasets .u, v.; name one with a key"):
        open_array(two)
    with pytest.raises(ValueError, match="has no dataset 'w' .it has: u, v."):
        open_array(two, "w")
    npy = write_array(tmp_path / "x.npy", data)
    with pytest.raises(ValueError, match="take no key"):
        open_array(npy, "u")
    with pytest.raises(ValueError, match="unsupported array file type '.csv'"):
        open_array(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="does not exist"):
        open_array(tmp_path / "missing.npy")
    np.save(tmp_path / "bool.npy", np.zeros((2, 3, 1, 4, 4), bool))
    with pytest.raises(TypeError, match="real numeric array .* got bool"):
        open_array(tmp_path / "bool.npy")
    np.save(tmp_path / "flat.npy", np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected shape \(N, T, C, H, W\) or \(T, C, H, W\)"):
        ArrayDataset(tmp_path / "flat.npy")
    with pytest.raises(ValueError, match="fewer than the 30 asked for"):
        ArrayDataset(npy, seq_len=30)


def test_splits_never_overlap(tmp_path):
    path = write_array(tmp_path / "f.npy", _field(n=10, t=20))
    train = ArrayDataset(path, split="train", seq_len=4, val_fraction=0.2)
    val = ArrayDataset(path, split="val", seq_len=4, val_fraction=0.2)
    assert train.split_by == "sequence" and train.sequences == list(range(8))
    assert val.sequences == [8, 9] and val.time_range == (0, 20)
    by_time = dict(split_by="time", seq_len=3, val_fraction=0.25)
    t_train = ArrayDataset(path, split="train", **by_time)
    t_val = ArrayDataset(path, split="val", **by_time)
    assert t_train.time_range == (0, 15) and t_val.time_range == (15, 20)
    starts = [t_train.window(i)[1] for i in range(len(t_train))]
    assert min(starts) >= 0 and max(starts) + 3 <= 15
    assert all(15 <= t_val.window(i)[1] <= 17 for i in range(len(t_val)))
    with pytest.raises(ValueError, match="no 'val' split"):
        ArrayDataset(path, split="val", seq_len=4, val_fraction=0.0)


def test_one_long_sequence_is_cut_into_seeded_windows(tmp_path):
    long = _field(n=1, t=60)[0]  # (T, C, H, W)
    path = write_array(tmp_path / "long.npy", long)
    ds = ArrayDataset(path, seq_len=8, seed=1, val_fraction=0.2)
    assert ds.split_by == "time" and ds.time_range == (0, 48) and len(ds) == 6
    again = ArrayDataset(path, seq_len=8, seed=1, val_fraction=0.2)
    assert [ds.window(i) for i in range(6)] == [again.window(i) for i in range(6)]
    other = ArrayDataset(path, seq_len=8, seed=2, val_fraction=0.2)
    assert [ds.window(i) for i in range(6)] != [other.window(i) for i in range(6)]
    seq, start = ds.window(4)
    np.testing.assert_array_equal(ds[4].numpy(), long[start : start + 8])
    ds.set_epoch(1)
    assert [ds.window(i) for i in range(6)] != [again.window(i) for i in range(6)]
    with pytest.raises(ValueError, match="can only be split by time"):
        ArrayDataset(path, split_by="sequence")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int16])
def test_any_real_dtype_gives_float32_items(tmp_path, dtype):
    data = (_field(n=2, t=6) / 100).astype(dtype)
    ds = ArrayDataset(write_array(tmp_path / "d.npy", data), seq_len=6, val_fraction=0.5)
    assert ds[0].dtype == torch.float32
    np.testing.assert_array_equal(ds[0].numpy(), data[0].astype(np.float32))


def test_streamed_stats_equal_the_float64_reference(tmp_path, monkeypatch):
    data = _field(n=5, t=30)  # channel 0 ~ 1000 +- 3, channel 1 ~ -5 +- 0.01, float32
    monkeypatch.setattr(array_dataset_module, "_BLOCK_VALUES", 7 * 72)  # 7 frames a block
    ds = ArrayDataset(write_array(tmp_path / "s.h5", data), seq_len=4, val_fraction=0.2)
    got, want = ds.channel_stats(), channel_stats_ref(data[:4])  # the training split only
    assert got.count == want.count == 4 * 30 * 36
    for name in ("mean", "std", "min", "max"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-12)
    assert abs(got.std[1] - 0.01) < 1e-3  # a small spread under a large offset survives
    # one-value blocks: the pairwise merge is still exact
    acc = StatsAccumulator(2)
    for v in data[0, :3].reshape(3, 2, -1).transpose(0, 2, 1).reshape(-1, 2):
        acc.update(v[:, None, None])
    np.testing.assert_allclose(acc.result().mean, channel_stats_ref(data[0, :3]).mean, rtol=1e-13)


def test_non_finite_values_are_reported_with_the_file(tmp_path):
    data = _field(n=3, t=5)
    data[0, 2, 1, 0, 0] = np.nan
    ds = ArrayDataset(write_array(tmp_path / "nan.npy", data), seq_len=2)
    with pytest.raises(ValueError, match=r"nan.npy.*train split.* 1 non-finite"):
        ds.channel_stats()


def test_writes_replace_atomically(tmp_path):
    for name in ("o.npy", "o.h5", "o.zarr"):
        write_array(tmp_path / name, np.zeros((2, 3), np.float32))
        write_array(tmp_path / name, np.ones((4,), np.float64))
        np.testing.assert_array_equal(read_array(tmp_path / name), np.ones(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.h5", "o.npy", "o.zarr"]


def test_channel_names_and_units_come_from_the_array_attributes(tmp_path):
    data = _field(n=1, t=3)
    h5 = write_array(tmp_path / "a.h5", data, key="fields/u")
    with h5py.File(h5, "a") as f:
        f["fields/u"].attrs["channel_names"] = ["temperature", "salinity"]  # stored as bytes
        f["fields/u"].attrs["units"] = np.array([b"K", b"g/kg"])
    assert channel_labels(h5, "fields/u") == (["temperature", "salinity"], ["K", "g/kg"])
    store = write_array(tmp_path / "a.zarr", data)
    zarr.open(str(store), mode="r+").attrs["units"] = ["K", "g/kg"]
    assert channel_labels(store) == (None, ["K", "g/kg"])
    assert channel_labels(write_array(tmp_path / "a.npy", data)) == (None, None)
    with h5py.File(h5, "a") as f:
        f["fields/u"].attrs["units"] = "K"  # one unit for two channels
    with pytest.raises(ValueError, match="'units' attribute has 1 entries for 2 channels"):
        channel_labels(h5, "fields/u")
