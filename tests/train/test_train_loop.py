"""The training loop on a stand-in model: logs, checkpoints, exact resume, accumulation."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from train_standin import RandomVideos, standin_factory, tiny_config

from convssm.train.checkpoint import list_checkpoints, load_checkpoint
from convssm.train.loop import train_and_evaluate
from convssm.train.runlog import read_jsonl


def _run(cfg, workdir, **kw):
    return train_and_evaluate(
        cfg,
        workdir,
        model_factory=standin_factory,
        train_dataset=RandomVideos(n=24, frames=6),
        val_dataset=RandomVideos(n=2, frames=6, seed=9),
        **kw,
    )


def _losses(workdir):
    return [(r["step"], r["loss"]) for r in read_jsonl(workdir / "train_log.jsonl")]


def test_run_writes_logs_checkpoints_and_validation(tmp_path):
    cfg = tiny_config(eval_every=3, keep_checkpoints=1)
    res = _run(cfg, tmp_path)
    assert res.step == 6
    assert [s for s, _ in _losses(tmp_path)] == [1, 2, 3, 4, 5, 6]
    header = (tmp_path / "train_log.csv").read_text().splitlines()[0]
    assert header.split(",")[:2] == ["step", "loss"]
    val = read_jsonl(tmp_path / "val_log.jsonl")
    assert [r["step"] for r in val] == [3, 6]
    assert "mse@3" in val[0]
    ckpts = list_checkpoints(tmp_path / "checkpoints")
    assert [p.name for p in ckpts] == ["step_00000006"]  # keep_checkpoints=1
    info = load_checkpoint(res.checkpoint)
    assert info.step == 6 and info.model_config.dim == 8
    assert "optimizer" in info.training_state and "rng" in info.training_state
    assert info.training_state["data_position"]["samples_seen"] == 24
    assert (tmp_path / "config.yaml").is_file()


def test_loss_decreases_on_learnable_data(tmp_path):
    cfg = tiny_config(dropout=0.0, steps=30, checkpoint_every=100, eval_every=100)
    _run(cfg, tmp_path)
    losses = [v for _, v in _losses(tmp_path)]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    cfg = tiny_config()  # dropout on: RNG handling matters
    full = tmp_path / "full"
    _run(cfg, full)
    cut = tmp_path / "cut"
    _run(cfg, cut, stop_after=5)  # checkpoint at 3, then killed after 5
    assert list_checkpoints(cut / "checkpoints")[-1].name == "step_00000003"
    _run(cfg, cut, resume=True)
    assert _losses(cut) == _losses(full)  # bit for bit, logs of steps 4-5 replaced
    a = load_checkpoint(full / "checkpoints").weights
    b = load_checkpoint(cut / "checkpoints").weights
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_changed_config_fails(tmp_path):
    cfg = tiny_config()
    _run(cfg, tmp_path, stop_after=3)
    other = tiny_config()
    other.optim.lr = 0.5
    with pytest.raises(ValueError, match="'optim' section differs"):
        _run(other, tmp_path, resume=True)


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    one = _run(tiny_config(dropout=0.0, steps=3, grad_accum=1), tmp_path / "a")
    two = _run(tiny_config(dropout=0.0, steps=3, grad_accum=2), tmp_path / "b")
    wa, wb = load_checkpoint(one.checkpoint).weights, load_checkpoint(two.checkpoint).weights
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)


def test_nonfinite_loss_stops_with_a_clear_error(tmp_path):
    class NaNVideos(RandomVideos):
        def __getitem__(self, i):
            v = super().__getitem__(i)
            v[0, 0, 0, 0] = float("nan")
            return v

    with pytest.raises(FloatingPointError, match="loss is nan at step 1"):
        train_and_evaluate(
            tiny_config(),
            tmp_path,
            model_factory=standin_factory,
            train_dataset=NaNVideos(),
            val_dataset=RandomVideos(n=2),
        )


def test_checkpoint_stores_the_model_config_once(tmp_path):
    res = _run(tiny_config(steps=3), tmp_path)
    meta = json.loads((res.checkpoint / "config.json").read_text())
    assert meta["format"] == "convssm.VideoPredictor" and meta["format_version"] == 2
    assert meta["config"]["encoder_widths"] == [8]
    assert meta["config"]["sequence_model"] == "standin"
    experiment = yaml.safe_load((res.checkpoint / "experiment.yaml").read_text())
    assert "model" not in experiment and experiment["train"]["steps"] == 3
    assert load_checkpoint(res.checkpoint).config == tiny_config(steps=3)


def test_time_limit_stops_with_a_checkpoint_and_the_run_resumes(tmp_path):
    cfg = tiny_config(time_limit_s=1e-9)
    res = _run(cfg, tmp_path)
    assert res.step == 1 and res.checkpoint.name == "step_00000001"
    cfg.train.time_limit_s = None
    res = _run(cfg, tmp_path, resume=True)
    assert res.step == 6 and [s for s, _ in _losses(tmp_path)] == [1, 2, 3, 4, 5, 6]


def test_time_limit_is_checked_after_every_step_not_only_at_log_intervals(tmp_path):
    """One process stops at the first step past the limit, whatever ``log_every`` is (a
    slow step, 200 CPU-s at long delays, once overran its budget by a whole log interval)."""
    res = _run(tiny_config(time_limit_s=1e-9, log_every=5, checkpoint_every=5), tmp_path)
    assert res.step == 1 and res.checkpoint.name == "step_00000001"
    assert [s for s, _ in _losses(tmp_path)] == [1]  # the last step is logged, its loss read


def test_bf16_autocast_on_cpu_when_asked(tmp_path):
    res = _run(tiny_config(precision="bf16", steps=2), tmp_path)
    assert res.step == 2 and res.loss is not None and res.loss == res.loss  # finite, not NaN
    weights = load_checkpoint(res.checkpoint).weights
    assert all(w.dtype == torch.float32 for w in weights.values())  # master weights stay fp32
