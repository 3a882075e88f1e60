"""FrameTransformer: parallel vs KV-cache steps vs no-cache window re-runs, and checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convssm.nn import FrameTransformer, build_sequence_model
from convssm.nn.causal_transformer import sinusoidal_positions, window_mask
from convssm.nn.frame_transformer import FrameWindow, KVCache

TOL = 1e-10


def _model(depth: int = 2, window: int = 5, positions: str = "sinusoidal", **kw):
    torch.manual_seed(0)
    m = FrameTransformer(
        3, 4, 5, embed_dim=16, depth=depth, heads=4, mlp_dim=32, window=window,
        positions=positions, max_len=64, **kw,
    )  # fmt: skip
    return m.double().eval()


def _video(t: int = 12, b: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, t, 3, 4, 5, dtype=torch.float64, generator=g)


def _steps(model, x, step, state=None):
    ys = []
    for t in range(x.shape[1]):
        yt, state = step(x[:, t], state)
        ys.append(yt)
    return torch.stack(ys, 1), state


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, atol=TOL, rtol=0)


@pytest.mark.parametrize(
    "positions,head", [("sinusoidal", "norm"), ("learned", "norm"), ("sinusoidal", "teco")]
)
def test_kv_cache_steps_equal_parallel_beyond_the_window(positions: str, head: str) -> None:
    model = _model(depth=3, window=5, positions=positions, head=head)
    x = _video(12)  # 12 frames, window 5
    y, cache = model(x)
    ys, cache_s = _steps(model, x, model.step_cached)
    assert _close(ys, y)
    for a, b in zip(cache, cache_s, strict=True):
        assert a.length == b.length == 12 and a.keys.shape[2] == 4
        assert _close(a.keys, b.keys) and _close(a.values, b.values)


@pytest.mark.parametrize("head", ["norm", "teco"])
def test_no_cache_steps_equal_parallel_within_the_window(head: str) -> None:
    model = _model(depth=3, window=8, head=head)
    x = _video(8)
    y, _ = model(x)
    ys, history = _steps(model, x, model.step_nocache)
    assert _close(ys, y)
    assert isinstance(history, FrameWindow) and history.frames.shape[1] == 7 and history.start == 1


def test_no_cache_steps_equal_parallel_beyond_the_window_for_one_layer() -> None:
    model = _model(depth=1, window=4)
    x = _video(11)
    y, _ = model(x)
    ys, _ = _steps(model, x, model.step_nocache)
    assert _close(ys, y)


def test_no_cache_beyond_the_window_with_stacked_layers_is_the_reference_protocol() -> None:
    # Documented behaviour: each output of the no-cache mode is the transformer re-run on
    # its last `window` input frames (positions absolute), which is what a brute-force
    # per-frame re-run computes; beyond the window it differs from the cached mode,
    # whose stacked layers see further back through earlier frames' keys.
    model = _model(depth=2, window=4)
    x = _video(9)
    ys, _ = _steps(model, x, model.step_nocache)
    for t in range(x.shape[1]):
        lo = max(0, t - 3)
        ref, _ = model(x[:, lo : t + 1], FrameWindow(x[:, :0], lo))
        assert _close(ys[:, t], ref[:, -1])
    y, _ = model(x)
    assert _close(ys[:, :4], y[:, :4])
    assert not torch.allclose(ys[:, 4:], y[:, 4:], atol=1e-6)


def test_parallel_continues_from_either_state() -> None:
    model = _model(depth=2, window=5)
    x = _video(12)
    y, _ = model(x)
    y1, cache = model(x[:, :7])
    y2, _ = model(x[:, 7:], cache)
    assert _close(torch.cat([y1, y2], 1), y)
    # Mixed: cached steps from a parallel prefix.
    ys, _ = _steps(model, x[:, 7:], model.step_cached, cache)
    assert _close(ys, y[:, 7:])
    # No-cache forward from a window state equals no-cache steps.
    model1 = _model(depth=2, window=5, cache=False)
    h0 = model1.init_state(2, 4, 5)
    yw1, hist = model1(x[:, :3], h0)
    yw2, _ = model1(x[:, 3:6], hist)
    yw3, _ = model1(x[:, 3:], hist)
    ys, _ = _steps(model1, x, model1.step)
    assert _close(torch.cat([yw1, yw2], 1), ys[:, :6])
    assert _close(torch.cat([yw1, yw3], 1), ys)  # beyond the window: one re-run per frame
    yw, _ = model1(x)
    assert _close(yw, ys)


def test_states_of_the_default_kind() -> None:
    cached = _model(cache=True)
    assert all(isinstance(c, KVCache) for c in cached.init_state(2, 4, 5))
    y, states = cached(_video(3))
    assert isinstance(states, list) and states[0].length == 3
    plain = _model(cache=False)
    assert isinstance(plain.init_state(2, 4, 5), FrameWindow)
    _, states = plain(_video(3))
    assert isinstance(states, FrameWindow) and states.frames.shape[1] == 3


def test_token_matmuls_equal_the_convolutions() -> None:
    model = _model()
    frames = _video(3).flatten(0, 1)
    assert _close(model.embed_frames(frames), model.embed(frames)[:, :, 0, 0])
    tokens = torch.randn(6, 16, dtype=torch.float64)
    assert _close(model.unembed_tokens(tokens), model.unembed(tokens[:, :, None, None]))


def test_window_mask_matches_brute_force() -> None:
    for queries, keys, window in [(5, 5, 3), (3, 7, 4), (1, 3, 5), (1, 6, 4), (6, 6, 10)]:
        mask = window_mask(queries, keys, window, torch.device("cpu"))
        past = keys - queries
        brute = torch.tensor(
            [[past + j - window < s <= past + j for s in range(keys)] for j in range(queries)]
        )
        assert torch.equal(mask if mask is not None else torch.ones_like(brute), brute)


def test_sdpa_matches_explicit_softmax_attention() -> None:
    # The layer's attention equals softmax(QK^T / sqrt(d) + mask) V written out by hand.
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 6, 8, dtype=torch.float64, generator=g) for _ in range(3))
    mask = window_mask(6, 6, 3, torch.device("cpu"))
    scores = (q @ k.transpose(-1, -2)) / 8**0.5
    ref = scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v
    assert _close(F.scaled_dot_product_attention(q, k, v, attn_mask=mask), ref)


def test_sinusoidal_table() -> None:
    table = sinusoidal_positions(10, 6)
    assert table.shape == (10, 6)
    assert torch.allclose(table[0, 0::2], torch.zeros(3))
    assert torch.allclose(table[0, 1::2], torch.ones(3))
    assert abs(table[3, 2].item() - torch.sin(torch.tensor(3 * 10000 ** (-2 / 6))).item()) < 1e-6


def test_teco_head_on_a_one_pixel_frame_is_dense_gelu_layernorm() -> None:
    """head="teco" on 1×1 frames with dim = embed_dim is TECO's head: Dense, GELU (tanh),
    LayerNorm (eps 1e-6), written out here on the last layer's tokens."""
    torch.manual_seed(3)
    model = FrameTransformer(16, 1, 1, 16, 1, 4, 32, head="teco").double().eval()
    with torch.no_grad():
        model.final_norm.weight.normal_()
        model.final_norm.bias.normal_()
    x = torch.randn(2, 5, 16, 1, 1, dtype=torch.float64)
    y, _ = model(x)
    z = model._tokens(x, 0)
    for layer in model.layers:
        z, _, _ = layer(z, None, None, model.window)
    w = model.unembed.weight[:, :, 0, 0]  # (E, dim): the Dense's kernel
    h = F.gelu(z @ w + model.unembed.bias, approximate="tanh")
    want = F.layer_norm(h, (16,), model.final_norm.weight, model.final_norm.bias, 1e-6)
    assert _close(y[..., 0, 0], want)
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in FrameTransformer(16, 1, 1, 16, 1, 4, 32).parameters()
    )


