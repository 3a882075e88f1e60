"""The one registry of model kinds: names, config classes, model classes and stored formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import TINY

from convssm.models import (
    MODEL_KINDS,
    TECO,
    LatentVideoPredictor,
    LatentVideoPredictorConfig,
    TECOConfig,
    VideoPredictor,
    VideoPredictorConfig,
    VQTokenizer,
    VQTokenizerConfig,
    build_model,
    kind_of,
    model_kind,
    read_config_json,
    write_config_json,
)

PRETRAINED = Path(__file__).resolve().parents[2] / "pretrained"


def test_the_kinds_and_their_classes():
    assert {name: (k.config_class, k.model_class) for name, k in MODEL_KINDS.items()} == {
        "video_predictor": (VideoPredictorConfig, VideoPredictor),
        "vq_tokenizer": (VQTokenizerConfig, VQTokenizer),
        "latent_video_predictor": (LatentVideoPredictorConfig, LatentVideoPredictor),
        "teco": (TECOConfig, TECO),
    }
    assert [k.name for k in MODEL_KINDS.values() if k.generates_frames] == ["video_predictor"]
    codes = [k.name for k in MODEL_KINDS.values() if k.predicts_codes]
    assert codes == ["latent_video_predictor", "teco"]


@pytest.mark.parametrize("name", list(TINY))
def test_build_save_and_read_back_each_kind(name, tmp_path):
    config = TINY[name]
    kind = model_kind(name)
    assert kind_of(config) is kind
    model = build_model(config)
    assert type(model) is kind.model_class and kind_of(model) is kind
    model.save_pretrained(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["format"] == kind.config_format == f"convssm.{kind.model_class.__name__}"
    assert read_config_json(tmp_path / "m") == config
    assert type(kind.model_class.from_pretrained(tmp_path / "m")) is kind.model_class
    (tmp_path / "c").mkdir()
    write_config_json(tmp_path / "c", config)
    assert read_config_json(tmp_path / "c") == config


def test_a_folder_of_another_kind_is_refused_by_name(tmp_path):
    build_model(TINY["vq_tokenizer"]).save_pretrained(tmp_path / "tok")
    with pytest.raises(ValueError, match="describes 'convssm.VQTokenizer', not 'convssm.Video"):
        VideoPredictor.from_pretrained(tmp_path / "tok")


def test_unknown_kinds_and_formats_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"model.kind: must be one of \['video_predictor'"):
        model_kind("gan")
    with pytest.raises(TypeError, match="dict is not a convssm model"):
        kind_of({})
    (tmp_path / "config.json").write_text(json.dumps({"format": "other.Model"}))
    with pytest.raises(ValueError, match="describes 'other.Model', not one of"):
        read_config_json(tmp_path)


@pytest.mark.parametrize(
    "folder", sorted(p.parent for p in PRETRAINED.rglob("config.json")), ids=lambda p: p.name
)
def test_every_published_folder_is_of_a_registered_kind(folder):
    assert kind_of(read_config_json(folder)).generates_frames
