"""The published MazeWorld model (pretrained/maze/convs5_actions) loads, verifies, and does
what its card says it does: another video's actions raise its generation error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from maze_modules import maze_modules

from convssm.data import write_maze_folder
from convssm.models import VideoPredictor

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "pretrained" / "maze" / "convs5_actions"


@pytest.fixture
def study(monkeypatch):
    with maze_modules(monkeypatch) as (_, study, _):
        yield study


def test_published_maze_model_follows_its_actions(study, tmp_path):
    model = VideoPredictor.from_pretrained(FOLDER).eval()
    assert model.num_actions == 6 and model.config.image_size == 32
    # held-out videos the study never saw (another seed), one 32 + 16 frame window each
    write_maze_folder(tmp_path / "data", 6, num_frames=48, image_size=32, seed=7, split="test")
    test = study.TestSet(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        use = study.action_use(model, test, 32, 16, study.derangement(len(test), 0), batch=6)
    finally:
        torch.set_num_threads(threads)
    # the card: 1.72 over the study's 256 windows; six windows vary, but not to no effect
    assert use["ratio"] > 1.2, use["ratio"]
    assert use["mse_true"] < 0.15, use["mse_true"]