def test_shapes_dtypes_and_gradients() -> None:
    torch.manual_seed(0)
    model = FrameTransformer(8, 6, 6, 32, 2, 4, 64, window=16, dropout=0.1)
    x = torch.randn(3, 10, 8, 6, 6, requires_grad=True)
    y, cache = model(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert len(cache) == 2 and cache[0].keys.shape == (3, 4, 10, 8)
    y.square().mean().backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters())


def test_bad_input_raises_clear_errors() -> None:
    model = _model()
    with pytest.raises(ValueError, match="4x5"):
        model(torch.randn(1, 2, 3, 4, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="3 channels"):
        model(torch.randn(1, 2, 2, 4, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="float32"):
        model(torch.randn(1, 2, 3, 4, 5))
    with pytest.raises(ValueError, match="non-finite"):
        model(torch.full((1, 2, 3, 4, 5), float("inf"), dtype=torch.float64))
    with pytest.raises(ValueError, match="max_len"):
        model(_video(65, b=1))
    with pytest.raises(ValueError, match="KVCache entries"):
        model(_video(2), [None])
    with pytest.raises(ValueError, match="shape"):
        model(_video(2, b=1), model.init_cache(2, 4, 5))
    with pytest.raises(ValueError, match="4x5"):
        model.init_state(1, 5, 5)
    with pytest.raises(ValueError, match="window - 1"):
        model(_video(2), FrameWindow(_video(6), 0))
    with pytest.raises(ValueError, match="divisible"):
        FrameTransformer(3, 4, 5, 10, 1, 4, 8)
    with pytest.raises(ValueError, match="positions"):
        FrameTransformer(3, 4, 5, 16, 1, 4, 8, positions="rotary")
    with pytest.raises(ValueError, match="window"):
        FrameTransformer(3, 4, 5, 16, 1, 4, 8, window=0)
    with pytest.raises(ValueError, match="head must be one of"):
        FrameTransformer(3, 4, 5, 16, 1, 4, 8, head="dense")


def test_registry_builds_transformer_and_rejects_unknown_options() -> None:
    model = build_sequence_model(
        "transformer", 8, height=4, width=4, embed_dim=16, depth=1, heads=2, mlp_dim=32,
        window=10, positions="learned", max_len=20,
    )  # fmt: skip
    assert isinstance(model, FrameTransformer) and model.pos.shape == (20, 16)
    with pytest.raises(ValueError, match="unknown option"):
        build_sequence_model(
            "transformer", 8, height=4, width=4, embed_dim=16, depth=1, heads=2, mlp_dim=32,
            kernel_size=3,
        )  # fmt: skip
