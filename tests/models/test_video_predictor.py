"""VideoPredictor: teacher forcing, generation that agrees with the parallel mode, actions,
save/load, and clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from convssm.models import VideoPredictor
from convssm.train.objectives import video_prediction_loss


def _small(**kw):
    args = dict(
        image_size=16,
        encoder_widths=(8, 16),
        norm_groups=4,
        dim=16,
        sequence_options=dict(state_dim=8, depth=2, norm_groups=4),
    )
    args.update(kw)
    return VideoPredictor(**args)


def _video(b=2, t=6, size=16, c=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, t, c, size, size, generator=g) * 2 - 1


def test_teacher_forcing_shapes_and_loss():
    torch.manual_seed(0)
    model = _small()
    video = _video()
    out = model(video)
    assert out.predictions.shape == (2, 5, 1, 16, 16)
    assert out.predictions.abs().max() <= 1
    target = video[:, 1:]
    want = (
        0.5 * ((out.predictions - target) ** 2).mean()
        + 0.5 * (out.predictions - target).abs().mean()
    )
    loss = video_prediction_loss(out)
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_generation_equals_teacher_forced_parallel_mode():
    """Feeding the generated frames back through forward() reproduces them: step == parallel."""
    torch.manual_seed(1)
    model = _small().double().eval()
    context = _video(t=5).double()
    horizon = 40
    gen = model.generate(context, horizon)
    assert gen.shape == (2, horizon, 1, 16, 16)
    inputs = torch.cat([context, gen], 1)
    with torch.no_grad():
        pred = model(inputs).predictions[:, context.shape[1] - 1 :]
    torch.testing.assert_close(pred, gen, rtol=1e-9, atol=1e-9)


def test_generation_memory_does_not_depend_on_history():
    model = _small().eval()
    frames = list(model.iter_generate(_video(t=3), 4))
    assert len(frames) == 4 and frames[0].shape == (2, 1, 16, 16)


def test_actions_condition_the_prediction():
    torch.manual_seed(2)
    model = _small(num_actions=3).eval()
    video = _video(t=4)
    a0 = torch.zeros(2, 4, dtype=torch.long)
    a1 = torch.full((2, 4), 2, dtype=torch.long)
    assert not torch.allclose(model(video, a0).predictions, model(video, a1).predictions)
    gen = model.generate(video, 3, torch.zeros(2, 7, dtype=torch.long))
    assert gen.shape == (2, 3, 1, 16, 16)
    with pytest.raises(ValueError, match="needs actions"):
        model(video)
    with pytest.raises(ValueError, match=r"shape \(B=2, T>=7\)"):
        model.generate(video, 3, torch.zeros(2, 6, dtype=torch.long))
    with pytest.raises(ValueError, match=r"lie in \[0, 3\)"):
        model(video, torch.full((2, 4), 3, dtype=torch.long))
    with pytest.raises(ValueError, match="takes no actions"):
        _small()(video, a0)


def test_actions_follow_tecos_convention():
    """actions[:, t] led to frame t: it conditions the prediction of frame t, not before."""
    torch.manual_seed(4)
    model = _small(num_actions=3).to(torch.float64).eval()
    video = _video(t=5).double()
    base = torch.zeros(2, 5, dtype=torch.long)
    pred = model(video, base).predictions  # frames 1..4
    first = base.clone()
    first[:, 0] = 2
    assert torch.equal(model(video, first).predictions, pred)  # actions[:, 0] is never used
    third = base.clone()
    third[:, 3] = 2
    changed = model(video, third).predictions
    assert torch.equal(changed[:, :2], pred[:, :2])  # frames 1, 2 do not see actions[:, 3]
    assert not torch.allclose(changed[:, 2], pred[:, 2])  # frame 3 does
    # generation pairs actions the same way as teacher forcing
    gen = model.generate(video[:, :3], 2, third)
    assert torch.allclose(gen[:, 0], changed[:, 2], atol=1e-10)
    roll = model(video, third, rollout_context=2).predictions
    assert torch.allclose(roll[:, 1:], model.generate(video[:, :2], 3, third), atol=1e-10)


def test_save_and_load_pretrained(tmp_path):
    torch.manual_seed(3)
    model = _small().eval()
    model.save_pretrained(tmp_path / "m")
    loaded = VideoPredictor.from_pretrained(tmp_path / "m").eval()
    video = _video(t=4)
    torch.testing.assert_close(loaded.generate(video, 3), model.generate(video, 3))
    assert loaded.config == model.config
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]


def test_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model directory"):
        VideoPredictor.from_pretrained(tmp_path / "missing")
    d = _small().save_pretrained(tmp_path / "m")
    (d / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        VideoPredictor.from_pretrained(d)
    d = _small().save_pretrained(tmp_path / "m2")
    meta = json.loads((d / "config.json").read_text())
    meta["config"]["bogus"] = 1
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="bogus"):
        VideoPredictor.from_pretrained(d)
    (d / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        VideoPredictor.from_pretrained(d)


def test_bad_video_is_named():
    model = _small()
    with pytest.raises(ValueError, match="5 dimensions"):
        model(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match="1 channels"):
        model(torch.zeros(2, 3, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        model(torch.full((1, 3, 1, 16, 16), 255.0))
    with pytest.raises(ValueError, match="video frames are 15x16, but this model takes 16x16"):
        model(torch.zeros(1, 3, 1, 15, 16))
    with pytest.raises(ValueError, match="at least 2 frames"):
        model(torch.zeros(1, 1, 1, 16, 16))
    with pytest.raises(ValueError, match="horizon"):
        model.generate(torch.zeros(1, 2, 1, 16, 16), 0)


def test_reference_size_is_about_21_7_million():
    """ConvS5 8 layers, dim 256, P 128 on Moving-MNIST has ~21.7 M parameters
    (docs/design.md#video-predictor)."""
    model = VideoPredictor()
    n = sum(p.numel() for p in model.parameters())
    assert 21.0e6 < n < 22.5e6, n


@pytest.mark.parametrize("frames", [1, 7, 64, 263])
def test_blank_offset_is_exactly_zero_in_float32_at_any_batch_size(frames):
    """Blank frames among others enter the sequence model as exact zeros: a slow mode
    integrates any residue over thousands of frames (a separate one-frame batch for the
    blank's encoding left ~5e-7 at batch 7 and more)."""
    torch.manual_seed(5)
    model = _small(blank_offset=True).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    video = torch.full((1, frames, 1, 16, 16), -1.0)
    video[0, ::2] = torch.rand(len(range(0, frames, 2)), 1, 16, 16) * 2 - 1
    with torch.no_grad():
        z = model.encode(video)
    assert torch.count_nonzero(z[0, 1::2]) == 0
    if frames > 1:
        assert z[0, ::2].abs().amax() > 1e-3


def test_blank_offset_makes_a_blank_frame_zero_and_keeps_step_equal_to_parallel(tmp_path):
    torch.manual_seed(4)
    model = _small(blank_offset=True, num_actions=3).double().eval()
    with torch.no_grad():  # give the biases something to remove
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    blank = torch.full((2, 3, 1, 16, 16), -1.0, dtype=torch.float64)
    none = torch.zeros(2, 3, dtype=torch.long)
    z = model.encode(blank, none)
    plain = _small(num_actions=3).double()
    plain.load_state_dict(model.state_dict())
    assert plain.encode(blank, none).abs().max() > 1e-3  # without it, a blank is not zero
    # with it, only the action embedding's projection is left, the same for every frame
    emb = model.action_embed(none)[..., None, None].expand(-1, -1, -1, 8, 8)
    frame_part = model.proj_in.weight[:, 16:, 0, 0]
    want = torch.einsum("oc,btchw->btohw", frame_part, emb)
    torch.testing.assert_close(z, want, rtol=1e-9, atol=1e-9)
    # the generation loop's step equals the parallel pass
    context, actions = _video(t=4).double(), torch.randint(0, 3, (2, 4 + 6))
    gen = model.generate(context, 6, actions=actions)
    with torch.no_grad():
        pred = model(torch.cat([context, gen], 1), actions=actions).predictions[:, 3:]
    torch.testing.assert_close(pred, gen, rtol=1e-9, atol=1e-9)
    model.save_pretrained(tmp_path / "m")
    loaded = VideoPredictor.from_pretrained(tmp_path / "m")
    assert loaded.config.blank_offset is True


def test_rectify_latents_gives_exact_zeros_and_keeps_step_equal_to_parallel(tmp_path):
    """With ``rectify_latents`` the sequence model's input is ReLU of what it was: every
    entry ≥ 0, a blank frame (with ``blank_offset``) exactly zero, the positive part equal to
    the unrectified model's, and generation's step still the parallel pass."""
    torch.manual_seed(6)
    model = _small(blank_offset=True, rectify_latents=True).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    plain = _small(blank_offset=True).double().eval()
    plain.load_state_dict(model.state_dict())
    video = _video(t=5).double()
    video[:, 2] = -1.0  # a blank frame among the others
    with torch.no_grad():
        z, raw = model.encode(video), plain.encode(video)
    assert raw.amin() < -1e-3 and raw.amax() > 1e-3  # the ReLU has both sides to act on
    torch.testing.assert_close(z, raw.clamp(min=0), rtol=0, atol=0)
    assert torch.count_nonzero(z[:, 2]) == 0
    gen = model.generate(video[:, :4], 5)
    with torch.no_grad():
        pred = model(torch.cat([video[:, :4], gen], 1)).predictions[:, 3:]
    torch.testing.assert_close(pred, gen, rtol=1e-9, atol=1e-9)
    model.save_pretrained(tmp_path / "m")
    assert VideoPredictor.from_pretrained(tmp_path / "m").config.rectify_latents is True
