"""The reference's flax defaults in our layers: initialisers, norm epsilon, GELU form.

The reference builds its layers from flax defaults: lecun-normal kernels (truncated normal,
std 1/sqrt(fan_in)) with zero biases, GroupNorm/LayerNorm eps 1e-6, and ``nn.gelu`` with
the tanh approximation. torch's defaults (std 1/sqrt(3 fan_in), uniform biases, eps 1e-5,
the erf GELU) fail every test below.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convssm.nn import ConvLSTM, ConvS5Block, FrameTransformer, build_sequence_model
from convssm.nn.convs5 import ResNetOutput
from convssm.nn.init import (
    FLAX_NORM_EPS,
    TRUNCATED_NORMAL_STD,
    fan_in,
    flax_conv_,
    flax_embedding_,
    flax_linear_,
    he_normal_,
    lecun_normal_,
    variance_scaling_,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)  # the statistics below are then fixed numbers, not a coin flip


def assert_init(w: torch.Tensor, std: float, truncated: bool, tol: float = 0.05) -> None:
    """Weights with mean ~0 and the given std; within ±2σ of the parent normal if truncated."""
    w = w.detach().double()
    assert w.numel() >= 1000, "too few weights for a statistic"
    assert abs(w.std().item() / std - 1) < tol, (w.std().item(), std)
    assert abs(w.mean().item()) < 4 * std / math.sqrt(w.numel())
    bound = 2 * std / TRUNCATED_NORMAL_STD
    if truncated:
        assert w.abs().max().item() <= bound * (1 + 1e-6)
    else:  # an untruncated normal of this many samples goes past 2.27 std
        assert w.abs().max().item() > bound


# ---------------------------------------------------------------------- the helpers


def test_fan_in_of_each_weight_kind():
    assert fan_in(nn.Linear(7, 5).weight) == 7
    assert fan_in(nn.Conv2d(6, 4, 3).weight) == 54
    assert fan_in(nn.Conv2d(6, 4, 3, groups=2).weight) == 27
    # flax's ConvTranspose kernel is (k, k, in, out): fan_in = in * k * k (torch uses out)
    assert fan_in(nn.ConvTranspose2d(6, 4, (2, 3)).weight, transposed=True) == 36
    with pytest.raises(ValueError, match="at least 2 dims"):
        fan_in(torch.zeros(3))


@pytest.mark.parametrize("distribution", ["truncated_normal", "normal"])
@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_variance_scaling_has_the_exact_std(distribution, scale):
    w = torch.empty(200, 300)
    variance_scaling_(w, scale, 50, distribution, torch.Generator().manual_seed(0))
    assert_init(w, math.sqrt(scale / 50), distribution == "truncated_normal", tol=0.01)


def test_variance_scaling_rejects_bad_arguments():
    with pytest.raises(ValueError, match="distribution"):
        variance_scaling_(torch.empty(3, 3), 1.0, 3, "uniform")
    with pytest.raises(ValueError, match="fan"):
        variance_scaling_(torch.empty(3, 3), 1.0, 0)


def test_lecun_and_he_normal_use_the_weights_fan_in():
    w = torch.empty(64, 32, 3, 3)
    assert_init(lecun_normal_(w), 1 / math.sqrt(288), truncated=True)
    assert_init(he_normal_(w), math.sqrt(2 / 288), truncated=True)
    g = torch.Generator()
    a = lecun_normal_(torch.empty(64, 32), generator=g.manual_seed(3)).clone()
    assert torch.equal(a, lecun_normal_(torch.empty(64, 32), generator=g.manual_seed(3)))


def test_flax_module_initialisers():
    conv = flax_conv_(nn.Conv2d(32, 48, 3))
    assert_init(conv.weight, 1 / math.sqrt(32 * 9), truncated=True)
    assert not conv.bias.any()
    deconv = flax_conv_(nn.ConvTranspose2d(64, 8, 4, stride=4))
    assert_init(deconv.weight, 1 / math.sqrt(64 * 16), truncated=True)
    assert not deconv.bias.any()
    dense = flax_linear_(nn.Linear(100, 50))
    assert_init(dense.weight, 0.1, truncated=True)
    assert not dense.bias.any()
    assert_init(flax_linear_(nn.Linear(100, 50), truncated=False).weight, 0.1, truncated=False)
    # flax nn.Embed: normal with std 1/sqrt(features), whatever the vocabulary size
    emb = flax_embedding_(nn.Embedding(40, 64))
    assert_init(emb.weight, 1 / 8, truncated=False)
    for bad, fn in [(nn.Linear(2, 2), flax_conv_), (nn.Conv2d(2, 2, 1), flax_linear_)]:
        with pytest.raises(TypeError):
            fn(bad)
    with pytest.raises(TypeError, match="Embedding"):
        flax_embedding_(nn.Linear(2, 2))


# ---------------------------------------------------------------------- the layers


def test_convs5_output_block_is_initialised_as_flax():
    block = ConvS5Block(64, 8)
    out = block.output
    for conv in (out.conv1, out.conv2):
        assert_init(conv.weight, 1 / math.sqrt(64 * 9), truncated=True)  # 0.042, torch 0.024
        assert not conv.bias.any()
    for norm in (out.norm1, out.norm2, block.residual.norm):
        assert norm.eps == FLAX_NORM_EPS == 1e-6


def test_convlstm_gates_are_truncated_he_normal_over_the_concatenation():
    lstm = ConvLSTM(32, depth=2)
    for layer in lstm.layers:
        cell = layer.cell
        w = cell.concat_weight()
        assert_init(w, math.sqrt(2 / (64 * 9)), truncated=True)
        assert not cell.input_conv.bias.any()
        assert layer.residual.norm.eps == 1e-6


def test_frame_transformer_is_initialised_as_teco():
    e, dim, hw = 64, 8, 4
    model = FrameTransformer(dim, hw, hw, embed_dim=e, depth=2, heads=4, mlp_dim=128)
    assert_init(model.embed.weight, 1 / math.sqrt(dim * hw * hw), truncated=True)
    assert_init(model.unembed.weight, 1 / math.sqrt(e * hw * hw), truncated=True)
    for layer in model.layers:
        assert_init(layer.qkv.weight, 1 / math.sqrt(e), truncated=False)
        assert_init(layer.proj.weight, 1 / math.sqrt(e), truncated=False)
        assert_init(layer.mlp[0].weight, 1 / math.sqrt(e), truncated=True)
        assert_init(layer.mlp[2].weight, 1 / math.sqrt(128), truncated=True)
    for m in model.modules():
        if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            assert not m.bias.any(), m
        if isinstance(m, nn.LayerNorm):
            assert m.eps == 1e-6


# ---------------------------------------------------------------------- GELU and the block


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """flax's nn.gelu (approximate=True): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def test_default_activation_is_flax_gelu_on_known_inputs():
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    act = ConvS5Block(8, 4, norm_groups=2).output.act
    # jax 0.10.2 / flax 0.12.8: flax.linen.gelu(x) in float32
    flax_values = [-0.00363734, -0.15880796, -0.154286, 0.0, 0.345714, 0.841192, 2.9963627]
    torch.testing.assert_close(act(x), gelu_tanh(x), rtol=0, atol=1e-15)
    torch.testing.assert_close(act(x), torch.tensor(flax_values).double(), rtol=0, atol=1e-6)
    exact = ConvS5Block(8, 4, norm_groups=2, activation="gelu_exact").output.act
    torch.testing.assert_close(exact(x), F.gelu(x), rtol=0, atol=0)
    assert (exact(x) - act(x)).abs().max() > 1e-4  # the two forms are told apart
    with pytest.raises(ValueError, match="unknown activation 'gelu_fast'"):
        ConvS5Block(8, 4, norm_groups=2, activation="gelu_fast")
    # the option reaches every block from a config's sequence_options
    stack = build_sequence_model(
        "convs5", 8, state_dim=4, depth=2, norm_groups=2, activation="gelu_exact"
    )
    assert all(layer.output.act.approximate == "none" for layer in stack.layers)


