"""VideoPredictor starts from the reference's flax defaults (TECO's encoder and decoder,
ConvSSM's projections and action embedding): every convolution lecun-normal with zero
bias, the action embedding normal with std 1/sqrt(features), every norm eps 1e-6."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from convssm.models import VideoPredictor
from convssm.nn.common import ChannelLayerNorm
from convssm.nn.init import TRUNCATED_NORMAL_STD

SEQUENCE_OPTIONS = {
    "convs5": dict(state_dim=8, depth=2, norm_groups=4),
    "convlstm": dict(depth=2),
    "transformer": dict(embed_dim=32, mlp_dim=64, heads=4, depth=2, window=16, max_len=32),
}


def _model(sequence_model: str, **kw) -> VideoPredictor:
    torch.manual_seed(0)
    return VideoPredictor(
        image_size=16,
        encoder_widths=(32, 64),
        norm_groups=4,
        dim=32,
        sequence_model=sequence_model,
        sequence_options=SEQUENCE_OPTIONS[sequence_model],
        **kw,
    )


@pytest.mark.parametrize("sequence_model", sorted(SEQUENCE_OPTIONS))
def test_every_norm_has_flax_epsilon(sequence_model):
    norms = [
        m
        for m in _model(sequence_model).modules()
        if isinstance(m, nn.GroupNorm | nn.LayerNorm | ChannelLayerNorm)
    ]
    assert len(norms) >= 6
    assert all(m.eps == 1e-6 for m in norms), [(type(m).__name__, m.eps) for m in norms]


def test_encoder_decoder_and_projections_are_lecun_normal_with_zero_bias():
    model = _model("convs5", num_actions=5, action_embed_dim=64)
    convs = {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and not name.startswith("sequence.")
    }
    # stem, 2 blocks x 2 convs + a shortcut in the encoder and decoder, head, proj_in/out
    assert len(convs) == 14 and {"encoder.stem", "decoder.head", "proj_in", "proj_out"} <= set(
        convs
    )
    pooled = []
    for name, conv in convs.items():
        w = conv.weight.detach().double()
        std = 1 / math.sqrt(w[0].numel())
        ratio = w.std().item() / std if w.numel() > 1 else 1.0
        # within 4 standard errors of the std estimate (torch's default is 0.58 of it)
        assert abs(ratio - 1) < max(0.05, 4 / math.sqrt(2 * w.numel())), (name, ratio)
        assert w.abs().max().item() <= 2 * std / TRUNCATED_NORMAL_STD * (1 + 1e-6), name
        assert not conv.bias.any(), name
        pooled.append((w / std).flatten())
    pooled = torch.cat(pooled)
    assert abs(pooled.std().item() - 1) < 0.02 and abs(pooled.mean().item()) < 0.02
    # flax nn.Embed: std 1/sqrt(features) (torch's nn.Embedding: 1)
    emb = model.action_embed.weight.detach()
    assert abs(emb.std().item() * math.sqrt(64) - 1) < 0.15
