"""ConvS5Block and ConvS5: modes agree, states are per layer, dropout is shared over time,
the registry builds the stack, and a 4-block stack learns a small video task."""

from __future__ import annotations

import pytest
import torch

from convssm.nn import ConvS5, ConvS5Block, build_sequence_model
from convssm.nn.common import TimeSharedDropout


@pytest.mark.parametrize("prenorm", [False, True])
def test_block_step_equals_forward(prenorm):
    torch.manual_seed(0)
    block = ConvS5Block(32, 16, prenorm=prenorm).double().eval()
    x = torch.randn(2, 9, 32, 6, 5, dtype=torch.float64)
    x0 = torch.randn(2, 16, 6, 5, dtype=torch.complex128)
    y, state = block(x, x0)
    s, ys = x0, []
    for t in range(9):
        yt, s = block.step(x[:, t], s)
        ys.append(yt)
    torch.testing.assert_close(torch.stack(ys, 1), y, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(s, state, rtol=1e-10, atol=1e-10)


def test_stack_parallel_prefix_then_steps_equals_parallel():
    torch.manual_seed(1)
    model = ConvS5(32, 8, depth=3).eval()
    x = torch.randn(2, 30, 32, 8, 8)
    with torch.no_grad():
        y_all, states_all = model(x)
        y_pre, states = model(x[:, :11])
        ys = [y_pre]
        for t in range(11, 30):
            yt, states = model.step(x[:, t], states)
            ys.append(yt[:, None])
    torch.testing.assert_close(torch.cat(ys, 1), y_all, rtol=1e-4, atol=1e-5)
    for s, sa in zip(states, states_all, strict=True):
        torch.testing.assert_close(s, sa, rtol=1e-4, atol=1e-5)


def test_stack_states_are_per_layer_and_init_state_is_zero():
    model = ConvS5(32, 8, depth=3)
    states = model.init_state(2, 4, 5)
    assert len(states) == 3 and all(s.shape == (2, 8, 4, 5) for s in states)
    x = torch.randn(2, 4, 32, 4, 5)
    y0, _ = model(x)
    y1, _ = model(x, states)
    torch.testing.assert_close(y0, y1)
    with pytest.raises(ValueError, match="list of 3 layer states"):
        model(x, states[:2])
    with pytest.raises(ValueError, match="32 channels"):
        model.step(torch.randn(2, 16, 4, 5))


def test_time_shared_dropout_mask():
    drop = TimeSharedDropout(0.5).train()
    y = drop(torch.ones(3, 7, 4, 5, 5))
    assert torch.equal(y, y[:, :1].expand_as(y))
    assert 0 < (y == 0).float().mean() < 1
    drop.eval()
    x = torch.randn(3, 7, 4, 5, 5)
    assert torch.equal(drop(x), x)


def test_registry_builds_convs5_and_rejects_unknown_options():
    model = build_sequence_model("convs5", dim=32, state_dim=8, depth=2, clip_eigs=True)
    assert isinstance(model, ConvS5) and model.layers[0].ssm.clip_eigs
    with pytest.raises(ValueError, match="unknown sequence model"):
        build_sequence_model("convs6", dim=32)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['bogus'\].*takes .*clip_eigs"):
        build_sequence_model("convs5", dim=32, state_dim=8, depth=2, bogus=1)  # ConvS5SSM's too


def test_groupnorm_groups_must_divide_dim():
    with pytest.raises(ValueError, match="norm_groups"):
        ConvS5Block(24, 8)
    ConvS5Block(24, 8, norm_groups=8)


def _moving_blob_batch(gen: torch.Generator, batch: int, length: int, size: int) -> torch.Tensor:
    """(B, T, 1, size, size): a Gaussian blob moving at a random constant velocity, wrapping."""
    coords = torch.arange(size, dtype=torch.float32)
    pos = torch.rand(batch, 2, generator=gen) * size
    vel = (torch.rand(batch, 2, generator=gen) - 0.5) * 2.0
    frames = []
    for t in range(length):
        c = (pos + t * vel) % size
        d = [
            torch.minimum((coords - c[:, i, None]).abs(), size - (coords - c[:, i, None]).abs())
            for i in range(2)
        ]
        frames.append(torch.exp(-(d[0][:, :, None] ** 2 + d[1][:, None, :] ** 2) / 2.0))
    return torch.stack(frames, 1)[:, :, None]


def test_four_block_stack_learns_next_frame_prediction():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    dim = 16
    proj_in = torch.nn.Conv2d(1, dim, 1)
    stack = ConvS5(dim, 16, depth=4, norm_groups=4)
    proj_out = torch.nn.Conv2d(dim, 1, 1)
    model = torch.nn.ModuleList([proj_in, stack, proj_out])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def loss_fn(video):
        b, t = video.shape[:2]
        x = proj_in(video[:, :-1].reshape(-1, 1, 8, 8)).reshape(b, t - 1, dim, 8, 8)
        y, _ = stack(x)
        pred = proj_out(y.reshape(-1, dim, 8, 8)).reshape(b, t - 1, 1, 8, 8)
        return torch.nn.functional.mse_loss(pred, video[:, 1:])

    losses = []
    for _ in range(200):
        video = _moving_blob_batch(gen, 8, 12, 8)
        loss = loss_fn(video)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    print(f"loss {first:.4f} -> {last:.4f}")
    assert last < first / 5, f"loss fell only from {first:.4f} to {last:.4f}"
