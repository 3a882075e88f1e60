"""The learning study (experiments/learning): it reads runs made by ``convssm train``; real
steps on tiny data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from convssm.models import VideoPredictor
from convssm.train.checkpoint import write_experiment_yaml
from convssm.train.config import config_from_dict
from convssm.train.loop import train_and_evaluate
from convssm.train.runlog import read_jsonl

LEARNING = Path(__file__).resolve().parents[2] / "experiments" / "learning"
ARMS = {
    "convs5": {"depth": 1, "state_dim": 4, "norm_groups": 4},
    "convlstm": {"depth": 1, "kernel_size": 3},
    "transformer": {"embed_dim": 8, "mlp_dim": 16, "heads": 2, "depth": 1, "window": 32,
                    "max_len": 64},
}  # fmt: skip


def _config(arm: str):
    return config_from_dict({
        "name": f"study_{arm}",
        "model": {"image_size": 32, "encoder_widths": [4, 8], "norm_groups": 4, "dim": 8,
                  "sequence_model": arm, "sequence_options": ARMS[arm]},
        "data": {"seq_len": 5, "num_digits": 1, "options": {"digit_size": 14}},
        "optim": {"lr": 1e-3, "warmup_steps": 1},
        "train": {"steps": 2, "batch_size": 2, "progress": False, "threads": 1,
                  "precision": "fp32", "device": "cpu", "rollout_context": 2,
                  "rollout_start": 0.5, "log_every": 1},
        "eval": {"context": 2, "horizons": [3], "val_videos": 2, "batch_size": 2,
                 "metrics": ["psnr", "ssim"], "score_videos": 2, "score_context": 2,
                 "score_horizon": 10, "score_count": 1},
    })  # fmt: skip


@pytest.fixture
def learning(monkeypatch):
    monkeypatch.syspath_prepend(str(LEARNING))
    yield
    # The scripts' module names (study, ...) are other experiments' too: forget them, so a
    # later test that imports its own ``study`` does not get this one from sys.modules.
    for name, module in list(sys.modules.items()):
        if Path(getattr(module, "__file__", None) or "/").parent == LEARNING:
            del sys.modules[name]


def test_study_compares_the_three_arms(learning, tmp_path, monkeypatch):
    import study

    runs = tmp_path / "runs"
    for arm in ARMS:
        train_and_evaluate(_config(arm), runs / f"study_{arm}")
    out, figures = tmp_path / "study.json", tmp_path / "figures"
    argv = ["study.py", str(runs), "--json", str(out), "--figures", str(figures), "--threads", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    study.main()
    result = json.loads(out.read_text())
    assert list(result["arms"]) == list(ARMS)
    for arm, row in result["arms"].items():
        final = row["final"]
        assert final == read_jsonl(runs / f"study_{arm}" / "scores.jsonl")[-1]
        assert row["steps"] == 2 and row["ms_per_generated_frame"] > 0
        # the per-frame curves score the same model on the same videos as convssm train did
        mse = row["per_frame"]["mse"]
        assert len(mse) == 10
        assert sum(mse) / 10 == pytest.approx(final["mse@10"], rel=1e-5)
        empty = result["empty_per_frame"]["mse"]
        assert sum(empty) / 10 == pytest.approx(final["mse_empty@10"], rel=1e-5)
    for name in ("learning_curves.png", "per_frame_mse.png", "rollouts.png"):
        assert (figures / name).stat().st_size > 0
    with pytest.raises(ValueError, match="no scored checkpoint"):
        (runs / "study_convlstm" / "scores.jsonl").write_text("")
        study.load_arm(runs, "convlstm")


def test_long_rollout_reports_time_and_brightness_per_window(learning, tmp_path):
    import long_rollout

    cfg = _config("convs5")
    model = VideoPredictor(cfg.model)
    model.save_pretrained(tmp_path / "model")
    write_experiment_yaml(tmp_path / "model", cfg)  # as convssm publish writes it
    out = tmp_path / "long.json"
    long_rollout.main([str(tmp_path / "model"), "--frames", "6", "--window", "3",
                       "--videos", "2", "--out", str(out)])  # fmt: skip
    result = json.loads(out.read_text())
    assert result["videos"] == 2 and [r["frames"] for r in result["rows"]] == ["1-3", "4-6"]
    for row in result["rows"]:
        assert row["median_ms"] > 0 and 0 <= row["brightness"] <= row["max_brightness"] <= 1
        assert 0 < row["true_brightness"] < 1
    with pytest.raises(SystemExit, match="--videos must be at least 1"):
        long_rollout.main([str(tmp_path / "model"), "--videos", "0"])


def test_long_rollout_reads_a_published_folder(learning):
    """The committed folders (trained by the former harness) carry experiment.yaml too."""
    import long_rollout

    from convssm.train.checkpoint import read_experiment_yaml

    folder = LEARNING.parents[1] / "pretrained" / "moving_mnist" / "convs5_1digit"
    model = VideoPredictor.from_pretrained(folder)
    cfg = read_experiment_yaml(folder, model.config)
    assert cfg.data.num_digits == 1 and cfg.data.options["digit_size"] == 14
    assert long_rollout.build_eval_dataset(cfg, 1, 12, seed=7)[0].shape == (12, 1, 32, 32)
