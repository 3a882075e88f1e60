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

Every model class that mixes in :class:`PretrainedMixin` names its config dataclass
(``config_class``) and stores it under its format name ``convssm.<ClassName>``; the kinds of
model are listed once, in :mod:`convssm.models.registry`, whose ``read_config_json`` returns
the config of whichever model a directory holds. A class other than ``VideoPredictor``
stores ``{"format": "convssm.<ClassName>", "format_version": config_version, "config":
{...}}`` and reads it back with :func:`convssm._typed.dataclass_from_dict` (unknown keys
rejected, missing keys defaulted).
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from convssm._files import atomic_write, atomic_write_text, sha256_file
from convssm._typed import dataclass_from_dict
from convssm.models.config import VideoPredictorConfig, config_from_payload, config_payload

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "PretrainedMixin",
    "read_config_meta",
    "write_config_payload",
    "write_weights",
    "verify_weights",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def write_config_payload(directory: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``directory/config.json`` (atomically): ``payload`` (a model's
    :meth:`PretrainedMixin.config_payload`) and the SHA-256 of ``directory/model.safetensors``
    when that file is there (write it first)."""
    path = Path(directory) / CONFIG_NAME
    payload = dict(payload)
    weights = Path(directory) / WEIGHTS_NAME
    if weights.is_file():
        payload["weights_sha256"] = sha256_file(weights)
    atomic_write_text(path, json.dumps(payload, indent=2))
    return path


def read_config_meta(directory: str | os.PathLike) -> Any:
    """The parsed ``directory/config.json`` (FileNotFoundError / ValueError naming the file)."""
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


def verify_weights(directory: str | os.PathLike) -> None:
    """Check ``model.safetensors`` against the SHA-256 that ``config.json`` records.

    Raises ValueError on a mismatch; warns (UserWarning) when none is recorded (a folder
    written by an older convssm).
    """
    weights = Path(directory) / WEIGHTS_NAME
    want = read_config_meta(directory).get("weights_sha256")
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
    """``save_pretrained`` / ``from_pretrained`` for a module built from a config dataclass.

    Class attributes: ``config_class`` (the dataclass; ``VideoPredictorConfig`` unless a
    class says otherwise) and ``config_version`` (of the stored format).
    """

    config: Any
    config_class: ClassVar[type] = VideoPredictorConfig
    config_version: ClassVar[int] = 1

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
        write_config_payload(directory, self.config_payload(self.config))
        return directory

    @classmethod
    def read_pretrained_config(cls, directory: str | os.PathLike) -> Any:
        """The config stored in ``directory/config.json``, checked (older formats migrated)."""
        meta = read_config_meta(directory)
        path = Path(directory) / CONFIG_NAME
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        if got != cls.config_format():
            raise ValueError(f"{path} describes {got!r}, not {cls.config_format()!r}")
        return cls.config_from_payload(meta, str(path))

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
