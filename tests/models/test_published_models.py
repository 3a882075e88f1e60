"""The small models published with the long-horizon study still load and generate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from convssm.models import VideoPredictor

PUBLISHED = Path(__file__).resolve().parents[2] / "pretrained" / "long_horizon"


@pytest.mark.parametrize("name", ["convs5", "convlstm", "transformer"])
def test_published_model_loads_and_generates(name):
    model = VideoPredictor.from_pretrained(PUBLISHED / name).eval()
    assert model.config.sequence_model == name
    context = torch.rand(1, 4, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    frames = model.generate(context, horizon=3)
    assert frames.shape == (1, 3, 1, 32, 32) and bool(torch.isfinite(frames).all())
    assert sum(f.stat().st_size for f in (PUBLISHED / name).iterdir()) < 5 * 2**20
