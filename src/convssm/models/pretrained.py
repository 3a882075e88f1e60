"""Self-describing model directories: ``config.json`` (the model's config, with a format
version, and the SHA-256 of the weights) beside ``model.safetensors`` (the weights), written
atomically.

Loading checks the weights against the recorded SHA-256 and refuses a mismatch (a flipped
byte in a float loads silently otherwise); a folder written before the hash was recorded
loads with a warning that its integrity could not be checked.

    model.save_pretrained("runs/convs5_small/final")
    model = VideoPredictor.from_pretrained("runs/convs5_small/final")

``config.json`` is read through :func:`convssm.models.config.config_from_payload`, so
directories written by older versions of convssm load (their config is migrated).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from convssm._files import atomic_write, atomic_write_text, sha256_file
from convssm.models.config import VideoPredictorConfig, config_from_payload, config_payload

__all__ = [
    "PretrainedMixin",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "read_config_json",
    "write_config_json",
    "write_weights",
    "verify_weights",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def write_config_json(directory: str | os.PathLike, config: VideoPredictorConfig) -> Path:
    """Write ``directory/config.json`` (atomically) holding ``config``, its format version and
    the SHA-256 of ``directory/model.safetensors`` when that file is there (write it first)."""
    path = Path(directory) / CONFIG_NAME
    payload = config_payload(config)
    weights = Path(directory) / WEIGHTS_NAME
    if weights.is_file():
        payload["weights_sha256"] = sha256_file(weights)
    atomic_write_text(path, json.dumps(payload, indent=2))
    return path


def _read_meta(directory: str | os.PathLike) -> dict:
    path = Path(directory) / CONFIG_NAME
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"no model directory at {directory}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: not a saved convssm model directory")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    return meta


def read_config_json(directory: str | os.PathLike) -> VideoPredictorConfig:
    """The model config stored in ``directory/config.json``, migrated and checked."""
    return config_from_payload(_read_meta(directory), str(Path(directory) / CONFIG_NAME))


def verify_weights(directory: str | os.PathLike) -> None:
    """Check ``model.safetensors`` against the SHA-256 that ``config.json`` records.

    Raises ValueError on a mismatch; warns (UserWarning) when none is recorded (a folder
    written by an older convssm).
    """
    weights = Path(directory) / WEIGHTS_NAME
    want = _read_meta(directory).get("weights_sha256")
    if want is None:
        warnings.warn(
            f"{Path(directory) / CONFIG_NAME} records no SHA-256 of its weights (written by "
            "an older convssm): the integrity of model.safetensors is not checked",
            UserWarning,
            stacklevel=3,
        )
        return
    got = sha256_file(weights)
    if got != want:
        raise ValueError(
            f"{weights} is corrupt or was altered: its SHA-256 is {got[:16]}..., "
            f"config.json records {str(want)[:16]}..."
        )


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
        verify_weights(directory)
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
