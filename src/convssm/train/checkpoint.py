"""Atomic, self-describing training checkpoints.

A checkpoint is a directory ``<workdir>/checkpoints/step_<NNNNNNNN>/`` holding

- ``model.safetensors`` and ``config.json``: the weights and the model's config (the
  experiment's ``model`` section, the config of whichever ``model.kind`` it is, stored only
  here, with the SHA-256 of the weights), so a checkpoint directory is also a
  ``from_pretrained`` directory of its model class;
- ``experiment.yaml``: the rest of the experiment config that produced it;
- ``training_state.pt``: optimizer, scheduler, scaler, step, data position and RNG states
  (python, numpy, torch CPU, CUDA when present), loadable with ``weights_only=True``
  (:meth:`convssm.train.state.TrainState.state_dict`);
- ``manifest.json`` (written last): format version, step, and the size and SHA-256 of
  every other file, so a truncated or altered file is reported as corrupt.

Writing is atomic: files go to a hidden temporary directory in the same folder, each is
fsynced, the directory is renamed into place with ``os.replace`` and the parent fsynced; the
``latest`` pointer file is replaced the same way and always names a complete checkpoint. A
crash mid-write leaves only a ``.tmp-step_N-pid<PID>-<host>-*`` directory (ignored, and removed
by a later save once its writer is dead; a live writer's is never touched) and the previous
checkpoint intact. Pruning keeps the ``keep`` newest checkpoints up to the one just written
(never that one). Folders and files follow the process's umask.

Format versions: 1 stored the model config twice (``config.json`` and the ``model`` section
of ``experiment.yaml``); 2 stores it once, in ``config.json``. Both load.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import socket
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file

from convssm._files import atomic_write_text, default_mode, fsync_dir, fsync_file
from convssm.models.pretrained import write_weights
from convssm.models.registry import read_config_json, write_config_json
from convssm.train.config import (
    ExperimentConfig,
    ModelConfig,
    config_from_dict,
    config_to_dict,
    model_config_to_dict,
)

__all__ = [
    "FORMAT_VERSION",
    "CheckpointInfo",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint",
    "list_checkpoints",
    "latest_checkpoint",
    "load_latest_intact",
    "read_experiment_yaml",
    "write_experiment_yaml",
    "capture_rng_state",
    "restore_rng_state",
    "load_model_weights",
]

FORMAT_VERSION = 2
_READS = (1, 2)
_NAME = re.compile(r"^step_(\d{8,})$")
_REQUIRED = ("model.safetensors", "config.json", "experiment.yaml", "training_state.pt")


@dataclass
class CheckpointInfo:
    """What :func:`load_checkpoint` returns: the path, step, config, weights and state."""

    path: Path
    step: int
    config: ExperimentConfig
    weights: dict[str, torch.Tensor]
    training_state: dict[str, Any]
    format_version: int = FORMAT_VERSION

    @property
    def model_config(self) -> ModelConfig:
        return self.config.model


# ---------------------------------------------------------------- RNG


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy, torch CPU (and CUDA when present) RNG states, as torch-loadable values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - the global RNG is what we save
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


# ---------------------------------------------------------------- files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete checkpoints under ``directory`` (a ``checkpoints`` folder), oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir() and (p / "manifest.json").is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest complete checkpoint in a ``checkpoints`` folder, or ``None``."""
    ckpts = list_checkpoints(directory)
    return ckpts[-1] if ckpts else None


