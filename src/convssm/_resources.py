"""Files convssm ships beside its code: the experiment configs and the benchmark scripts.

In an installed wheel they are package data (``convssm/configs``, ``convssm/benchmarks``,
placed there by ``[tool.hatch.build.targets.wheel.force-include]`` in pyproject.toml); in a
source checkout (editable install, ``PYTHONPATH=src``) they are the repository's top-level
``configs/`` and ``benchmarks/`` folders. Either way they are found from the package itself,
never from the current directory. This module imports nothing from ``convssm``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["shipped_dir", "config_path"]

_SOURCE_ROOT = Path(__file__).resolve().parents[2]  # <repo>/src/convssm -> <repo>


def shipped_dir(name: str) -> Path:
    """The shipped folder ``name`` (``"configs"``, ``"benchmarks"`` or ``"pretrained"``, which
    holds the demo's model only in a wheel)."""
    packaged = resources.files("convssm").joinpath(name)
    if packaged.is_dir():
        return Path(str(packaged))
    source = _SOURCE_ROOT / name
    if source.is_dir() and (_SOURCE_ROOT / "pyproject.toml").is_file():
        return source
    raise ValueError(
        f"this convssm installation has no {name}/ folder: it is neither package data "
        f"({packaged}) nor part of a source checkout ({source})"
    )


def config_path(name: str) -> Path:
    """A shipped config by its path under ``configs/``, e.g. ``"cpu/convs5_small.yaml"``."""
    path = shipped_dir("configs") / name
    if not path.is_file():
        raise ValueError(f"convssm ships no config {name!r} (looked for {path})")
    return path
