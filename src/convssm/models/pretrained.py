"""Self-describing model directories: ``config.json`` (the model's config, with a format
version) beside ``model.safetensors`` (the weights), written atomically.

    model.save_pretrained("runs/convs5_small/final")
    model = VideoPredictor.from_pretrained("runs/convs5_small/final")

``config.json`` is read through :func:`convssm.models.config.config_from_payload`, so
directories written by older versions of convssm load (their config is migrated).

Every model class that mixes in :class:`PretrainedMixin` names its config dataclass
(``config_class``) and is registered under its format name ``convssm.<ClassName>``, so
:func:`read_config_json` returns the config of whichever model a directory holds and
:func:`write_config_json` writes any model's config. A class other than ``VideoPredictor``
stores ``{"format": "convssm.<ClassName>", "format_version": config_version, "config":
{...}}`` and reads it back with :func:`convssm._typed.dataclass_from_dict` (unknown keys
rejected, missing keys defaulted).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from convssm._files import atomic_write, atomic_write_text
from convssm._typed import dataclass_from_dict
from convssm.models.config import VideoPredictorConfig, config_from_payload, config_payload

__all__ = [
    "PretrainedMixin",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "read_config_json",
    "write_config_json",
    "write_weights",
    "model_class_for_config",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


_KINDS: dict[str, type] = {}  # format name -> model class


def model_class_for_config(config: Any) -> type:
    """The registered model class whose ``config_class`` ``config`` is an instance of."""
    for cls in _KINDS.values():
        if type(config) is cls.config_class:
            return cls
    raise TypeError(f"no convssm model is configured by a {type(config).__name__}")


def write_config_json(directory: str | os.PathLike, config: Any) -> Path:
    """Write ``directory/config.json`` (atomically) holding ``config`` and its format version."""
    path = Path(directory) / CONFIG_NAME
    payload = model_class_for_config(config).config_payload(config)
    atomic_write_text(path, json.dumps(payload, indent=2))
    return path


def read_config_json(directory: str | os.PathLike) -> Any:
    """The model config stored in ``directory/config.json`` (of whichever registered model it
    describes), migrated and checked."""
    path = Path(directory) / CONFIG_NAME
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"no model directory at {directory}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: not a saved convssm model directory")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    fmt = meta.get("format") if isinstance(meta, dict) else None
    cls = _KINDS.get(fmt) if isinstance(fmt, str) else None
    if cls is None:
        got = fmt if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{path} describes {got!r}, not one of {sorted(_KINDS)}")
    return cls.config_from_payload(meta, str(path))


def write_weights(directory: str | os.PathLike, module: torch.nn.Module) -> Path:
    """Write ``module``'s state dict to ``directory/model.safetensors`` (atomically)."""
    path = Path(directory) / WEIGHTS_NAME
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp))
    return path


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` for a module built from a config dataclass.

    Class attributes: ``config_class`` (the dataclass; ``VideoPredictorConfig`` unless a
    class says otherwise) and ``config_version`` (of the stored format).
    """

    config: Any
    config_class: ClassVar[type] = VideoPredictorConfig
    config_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _KINDS[cls.config_format()] = cls

    @classmethod
    def config_format(cls) -> str:
        return f"convssm.{cls.__name__}"

    @classmethod
    def config_payload(cls, config: Any) -> dict[str, Any]:
        """What ``config.json`` holds for ``config``."""
        if cls.config_class is VideoPredictorConfig:
            return config_payload(config)
        return {
            "format": cls.config_format(),
            "format_version": cls.config_version,
            "config": dataclasses.asdict(config),
        }

    @classmethod
    def config_from_payload(cls, meta: Any, where: str) -> Any:
        """The config in a ``config.json`` payload, checked (ValueError naming ``where``)."""
        if cls.config_class is VideoPredictorConfig:
            return config_from_payload(meta, where)
        version = meta.get("format_version")
        if version != cls.config_version:
            raise ValueError(
                f"{where} has format_version {version!r}, this convssm reads "
                f"{cls.config_version} for {cls.config_format()}"
            )
        try:
            return dataclass_from_dict(cls.config_class, meta.get("config"), "config")
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from None

    @classmethod
    def from_config(cls, config: Any):
        """Build the model ``config`` describes."""
        return cls(config)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write config.json and model.safetensors into ``directory`` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_weights(directory, self)
        write_config_json(directory, self.config)
        return directory

    @classmethod
    def read_pretrained_config(cls, directory: str | os.PathLike) -> VideoPredictorConfig:
        """The config stored in ``directory/config.json``, checked (older formats migrated)."""
        config = read_config_json(directory)
        if not isinstance(config, cls.config_class):
            got = model_class_for_config(config).config_format()
            path = Path(directory) / CONFIG_NAME
            raise ValueError(f"{path} describes {got!r}, not {cls.config_format()!r}")
        return config

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str = "cpu"):
        """Build the model from ``directory/config.json`` and load its weights."""
        config = cls.read_pretrained_config(directory)
        weights = Path(directory) / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{weights} is missing")
        try:
            state = load_file(str(weights), device=map_location)
        except (SafetensorError, OSError, ValueError) as err:
            raise ValueError(f"{weights} is corrupt or unreadable: {err}") from err
        model = cls.from_config(config)
        missing, unexpected = (
            sorted(set(model.state_dict()) - set(state)),
            sorted(set(state) - set(model.state_dict())),
        )
        if missing or unexpected:
            raise ValueError(
                f"{weights} does not match its config: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"{weights} does not match its config: {err}") from err
        return model.to(map_location)