def save_checkpoint(
    directory: str | Path,
    step: int,
    model: torch.nn.Module,
    config: ExperimentConfig,
    training_state: dict[str, Any],
    keep: int = 3,
) -> Path:
    """Write checkpoint ``step`` atomically into ``directory``; return its path.

    ``model`` is the bare module (not a DDP wrapper); ``config.model`` goes to
    ``config.json``, the other sections to ``experiment.yaml``. ``training_state`` holds
    plain values and tensors (it is read back with ``torch.load(weights_only=True)``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_orphaned_temps(directory)
    final = directory / f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-step_{step:08d}-{_owner()}-", dir=directory))
    try:
        os.chmod(tmp, default_mode(directory=True))  # mkdtemp makes 0700; follow the umask
        try:
            write_weights(tmp, model)
            write_config_json(tmp, config.model)
            (tmp / "experiment.yaml").write_text(_experiment_yaml(config))
            torch.save({**training_state, "step": step}, tmp / "training_state.pt")
        except (OSError, RuntimeError) as err:  # torch reports a full disk as RuntimeError
            raise OSError(f"could not write checkpoint {str(final)!r}: {err}") from err
        files = {}
        for name in _REQUIRED:
            fsync_file(tmp / name)
            files[name] = {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)}
        manifest = {"format_version": FORMAT_VERSION, "step": step, "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        fsync_file(tmp / "manifest.json")
        fsync_dir(tmp)
        if final.exists():  # re-saving the same step: move the old one aside first
            _point_latest(directory, exclude=final)  # `latest` never names a missing folder
            old = directory / f".tmp-step_{step:08d}-{_owner()}-old"
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(directory)
    atomic_write_text(directory / "latest", final.name + "\n")
    # prune the oldest checkpoints before this one; never this one, never a newer one
    older = [p for p in list_checkpoints(directory) if _step_of(p) < step]
    for old in older[: max(len(older) - (keep - 1), 0)] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _step_of(path: Path) -> int:
    return int(_NAME.match(path.name).group(1))


def _owner() -> str:
    """Who writes a temporary folder: ``pid<PID>-<host>`` (in its name)."""
    return f"pid{os.getpid()}-{socket.gethostname()}"


_TEMP = re.compile(r"^\.tmp-step_\d{8,}-(?:pid(\d+)-(.+)-[^-]+|[^-]+)$")


def _remove_orphaned_temps(directory: Path) -> None:
    """Delete temporary checkpoint folders whose writer is dead: one of this host whose
    process is gone, or one of an older convssm that did not record its writer. A folder
    of a live writer, or of another host, belongs to that writer and stays."""
    for tmp in directory.glob(".tmp-step_*"):
        m = _TEMP.match(tmp.name)
        if m is None:
            continue
        if m.group(1) is not None:
            pid, host = int(m.group(1)), m.group(2)
            if host != socket.gethostname() or _alive(pid):
                continue
        shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's live process
        return True
    return True


def _point_latest(directory: Path, exclude: Path) -> None:
    """Point ``latest`` at the newest complete checkpoint other than ``exclude`` (or remove
    it when there is none), before ``exclude`` is moved away."""
    others = [p for p in list_checkpoints(directory) if p != exclude]
    if others:
        atomic_write_text(directory / "latest", others[-1].name + "\n")
    else:
        (directory / "latest").unlink(missing_ok=True)
        fsync_dir(directory)


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint dir, a ``checkpoints`` folder or a run's workdir; return the dir."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    if (path / "manifest.json").is_file() or (path / "model.safetensors").is_file():
        return path
    for folder in (path, path / "checkpoints"):
        latest = latest_checkpoint(folder)
        if latest is not None:
            return latest
    raise ValueError(
        f"{str(path)!r} is not a checkpoint: no manifest.json in it and no complete "
        "step_* checkpoint under it (or under its checkpoints/ folder)"
    )


def load_checkpoint(
    path: str | Path, *, verify: bool = True, training_state: bool = True
) -> CheckpointInfo:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    ``training_state=False`` (inference) neither reads nor hashes ``training_state.pt``
    (only its size is checked); ``info.training_state`` is then empty.

    Raises:
        ValueError: missing directory or file, unknown format version, a file whose size
            or SHA-256 differs from the manifest, or a file that cannot be parsed.
    """
    path = resolve_checkpoint(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} is incomplete: manifest.json is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"checkpoint {str(path)!r}: manifest.json is corrupt ({err})") from None
    version = manifest.get("format_version")
    if version not in _READS:
        raise ValueError(
            f"checkpoint {str(path)!r} has format version {version!r}; "
            f"this convssm reads versions {', '.join(map(str, _READS))}"
        )
    for name in _REQUIRED:
        f = path / name
        if not f.is_file():
            raise ValueError(f"checkpoint {str(path)!r} is incomplete: {name} is missing")
        want = manifest["files"].get(name, {})
        if f.stat().st_size != want.get("bytes"):
            raise ValueError(
                f"checkpoint {str(path)!r}: {name} is corrupt (size {f.stat().st_size} bytes, "
                f"manifest says {want.get('bytes')})"
            )
        if name == "training_state.pt" and not training_state:
            continue
        if verify and _sha256(f) != want.get("sha256"):
            raise ValueError(f"checkpoint {str(path)!r}: {name} is corrupt (SHA-256 mismatch)")
    try:
        weights = load_file(str(path / "model.safetensors"))
    except (SafetensorError, OSError) as err:
        raise ValueError(
            f"checkpoint {str(path)!r}: model.safetensors is corrupt ({err})"
        ) from None
    state: dict[str, Any] = {}
    try:
        if training_state:
            state = torch.load(path / "training_state.pt", map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any parse failure means a corrupt file
        raise ValueError(f"checkpoint {str(path)!r} is corrupt: {err}") from None
    return CheckpointInfo(
        path=path,
        step=int(manifest["step"]),
        config=_read_config(path, version),
        weights=weights,
        training_state=state,
        format_version=version,
    )


def load_latest_intact(directory: str | Path) -> CheckpointInfo | None:
    """The newest checkpoint under ``directory`` that loads and verifies, or ``None``.

    A newer checkpoint that fails (truncated, altered, unreadable) is skipped with a
    ``RuntimeWarning`` naming it and why, so a run resumes from the previous intact one.
    """
    for path in reversed(list_checkpoints(directory)):
        try:
            return load_checkpoint(path)
        except ValueError as err:
            warnings.warn(
                f"skipping checkpoint {str(path)!r}, which is not intact ({err}); "
                "trying the one before it",
                RuntimeWarning,
                stacklevel=2,
            )
    return None


def _experiment_yaml(config: ExperimentConfig) -> str:
    data = config_to_dict(config)
    del data["model"]
    head = "# the model section is stored once, in config.json beside this file\n"
    return head + yaml.safe_dump(data, sort_keys=False)


def _read_config(path: Path, version: int) -> ExperimentConfig:
    """The experiment config of a checkpoint; version 1 kept the model section in the YAML."""
    try:
        data = yaml.safe_load((path / "experiment.yaml").read_text())
        if not isinstance(data, dict):
            raise ValueError(f"it holds a {type(data).__name__}, not a mapping")
        if version >= 2:
            if "model" in data:
                raise ValueError("it has a 'model' section; format 2 keeps it in config.json")
            data["model"] = model_config_to_dict(read_config_json(path))
        return config_from_dict(data)
    except (TypeError, ValueError, yaml.YAMLError) as err:
        raise ValueError(f"checkpoint {str(path)!r}: invalid experiment config: {err}") from None


def write_experiment_yaml(directory: str | Path, config: ExperimentConfig) -> Path:
    """Write ``directory/experiment.yaml`` (all sections but ``model``, which config.json
    holds), atomically: for a published model folder, its data and evaluation settings."""
    path = Path(directory) / "experiment.yaml"
    atomic_write_text(path, _experiment_yaml(config))
    return path


def read_experiment_yaml(directory: str | Path, model: Any) -> ExperimentConfig:
    """The experiment config of a published folder: its ``experiment.yaml`` with ``model``
    (the folder's VideoPredictorConfig) as the model section."""
    path = Path(directory) / "experiment.yaml"
    try:
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"it holds a {type(data).__name__}, not a mapping")
        if "model" in data:
            raise ValueError("it has a 'model' section; config.json beside it holds the model")
        return config_from_dict({**data, "model": model_config_to_dict(model)})
    except (TypeError, ValueError, yaml.YAMLError) as err:
        raise ValueError(f"{str(path)!r}: invalid experiment config: {err}") from None


def load_model_weights(
    model: torch.nn.Module, weights: dict[str, torch.Tensor], where: str
) -> None:
    """Load ``weights`` into ``model`` strictly, naming missing, unexpected or mis-shaped keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(weights[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(weights))
        if tuple(own[k].shape) != tuple(weights[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if shapes:
            parts.append("shape mismatch " + "; ".join(shapes[:5]))
        raise ValueError(f"{where} does not match the model: " + ", ".join(parts))
    model.load_state_dict(weights, strict=True)
