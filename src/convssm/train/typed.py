"""Check a value read from YAML/JSON against a type annotation.

Supports what experiment configs use: ``int``, ``float`` (an int is widened; a bool never
counts as a number), ``bool``, ``str``, ``X | None``, ``Literal[...]``, ``list[X]`` (tuples
accepted) and ``dict[str, Any]``. Errors name the offending path (``train.steps``).
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

__all__ = ["check_value"]


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
