"""FrameTransformer with a token per pixel (``tokens="pixel"``, TECO's temporal transformer on
a grid): the modes agree in float64, attention is block-causal over frames, one layer equals
attention written out by hand, and the mask matches a brute-force one."""

from __future__ import annotations

import pytest
import torch

from convssm.nn import FrameTransformer
from convssm.nn.causal_transformer import window_mask
from convssm.nn.frame_transformer import KVCache

TOL = 1e-10


def _model(depth: int = 2, window: int = 5, **kw) -> FrameTransformer:
    torch.manual_seed(0)
    m = FrameTransformer(3, 2, 3, 8, depth, 2, 16, window=window, max_len=32, tokens="pixel", **kw)
    return m.double().eval()


def _video(t: int, b: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, t, 3, 2, 3, dtype=torch.float64, generator=g)


def _steps(step, x, state=None):
    ys = []
    for t in range(x.shape[1]):
        y, state = step(x[:, t], state)
        ys.append(y)
    return torch.stack(ys, 1), state


@pytest.mark.parametrize("head", ["norm", "teco"])
def test_kv_cache_steps_equal_parallel_beyond_the_window(head: str) -> None:
    model = _model(depth=3, window=4, head=head)
    x = _video(10)
    y, cache = model(x)
    ys, cache_s = _steps(model.step_cached, x)
    torch.testing.assert_close(ys, y, rtol=0, atol=TOL)
    for a, b in zip(cache, cache_s, strict=True):
        assert a.length == b.length == 10 and a.keys.shape[2] == 3 * 6  # window − 1 frames
        torch.testing.assert_close(a.keys, b.keys, rtol=0, atol=TOL)
    y1, cache = model(x[:, :6])
    y2, _ = model(x[:, 6:], cache)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=0, atol=TOL)


def test_no_cache_steps_equal_parallel_within_the_window() -> None:
    model = _model(depth=3, window=8)
    x = _video(8)
    y, _ = model(x)
    ys, _ = _steps(model.step_nocache, x)
    torch.testing.assert_close(ys, y, rtol=0, atol=TOL)


def test_a_frames_pixels_see_each_other_and_no_later_frame() -> None:
    model = _model(depth=2, window=16)
    x = _video(6)
    changed = x.clone()
    changed[:, 3, :, 1, 2] += 1.0  # one pixel of frame 3
    y, _ = model(x)
    y2, _ = model(changed)
    torch.testing.assert_close(y2[:, :3], y[:, :3], rtol=0, atol=TOL)
    moved = (y2[:, 3] - y[:, 3]).abs().amax(1)  # (B, H, W): every pixel of frame 3
    assert bool((moved > 1e-6).all())


def test_one_layer_is_attention_over_the_tokens_of_earlier_frames_written_out() -> None:
    model = _model(depth=1, window=16)
    layer, x, n, e = model.layers[0], _video(4), 6, 8
    y, _ = model(x)
    # tokens: a linear map of each pixel's channels, plus the position of token t·n + p
    tok = x.permute(0, 1, 3, 4, 2).reshape(2, 4 * n, 3) @ model.embed.weight[:, :, 0, 0].T
    tok = tok + model.embed.bias + model.pos[: 4 * n]
    h = layer.norm1(tok)
    q, k, v = layer.qkv(h).view(2, 4 * n, 3, 2, e // 2).permute(2, 0, 3, 1, 4)
    frame = torch.arange(4 * n) // n
    allowed = frame[None, :] <= frame[:, None]  # key frame ≤ query frame
    scores = (q @ k.transpose(-1, -2)) / (e // 2) ** 0.5
    a = scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v
    z = tok + layer.proj(a.transpose(1, 2).reshape(2, 4 * n, e))
    z = z + layer.mlp(layer.norm2(z))
    out = model.final_norm(z) @ model.unembed.weight[:, :, 0, 0] + model.unembed.bias
    want = out.view(2, 4, 2, 3, 3).permute(0, 1, 4, 2, 3)
    torch.testing.assert_close(y, want, rtol=0, atol=TOL)


def test_block_window_mask_matches_brute_force() -> None:
    for queries, keys, window, group in [(6, 6, 2, 3), (3, 9, 2, 3), (2, 8, 3, 2), (4, 4, 5, 4)]:
        mask = window_mask(queries, keys, window, torch.device("cpu"), group)
        past = keys - queries
        brute = torch.tensor(
            [
                [(past + j) // group - window < s // group <= (past + j) // group
                 for s in range(keys)]
                for j in range(queries)
            ]
        )  # fmt: skip
        assert torch.equal(mask if mask is not None else torch.ones_like(brute), brute)


def test_pixel_tokens_have_per_pixel_maps_and_checked_caches() -> None:
    model = _model()
    assert model.embed.weight.shape == (8, 3, 1, 1) and model.pos.shape == (32 * 6, 8)
    x = _video(2)
    _, cache = model(x)
    bad = [KVCache(c.keys[:, :, 1:], c.values[:, :, 1:], c.length) for c in cache]
    with pytest.raises(ValueError, match="tokens"):
        model(x, bad)
    with pytest.raises(ValueError, match="tokens must be one of"):
        FrameTransformer(3, 2, 3, 8, 1, 2, 16, tokens="patch")
