"""VideoPredictorConfig: the one description of a VideoPredictor, its config.json format,
migration from format 1, and errors that name the key."""

from __future__ import annotations

import json

import pytest
import torch

from convssm.models import VideoPredictor, VideoPredictorConfig
from convssm.models.config import CONFIG_VERSION, config_from_payload
from convssm.train.config import config_from_dict

SMALL = dict(
    image_size=16,
    encoder_widths=[8, 16],
    norm_groups=4,
    dim=16,
    sequence_options=dict(state_dim=8, depth=1, norm_groups=4),
)
TRANSFORMER = dict(
    image_size=16,
    encoder_widths=[8, 8],
    norm_groups=4,
    dim=8,
    sequence_model="transformer",
    sequence_options=dict(embed_dim=8, mlp_dim=8, heads=2, depth=1, window=4, max_len=8),
)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_config_and_keywords_build_the_same_model():
    config = VideoPredictorConfig(**SMALL)
    torch.manual_seed(0)
    a = VideoPredictor(config)
    torch.manual_seed(0)
    b = VideoPredictor(**SMALL)
    assert a.config == b.config == config and _same_weights(a, b)
    config.dim = 32  # the model keeps its own copy
    assert a.config.dim == 16


def test_bad_construction_names_the_problem():
    with pytest.raises(ValueError, match="unknown key 'dimm'"):
        VideoPredictor(dimm=3)
    with pytest.raises(TypeError, match=r"VideoPredictor arguments.encoder_widths\[1\]"):
        VideoPredictor(encoder_widths=[8, "x"])
    with pytest.raises(ValueError, match="dim must be positive"):
        VideoPredictorConfig(dim=0)
    with pytest.raises(ValueError, match="divisible by 4"):
        VideoPredictorConfig(image_size=18, encoder_widths=[8, 8, 8])
    with pytest.raises(TypeError, match="not both"):
        VideoPredictor(VideoPredictorConfig(**SMALL), dim=8)
    with pytest.raises(TypeError, match="VideoPredictorConfig"):
        VideoPredictor({"dim": 8})


def test_experiment_model_section_is_the_config_and_errors_name_the_key():
    cfg = config_from_dict({"model": SMALL})
    assert isinstance(cfg.model, VideoPredictorConfig)
    assert cfg.model == VideoPredictorConfig(**SMALL)
    with pytest.raises(ValueError, match="unknown key 'dimm' in section 'model'"):
        config_from_dict({"model": {"dimm": 3}})
    with pytest.raises(ValueError, match="model.dim must be positive"):
        config_from_dict({"model": {"dim": 0}})
    with pytest.raises(TypeError, match="model.sequence_options: expected a mapping"):
        config_from_dict({"model": {"sequence_options": [1]}})


def test_saved_config_json_has_format_version_and_the_config_once(tmp_path):
    VideoPredictor(**SMALL).save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["format"] == "convssm.VideoPredictor"
    assert meta["format_version"] == CONFIG_VERSION == 2
    assert meta["config"] == VideoPredictorConfig(**SMALL).to_dict()


def test_format_1_with_the_grid_size_filled_in_migrates_to_the_same_model(tmp_path):
    torch.manual_seed(1)
    model = VideoPredictor(**TRANSFORMER)
    model.save_pretrained(tmp_path)
    v1 = {**TRANSFORMER, "sequence_options": {**TRANSFORMER["sequence_options"]}}
    v1["encoder_widths"] = [8, 8]
    v1["sequence_options"].update(height=8, width=8)  # version 1 stored the latent grid
    v1["action_embed_dim"] = 16
    meta = {"format": "convssm.VideoPredictor", "format_version": 1, "config": v1}
    (tmp_path / "config.json").write_text(json.dumps(meta))
    loaded = VideoPredictor.from_pretrained(tmp_path)
    assert loaded.config == model.config and "height" not in loaded.config.sequence_options
    assert _same_weights(loaded, model)


def test_files_without_newer_fields_load_with_defaults_and_unknown_or_newer_fail():
    old = {"format": "convssm.VideoPredictor", "format_version": 2, "config": {"dim": 32}}
    assert config_from_payload(old, "config.json") == VideoPredictorConfig(dim=32)
    newer = {**old, "format_version": CONFIG_VERSION + 1}
    with pytest.raises(ValueError, match="newer convssm"):
        config_from_payload(newer, "config.json")
    unknown = {**old, "config": {"dim": 32, "norm_stats": [0.5]}}
    with pytest.raises(ValueError, match="config.json: unknown key 'norm_stats'"):
        config_from_payload(unknown, "config.json")
    with pytest.raises(ValueError, match="not 'convssm.VideoPredictor'"):
        config_from_payload({"format": "other"}, "config.json")


def test_a_misspelt_nested_option_names_the_key_the_section_and_the_valid_keys():
    from convssm.models import LatentVideoPredictor, VideoPredictor
    from convssm.train.config import config_from_dict

    latent = {"kind": "latent_video_predictor", "codebook_size": 8, "latent_size": 4}
    data = {"codes": {"dataset": "codes", "root": "codes"}, "pixels": {}}
    for model, where in ((dict(sequence_options={"statedim": 4}), "pixels"),
                         (dict(latent, sequence_options={"statedim": 4}), "codes")):  # fmt: skip
        with pytest.raises(ValueError) as err:
            config_from_dict({"model": model, "data": data[where]})
        message = str(err.value)
        assert "model.sequence_options: unknown key 'statedim'" in message, message
        assert "valid keys: state_dim" in message and "clip_eigs" in message  # inner layers'
    with pytest.raises(ValueError, match="model.sequence_options: unknown key 'depht'.*depth"):
        lstm = dict(latent, sequence_model="convlstm", sequence_options={"depht": 2})
        config_from_dict({"model": lstm, "data": data["codes"]})
    with pytest.raises(TypeError, match=r"model.sequence_options.blocks: expected an integer"):
        config_from_dict({"model": {"sequence_options": {"blocks": "two"}}})
    wrong = {"statedim": 4}
    for build in (lambda: VideoPredictor(sequence_options=wrong),
                  lambda: LatentVideoPredictor(8, 4, sequence_options=wrong)):  # fmt: skip
        with pytest.raises(ValueError, match="sequence_options: unknown key 'statedim'"):
            build()
