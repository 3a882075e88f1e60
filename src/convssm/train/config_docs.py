"""``docs/configuration.md``, generated from the config dataclasses.

Every key of an experiment config, with its type, default and meaning, read from the
dataclasses themselves: fields, types and defaults from :mod:`dataclasses`, meanings from
the ``Attributes:`` (or ``Args:``) section of the class docstring, falling back to the
``Args:`` of the model class a model kind builds. A field without a meaning is an error, so
a new field cannot reach the page undocumented. Regenerate with::

    python -m convssm.train.config_docs docs/configuration.md

(``tests/train/test_config_docs.py`` fails when the committed page differs.)
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

from convssm.models.registry import DEFAULT_KIND, MODEL_KINDS
from convssm.nn.registry import sequence_model_class, sequence_model_names
from convssm.train.config import ExperimentConfig

__all__ = ["render", "field_docs", "main"]

_SECTION = re.compile(r"^(\s*)(Attributes|Args):\s*$")
_ENTRY = re.compile(r"^([A-Za-z_][\w]*(?:\s*,\s*[A-Za-z_][\w]*)*)\s*(?:\([^)]*\))?:\s*(.*)$")


def field_docs(obj: Any) -> dict[str, str]:
    """Name → meaning, from the ``Attributes:`` and ``Args:`` sections of ``obj``'s docstring
    (Google style; ``a, b: text`` documents both names)."""
    lines = (inspect.getdoc(obj) or "").splitlines()
    docs: dict[str, str] = {}
    i = 0
    while i < len(lines):
        head = _SECTION.match(lines[i])
        i += 1
        if not head:
            continue
        base = len(head.group(1))
        names: list[str] = []
        while i < len(lines):
            line = lines[i]
            indent = len(line) - len(line.lstrip())
            if line.strip() and indent <= base:
                break
            entry = _ENTRY.match(line.strip()) if line.strip() and indent == base + 4 else None
            if entry:
                names = [n.strip() for n in entry.group(1).split(",")]
                for name in names:
                    docs[name] = entry.group(2).strip()
            elif line.strip() and names:
                for name in names:
                    docs[name] += " " + line.strip()
            i += 1
    return docs


def _type(hint: Any) -> str:
    """A YAML reader's view of a type hint."""
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in args)
    if origin in (list, tuple):
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict or hint is dict:
        return "mapping"
    if dataclasses.is_dataclass(hint):
        return "section"
    if hint is Any:
        return "any"
    return getattr(hint, "__name__", str(hint))


def _value(value: Any) -> str:
    if dataclasses.is_dataclass(value):
        return "(a section)"
    if value is inspect.Parameter.empty or value is dataclasses.MISSING:
        return "(required)"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value, ensure_ascii=False)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


_ROLE = re.compile(r":(?:class|mod|meth|func|attr):`~?([^`]+)`")


def _md(text: str) -> str:
    """reStructuredText inline markup as Markdown: ``x`` and :class:`~a.B` become `x`, `B`."""
    text = _ROLE.sub(lambda m: "`" + m.group(1).rsplit(".", 1)[-1] + "`", text)
    return text.replace("``", "`")


def _cell(text: str) -> str:
    return _md(text).replace("|", "\\|").replace("\n", " ")


def _table(cls: type, prefix: str, fallback: dict[str, str] | None = None) -> list[str]:
    docs = {**(fallback or {}), **field_docs(cls)}
    hints = typing.get_type_hints(cls)
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for f in dataclasses.fields(cls):
        if f.name not in docs:
            raise ValueError(
                f"{cls.__qualname__}.{f.name} has no meaning: add it to the class docstring's "
                "Attributes: section"
            )
        hint = hints[f.name]
        shown = (
            "section"
            if typing.get_origin(hint) in (typing.Union, types.UnionType)
            and all(dataclasses.is_dataclass(a) for a in typing.get_args(hint))
            else _type(hint)
        )
        rows.append(
            f"| `{prefix}{f.name}` | {_cell(shown)} | `{_cell(_value(_default(f)))}` "
            f"| {_cell(docs[f.name])} |"
        )
    return rows


def _summary(cls: type) -> str:
    """The class docstring's prose (before its Attributes: or Args: section)."""
    prose = []
    for line in (inspect.getdoc(cls) or "").splitlines():
        if _SECTION.match(line):
            break
        prose.append(line.strip())
    text = "\n".join(prose).strip()
    paragraphs = [" ".join(par.split("\n")) for par in text.split("\n\n")]
    return _md("\n\n".join(paragraphs))


def _nested(cls: type) -> list[tuple[str, type]]:
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(cls)
            if dataclasses.is_dataclass(hints[f.name])]  # fmt: skip


def _section(name: str, cls: type, level: int = 2) -> list[str]:
    out = [f"{'#' * level} `{name}`", "", _summary(cls), ""]
    out += _table(cls, f"{name}.")
    for sub, sub_cls in _nested(cls):
        out += [""] + _section(f"{name}.{sub}", sub_cls, level + 1)[:-1]
    return out + [""]


def _sequence_options(name: str) -> list[str]:
    cls = sequence_model_class(name)
    params = inspect.signature(cls.__init__).parameters
    hints = typing.get_type_hints(cls.__init__)
    rows = [f"`{name}` ({cls.__module__}.{cls.__qualname__}):", ""]
    rows += ["| key | type | default |", "| --- | --- | --- |"]
    for key, p in params.items():
        if key in ("self", "dim") or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        shown = _type(hints[key]) if key in hints else "any"
        rows.append(f"| `{key}` | {_cell(shown)} | `{_cell(_value(p.default))}` |")
    return rows + [""]


def render() -> str:
    """The whole page, as Markdown."""
    out = [
        "# Configuration",
        "",
        "<!-- Generated by `python -m convssm.train.config_docs docs/configuration.md` from",
        "     the config classes; edit their docstrings, not this page. -->",
        "",
        "An experiment is one YAML file (`convssm train CONFIG`), read into",
        "`convssm.train.ExperimentConfig`. Keys left out keep the defaults below; unknown keys",
        "and values of the wrong type are errors that name the key. On the command line,",
        "`--set section.key=value` overrides one key (`--set train.steps=100`).",
        "",
        "`null` is YAML's none. Sections:",
        "",
    ]
    out += _table(ExperimentConfig, "")
    out.append("")
    kinds = list(MODEL_KINDS.values())
    out += [
        "## `model`",
        "",
        f"`model.kind` picks the model (default `{DEFAULT_KIND}`): "
        + ", ".join(f"`{k.name}`" for k in kinds)
        + ". The section's other keys are the fields of that kind's config:",
        "",
    ]
    for kind in kinds:
        out += [f"### `model.kind: {kind.name}`", "", _summary(kind.config_class), ""]
        out += _table(kind.config_class, "model.", field_docs(kind.model_class))
        out.append("")
    out += [
        "### `model.sequence_options`",
        "",
        "The sequence model's own constructor keywords, by `model.sequence_model` (`dim` is",
        "set by `model.dim`; `height` and `width`, where taken, default to the latent grid).",
        "Their meanings are in each class's docstring.",
        "",
    ]
    for name in sequence_model_names():
        out += _sequence_options(name)
    for name, cls in _nested(ExperimentConfig):
        if name != "model":
            out += _section(name, cls)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if argv:
        Path(argv[0]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
