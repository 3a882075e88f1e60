"""Check values read from YAML/JSON against type annotations, and build config dataclasses.

Supports what configs use: ``int``, ``float`` (an int is widened; a bool never counts as a
number), ``bool``, ``str``, ``X | None``, ``Literal[...]``, ``list[X]`` (tuples accepted),
``dict[str, Any]`` and nested config dataclasses. Errors name the offending path
(``train.steps``, ``model.encoder_widths[1]``).

:func:`dataclass_from_dict` is how every config dataclass is read (experiment sections, the
model config of ``convssm.models``): unknown keys are rejected naming the key, the section
and the valid keys; keys left out keep their defaults, so a field added later with a default
reads older files unchanged. This module imports nothing from ``convssm`` so every layer may
use it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

__all__ = ["check_value", "dataclass_from_dict"]


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def check_value(value: Any, tp: Any, where: str) -> Any:
    """Return ``value`` checked (and int->float widened) against annotation ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return check_value(value, arg, where)
            except (TypeError, ValueError) as err:
                errors.append(str(err))
        raise TypeError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{where}: must be one of {list(args)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (item_tp,) = args
        return [check_value(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected a mapping, got {type(value).__name__}")
        for k in value:
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be strings, got {k!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return dataclass_from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported annotation {tp}")  # pragma: no cover


def dataclass_from_dict(cls: type, data: Any, section: str) -> Any:
    """An instance of config dataclass ``cls`` from a mapping read from YAML/JSON.

    Every value is checked against its annotation (nested dataclasses recursively); a key
    ``cls`` does not have is an error naming it, ``section`` and the valid keys. A
    ``ValueError`` or ``TypeError`` raised by ``cls`` itself (its own checks in
    ``__post_init__``) is prefixed with ``section`` unless it already names it.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TypeError(f"section {section!r} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in section {section!r}; valid keys: {', '.join(names)}"
        )
    kwargs = {k: check_value(v, hints[k], f"{section}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:  # the class's own checks, in __post_init__
        if str(err).startswith(f"{section}."):
            raise
        raise type(err)(f"{section}.{err}") from None
