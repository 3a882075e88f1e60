"""Self-describing model directories: ``config.json`` (the constructor arguments) beside
``model.safetensors`` (the weights), written atomically.

    model.save_pretrained("runs/convs5_small/final")
    model = VideoPredictor.from_pretrained("runs/convs5_small/final")
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from convssm._files import atomic_write, atomic_write_text

__all__ = ["PretrainedMixin", "CONFIG_NAME", "WEIGHTS_NAME"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` for a module with a JSON-able ``config``."""

    config: dict[str, Any]

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write config.json and model.safetensors into ``directory`` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(state, tmp))
        meta = {
            "format": f"convssm.{type(self).__name__}",
            "format_version": FORMAT_VERSION,
            "config": self.config,
        }
        atomic_write_text(directory / CONFIG_NAME, json.dumps(meta, indent=2))
        return directory

    @classmethod
    def read_pretrained_config(cls, directory: str | os.PathLike) -> dict[str, Any]:
        """The constructor arguments stored in ``directory/config.json``, checked."""
        path = Path(directory) / CONFIG_NAME
        if not Path(directory).is_dir():
            raise FileNotFoundError(f"no model directory at {directory}")
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: not a saved convssm model directory")
        try:
            meta = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
        want = f"convssm.{cls.__name__}"
        if not isinstance(meta, dict) or meta.get("format") != want:
            got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise ValueError(f"{path} describes {got!r}, not {want!r}")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path} has format_version {meta.get('format_version')}, "
                f"this convssm reads {FORMAT_VERSION}"
            )
        config = meta.get("config")
        config_class = getattr(cls, "config_class", None)
        if config_class is not None:  # built from a config dataclass: its fields are the keys
            params = {f.name for f in dataclasses.fields(config_class)}
        else:
            params = set(inspect.signature(cls.__init__).parameters)
        unknown = sorted(set(config or {}) - params - {"self"})
        if not isinstance(config, dict) or unknown:
            raise ValueError(f"{path}: unknown config key(s) {unknown}")
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
        model = cls(**config)
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
