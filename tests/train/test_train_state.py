"""TrainState and train_step: one update, a state that round-trips whole, and checkpoints of
format version 1 (before VideoPredictorConfig) that still load and resume exactly."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from train_standin import RandomVideos, standin_factory, tiny_config

from convssm.models import VideoPredictorConfig
from convssm.train import TrainState, train_and_evaluate, train_step
from convssm.train.checkpoint import load_checkpoint
from convssm.train.distributed import DistributedContext
from convssm.train.runlog import read_jsonl
from convssm.train.state import create_train_state

V1 = Path(__file__).resolve().parent / "fixtures" / "checkpoint_v1"


def _state(cfg) -> TrainState:
    torch.manual_seed(cfg.train.seed)
    return create_train_state(cfg, standin_factory(cfg), 24, True, DistributedContext())


def _batch(step: int, cfg) -> torch.Tensor:
    data = RandomVideos(n=24, frames=6)
    return torch.stack([data[i] for i in range(step * 4, step * 4 + cfg.train.batch_size)])


def test_train_step_updates_the_state_without_reading_the_loss():
    cfg = tiny_config(dropout=0.0)
    state = _state(cfg)
    before = [p.detach().clone() for p in state.model.parameters()]
    metrics = train_step(state, _batch(0, cfg))
    assert state.step == 1 and isinstance(metrics["loss"], torch.Tensor)
    assert metrics["loss"].shape == () and not metrics["loss"].requires_grad
    assert metrics["lr"] == 0.0  # warm-up starts at zero
    metrics = train_step(state, _batch(1, cfg))
    assert metrics["lr"] == pytest.approx(0.005)
    assert any(not torch.equal(a, p) for a, p in zip(before, state.model.parameters(), strict=True))
    with pytest.raises(ValueError, match="grad_accum=3"):
        bad = tiny_config(batch_size=6, grad_accum=3)
        train_step(_state(bad), _batch(0, bad)[:4])


def test_state_dict_restores_the_run_whole():
    cfg = tiny_config()
    a = _state(cfg)
    for s in range(2):
        train_step(a, _batch(s, cfg))
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)  # as a checkpoint does: a snapshot, read back safely
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    weights = {k: v.clone() for k, v in a.model.state_dict().items()}
    want = [float(train_step(a, _batch(s, cfg))["loss"]) for s in (2, 3)]
    b = _state(cfg)
    b.model.load_state_dict(weights)
    b.load_state_dict(saved)
    assert b.step == 2 and b.sampler.start_step == 2
    got = [float(train_step(b, _batch(s, cfg))["loss"]) for s in (2, 3)]
    assert got == want


def test_format_1_checkpoint_loads_and_resumes_exactly(tmp_path):
    info = load_checkpoint(V1 / "step_00000001")
    assert info.format_version == 1 and info.step == 1
    assert isinstance(info.model_config, VideoPredictorConfig)
    assert info.model_config.sequence_options["state_dim"] == 2
    ckpts = tmp_path / "checkpoints"
    shutil.copytree(V1 / "step_00000001", ckpts / "step_00000001")
    result = train_and_evaluate(info.config, tmp_path, resume=True)
    assert result.step == 2
    expected = json.loads((V1 / "expected.json").read_text())["step_2_loss"]
    # The fixture's code used torch's erf GELU and eps 1e-5; the layers now use the
    # reference's tanh GELU and eps 1e-6, which moves this loss by ~1e-4
    # relative. Exact resume of the current format: test_state_dict_restores_the_run_whole.
    (got,) = [r["loss"] for r in read_jsonl(tmp_path / "train_log.jsonl")]
    assert got == pytest.approx(expected, rel=1e-3)
    assert load_checkpoint(result.checkpoint).format_version == 2
