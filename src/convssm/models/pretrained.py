"""Self-describing model directories: ``config.json`` (the model's config, with a format
version, and the SHA-256 of the weights) beside ``model.safetensors`` (the weights), written
atomically.

Loading checks the weights against the recorded SHA-256 and refuses a mismatch (a flipped
byte in a float loads silently otherwise); a folder written before the hash was recorded
loads with a warning that its integrity could not be checked.

    model.save_pretrained("runs/convs5_small/final")
    model = VideoPredictor.from_pretrained("runs/convs5_small/final")
    model = VideoPredictor.from_pretrained("owner/name")  # a model on the Hugging Face Hub
    model.push_to_hub("owner/name")

A model on the Hugging Face Hub is the same folder in a hub repository: ``from_pretrained``
takes its id (``owner/name``, ``owner/name@revision`` or ``revision=``), fetches the folder
with ``huggingface_hub.snapshot_download`` into the hub cache (``cache_dir``,
``HF_HUB_CACHE``; nothing is fetched with ``local_files_only=True`` or ``HF_HUB_OFFLINE=1``)
and loads it like a local one, SHA-256 check included. A string is an id only when no file
or folder of that name exists. :func:`push_folder_to_hub` uploads a model folder as it is
(its model card ``README.md``, strip and experiment files with it); ``model.push_to_hub``
uploads a fresh ``save_pretrained`` folder with a model card.

huggingface_hub's ``ModelHubMixin`` is not used: its ``from_pretrained`` decodes
``config.json`` into the constructor's arguments by name (ours is a versioned payload read
with migrations), its ``save_pretrained`` writes a generated ``README.md`` into every folder,
and its ``push_to_hub`` re-saves the model, leaving a published folder's card and files behind.

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
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, ClassVar

import torch
from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from convssm._files import atomic_write, atomic_write_text, sha256_file
from convssm._typed import dataclass_from_dict
from convssm.models.config import VideoPredictorConfig, config_from_payload, config_payload

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "PretrainedMixin",
    "default_model_card",
    "download_model",
    "parse_hub_id",
    "push_folder_to_hub",
    "read_config_meta",
    "resolve_model_dir",
    "write_config_payload",
    "write_weights",
    "verify_weights",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
# owner/name, optionally @revision (a branch, tag or commit)
_HUB_ID = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9_.-]+)(?:@(?P<revision>[^\s@]+))?")


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


def parse_hub_id(name: Any) -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` when ``name`` is a hub id: a string of the form
    ``owner/name`` or ``owner/name@revision`` that names no existing file or folder; else
    ``None`` (a path, local)."""
    if not isinstance(name, str) or os.path.exists(name):
        return None
    match = _HUB_ID.fullmatch(name)
    if match is None:
        return None
    return match["repo"], match["revision"]


def download_model(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
) -> Path:
    """The folder of hub model ``repo_id`` at ``revision`` (default ``main``) in the hub
    cache, fetched first unless it is there (``local_files_only`` or ``HF_HUB_OFFLINE=1``:
    the cache only).

    Raises FileNotFoundError naming the id when it cannot be had (offline and not cached,
    no such repository or revision, the hub unreachable).
    """
    named = repo_id + (f"@{revision}" if revision else "")
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
            force_download=force_download,
        )
    except LocalEntryNotFoundError as err:
        raise FileNotFoundError(
            f"hub model {named!r} (no local folder has that name) is not in the hub cache "
            "and could not be downloaded (offline: HF_HUB_OFFLINE=1 or local_files_only; or "
            f"the hub unreachable): fetch it once online, or give a local model folder ({err})"
        ) from err
    except HfHubHTTPError as err:
        raise FileNotFoundError(f"hub model {named!r} could not be fetched: {err}") from err
    return Path(folder)


