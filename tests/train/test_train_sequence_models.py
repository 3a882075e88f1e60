"""A few real training steps on tiny Moving-MNIST for every sequence model, through the loop."""

from __future__ import annotations

import math

import pytest
import torch

from convssm.models import VideoPredictor
from convssm.nn import sequence_model_names
from convssm.train.checkpoint import load_checkpoint
from convssm.train.config import config_from_dict
from convssm.train.loop import train_and_evaluate
from convssm.train.runlog import read_jsonl

OPTIONS = {
    "convs5": {"depth": 2, "state_dim": 8, "norm_groups": 4},
    "convlstm": {"depth": 2},
    "transformer": {"embed_dim": 16, "mlp_dim": 32, "heads": 2, "depth": 2, "window": 16,
                    "max_len": 32},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_a_few_training_steps(name, tmp_path):
    cfg = config_from_dict({
        "name": f"tiny_{name}",
        "model": {"image_size": 16, "encoder_widths": [8, 16], "norm_groups": 4, "dim": 16,
                  "sequence_model": name, "sequence_options": OPTIONS[name]},
        "data": {"seq_len": 6, "options": {"digit_size": 8}},
        "optim": {"lr": 3e-3, "warmup_steps": 0},
        "train": {"steps": 4, "batch_size": 2, "log_every": 1, "eval_every": 4,
                  "checkpoint_every": 4, "progress": False, "threads": 1},
        "eval": {"context": 3, "horizons": [4], "val_videos": 2, "batch_size": 2,
                 "metrics": ["psnr", "ssim"]},
    })  # fmt: skip
    result = train_and_evaluate(cfg, tmp_path)
    losses = [r["loss"] for r in read_jsonl(tmp_path / "train_log.jsonl")]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    val = read_jsonl(tmp_path / "val_log.jsonl")[-1]
    assert math.isfinite(val["mse@4"])
    assert math.isfinite(val["psnr@4"]) and math.isfinite(val["ssim@4"])
    info = load_checkpoint(result.checkpoint)
    assert info.model_config.sequence_model == name
    model = VideoPredictor.from_pretrained(result.checkpoint)
    x = torch.zeros(1, 3, 1, 16, 16)
    assert model.generate(x, 2).shape == (1, 2, 1, 16, 16)


def test_every_registered_sequence_model_is_exercised():
    assert sorted(OPTIONS) == sequence_model_names()


@pytest.mark.parametrize(("detach", "pixel_loss"), [(False, "mse_l1"), (True, "mse")])
def test_a_few_multistep_training_steps(detach, pixel_loss, tmp_path):
    """train.rollout_context: frames after the context are generated and fed back (with
    either pixel loss)."""
    cfg = config_from_dict({
        "name": "tiny_rollout",
        "model": {"image_size": 16, "encoder_widths": [8, 16], "norm_groups": 4, "dim": 16,
                  "sequence_model": "convs5", "sequence_options": OPTIONS["convs5"]},
        "data": {"seq_len": 6, "num_digits": 1, "options": {"digit_size": 8}},
        "optim": {"lr": 3e-3, "warmup_steps": 0},
        "train": {"steps": 3, "batch_size": 2, "log_every": 1, "eval_every": 100,
                  "checkpoint_every": 3, "progress": False, "threads": 1,
                  "rollout_context": 2, "detach_feedback": detach, "pixel_loss": pixel_loss},
        "eval": {"context": 3, "horizons": [4], "val_videos": 2, "batch_size": 2,
                 "metrics": ["psnr"]},
    })  # fmt: skip
    train_and_evaluate(cfg, tmp_path)
    losses = [r["loss"] for r in read_jsonl(tmp_path / "train_log.jsonl")]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)


def test_rollout_context_must_leave_a_frame_to_predict():
    base = {"data": {"seq_len": 6}, "train": {"rollout_context": 6}}
    with pytest.raises(ValueError, match=r"train.rollout_context .* \[1, 5\], got 6"):
        config_from_dict(base)
    assert config_from_dict({"data": {"seq_len": 6}}).train.rollout_context is None


def test_pixel_loss_is_a_video_predictor_option():
    assert config_from_dict({}).train.pixel_loss == "mse_l1"  # the paper's
    assert config_from_dict({"train": {"pixel_loss": "mse"}}).train.pixel_loss == "mse"
    with pytest.raises(ValueError, match="pixel_loss"):
        config_from_dict({"train": {"pixel_loss": "l2"}})
