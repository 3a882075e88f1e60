"""Self-describing model directories: ``config.json`` (the constructor arguments and the
SHA-256 of the weights) beside ``model.safetensors`` (the weights), written atomically.

Loading checks the weights against the recorded SHA-256 and refuses a mismatch (a flipped
byte in a float loads silently otherwise); a folder written before the hash was recorded
loads with a warning that its integrity could not be checked.

    model.save_pretrained("runs/convs5_small/final")
    model = VideoPredictor.from_pretrained("runs/convs5_small/final")
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from convssm._files import atomic_write, atomic_write_text, sha256_file

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
            "weights_sha256": sha256_file(directory / WEIGHTS_NAME),
        }
        atomic_write_text(directory / CONFIG_NAME, json.dumps(meta, indent=2))
        return directory

    @classmethod
    def read_pretrained_config(cls, directory: str | os.PathLike) -> dict[str, Any]:
        """The constructor arguments stored in ``directory/config.json``, checked."""
        return cls._read_meta(directory)["config"]

    @classmethod
    def _read_meta(cls, directory: str | os.PathLike) -> dict[str, Any]:
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
        params = inspect.signature(cls.__init__).parameters
        unknown = sorted(set(config or {}) - set(params) - {"self"})
        if not isinstance(config, dict) or unknown:
            raise ValueError(f"{path}: unknown config key(s) {unknown}")
        return meta

    @staticmethod
    def verify_weights(directory: str | os.PathLike, meta: dict[str, Any]) -> None:
        """Check ``model.safetensors`` against the SHA-256 in ``config.json``.

        Raises ValueError on a mismatch; warns (UserWarning) when none is recorded.
        """
        weights = Path(directory) / WEIGHTS_NAME
        want = meta.get("weights_sha256")
        if want is None:
            warnings.warn(
                f"{Path(directory) / CONFIG_NAME} records no SHA-256 of its weights (written "
                "by an older convssm): the integrity of model.safetensors is not checked",
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

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str = "cpu"):
        """Build the model from ``directory/config.json`` and load its weights."""
        meta = cls._read_meta(directory)
        config = meta["config"]
        weights = Path(directory) / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{weights} is missing")
        cls.verify_weights(directory, meta)
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
