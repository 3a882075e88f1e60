"""What run.py and study.py share: the layout under ``--out`` and the convssm entry points.

Every import of convssm's training and running entry points in this experiment is here
(one place to re-point when the package moves).

Layout under ``OUT``: ``data/`` (MazeWorld in TECO's DMLab layout: ``train/``, ``test/`` and
their ``mazeworld-<split>.json`` manifests), ``runs/<model>/`` (one ``convssm train`` workdir
per model, with ``attempts.jsonl`` and, once finished, ``run.json``), and the study's outputs
(``study.json``, ``strip.png``, ``bands.png``).
"""

from __future__ import annotations

from pathlib import Path

from convssm.models import build_model
from convssm.run import load_trained
from convssm.train.checkpoint import latest_checkpoint
from convssm.train.config import load_config

__all__ = [
    "HERE",
    "MODELS",
    "config_path",
    "count_parameters",
    "data_root",
    "latest_checkpoint",
    "load_trained",
    "run_dir",
]

HERE = Path(__file__).resolve().parent
MODELS = ("convs5", "convlstm", "transformer")


def config_path(model: str) -> Path:
    path = HERE / "configs" / f"{model}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (HERE / "configs").glob("*.yaml"))
        raise ValueError(f"no config {model!r} in {path.parent}; known: {', '.join(known)}")
    return path


def data_root(out: str | Path) -> Path:
    return Path(out) / "data"


def run_dir(out: str | Path, model: str) -> Path:
    return Path(out) / "runs" / model


def count_parameters(model: str, overrides: list[str] | tuple[str, ...] = ()) -> int:
    """Parameters of the model ``configs/<model>.yaml`` (with ``--set`` overrides) builds."""
    cfg = load_config(config_path(model), list(overrides))
    return sum(p.numel() for p in build_model(cfg.model).parameters())
