"""Published model folders load, generate, and their cards say what their runs did; the first
study's format-1 folders (now test fixtures) still load and generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from convssm.models import VideoPredictor

REPO = Path(__file__).resolve().parents[2]
PRETRAINED = REPO / "pretrained"
FORMAT1 = REPO / "tests" / "fixtures" / "format1"  # the first study's folders, format 1


@pytest.mark.parametrize("name", ["convs5", "convlstm", "transformer"])
def test_format1_model_folder_loads_and_generates(name):
    assert json.loads((FORMAT1 / name / "config.json").read_text())["format_version"] == 1
    model = VideoPredictor.from_pretrained(FORMAT1 / name).eval()
    assert model.config.sequence_model == name
    context = torch.rand(1, 4, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    frames = model.generate(context, horizon=3)
    assert frames.shape == (1, 3, 1, 32, 32) and bool(torch.isfinite(frames).all())
    assert sum(f.stat().st_size for f in (FORMAT1 / name).iterdir()) < 5 * 2**20


# the Moving-MNIST folders, every one written by `convssm publish` (its facts in lineage.json)
FOLDERS = sorted(p for p in (PRETRAINED / "moving_mnist").iterdir() if p.is_dir())
RUN_CARDS = [p / "lineage.json" for p in FOLDERS]


def test_every_published_folder_is_written_by_convssm_publish():
    """Every model folder in pretrained/ (Moving-MNIST, MazeWorld, recall) holds convssm
    publish's lineage.json and no record of an earlier format (training.json)."""
    names = {p.name for p in FOLDERS}
    assert {"convs5_1digit_roll48_24", "study_convs5", "study_convlstm", "study_transformer"} <= (
        names
    )
    every = sorted(p.parent for p in PRETRAINED.glob("*/*/config.json"))
    assert {p.parent.name for p in every} == {"moving_mnist", "maze", "recall"}
    for folder in every:
        assert (folder / "lineage.json").is_file(), folder
        assert not (folder / "training.json").exists(), folder  # the earlier format


@pytest.mark.parametrize("card", RUN_CARDS, ids=[c.parent.name for c in RUN_CARDS])
def test_published_run_reproduces_its_held_out_scores(card):
    """A folder `convssm publish` wrote scores as its run scored that step: the same held-out
    videos (experiment.yaml's eval section), generated and scored by the same code."""
    from convssm.train.checkpoint import read_experiment_yaml
    from convssm.train.heldout import HeldOutScorer

    want = json.loads(card.read_text())["scores"]
    model = VideoPredictor.from_pretrained(card.parent).eval()
    cfg = read_experiment_yaml(card.parent, model.config)
    got, _ = HeldOutScorer(cfg, torch.device("cpu")).score(model)
    keys = ("rel_best@10", "rel_empty@100", "brightness@50-100", "psnr@10", "ssim@10")
    assert all(k in want for k in keys), sorted(want)
    for key in keys:
        assert got[key] == pytest.approx(want[key], rel=1e-3, abs=1e-4), key


@pytest.mark.parametrize("card", RUN_CARDS, ids=[c.parent.name for c in RUN_CARDS])
def test_published_run_commands_parse_and_build_this_model(card):
    """The commands a `convssm publish` folder records parse with the CLI, the configs they
    train load from this repository, and the last one builds exactly the published model."""
    from published_commands import check_publish_commands

    commands = json.loads(card.read_text())["commands"]
    text = (card.parent / "README.md").read_text()
    assert all(c in text for c in commands)
    configs = check_publish_commands(commands)
    assert configs and configs[-1].model == VideoPredictor.from_pretrained(card.parent).config
