"""The one registry of model kinds: kind name -> config class -> model class.

Config parsing (``model.kind`` in an experiment file), checkpoints, model folders
(``config.json``'s ``format``), ``from_pretrained`` and the training factory all read it::

    kind = kind_of(config)           # or kind_of(model), or model_kind("vq_tokenizer")
    model = kind.build(config)       # = build_model(config)

A new kind is one :class:`ModelKind` line in :data:`MODEL_KINDS`; its model class mixes in
:class:`~convssm.models.pretrained.PretrainedMixin` (its ``config_class`` and stored format).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from convssm.models.config import VideoPredictorConfig
from convssm.models.latent_video_predictor import LatentVideoPredictor, LatentVideoPredictorConfig
from convssm.models.pretrained import CONFIG_NAME, read_config_meta, write_config_payload
from convssm.models.teco import TECO
from convssm.models.teco_config import TECOConfig
from convssm.models.video_predictor import VideoPredictor
from convssm.models.vq_tokenizer import VQTokenizer, VQTokenizerConfig

__all__ = [
    "DEFAULT_KIND",
    "MODEL_KINDS",
    "ModelKind",
    "build_model",
    "kind_of",
    "model_kind",
    "read_config_json",
    "write_config_json",
]


@dataclass(frozen=True)
class ModelKind:
    """One kind of model.

    ``generates_frames``: it continues videos from context frames itself
    (``model.generate(frames, horizon)`` gives frames), so ``convssm generate`` and the
    evaluation protocol (docs/design.md#evaluation-protocol) run on it; the others predict codes or
    reconstruct frames.

    ``predicts_codes``: it continues videos of a tokenizer's codes
    (``model.generate(codes, horizon)`` gives codes): it trains on a code cache
    (``data.dataset: codes``) and is evaluated through its tokenizer.
    """

    name: str
    config_class: type
    model_class: type
    generates_frames: bool
    predicts_codes: bool = False

    @property
    def config_format(self) -> str:
        """The ``format`` its ``config.json`` records (``convssm.<ClassName>``)."""
        return self.model_class.config_format()

    def build(self, config: Any) -> nn.Module:
        """A fresh model of this kind built from ``config``."""
        return self.model_class.from_config(config)


MODEL_KINDS: dict[str, ModelKind] = {
    kind.name: kind
    for kind in (
        ModelKind("video_predictor", VideoPredictorConfig, VideoPredictor, True),
        ModelKind("vq_tokenizer", VQTokenizerConfig, VQTokenizer, False),
        ModelKind(
            "latent_video_predictor", LatentVideoPredictorConfig, LatentVideoPredictor, False, True
        ),
        ModelKind("teco", TECOConfig, TECO, False, True),
    )
}
DEFAULT_KIND = "video_predictor"  # what an experiment's model section without ``kind`` is


def model_kind(name: Any, where: str = "model.kind") -> ModelKind:
    """The kind named ``name`` (ValueError naming ``where`` and the valid names)."""
    if not isinstance(name, str) or name not in MODEL_KINDS:
        raise ValueError(f"{where}: must be one of {list(MODEL_KINDS)}, got {name!r}")
    return MODEL_KINDS[name]


def kind_of(obj: Any) -> ModelKind:
    """The kind of a model config or of a model (by its exact class)."""
    for kind in MODEL_KINDS.values():
        if type(obj) is kind.config_class or type(obj) is kind.model_class:
            return kind
    raise TypeError(f"{type(obj).__name__} is not a convssm model or model config")


def build_model(config: Any) -> nn.Module:
    """A fresh model of the kind ``config`` describes."""
    return kind_of(config).build(config)


def write_config_json(directory: str | os.PathLike, config: Any) -> Path:
    """Write ``directory/config.json`` (atomically) holding ``config`` (of any kind), its
    format version and the SHA-256 of ``directory/model.safetensors`` when that file is
    there (write it first)."""
    return write_config_payload(directory, kind_of(config).model_class.config_payload(config))


def read_config_json(directory: str | os.PathLike) -> Any:
    """The model config stored in ``directory/config.json`` (of whichever kind it
    describes, by its ``format``), migrated and checked."""
    meta = read_config_meta(directory)
    path = Path(directory) / CONFIG_NAME
    fmt = meta.get("format") if isinstance(meta, dict) else None
    for kind in MODEL_KINDS.values():
        if fmt == kind.config_format:
            return kind.model_class.config_from_payload(meta, str(path))
    got = fmt if isinstance(meta, dict) else type(meta).__name__
    formats = sorted(k.config_format for k in MODEL_KINDS.values())
    raise ValueError(f"{path} describes {got!r}, not one of {formats}")
