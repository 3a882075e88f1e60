"""Bad data is found before the first step, naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from train_standin import standin_factory

from convssm.train.config import config_from_dict
from convssm.train.loop import train_and_evaluate


def _config(data: dict, image_size: int = 16, channels: int = 1):
    return config_from_dict({
        "name": "checks",
        "model": {"image_size": image_size, "image_channels": channels, "dim": 8,
                  "encoder_widths": [8], "sequence_model": "standin"},
        "data": {"seq_len": 6, **data},
        "train": {"steps": 2, "batch_size": 2, "log_every": 1, "eval_every": 1000,
                  "checkpoint_every": 1, "progress": False, "threads": 1},
        "eval": {"context": 3, "horizons": [3], "val_videos": 2, "batch_size": 2,
                 "metrics": ["psnr"]},
    })  # fmt: skip


def _refused_before_step_one(cfg, workdir, match):
    with pytest.raises(ValueError, match=match):
        train_and_evaluate(cfg, workdir, model_factory=standin_factory)
    assert not (workdir / "checkpoints").exists()
    assert not (workdir / "train_log.jsonl").exists()


def test_nan_only_in_the_validation_split_is_refused_before_step_one(tmp_path):
    arr = np.random.default_rng(0).normal(size=(10, 8, 1, 16, 16)).astype(np.float32)
    arr[9, 2, 0, :4] = np.nan  # the last sequence is the validation split (val_fraction 0.1)
    np.save(tmp_path / "fields.npy", arr)
    cfg = _config({"dataset": "array", "root": str(tmp_path / "fields.npy")})
    _refused_before_step_one(
        cfg, tmp_path / "run", r"fields\.npy.*\(val split\): sequence 9 holds 64 non-finite.*"
        r"first at frame 2"
    )  # fmt: skip


def _npz(path, size, frames=8, channels=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    video = np.zeros((frames, size, size, channels), dtype=np.uint8)
    np.savez(path, video=video)


def test_mixed_frame_sizes_are_refused_naming_the_file(tmp_path):
    for i, size in enumerate([32, 32, 48]):
        _npz(tmp_path / "data" / "train" / f"v{i}.npz", size)
    cfg = _config({"dataset": "video_folder", "root": str(tmp_path / "data")}, 32, 3)
    _refused_before_step_one(cfg, tmp_path / "run", r"v2\.npz: frames are 48x48 with 3 channels,"
                             r" but the model needs 32x32")  # fmt: skip


def test_frames_of_another_size_than_the_model_are_refused(tmp_path):
    for i in range(2):
        _npz(tmp_path / "data" / "train" / f"v{i}.npz", 48)
    cfg = _config({"dataset": "video_folder", "root": str(tmp_path / "data")}, 32, 3)
    _refused_before_step_one(cfg, tmp_path / "run", r"v0\.npz: frames are 48x48")
    grey = _config({"dataset": "video_folder", "root": str(tmp_path / "data")}, 48, 1)
    _refused_before_step_one(grey, tmp_path / "run2", r"v0\.npz: .*3 channels, but the model "
                             r"needs 48x48 with 1 channel$")  # fmt: skip


def test_on_error_skip_leaves_bad_files_out_of_both_splits(tmp_path):
    for split in ("train", "test"):
        for i in range(3):
            _npz(tmp_path / "data" / split / f"v{i}.npz", 16)
        _npz(tmp_path / "data" / split / "odd.npz", 24)
    data = {"dataset": "video_folder", "root": str(tmp_path / "data"),
            "options": {"on_error": "skip"}}  # fmt: skip
    with pytest.warns(RuntimeWarning, match=r"skipping bad video file: .*odd\.npz"):
        res = train_and_evaluate(_config(data, 16, 3), tmp_path / "run",
                                 model_factory=standin_factory)  # fmt: skip
    assert res.step == 2


@pytest.mark.parametrize("key, value", [("optim.lr", float("inf")),
                                        ("optim.weight_decay", float("nan")),
                                        ("optim.betas", [0.9, float("inf")])])  # fmt: skip
def test_the_config_rejects_non_finite_numbers(key, value):
    section, name = key.split(".")
    with pytest.raises(ValueError, match=rf"{key}(\[1\])? must be a finite number"):
        config_from_dict({section: {name: value}})
