"""ConvS5Block with S5's output block (``output="s5"``): the modes agree in float64, the
block is S5's formula written out, its parameters are those of the reference's S5 layer,
S5's draw of B and C has S5's scale, and wrong names are refused."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convssm.nn import ConvS5, ConvS5Block, ConvS5SSM, build_sequence_model
from convssm.nn.convs5 import S5Output


@pytest.mark.parametrize("prenorm", [False, True])
def test_s5_block_steps_equal_forward_in_float64(prenorm):
    torch.manual_seed(0)
    block = ConvS5Block(16, 8, 1, output="s5", prenorm=prenorm).double().eval()
    x = torch.randn(2, 7, 16, 1, 1, dtype=torch.float64)
    x0 = torch.randn(2, 8, 1, 1, dtype=torch.complex128)
    y, state = block(x, x0)
    s, s_ref, ys, ys_ref = x0, x0, [], []
    for t in range(7):
        yt, s = block.step(x[:, t], s)
        yr, s_ref = block.step_ref(x[:, t], s_ref)
        ys.append(yt)
        ys_ref.append(yr)
    for steps, last in ((ys, s), (ys_ref, s_ref)):
        torch.testing.assert_close(torch.stack(steps, 1), y, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(last, state, rtol=1e-10, atol=1e-10)


def test_s5_stack_real_loop_equals_parallel_in_float64():
    torch.manual_seed(1)
    model = ConvS5(16, 8, depth=2, kernel_size=1, output="s5").double().eval()
    x = torch.randn(2, 9, 16, 1, 1, dtype=torch.float64)
    with torch.no_grad():
        y_all, _ = model(x)
        y_pre, states = model(x[:, :4])
        real, kernels = model.to_real_states(states), model.real_step_kernels()
        ys = [y_pre]
        for t in range(4, 9):
            yt, real = model.step_real(x[:, t], real, kernels)
            ys.append(yt[:, None])
    torch.testing.assert_close(torch.cat(ys, 1), y_all, rtol=1e-10, atol=1e-10)


def test_s5_output_is_the_feedthrough_then_the_half_glu():
    torch.manual_seed(2)
    out = S5Output(6).double()
    y, v = torch.randn(2, 3, 6, 2, 2, dtype=torch.float64).unbind(0)
    g = F.gelu(y + out.feedthrough[:, None, None] * v, approximate="tanh")  # flax's nn.gelu
    w, b = out.gate.weight[:, :, 0, 0], out.gate.bias
    gate = torch.sigmoid(torch.einsum("oc,nchw->nohw", w, g) + b[:, None, None])
    torch.testing.assert_close(out(y, v), g * gate, rtol=1e-12, atol=1e-12)
    assert torch.all(out.gate.bias == 0)


def test_s5_block_has_the_reference_s5_layers_parameters():
    u, p = 12, 5  # the reference: Λ (re, im), B̃ and C̃ (re, im), D, log Δ, half GLU, LayerNorm
    block = ConvS5Block(u, p, 1, output="s5")
    reference = 2 * p + 2 * p * u + 2 * u * p + u + p + (u * u + u) + 2 * u
    assert sum(t.numel() for t in block.parameters()) == reference


def test_unknown_output_is_refused():
    with pytest.raises(ValueError, match="output must be one of"):
        ConvS5Block(8, 4, output="glu")
    with pytest.raises(ValueError, match="output must be one of"):
        build_sequence_model("convs5", 8, state_dim=4, output="half_glu")


def test_s5_projection_init_has_the_s5_scale():
    """B̃ = V⁻¹B keeps about half of B's power (V spans P of 2P dimensions): S5 draws B
    with variance 1/(2P) (lecun-normal, fan-in 2P), ConvS5 with 2/U (he-normal)."""
    torch.manual_seed(6)
    u, p = 32, 64
    for init, per_column in (("s5", 2 * p / (2 * p)), ("convs5", 2 * p * 2 / u)):
        layer = ConvS5SSM(u, p, 1, projection_init=init)
        b_power = (layer.b_re**2 + layer.b_im**2).sum(0).mean().item()
        assert 0.3 * per_column < b_power < 0.7 * per_column, init
        c_power = (layer.c_re**2 + layer.c_im**2).sum(1).mean().item()  # E|c|² = 2 both ways
        assert 0.7 < c_power < 1.3, init
    with pytest.raises(ValueError, match="projection_init"):
        ConvS5SSM(u, p, 1, projection_init="lecun")
