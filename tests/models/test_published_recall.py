"""The published delayed-recall models load, reproduce their card scores and carry true cards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from convssm.models import VideoPredictor
from convssm.train.checkpoint import read_experiment_yaml
from convssm.train.factory import delayed_recall
from convssm.train.recall_eval import recall_scores

RECALL = Path(__file__).resolve().parents[2] / "pretrained" / "recall"
FOLDERS = sorted(p for p in RECALL.iterdir() if (p / "config.json").is_file())


def _facts(folder: Path) -> dict:
    """What publish.py recorded: ``lineage.json``'s ``recall`` record."""
    return json.loads((folder / "lineage.json").read_text())["recall"]


def test_the_demo_models_are_published():
    names = {p.name for p in FOLDERS}
    assert {"convs5_rectified_scratch", "convlstm_delay256"} <= names


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_card_scores_are_reproduced(folder):
    info = _facts(folder)
    model = VideoPredictor.from_pretrained(folder).eval()
    cfg = read_experiment_yaml(folder, model.config)
    torch.set_num_threads(1)
    for key, want in info["card_scores"].items():
        delay = int(key.split("@")[1])
        ds = delayed_recall(cfg, "eval", info["card_videos"], cfg.eval.seed, delay=delay)
        got = recall_scores(model, ds, batch_size=info["card_videos"])["rel_recall"]
        assert round(got, 3) == pytest.approx(round(want, 3), abs=1.01e-3), key


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_card_states_what_the_run_did(folder):
    info = _facts(folder)
    text = (folder / "README.md").read_text()
    _, front, body = text.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "convssm"
    metrics = meta["model-index"][0]["results"]
    assert {r["metrics"][0]["name"] for r in metrics} == {
        f"rel_recall@{d}" for d in info["scores"]["rel_recall"]
    }
    phases = info["phases"]
    assert info["steps_total"] == sum(p["steps"] for p in phases)
    assert f"{info['steps_total']} steps" in body
    assert f"trained up to a delay of {phases[-1]['delay']} frames" in body
    runs = [c for c in info["commands"] if c.startswith("python experiments/recall/run.py ")]
    assert runs and all(c in body for c in runs)
    # the commands name the same phases, in order, that the runs recorded
    delays = [
        int(p.split(":")[0]) for c in runs for p in c.split("--phases ")[1].split()[0].split(",")
    ]
    # (a phase made by its own recorded command, drop_layers.py's, is not a run.py phase)
    assert delays == [p["delay"] for p in phases if "command" not in p]
    assert all(p["command"] in body for p in phases if "command" in p)
    assert (folder / "strip.png").is_file()


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_published_by_convssm_publish(folder):
    """Every folder is convssm publish's (lineage.json; no older record beside it): its train
    and publish commands parse with the CLI and the configs they train load."""
    from published_commands import check_publish_commands

    assert not (folder / "training.json").exists(), folder.name  # the format before it
    check_publish_commands(json.loads((folder / "lineage.json").read_text())["commands"])
