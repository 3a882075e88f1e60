"""``VideoPredictorConfig``: the one description of a :class:`~convssm.models.VideoPredictor`.

``VideoPredictor(config)`` builds the model from it, ``ExperimentConfig.model`` holds it, and
a model directory's ``config.json`` stores it (once) as::

    {"format": "convssm.VideoPredictor", "format_version": 2, "config": {...fields...}}

Adding a field: give it a default (and a range check in ``_check`` if it needs one). Files
written before it existed load with that default; files naming a key this version does not
know are rejected, naming the key. Bump ``CONFIG_VERSION`` and add a migration to
``_MIGRATIONS`` only when a stored key changes name or meaning.

Format versions:
    1: the ``VideoPredictor`` constructor arguments, with the latent grid size filled into
       ``sequence_options`` (``height``/``width``) for sequence models that take it.
    2: the config as written; the grid size is derived from ``image_size`` when building.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from convssm._typed import check_value, dataclass_from_dict
from convssm.models.normalizer import check_statistics
from convssm.nn.registry import (
    sequence_model_class,
    sequence_model_names,
    sequence_model_options,
    sequence_model_takes_grid,
)

__all__ = [
    "VideoPredictorConfig",
    "CONFIG_FORMAT",
    "CONFIG_VERSION",
    "config_payload",
    "config_from_payload",
    "check_sequence_options",
]

CONFIG_FORMAT = "convssm.VideoPredictor"
CONFIG_VERSION = 2


@dataclass
class VideoPredictorConfig:
    """Encoder, sequence model and decoder of a pixel-space video predictor
    (docs/design.md#video-predictor).

    Attributes:
        image_channels: C of the frames.
        image_size: H = W the model is configured for (any multiple of the downsampling
            factor works at run time).
        encoder_widths: widths of the encoder stages; each stage after the first halves H, W.
        blocks_per_stage: residual blocks per stage.
        norm_groups: GroupNorm groups in the encoder and decoder.
        dim: channels the sequence model works at (after a 1×1 projection).
        sequence_model: a registered name: ``"convs5"``, ``"convlstm"``, ``"transformer"``.
        sequence_options: the sequence model's own options. ``height`` and ``width``, for
            models that take them, default to the latent grid size.
        num_actions: size of the action vocabulary; 0 for no actions.
        action_embed_dim: channels of the action embedding tiled over the latent grid.
        normalization: per-channel statistics of the training data (``count``, ``mean``,
            ``std``, ``min``, ``max``; lists of ``image_channels`` numbers) for a model of
            physical fields, which then takes and returns the data's own units
            (:class:`~convssm.models.normalizer.Normalizer`); ``None`` for frames in [−1, 1].
            Training on ``data.dataset: array`` fills it from the training split.
        blank_offset: subtract the encoding of a blank frame (every pixel −1, in the
            model's [−1, 1] space) from every frame's, and the input projection's bias, so
            that a blank frame enters the sequence model as exactly zero (the action
            embedding is kept). A linear memory then gathers nothing from frames that show
            nothing, however many there are (docs/recall.md). Costs one more encoded frame
            per call of ``encode``.
        rectify_latents: pass the latents the sequence model receives through a ReLU
            (after the input projection and ``blank_offset``). A frame whose projected
            features are all ≤ 0 then enters the sequence model as exactly zero, and a
            penalty that pushes a frame's features below zero leaves them there (its gradient
            is zero beyond): an input gate made of the encoder, in front of a linear memory
            that is otherwise unchanged (docs/recall.md).
    """

    image_channels: int = 1
    image_size: int = 64
    encoder_widths: list[int] = field(default_factory=lambda: [64, 128, 256])
    blocks_per_stage: int = 1
    norm_groups: int = 32
    dim: int = 256
    sequence_model: str = "convs5"
    sequence_options: dict[str, Any] = field(default_factory=dict)
    num_actions: int = 0
    action_embed_dim: int = 16
    normalization: dict[str, Any] | None = None
    blank_offset: bool = False
    rectify_latents: bool = False

    def __post_init__(self) -> None:
        self.encoder_widths = [int(w) for w in self.encoder_widths]
        self.sequence_options = dict(self.sequence_options)
        self._check()

    def _check(self) -> None:
        """Range checks that types alone cannot express (messages start with the field)."""
        for name in ("image_channels", "image_size", "blocks_per_stage", "norm_groups", "dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.action_embed_dim <= 0:
            raise ValueError(f"action_embed_dim must be positive, got {self.action_embed_dim}")
        if not self.encoder_widths or any(w <= 0 for w in self.encoder_widths):
            raise ValueError(f"encoder_widths must be positive, got {self.encoder_widths}")
        if self.num_actions < 0:
            raise ValueError(f"num_actions must be >= 0, got {self.num_actions}")
        check_sequence_options(self.sequence_model, self.sequence_options)
        if self.normalization is not None:
            self.normalization = check_statistics(
                self.normalization, self.image_channels, "normalization"
            )
        if self.image_size % self.downsample:
            raise ValueError(
                f"image_size {self.image_size} must be divisible by {self.downsample} "
                f"(the encoder halves it {len(self.encoder_widths) - 1} times)"
            )

    @property
    def downsample(self) -> int:
        """How many times smaller the latent grid is than the frame, per side."""
        return 2 ** (len(self.encoder_widths) - 1)

    @property
    def latent_size(self) -> int:
        """H = W of the latent grid the sequence model runs on."""
        return self.image_size // self.downsample

    @classmethod
    def from_dict(cls, data: Any, where: str = "model") -> VideoPredictorConfig:
        """Read a mapping (YAML/JSON); unknown keys and wrong types are errors naming
        ``where.key``; keys left out keep their defaults."""
        return dataclass_from_dict(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dicts and lists (a deep copy)."""
        return copy.deepcopy(dataclasses.asdict(self))


def check_sequence_options(name: str, options: dict[str, Any]) -> None:
    """Type-check ``sequence_options`` against the sequence model's constructor, so a wrong
    value is reported by its key (``sequence_options.depth``; ``model.sequence_options.depth``
    in an experiment config), not deep inside the layer that first uses it. Unknown keys are
    errors naming the valid ones, the inner layers' included (ConvS5 passes ``blocks`` or
    ``clip_eigs`` on to ConvS5SSM: ``convssm.nn.registry.sequence_model_options``). An
    unregistered name is left to building (it may be registered
    later)."""
    if name not in sequence_model_names():
        return
    params, takes_more = sequence_model_options(name)
    for key, value in options.items():
        where = f"sequence_options.{key}"
        if key == "dim":
            raise ValueError(f"{where}: set the width with dim, not in sequence_options")
        if key not in params:
            if takes_more:
                continue  # passed on to an inner layer that declares no options_passed_to
            raise ValueError(
                f"sequence_options: unknown key {key!r} for sequence model {name!r}; "
                f"valid keys: {', '.join(params)}"
            )
        hints = typing.get_type_hints(_owner(name, key).__init__)
        if key in hints:
            try:
                check_value(value, hints[key], where)
            except TypeError as err:
                if "unsupported annotation" not in str(err):
                    raise


def _owner(name: str, key: str) -> type:
    """The class along ``name``'s ``options_passed_to`` chain whose constructor declares
    ``key`` (where its type annotation is)."""
    cls: Any = sequence_model_class(name)
    while key not in inspect.signature(cls.__init__).parameters:
        cls = cls.options_passed_to
    return cls


def config_payload(config: VideoPredictorConfig) -> dict[str, Any]:
    """What ``config.json`` holds: format, version and the config."""
    return {"format": CONFIG_FORMAT, "format_version": CONFIG_VERSION, "config": config.to_dict()}


def _v1_to_v2(config: dict[str, Any]) -> dict[str, Any]:
    """Drop the grid size that version 1 filled into ``sequence_options`` when it equals the
    derived one (the model built is the same; the stored config is what was written)."""
    config = copy.deepcopy(config)
    options = config.get("sequence_options")
    name = config.get("sequence_model", "convs5")
    if not isinstance(options, dict) or not sequence_model_takes_grid(name):
        return config
    widths = config.get("encoder_widths", [64, 128, 256])
    size = config.get("image_size", 64)
    if isinstance(widths, list) and widths and isinstance(size, int):
        latent = size // 2 ** (len(widths) - 1)
        for key in ("height", "width"):
            if options.get(key) == latent:
                del options[key]
    return config


# version n -> n + 1
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


def config_from_payload(meta: Any, where: str) -> VideoPredictorConfig:
    """The config stored in a ``config.json`` payload, migrated from older format versions.

    Raises:
        ValueError: another format, a version newer than this convssm reads, unknown keys
            or bad values (each naming ``where`` and the key).
    """
    if not isinstance(meta, dict) or meta.get("format") != CONFIG_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{where} describes {got!r}, not {CONFIG_FORMAT!r}")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{where} has an invalid format_version {version!r}")
    if version > CONFIG_VERSION:
        raise ValueError(
            f"{where} has format_version {version}, this convssm reads up to {CONFIG_VERSION}: "
            "it was written by a newer convssm"
        )
    config = meta.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{where}: 'config' must be a mapping, got {type(config).__name__}")
    for v in range(version, CONFIG_VERSION):
        config = _MIGRATIONS[v](config)
    try:
        return VideoPredictorConfig.from_dict(config, "config")
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None
