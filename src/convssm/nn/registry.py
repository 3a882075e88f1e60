"""Sequence models by name, so a config can say ``model: convs5`` with its options.

Every registered class follows one interface on (B, T, C, H, W) tensors:
``forward(x, states=None, *, check_values=None, sequence_group=None) -> (y, states)``,
``step(x_t, states, *, check_values=None) -> (y_t, states)``,
``init_state(batch, height, width) -> states``; its constructor takes ``dim`` (the
channel width of input and output) plus its own keyword options. A model registered with
``takes_grid=True`` (one whose constructor needs the frame size, like the transformer's
whole-frame token convolution) gets ``height``/``width`` from ``build_sequence_model``'s
``grid`` argument unless its options set them. A class whose constructor passes its
``**options`` on to an inner layer names that layer's class in ``options_passed_to`` (ConvS5
→ ConvS5Block → ConvS5SSM), so :func:`sequence_model_options` lists every option a model
takes and a misspelt one is an error naming the valid ones. ``check_values`` switches the
NaN/inf check of the inputs (a host sync; None follows ``convssm.set_value_checks``): a model
that wraps the sequence model checks its own inputs and passes False. ``sequence_group`` is
a torch.distributed process group for context parallelism (x is this rank's chunk of time):
a model that cannot run a chunk of time exactly (ConvLSTM, nonlinear in time; the
transformer, which would need ring attention) refuses any value but None with
:func:`refuse_sequence_group`; ConvS5 supports it and is registered with
``splits_time=True``, which :func:`sequence_model_splits_time` reports (training's
``train.sequence_parallel`` asks it before any process group exists).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

__all__ = [
    "refuse_sequence_group",
    "register_sequence_model",
    "build_sequence_model",
    "sequence_model_class",
    "sequence_model_names",
    "sequence_model_options",
    "sequence_model_splits_time",
    "sequence_model_takes_grid",
]

_REGISTRY: dict[str, type[nn.Module]] = {}
_TAKES_GRID: set[str] = set()
_SPLITS_TIME: set[str] = set()


def register_sequence_model(
    name: str, *, takes_grid: bool = False, splits_time: bool = False
) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make ``cls`` buildable as ``build_sequence_model(name, ...)``.

    ``takes_grid``: the constructor takes ``height`` and ``width`` (the frame size).
    ``splits_time``: ``forward`` supports ``sequence_group`` (context parallelism).
    """

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"sequence model {name!r} is already registered")
        _REGISTRY[name] = cls
        if takes_grid:
            _TAKES_GRID.add(name)
        if splits_time:
            _SPLITS_TIME.add(name)
        return cls

    return wrap


def refuse_sequence_group(model: str, sequence_group: object, reason: str) -> None:
    """The refusal of ``forward``'s ``sequence_group`` by a model that does not support
    context parallelism: ValueError unless it is None (checked before any use of the group)."""
    if sequence_group is not None:
        raise ValueError(
            f"sequence model {model!r} does not support sequence_group (context parallelism "
            f"over time): {reason}; use sequence_model 'convs5', or run the whole sequence on "
            "each rank (sequence_group=None)"
        )


def sequence_model_takes_grid(name: str) -> bool:
    """Whether the model registered as ``name`` takes ``height``/``width`` (False if unknown)."""
    return name in _TAKES_GRID


def sequence_model_splits_time(name: str) -> bool:
    """Whether the model registered as ``name`` supports ``sequence_group`` (False if unknown)."""
    return name in _SPLITS_TIME


def sequence_model_names() -> list[str]:
    """The registered names, sorted."""
    return sorted(_REGISTRY)


def sequence_model_options(name: str) -> tuple[dict[str, inspect.Parameter], bool]:
    """Every keyword option of the model registered as ``name``: its constructor's and, along
    its ``options_passed_to`` chain, the inner layers' (``dim``, set by the caller, left out).

    Returns:
        the options by name, and whether the chain ends in a ``**options`` that declares
        no ``options_passed_to`` (then other keys may be valid too).
    """
    cls: Any = sequence_model_class(name)
    found: dict[str, inspect.Parameter] = {}
    while True:
        params = inspect.signature(cls.__init__).parameters
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        for key, p in params.items():
            if key not in ("self", "dim") and p.kind is not inspect.Parameter.VAR_KEYWORD:
                found.setdefault(key, p)
        inner = getattr(cls, "options_passed_to", None)
        if not var_kw or inner is None:
            return found, var_kw
        cls = inner


def build_sequence_model(
    name: str, dim: int, grid: tuple[int, int] | None = None, **options: Any
) -> nn.Module:
    """Build the sequence model registered as ``name`` with width ``dim``.

    ``grid``: (height, width) of the frames it will see, passed on to models registered
    with ``takes_grid`` unless ``options`` set them.

    Raises:
        ValueError: unknown name, or an option the model does not take.
    """
    cls = sequence_model_class(name)
    if grid is not None and name in _TAKES_GRID:
        options = {"height": grid[0], "width": grid[1], **options}
    known, takes_more = sequence_model_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown and not takes_more:
        raise ValueError(
            f"unknown option(s) {unknown} for sequence model {name!r}; it takes {', '.join(known)}"
        )
    return cls(dim=dim, **options)


def sequence_model_class(name: str) -> type[nn.Module]:
    """The class registered as ``name`` (ValueError for an unknown name)."""
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown sequence model {name!r}; registered: {', '.join(sequence_model_names())}"
        )
    return _REGISTRY[name]
