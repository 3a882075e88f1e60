"""Self-describing model directories: ``config.json`` (the model's config, with a format
version) beside ``model.safetensors`` (the weights), written atomically.

    model.save_pretrained("runs/convs5_small/final")
    model = VideoPredictor.from_pretrained("runs/convs5_small/final")

``config.json`` is read through :func:`convssm.models.config.config_from_payload`, so
directories written by older versions of convssm load (their config is migrated).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from convssm._files import atomic_write, atomic_write_text
from convssm.models.config import VideoPredictorConfig, config_from_payload, config_payload

__all__ = [
    "PretrainedMixin",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "read_config_json",
    "write_config_json",
    "write_weights",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def write_config_json(directory: str | os.PathLike, config: VideoPredictorConfig) -> Path:
    """Write ``directory/config.json`` (atomically) holding ``config`` and its format version."""
    path = Path(directory) / CONFIG_NAME
    atomic_write_text(path, json.dumps(config_payload(config), indent=2))
    return path


def read_config_json(directory: str | os.PathLike) -> VideoPredictorConfig:
    """The model config stored in ``directory/config.json``, migrated and checked."""
    path = Path(directory) / CONFIG_NAME
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"no model directory at {directory}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: not a saved convssm model directory")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    return config_from_payload(meta, str(path))


def write_weights(directory: str | os.PathLike, module: torch.nn.Module) -> Path:
    """Write ``module``'s state dict to ``directory/model.safetensors`` (atomically)."""
    path = Path(directory) / WEIGHTS_NAME
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp))
    return path


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` for a module built as ``cls(config)``."""

    config: VideoPredictorConfig

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
        return read_config_json(directory)

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
        model = cls(config)
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
