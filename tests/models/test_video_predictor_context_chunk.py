"""generate(context_chunk=k) runs the context k frames at a time and predicts the same frames."""

from __future__ import annotations

import pytest
import torch

from convssm.models import VideoPredictor

OPTIONS = {
    "convs5": {"state_dim": 4, "depth": 2, "norm_groups": 4},
    "convlstm": {"depth": 2},
    "transformer": {"embed_dim": 8, "depth": 1, "heads": 2, "mlp_dim": 16},
}


@pytest.mark.parametrize("sequence_model", sorted(OPTIONS))
@pytest.mark.parametrize("chunk", [1, 3, 7, 50])
def test_chunked_context_gives_the_same_frames(sequence_model, chunk):
    torch.manual_seed(0)
    model = VideoPredictor(
        image_size=8,
        encoder_widths=[4, 8],
        norm_groups=4,
        dim=8,
        sequence_model=sequence_model,
        sequence_options=OPTIONS[sequence_model],
        num_actions=3,
    ).double()
    context = torch.rand(2, 11, 1, 8, 8, dtype=torch.float64) * 2 - 1
    actions = torch.randint(0, 3, (2, 14))
    whole = model.generate(context, 3, actions)
    chunked = model.generate(context, 3, actions, context_chunk=chunk)
    torch.testing.assert_close(chunked, whole, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("bad", [0, -2, 2.0, True])
def test_bad_context_chunk_is_refused(bad):
    model = VideoPredictor(
        image_size=8,
        encoder_widths=[4],
        norm_groups=4,
        dim=4,
        sequence_options={"state_dim": 2, "depth": 1, "norm_groups": 4},
    )
    with pytest.raises(ValueError, match="context_chunk must be a positive int"):
        model.generate(torch.zeros(1, 3, 1, 8, 8), 1, context_chunk=bad)
