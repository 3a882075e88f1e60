"""What the learning recipes need from ``convssm train``, on real steps of tiny data: the
teacher-forcing → rollout schedule, steps planned from a time budget, and held-out scoring
(``scores.jsonl``, strips) that resumes exactly."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import yaml

from convssm.models import VideoPredictor
from convssm.train import budget
from convssm.train.checkpoint import list_checkpoints, load_checkpoint
from convssm.train.config import config_from_dict, load_config
from convssm.train.distributed import DistributedContext
from convssm.train.factory import build_model, build_train_dataset
from convssm.train.heldout import STRIP_FRAMES
from convssm.train.loop import train_and_evaluate
from convssm.train.runlog import read_jsonl
from convssm.train.step import rollout_start_step


def _config(**train):
    t = {"steps": 4, "batch_size": 2, "log_every": 1, "eval_every": 1000,
         "checkpoint_every": 1000, "progress": False, "threads": 1, "precision": "fp32",
         "device": "cpu", **train}  # fmt: skip
    evals = t.pop("eval", {})
    return config_from_dict({
        "name": "tiny_recipe",
        "model": {"image_size": 16, "encoder_widths": [8, 8], "norm_groups": 4, "dim": 8,
                  "sequence_options": {"depth": 1, "state_dim": 4, "norm_groups": 4}},
        "data": {"seq_len": 5, "num_digits": 1, "options": {"digit_size": 8}},
        "optim": {"lr": 1e-3, "warmup_steps": 1, "grad_clip": 1.0},
        "train": t,
        "eval": {"context": 2, "horizons": [3], "val_videos": 2, "batch_size": 2,
                 "metrics": ["psnr", "ssim"], **evals},
    })  # fmt: skip


def _recording_factory(calls):
    """A VideoPredictor whose forward records the ``rollout_context`` it was called with."""

    def factory(cfg):
        model = build_model(cfg.model)
        forward = model.forward

        def recorded(*args, **kwargs):
            if model.training:
                calls.append(kwargs.get("rollout_context"))
            return forward(*args, **kwargs)

        model.forward = recorded
        return model

    return factory


@pytest.mark.parametrize(("start", "expected"), [(0.5, [None, None, 2, 2]), (3, [None] * 3 + [2])])
def test_rollout_loss_starts_at_its_step(tmp_path, start, expected):
    calls = []
    cfg = _config(rollout_context=2, rollout_start=start)
    train_and_evaluate(cfg, tmp_path, model_factory=_recording_factory(calls))
    assert calls == expected


def test_rollout_start_semantics_and_checks():
    assert rollout_start_step(0.25, 10) == 2 and rollout_start_step(0.0, 7) == 0
    assert rollout_start_step(7, 100) == 7 and rollout_start_step(1.0, 9) == 9
    with pytest.raises(ValueError, match="train.rollout_context is null"):
        _config(rollout_start=0.5)
    with pytest.raises(ValueError, match=r"fraction of the steps, in \[0, 1\]"):
        _config(rollout_context=2, rollout_start=1.5)
    with pytest.raises(ValueError, match="eval.score_videos scores a video_predictor"):
        config_from_dict({"data": {"dataset": "array", "root": "x.npy"},
                          "eval": {"score_videos": 2}})  # fmt: skip


class _FakeClock:
    """perf_counter advancing by ``dt`` per read: every timed probe step takes ``dt`` seconds."""

    def __init__(self, dt):
        self.t, self.dt = 0.0, dt

    def perf_counter(self):
        self.t += self.dt
        return self.t


def test_minutes_plan_the_steps_and_the_run_keeps_them(tmp_path, monkeypatch):
    clock = _FakeClock(0.5)
    monkeypatch.setattr(budget, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    # 0.1 min = 6 s at 0.5 s per step: 12 steps (at least warmup + 10 = 11, at most 50)
    cfg = _config(steps=50, minutes=0.1, rollout_context=2, checkpoint_every=5)
    workdir = tmp_path / "run"
    res = train_and_evaluate(cfg, workdir, stop_after=5)
    plan = json.loads((workdir / "plan.json").read_text())
    assert plan == {"minutes": 0.1, "clock": "wall", "step_s": 0.5, "probe_steps": 13,
                    "steps": 12}  # fmt: skip
    assert yaml.safe_load((workdir / "config.yaml").read_text())["train"]["steps"] == 12
    assert load_checkpoint(res.checkpoint).config.train.steps == 12
    # resumed: the plan is the checkpoint's, not a new probe (a slower clock changes nothing)
    clock.dt = 5.0
    (workdir / "plan.json").unlink()
    res = train_and_evaluate(cfg, workdir, resume=True)
    assert res.step == 12 and not (workdir / "plan.json").exists()
    # the plan's bounds: at least warmup + 10 steps, at most train.steps
    data, _ = build_train_dataset(cfg)
    model = build_model(cfg.model)
    ctx = DistributedContext()  # one process on the CPU
    clock.dt = 0.5
    short = _config(steps=8, minutes=0.1, rollout_context=2)
    assert budget.plan_steps(short, model, data, False, ctx).steps == 8
    clock.dt = 100.0
    assert budget.plan_steps(cfg, model, data, False, ctx).steps == 11


def _scored(**train):
    return _config(
        rollout_context=2, rollout_start=0.5,
        eval={"score_videos": 3, "score_context": 2, "score_horizon": 12, "score_count": 2},
        **train,
    )  # fmt: skip


def _rows(workdir):
    return [{k: v for k, v in r.items() if k not in ("wall_s", "cpu_s")}
            for r in read_jsonl(workdir / "scores.jsonl")]  # fmt: skip


def test_scores_and_strips_written_and_resumed_exactly(tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    train_and_evaluate(_scored(), full)
    rows = read_jsonl(full / "scores.jsonl")
    assert [r["step"] for r in rows] == [2, 4]
    for key in ("rel_best@10", "rel_empty@10", "mse@10", "psnr@10", "ssim@10", "loss"):
        assert key in rows[0], key
    assert "brightness@50-100" not in rows[0] and "lpips@10" not in rows[0]  # not asked for
    assert rows[1]["wall_s"] >= rows[0]["wall_s"] > 0 and rows[1]["cpu_s"] > 0
    logged = [r["loss"] for r in read_jsonl(full / "train_log.jsonl")]
    assert rows[1]["loss"] == pytest.approx(sum(logged[2:4]) / 2)
    # every scored step has its checkpoint (publishable) and its strip
    assert [p.name for p in list_checkpoints(full / "checkpoints")] == [
        "step_00000002",
        "step_00000004",
    ]
    from PIL import Image

    strip = Image.open(full / "strip_000004.png")
    shown = sum(f <= 12 for f in STRIP_FRAMES)  # the frames within the horizon, + context
    assert strip.size == ((shown + 1) * 17 * 4, 3 * (2 * 17 + 3) * 4)

    train_and_evaluate(_scored(), cut, stop_after=3)  # scored at 2, killed at 3
    assert [r["step"] for r in read_jsonl(cut / "scores.jsonl")] == [2]
    train_and_evaluate(_scored(), cut, resume=True)
    assert _rows(cut) == _rows(full)
    for step in (2, 4):
        name = f"strip_{step:06d}.png"
        assert (cut / name).read_bytes() == (full / name).read_bytes()


def test_scored_model_matches_a_checkpoint(tmp_path):
    """The scores of a step are those of its checkpoint's weights (what publish reads)."""
    train_and_evaluate(_scored(steps=2), tmp_path)
    info = load_checkpoint(tmp_path / "checkpoints")
    model = VideoPredictor(info.model_config)
    model.load_state_dict(info.weights)
    from convssm.train.heldout import HeldOutScorer

    scores, _ = HeldOutScorer(info.config, budget.torch.device("cpu")).score(model)
    row = read_jsonl(tmp_path / "scores.jsonl")[-1]
    assert row["step"] == 2 and scores["mse@10"] == pytest.approx(row["mse@10"], rel=1e-6)


LEARNING = Path(__file__).resolve().parents[2] / "configs" / "learning"


def test_learning_configs_parse_and_chain_their_phases():
    """The recipes of the published Moving-MNIST models: each phase starts from the default
    workdir of the one before (``runs/<name>``), with the same model."""
    phases = [load_config(LEARNING / f"{n}.yaml") for n in PHASES]
    assert [p.name for p in phases] == list(PHASES)
    assert phases[0].train.init_from is None and phases[0].train.rollout_start == 0.5
    for before, after in zip(phases, phases[1:], strict=False):
        assert after.train.init_from == f"runs/{before.name}"
        assert after.model == before.model
    study = [
        load_config(LEARNING / f"study_{m}.yaml") for m in ("convs5", "convlstm", "transformer")
    ]
    assert study[0].model == phases[0].model and study[0].optim == phases[0].optim
    for arm in study:
        assert arm.train.minutes == 85 and arm.eval.score_count == 10
        assert arm.data == phases[0].data
        assert [arm.train.rollout_context, arm.train.rollout_start] == [8, 0.5]


PHASES = ("convs5_1digit", "convs5_1digit_roll48", "convs5_1digit_roll48_24")
