"""The demo reads what a published Moving-MNIST model was trained on from either folder
format: ``convssm publish``'s ``experiment.yaml`` or the former harness's ``training.json``."""

from __future__ import annotations

import json

import pytest

from convssm.models import VideoPredictor
from convssm.run.demo import published_moving_mnist_data
from convssm.train.checkpoint import write_experiment_yaml
from convssm.train.config import config_from_dict

MODEL = {"image_size": 16, "encoder_widths": [8, 8], "norm_groups": 4, "dim": 8,
         "sequence_options": {"depth": 1, "state_dim": 4, "norm_groups": 4}}  # fmt: skip


def _folder(tmp_path, data):
    cfg = config_from_dict({"name": "tiny", "model": MODEL, "data": data})
    VideoPredictor(cfg.model).save_pretrained(tmp_path)
    write_experiment_yaml(tmp_path, cfg)
    return tmp_path


def test_from_experiment_yaml(tmp_path):
    data = {"seq_len": 7, "num_digits": 1, "options": {"digit_size": 8, "step": 0.1}}
    got = published_moving_mnist_data(_folder(tmp_path, data))
    assert got == {"image_size": 16, "num_digits": 1, "digit_size": 8, "step": 0.1, "seq_len": 7}


def test_from_experiment_yaml_fills_the_generator_defaults(tmp_path):
    got = published_moving_mnist_data(_folder(tmp_path, {"seq_len": 5, "num_digits": 2}))
    assert got["digit_size"] == 28 and got["step"] == 0.15


def test_refuses_another_dataset_and_a_folder_without_either(tmp_path):
    folder = _folder(tmp_path / "a", {"dataset": "delayed_recall", "seq_len": 70,
                                      "options": {"delay": 64}})  # fmt: skip
    with pytest.raises(ValueError, match="'delayed_recall', not moving_mnist"):
        published_moving_mnist_data(folder)
    with pytest.raises(ValueError, match="neither experiment.yaml nor training.json"):
        published_moving_mnist_data(tmp_path)


def test_from_training_json(tmp_path):
    data = {"image_size": 32, "num_digits": 1, "digit_size": 14, "seq_len": 24, "step": 0.15}
    (tmp_path / "training.json").write_text(json.dumps({"data": data}))
    assert published_moving_mnist_data(tmp_path) == data