def resolve_model_dir(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
) -> Path:
    """The local folder of a model: ``name_or_path`` itself, or the cached folder of the hub
    model it names (see :func:`parse_hub_id` and :func:`download_model`)."""
    hub = parse_hub_id(name_or_path)
    if hub is None:
        if revision is not None:
            raise ValueError(
                f"revision={revision!r} is for hub ids; {str(name_or_path)!r} is a local path"
            )
        return Path(name_or_path)
    repo_id, pinned = hub
    if pinned is not None and revision is not None and pinned != revision:
        raise ValueError(f"{name_or_path!r} names revision {pinned!r}, revision= {revision!r}")
    return download_model(
        repo_id,
        revision=pinned or revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        token=token,
        force_download=force_download,
    )


def push_folder_to_hub(
    directory: str | os.PathLike,
    repo_id: str,
    *,
    commit_message: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    branch: str | None = None,
    create_pr: bool | None = None,
) -> Any:
    """Upload a model folder as it is (``config.json``, ``model.safetensors`` and whatever
    lies beside them: a model card ``README.md``, a strip, ``experiment.yaml``) to the hub
    repository ``repo_id`` (created if needed) in one commit; returns the commit's info.

    The folder is checked first (its config readable, its weights matching their SHA-256);
    hidden files (unfinished atomic writes) stay behind.
    """
    directory = Path(directory)
    meta = read_config_meta(directory)
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if not (isinstance(fmt, str) and fmt.startswith("convssm.")):
        raise ValueError(f"{directory / CONFIG_NAME} describes no convssm model (format {fmt!r})")
    if not (directory / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"{directory / WEIGHTS_NAME} is missing")
    verify_weights(directory)
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    return api.upload_folder(
        repo_id=repo_id,
        repo_type="model",
        folder_path=directory,
        commit_message=commit_message or f"Upload a {fmt} model",
        revision=branch,
        create_pr=create_pr,
        ignore_patterns=[".*", "**/.*"],
    )


def default_model_card(format_name: str, repo_id: str) -> str:
    """A minimal model card (``README.md`` with hub metadata) for a model pushed without
    one: what it is and how to load it, nothing about how it was trained."""
    cls = format_name.removeprefix("convssm.")
    return (
        "---\n"
        "library_name: convssm\n"
        f"tags:\n- convssm\n- {cls}\n"
        "---\n\n"
        f"# {repo_id}\n\n"
        f"A convssm `{cls}`: its config in `config.json` (with the SHA-256 of the weights), "
        "its weights in `model.safetensors`.\n\n"
        "```python\n"
        f"from convssm.models import {cls}\n\n"
        f'model = {cls}.from_pretrained("{repo_id}")\n'
        "```\n"
    )


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

    def push_to_hub(
        self,
        repo_id: str,
        *,
        model_card: str | None = None,
        commit_message: str | None = None,
        private: bool | None = None,
        token: str | None = None,
        branch: str | None = None,
        create_pr: bool | None = None,
    ) -> Any:
        """Upload this model (``save_pretrained``'s folder) to the hub repository
        ``repo_id`` (created if needed), with ``model_card`` (the text of its ``README.md``)
        or else a minimal card; returns the commit's info. To upload a published folder as
        it is, card and pictures included, use :func:`push_folder_to_hub`."""
        with tempfile.TemporaryDirectory(prefix="convssm-push-") as tmp:
            folder = self.save_pretrained(Path(tmp) / "model")
            card = (
                model_card
                if model_card is not None
                else default_model_card(self.config_format(), repo_id)
            )
            atomic_write_text(folder / CARD_NAME, card)
            return push_folder_to_hub(
                folder,
                repo_id,
                commit_message=commit_message,
                private=private,
                token=token,
                branch=branch,
                create_pr=create_pr,
            )

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
    def from_pretrained(
        cls,
        directory: str | os.PathLike,
        map_location: str = "cpu",
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        force_download: bool = False,
    ):
        """Build the model from ``directory/config.json`` and load its weights.

        ``directory``: a local model folder, or a hub id (``owner/name``, optionally
        ``@revision``; a string that names no existing path), fetched into the hub cache
        (``cache_dir``) unless it is there; ``revision``, ``local_files_only``, ``token``
        and ``force_download`` are huggingface_hub's. ``HF_HUB_OFFLINE=1`` reads the cache
        only.
        """
        directory = resolve_model_dir(
            directory,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
            force_download=force_download,
        )
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
