"""Errors in nested model.sequence_options name the key, not the line that trips over it."""

from __future__ import annotations

import pytest

from convssm.train.config import config_from_dict


def _cfg(model, options):
    return config_from_dict({"model": {"sequence_model": model, "sequence_options": options}})


@pytest.mark.parametrize(
    "model, options, message",
    [
        ("convs5", {"depth": "2"}, r"model\.sequence_options\.depth: expected an integer, got '2'"),
        ("convlstm", {"dropout": "0.1"}, r"model\.sequence_options\.dropout: expected a number"),
        ("transformer", {"cache": 1}, r"model\.sequence_options\.cache: expected true/false"),
        ("convlstm", {"deepth": 2}, r"model\.sequence_options: unknown key 'deepth' .*depth"),
        ("convs5", {"dim": 8}, r"model\.sequence_options\.dim: set the width with dim"),
    ],
)
def test_nested_option_errors_name_the_key(model, options, message):
    with pytest.raises((TypeError, ValueError), match=message):
        _cfg(model, options)


def test_good_options_and_options_for_inner_layers_pass():
    cfg = _cfg("convs5", {"depth": 2, "state_dim": 8, "clip_eigs": True, "blocks": 1})
    assert cfg.model.sequence_options["depth"] == 2
    assert _cfg("convlstm", {"dropout": 0}).model.sequence_options == {"dropout": 0}


def test_the_python_api_names_the_key_too():
    from convssm.models import VideoPredictor

    with pytest.raises(TypeError, match=r"arguments\.sequence_options\.depth: expected an integer"):
        VideoPredictor(sequence_options={"depth": "2"})
