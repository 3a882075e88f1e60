"""Checkpoints: round trip, atomicity under a crash, corrupt/missing files, retention."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

import convssm.train.checkpoint as ck
from convssm.train.config import config_from_dict

CONFIG = config_from_dict({"name": "t", "model": {"dim": 4}})


def _save(tmp_path, step, model, keep=3):
    state = {"optimizer": {"x": torch.ones(2)}, "rng": ck.capture_rng_state(), "note": "hi"}
    return ck.save_checkpoint(tmp_path, step, model, CONFIG, state, keep=keep)


def test_round_trip_and_rng_restore(tmp_path):
    model = nn.Linear(3, 4)
    path = _save(tmp_path, 7, model)
    a = (random.random(), np.random.rand(), torch.rand(1))  # noqa: NPY002
    info = ck.load_checkpoint(tmp_path)
    assert info.path == path and info.step == 7 and info.config == CONFIG
    assert info.model_config.dim == 4 and info.training_state["step"] == 7
    ck.restore_rng_state(info.training_state["rng"])
    b = (random.random(), np.random.rand(), torch.rand(1))  # noqa: NPY002
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])
    other = nn.Linear(3, 4)
    ck.load_model_weights(other, info.weights, "ckpt")
    assert torch.equal(other.weight, model.weight)
    assert (tmp_path / "latest").read_text().strip() == "step_00000007"


def test_keep_last_n(tmp_path):
    model = nn.Linear(2, 2)
    for s in range(1, 6):
        _save(tmp_path, s, model, keep=2)
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["step_00000004", "step_00000005"]


def test_crash_mid_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = nn.Linear(2, 2)
    good = _save(tmp_path, 1, model)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ck.torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        _save(tmp_path, 2, model)
    monkeypatch.undo()
    assert ck.list_checkpoints(tmp_path) == [good]
    assert not list(tmp_path.glob(".tmp-*"))
    assert ck.load_checkpoint(tmp_path).step == 1
    # a half-written temp dir from a killed process is ignored, then cleaned up
    (tmp_path / ".tmp-step_00000003-abc").mkdir()
    assert ck.load_checkpoint(tmp_path).step == 1
    _save(tmp_path, 3, model)
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("name", ["model.safetensors", "training_state.pt", "config.json"])
def test_corrupt_file_is_reported(tmp_path, name):
    path = _save(tmp_path, 1, nn.Linear(2, 2))
    f = path / name
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{name} is corrupt"):
        ck.load_checkpoint(path)
    f.write_bytes(bytes(data[:10]))
    with pytest.raises(ValueError, match=f"{name} is corrupt"):
        ck.load_checkpoint(path)


def test_missing_files_and_paths_are_reported(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ck.load_checkpoint(tmp_path / "nope")
    with pytest.raises(ValueError, match="is not a checkpoint"):
        ck.load_checkpoint(tmp_path)
    path = _save(tmp_path, 1, nn.Linear(2, 2))
    (path / "training_state.pt").unlink()
    with pytest.raises(ValueError, match="training_state.pt is missing"):
        ck.load_checkpoint(path)
    path2 = _save(tmp_path / "b", 1, nn.Linear(2, 2))
    (path2 / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json is corrupt"):
        ck.load_checkpoint(path2)


def test_weights_that_do_not_fit_the_model_are_named(tmp_path):
    info = ck.load_checkpoint(_save(tmp_path, 1, nn.Linear(3, 4)))
    want = r"shape mismatch .*weight: checkpoint \(4, 3\) vs model \(5, 3\)"
    with pytest.raises(ValueError, match=want):
        ck.load_model_weights(nn.Linear(3, 5), info.weights, "ckpt")
    with pytest.raises(ValueError, match="missing keys"):
        ck.load_model_weights(nn.Sequential(nn.Linear(3, 4)), info.weights, "ckpt")
