"""Sequence models by name, so a config can say ``model: convs5`` with its options.

Every registered class follows one interface on (B, T, C, H, W) tensors:
``forward(x, states=None, *, check_values=None) -> (y, states)``,
``step(x_t, states, *, check_values=None) -> (y_t, states)``,
``init_state(batch, height, width) -> states``; its constructor takes ``dim`` (the
channel width of input and output) plus its own keyword options. ``check_values`` switches
the NaN/inf check of the inputs (a host sync; None follows ``convssm.set_value_checks``):
a model that wraps the sequence model checks its own inputs and passes False.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

__all__ = [
    "register_sequence_model",
    "build_sequence_model",
    "sequence_model_class",
    "sequence_model_names",
]

_REGISTRY: dict[str, type[nn.Module]] = {}


def register_sequence_model(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make ``cls`` buildable as ``build_sequence_model(name, ...)``."""

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"sequence model {name!r} is already registered")
        _REGISTRY[name] = cls
        return cls

    return wrap


def sequence_model_names() -> list[str]:
    """The registered names, sorted."""
    return sorted(_REGISTRY)


def build_sequence_model(name: str, dim: int, **options: Any) -> nn.Module:
    """Build the sequence model registered as ``name`` with width ``dim``.

    Raises:
        ValueError: unknown name, or an option the model does not take.
    """
    cls = sequence_model_class(name)
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = sorted(set(options) - set(params) - {"self"})
    if unknown and not takes_any:
        known = sorted(k for k in params if k not in ("self", "dim"))
        raise ValueError(
            f"unknown option(s) {unknown} for sequence model {name!r}; it takes {known}"
        )
    return cls(dim=dim, **options)


def sequence_model_class(name: str) -> type[nn.Module]:
    """The class registered as ``name`` (ValueError for an unknown name)."""
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown sequence model {name!r}; registered: {', '.join(sequence_model_names())}"
        )
    return _REGISTRY[name]
