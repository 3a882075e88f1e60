"""Outputs that scale and never lie: streaming GIF/MP4 memory, generate
refusing non-finite predictions, torn logs, one-line OS errors, warnings, umask, and
inference that never reads training_state.pt."""

from __future__ import annotations

import errno
import importlib.util
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from train_standin import RandomVideos, standin_factory, tiny_config

import convssm.train.checkpoint as ck
from convssm.cli.main import main
from convssm.models import VideoPredictor
from convssm.run.inference import load_trained
from convssm.train.config import config_from_dict
from convssm.train.loop import train_and_evaluate
from convssm.train.runlog import read_jsonl

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_generate_memory.py"
MODEL = {"image_size": 16, "encoder_widths": [8, 16], "norm_groups": 4, "dim": 16,
         "sequence_model": "convs5",
         "sequence_options": {"depth": 1, "state_dim": 8, "norm_groups": 4}}  # fmt: skip


def _bench():
    spec = importlib.util.spec_from_file_location("bench_generate_memory", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_memory_is_flat_in_the_horizon():
    """The benchmark's measurement on 64x64 frames, past the MP4 encoder's warm-up (its
    buffers grow over the first ~60 frames): 400 frames may not cost 8 MiB more than 100.
    Holding the horizon (the predictions, their uint8 copies for the npz and the pictures:
    ~110 KiB a frame) cost 32 MiB more."""
    short, long = _bench().run([100, 400], image_size=64)
    assert long["peak_mib"] - short["peak_mib"] < 8, (short, long)


def _published(tmp_path, nan=False):
    torch.manual_seed(0)
    model = VideoPredictor(**MODEL)
    if nan:
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
    model.save_pretrained(tmp_path / "model")
    video = np.random.default_rng(0).integers(0, 256, (4, 16, 16), np.uint8)
    np.savez(tmp_path / "in.npz", video=video)
    return tmp_path / "model"


def test_generate_refuses_non_finite_predictions(tmp_path, capsys):
    model = _published(tmp_path, nan=True)
    argv = ["generate", str(model), "--input", str(tmp_path / "in.npz"), "--context", "4",
            "--horizon", "3", "--out", str(tmp_path / "g"), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "generated non-finite values at frame +1" in err and err.count("\n") == 1
    assert not [p.name for p in (tmp_path / "g").iterdir()]  # no file, not even a partial one


def test_generate_on_a_model_folder_writes_under_the_working_directory(tmp_path, monkeypatch):
    model = _published(tmp_path)
    before = sorted(p.name for p in model.rglob("*"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    argv = ["generate", str(model), "--input", str(tmp_path / "in.npz"), "--context", "4",
            "--horizon", "3", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    made = tmp_path / "work" / "convssm_outputs" / "model" / "generate"
    assert (made / "generated.npz").is_file() and (made / "generated.gif").is_file()
    assert sorted(p.name for p in model.rglob("*")) == before  # nothing inside the model


@pytest.mark.skipif(importlib.util.find_spec("zarr") is None, reason="zarr not installed")
def test_generate_outputs_follow_the_umask(tmp_path):
    model = _published(tmp_path)
    array = np.random.default_rng(0).uniform(-1, 1, (2, 4, 1, 16, 16)).astype(np.float32)
    import zarr

    zarr.save_array(str(tmp_path / "in.zarr"), array)
    old = os.umask(0o002)
    try:
        argv = ["generate", str(model), "--input", str(tmp_path / "in.zarr"), "--context", "4",
                "--horizon", "3", "--out", str(tmp_path / "g"), "--device", "cpu"]  # fmt: skip
        assert main(argv) == 0
    finally:
        os.umask(old)
    written = [tmp_path / "g", *(tmp_path / "g").rglob("*")]
    assert tmp_path / "g" / "predictions.zarr" in written and len(written) > 5
    for path in written:
        want = 0o775 if path.is_dir() else 0o664
        assert stat.S_IMODE(path.stat().st_mode) == want, path


def _checkpoint(tmp_path):
    cfg = config_from_dict({"name": "c", "model": MODEL})
    torch.manual_seed(0)
    return ck.save_checkpoint(tmp_path / "ckpts", 5, VideoPredictor(**MODEL), cfg, {"x": 1})


def test_inference_never_reads_training_state(tmp_path):
    path = _checkpoint(tmp_path)
    state = path / "training_state.pt"
    state.write_bytes(b"\0" * state.stat().st_size)  # same size, unreadable
    tm = load_trained(path, "cpu")
    assert tm.step == 5 and tm.info.training_state == {}
    with pytest.raises(ValueError, match="SHA-256"):
        ck.load_checkpoint(path)  # training still verifies it


def test_a_checkpoint_without_its_manifest_is_loaded_with_a_warning(tmp_path):
    path = _checkpoint(tmp_path)
    (path / "manifest.json").unlink()
    with pytest.warns(RuntimeWarning, match="has no manifest.json"):
        load_trained(path, "cpu")


def test_checkpoints_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = _checkpoint(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    for f in [*path.iterdir(), path.parent / "latest"]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


def _train(workdir, **kw):
    return train_and_evaluate(tiny_config(steps=4, checkpoint_every=2), workdir,
                              model_factory=standin_factory,
                              train_dataset=RandomVideos(n=24, frames=6),
                              val_dataset=RandomVideos(n=2, frames=6, seed=9), **kw)  # fmt: skip


def test_a_torn_last_log_line_is_skipped_with_a_warning_and_resume_works(tmp_path):
    _train(tmp_path, stop_after=3)
    log = tmp_path / "train_log.jsonl"
    with open(log, "a") as f:
        f.write('{"step": 4, "lo')  # killed mid-write
    with pytest.warns(RuntimeWarning, match=r"train_log\.jsonl, line 4: skipping a torn"):
        assert len(read_jsonl(log)) == 3
    with pytest.warns(RuntimeWarning, match="torn"):
        res = _train(tmp_path, resume=True)
    assert res.step == 4 and [r["step"] for r in read_jsonl(log)] == [1, 2, 3, 4]
    log.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"train_log\.jsonl, line 2: not a JSON record"):
        read_jsonl(log)


def _cli_config(tmp_path):
    import yaml

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "name": "ro", "model": MODEL, "data": {"seq_len": 4, "options": {"digit_size": 8}},
        "train": {"steps": 2, "batch_size": 1, "log_every": 1, "eval_every": 100,
                  "checkpoint_every": 2, "progress": False, "threads": 1},
        "eval": {"context": 2, "horizons": [2], "val_videos": 1, "batch_size": 1,
                 "metrics": ["psnr"]},
    }))  # fmt: skip
    return config


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only modes")
def test_a_read_only_workdir_is_a_one_line_error(tmp_path, capsys):
    work = tmp_path / "ro"
    work.mkdir()
    work.chmod(0o555)
    try:
        assert main(["train", str(_cli_config(tmp_path)), "--workdir", str(work)]) == 1
    finally:
        work.chmod(0o755)
    err = capsys.readouterr().err
    assert err.startswith("convssm train: error: ") and str(work) in err


def test_a_full_disk_is_a_one_line_error_naming_the_checkpoint(tmp_path, capsys, monkeypatch):
    def full(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(ck.torch, "save", full)
    work = tmp_path / "w"
    assert main(["train", str(_cli_config(tmp_path)), "--workdir", str(work)]) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("convssm train: error: could not write checkpoint ")
    assert "step_00000002" in err
    assert not list((work / "checkpoints").glob(".tmp-*"))


def test_a_lock_file_that_cannot_be_created_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    real = os.open

    def refuse(path, *a, **k):
        if str(path).endswith(".lock"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(os, "open", refuse)
    work = tmp_path / "w"
    assert main(["train", str(_cli_config(tmp_path)), "--workdir", str(work)]) == 1
    err = capsys.readouterr().err
    assert err == f"convssm train: error: [Errno 13] Permission denied: '{work / '.lock'}'\n"
