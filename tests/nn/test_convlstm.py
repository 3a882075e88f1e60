"""ConvLSTM: split-conv fast path vs the single-conv reference, parallel vs step, checks."""

from __future__ import annotations

import pytest
import torch

from convssm.nn import ConvLSTM, build_sequence_model
from convssm.nn.convlstm import ConvLSTMCell, convlstm_reference

TOL = 1e-10


def _model(prenorm: bool = False, depth: int = 3, dim: int = 4) -> ConvLSTM:
    torch.manual_seed(0)
    return ConvLSTM(dim, depth, kernel_size=3, prenorm=prenorm).double().eval()


def _video(b: int = 2, t: int = 9, c: int = 4, h: int = 5, w: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, t, c, h, w, dtype=torch.float64, generator=g)


def test_split_conv_equals_single_conv_over_concat() -> None:
    torch.manual_seed(0)
    cell = ConvLSTMCell(4, kernel_size=5).double()
    with torch.no_grad():
        cell.input_conv.bias.normal_()  # a non-zero bias must go through the input side only
    u = _video()
    state = (torch.randn_like(u[:, 0]), torch.randn_like(u[:, 0]))
    ref = convlstm_reference(cell, u, state)
    gx = cell.input_gates(u.flatten(0, 1)).view(2, 9, 16, 5, 6)
    s, hs = state, []
    for t in range(u.shape[1]):
        s = cell.recur(gx[:, t], s)
        hs.append(s[0])
    assert torch.allclose(torch.stack(hs, 1), ref, atol=TOL, rtol=0)


def test_reference_cell_is_the_textbook_lstm() -> None:
    # One step of the reference by hand, gate order (i, f, o, g), no peepholes.
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, kernel_size=1).double()
    u = torch.randn(1, 1, 2, 1, 1, dtype=torch.float64)
    h0, c0 = torch.randn(2, 1, 2, 1, 1, dtype=torch.float64).unbind(0)
    w = cell.concat_weight()[:, :, 0, 0]
    z = w @ torch.cat([u[0, 0, :, 0, 0], h0[0, :, 0, 0]]) + cell.input_conv.bias
    i, f, o, g = z.sigmoid()[0:2], z.sigmoid()[2:4], z.sigmoid()[4:6], z[6:8].tanh()
    c = f * c0[0, :, 0, 0] + i * g
    h = o * c.tanh()
    out = convlstm_reference(cell, u, (h0, c0))
    assert torch.allclose(out[0, 0, :, 0, 0], h, atol=TOL, rtol=0)


def test_he_normal_init_with_concat_fan_in() -> None:
    torch.manual_seed(0)
    cell = ConvLSTMCell(64, kernel_size=3)
    w = cell.concat_weight()
    expected = (2.0 / (2 * 64 * 9)) ** 0.5
    assert abs(w.std().item() - expected) / expected < 0.02
    assert cell.hidden_conv.bias is None
    assert torch.count_nonzero(cell.input_conv.bias) == 0


@pytest.mark.parametrize("prenorm", [False, True])
def test_step_equals_parallel(prenorm: bool) -> None:
    model = _model(prenorm)
    x = _video()
    y, states = model(x)
    s, ys = None, []
    for t in range(x.shape[1]):
        yt, s = model.step(x[:, t], s)
        ys.append(yt)
    assert torch.allclose(torch.stack(ys, 1), y, atol=TOL, rtol=0)
    for (h1, c1), (h2, c2) in zip(states, s, strict=True):
        assert torch.allclose(h1, h2, atol=TOL, rtol=0) and torch.allclose(c1, c2, atol=TOL, rtol=0)


def test_parallel_continues_from_state() -> None:
    model = _model()
    x = _video()
    y, _ = model(x)
    y1, s1 = model(x[:, :4])
    y2, _ = model(x[:, 4:], s1)
    assert torch.allclose(torch.cat([y1, y2], 1), y, atol=TOL, rtol=0)
    # Explicit zeros and None entries mean the same as no state.
    y0, _ = model(x, [None] * model.depth)
    yz, _ = model(x, model.init_state(2, 5, 6))
    assert torch.allclose(y0, y, atol=TOL, rtol=0) and torch.allclose(yz, y, atol=TOL, rtol=0)


def test_postnorm_output_is_layer_normalised() -> None:
    model = _model(prenorm=False)
    y, _ = model(_video())
    mean, var = y.mean(dim=2), y.var(dim=2, unbiased=False)
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-8)
    assert torch.allclose(var, torch.ones_like(var), atol=1e-4)


def test_shapes_dtypes_and_gradients() -> None:
    torch.manual_seed(0)
    model = ConvLSTM(8, 2, dropout=0.1)
    x = torch.randn(3, 5, 8, 4, 7, requires_grad=True)
    y, states = model(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert len(states) == 2 and all(h.shape == (3, 8, 4, 7) for h, _ in states)
    y.square().mean().backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters())
    init = model.init_state(3, 4, 7)
    assert len(init) == 2 and all(torch.count_nonzero(h) == 0 for h, _ in init)


def test_training_step_with_dropout_is_rejected() -> None:
    model = ConvLSTM(4, 1, dropout=0.5).train()
    with pytest.raises(ValueError, match="eval"):
        model.step(torch.randn(1, 4, 3, 3), None)


def test_bad_input_raises_clear_errors() -> None:
    model = ConvLSTM(4, 2)
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[1.0]])
    with pytest.raises(ValueError, match="5 dimensions"):
        model(torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="4 channels"):
        model(torch.randn(2, 3, 5, 5, 5))
    with pytest.raises(ValueError, match="non-finite"):
        model(torch.full((1, 2, 4, 3, 3), float("nan")))
    with pytest.raises(TypeError, match="floating"):
        model(torch.ones(1, 2, 4, 3, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="float64"):
        model(torch.randn(1, 2, 4, 3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="no time steps"):
        model(torch.randn(1, 0, 4, 3, 3))
    with pytest.raises(ValueError, match="one per layer"):
        model(torch.randn(1, 2, 4, 3, 3), [None])
    with pytest.raises(ValueError, match=r"states\[1\].h must have shape"):
        bad = (torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 2, 2))
        model(torch.randn(1, 2, 4, 3, 3), [None, bad])
    with pytest.raises(ValueError, match="4 dimensions"):
        model.step(torch.randn(1, 2, 4, 3, 3), None)
    with pytest.raises(ValueError, match="odd"):
        ConvLSTM(4, 1, kernel_size=2)
    with pytest.raises(ValueError, match="depth"):
        ConvLSTM(4, 0)


def test_registry_builds_convlstm_and_rejects_unknown_options() -> None:
    model = build_sequence_model("convlstm", 8, depth=2, kernel_size=5, prenorm=True)
    assert isinstance(model, ConvLSTM) and model.depth == 2
    assert model.layers[0].cell.kernel_size == 5 and model.layers[0].residual.prenorm
    with pytest.raises(ValueError, match="unknown option"):
        build_sequence_model("convlstm", 8, depth=2, state_dim=16)
