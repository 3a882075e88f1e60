"""--resume falls back to the newest intact checkpoint, warning about the ones it skips."""

from __future__ import annotations

import pytest
from train_standin import RandomVideos, standin_factory, tiny_config

from convssm.train.checkpoint import list_checkpoints
from convssm.train.loop import train_and_evaluate
from convssm.train.runlog import read_jsonl


def _run(cfg, workdir, **kw):
    return train_and_evaluate(cfg, workdir, model_factory=standin_factory,
                              train_dataset=RandomVideos(n=24, frames=6),
                              val_dataset=RandomVideos(n=2, frames=6, seed=9), **kw)  # fmt: skip


def _losses(workdir):
    return [(r["step"], r["loss"]) for r in read_jsonl(workdir / "train_log.jsonl")]


def test_resume_skips_a_corrupt_newest_checkpoint(tmp_path):
    cfg = tiny_config(checkpoint_every=2, keep_checkpoints=3, eval_every=100)
    full = tmp_path / "full"
    _run(cfg, full)
    cut = tmp_path / "cut"
    _run(cfg, cut, stop_after=4)
    newest = list_checkpoints(cut / "checkpoints")[-1]
    assert newest.name == "step_00000004"
    weights = newest / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-8:] = bytes(8)  # same size, other bytes: only the SHA-256 can tell
    weights.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match=r"skipping checkpoint .*step_00000004.*SHA-256"):
        res = _run(cfg, cut, resume=True)
    assert res.step == 6
    assert _losses(cut) == _losses(full)  # resumed exactly from step 2


def test_resume_with_only_corrupt_checkpoints_says_so(tmp_path):
    cfg = tiny_config(checkpoint_every=2, keep_checkpoints=3, eval_every=100)
    _run(cfg, tmp_path, stop_after=2)
    (list_checkpoints(tmp_path / "checkpoints")[0] / "training_state.pt").write_bytes(b"x")
    with pytest.warns(RuntimeWarning, match="skipping checkpoint"):
        with pytest.raises(ValueError, match="--resume: no intact checkpoint under"):
            _run(cfg, tmp_path, resume=True)