def flax_resnet_block(y: torch.Tensor, block: ResNetOutput, groups: int) -> torch.Tensor:
    """The reference's ``ResnetBlock`` written out on NHWC arrays, as flax computes it.

    GroupNorm: statistics over (H, W, channels of the group), var = E[x^2] - E[x]^2, eps 1e-6;
    activation nn.gelu (tanh form); nn.Conv SAME: explicit padding and a sum over taps of
    the (k, k, in, out) kernel; returns act(y + h). y: (N, C, H, W) -> (N, C, H, W).
    """

    def group_norm(x, norm):
        n, h, w, c = x.shape
        g = x.reshape(n, h, w, groups, c // groups)
        mean = g.mean(dim=(1, 2, 4), keepdim=True)
        var = (g * g).mean(dim=(1, 2, 4), keepdim=True) - mean * mean
        g = (g - mean) / torch.sqrt(var + 1e-6)
        return g.reshape(n, h, w, c) * norm.weight + norm.bias

    def conv_same(x, conv):
        kernel = conv.weight.permute(2, 3, 1, 0)  # (k, k, in, out), flax's layout
        k = kernel.shape[0]
        p = (k - 1) // 2
        xp = F.pad(x, (0, 0, p, k - 1 - p, p, k - 1 - p))
        h, w = x.shape[1:3]
        out = sum(
            torch.einsum("nhwi,io->nhwo", xp[:, i : i + h, j : j + w], kernel[i, j])
            for i in range(k)
            for j in range(k)
        )
        return out + conv.bias

    x = y.permute(0, 2, 3, 1)
    h = conv_same(gelu_tanh(group_norm(x, block.norm1)), block.conv1)
    h = conv_same(gelu_tanh(group_norm(h, block.norm2)), block.conv2)
    return gelu_tanh(x + h).permute(0, 3, 1, 2)


def test_resnet_output_block_equals_the_flax_form_in_float64():
    torch.manual_seed(0)
    block = ResNetOutput(16, kernel_size=3, norm_groups=4).double()
    with torch.no_grad():  # non-trivial norm affine and conv biases, so every term counts
        for p in (block.norm1.weight, block.norm2.weight):
            p.uniform_(0.5, 1.5)
        for p in (block.norm1.bias, block.norm2.bias, block.conv1.bias, block.conv2.bias):
            p.normal_(0, 0.1)
    y = torch.randn(3, 16, 6, 5, dtype=torch.float64) * 2 + 0.3
    want = flax_resnet_block(y, block, groups=4)
    torch.testing.assert_close(block(y), want, rtol=1e-12, atol=1e-12)
    # torch's defaults (erf GELU or eps 1e-5) differ by far more than that
    exact = ResNetOutput(16, kernel_size=3, norm_groups=4, activation="gelu_exact").double()
    exact.load_state_dict(block.state_dict())
    assert (exact(y) - want).abs().max() > 1e-5
    for norm in (block.norm1, block.norm2):
        norm.eps = 1e-5
    assert (block(y) - want).abs().max() > 1e-7
