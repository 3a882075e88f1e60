"""Experiment config: YAML loading, unknown keys, types, overrides, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from convssm.train.config import (
    ExperimentConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_json,
    dump_yaml,
    load_config,
    parse_override,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _write(tmp_path, data) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def test_defaults_follow_spec_section_3():
    cfg = ExperimentConfig()
    assert cfg.optim.betas == [0.9, 0.95] and cfg.optim.weight_decay == 1e-5
    assert cfg.optim.warmup_steps == 5000 and cfg.optim.grad_clip is None
    assert cfg.train.batch_size == 8 and cfg.train.steps == 300_000
    assert cfg.eval.context == 100 and cfg.eval.horizons == [400, 800, 1200]


def test_unknown_key_names_key_section_and_valid_keys(tmp_path):
    p = _write(tmp_path, {"optim": {"learning_rate": 1e-3}})
    with pytest.raises(ValueError) as err:
        load_config(p)
    msg = str(err.value)
    assert "'learning_rate'" in msg and "'optim'" in msg and "lr" in msg and "warmup_steps" in msg
    with pytest.raises(ValueError, match="unknown key 'trainer' in section 'top level'"):
        config_from_dict({"trainer": {}})


@pytest.mark.parametrize(
    "data, match",
    [
        ({"train": {"steps": "many"}}, "train.steps: expected an integer"),
        ({"train": {"steps": 1.5}}, "train.steps: expected an integer"),
        ({"train": {"progress": 1}}, "train.progress: expected true/false"),
        ({"optim": {"lr": True}}, "optim.lr: expected a number"),
        ({"model": {"encoder_widths": 64}}, "model.encoder_widths: expected a list"),
        ({"model": {"encoder_widths": [64, "x"]}}, r"model.encoder_widths\[1\]"),
        ({"train": {"precision": "fp8"}}, "train.precision: must be one of"),
        ({"model": "convs5"}, "section 'model' must be a mapping"),
        ({"data": {"channel_units": "m/s"}}, "data.channel_units: expected list"),
    ],
)
def test_bad_types_are_rejected(data, match):
    with pytest.raises((TypeError, ValueError), match=match):
        config_from_dict(data)


@pytest.mark.parametrize(
    "data, match",
    [
        ({"train": {"steps": 0}}, "train.steps must be positive"),
        ({"train": {"batch_size": 8, "grad_accum": 3}}, "divisible"),
        ({"optim": {"betas": [0.9]}}, "optim.betas"),
        ({"eval": {"metrics": ["psnr", "bleu"]}}, "unknown metric 'bleu'"),
        ({"data": {"seq_len": 1}}, "at least 2"),
        (
            {"model": {"image_channels": 2}, "data": {"channel_names": ["u", "v", "w"]}},
            r"data.channel_names has 3 entries but the model has 2 channels",
        ),
        (
            {"model": {"image_channels": 2}, "data": {"channel_units": ["m/s"]}},
            r"data.channel_units has 1 entries but the model has 2 channels",
        ),
        ({"data": {"channel_names": [""]}}, "data.channel_names must be non-empty strings"),
    ],
)
def test_bad_values_are_rejected(data, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(data)


def test_int_widens_to_float_and_yaml_exponent_without_dot_is_a_float(tmp_path):
    p = _write(tmp_path, "optim:\n  lr: 1e-3\n  weight_decay: 0\n")
    cfg = load_config(p)
    assert cfg.optim.lr == 1e-3 and isinstance(cfg.optim.weight_decay, float)


def test_overrides_parse_yaml_scalars_and_reject_unknown_paths(tmp_path):
    p = _write(tmp_path, {"train": {"steps": 10}})
    cfg = load_config(
        p,
        [
            "train.steps=20",
            "optim.lr=5e-4",
            "train.progress=false",
            "model.encoder_widths=[8, 16]",
            "model.sequence_options.blocks=2",
            "eval.eval_set=null",
            "name=run1",
        ],
    )
    assert cfg.train.steps == 20 and cfg.optim.lr == 5e-4 and cfg.train.progress is False
    assert cfg.model.encoder_widths == [8, 16] and cfg.name == "run1"
    assert cfg.model.sequence_options == {"blocks": 2}  # ConvS5SSM's, passed on by ConvS5
    with pytest.raises(ValueError, match="model.sequence_options: unknown key 'num_layers'"):
        load_config(p, ["model.sequence_options.num_layers=2"])
    with pytest.raises(ValueError, match="unknown key 'stepz' in section 'train'"):
        load_config(p, ["train.stepz=3"])
    with pytest.raises(ValueError, match="unknown section 'trainer'"):
        load_config(p, ["trainer.steps=3"])
    with pytest.raises(ValueError, match="has no sub-keys"):
        load_config(p, ["train.steps.x=3"])
    with pytest.raises(ValueError, match="section.key=value"):
        parse_override("train.steps")
    with pytest.raises(TypeError, match="train.steps: expected an integer"):
        load_config(p, ["train.steps=ten"])
    assert apply_overrides({}, ["data.seed=4"]) == {"data": {"seed": 4}}


def test_missing_and_unparsable_files_give_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(_write(tmp_path, "train: [unclosed\n"))
    with pytest.raises(ValueError, match="must hold a mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"))


def test_yaml_and_json_round_trip():
    cfg = config_from_dict({"name": "x", "model": {"dim": 32, "sequence_options": {"blocks": 2}}})
    assert config_from_dict(yaml.safe_load(dump_yaml(cfg))) == cfg
    assert config_from_dict(json.loads(dump_json(cfg))) == cfg
    assert config_to_dict(cfg)["model"]["dim"] == 32


def test_every_shipped_config_loads():
    experiments = CONFIGS.parent / "experiments"
    files = sorted(CONFIGS.rglob("*.yaml")) + sorted(experiments.rglob("*.yaml"))
    assert files, "no configs shipped"
    assert any(f.is_relative_to(experiments) for f in files)
    for f in files:
        cfg = load_config(f)
        assert cfg.name, f
