"""Multi-step training: ``VideoPredictor.forward(..., rollout_context=C)``, scored by the
pixel loss of convssm.train.objectives."""

from __future__ import annotations

import pytest
import torch

from convssm.models import VideoPredictor
from convssm.train.objectives import pixel_loss, video_prediction_loss

OPTIONS = {
    "convs5": {"depth": 2, "state_dim": 4, "norm_groups": 4},
    "convlstm": {"depth": 2},
    "transformer": {"embed_dim": 16, "mlp_dim": 16, "heads": 2, "depth": 1, "window": 16,
                    "max_len": 32},
}  # fmt: skip


def _model(name="convs5", dtype=torch.float64):
    torch.manual_seed(0)
    m = VideoPredictor(image_size=8, encoder_widths=[4, 8], norm_groups=4, dim=8,
                       sequence_model=name, sequence_options=OPTIONS[name])  # fmt: skip
    return m.to(dtype).eval()


def _video(t=7, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return (torch.rand(2, t, 1, 8, 8, generator=g, dtype=dtype) * 2 - 1) * 0.9


def test_full_context_is_teacher_forcing_exactly():
    m, v = _model(), _video()
    tf = m(v)
    ro = m(v, rollout_context=v.shape[1] - 1)
    assert torch.equal(tf.predictions, ro.predictions)
    assert torch.equal(video_prediction_loss(tf), video_prediction_loss(ro))


@pytest.mark.parametrize("name", sorted(OPTIONS))
@pytest.mark.parametrize("context", [1, 3])
def test_rollout_predictions_equal_generation(name, context):
    m, v = _model(name), _video()
    out = m(v, rollout_context=context)
    assert out.predictions.shape == (2, 6, 1, 8, 8)
    # frames 1..C come from true frames: the teacher-forced predictions
    assert torch.allclose(out.predictions[:, :context], m(v).predictions[:, :context], atol=1e-12)
    # frames C..T−1 are exactly what generation produces after C context frames
    gen = m.generate(v[:, :context], v.shape[1] - context)
    assert torch.allclose(out.predictions[:, context - 1 :], gen, atol=1e-10)


def test_gradients_flow_through_the_feedback_unless_detached():
    m, v = _model().train(), _video()
    first = m.encoder.stem.weight
    grads = []
    for detach in (False, True):
        m.zero_grad()
        video_prediction_loss(m(v, rollout_context=2, detach_feedback=detach)).backward()
        grads.append(first.grad.clone())
    assert all(torch.isfinite(g).all() for g in grads)
    assert not torch.allclose(grads[0], grads[1])


def test_bad_rollout_context():
    m, v = _model(), _video()
    with pytest.raises(ValueError, match=r"rollout_context must be in \[1, T−1\] = \[1, 6\]"):
        m(v, rollout_context=7)
    with pytest.raises(ValueError, match="rollout_context"):
        m(v, rollout_context=0)
    with pytest.raises(TypeError, match="rollout_context must be an int"):
        m(v, rollout_context=2.0)


def test_pixel_loss_mse_and_the_paper_default():
    m, v = _model(), _video()
    pred = m(v).predictions
    target = v[:, 1:]
    mse, l1 = ((pred - target) ** 2).mean(), (pred - target).abs().mean()
    assert torch.allclose(video_prediction_loss(m(v)), 0.5 * mse + 0.5 * l1, rtol=1e-12)
    assert torch.allclose(video_prediction_loss(m(v), "mse"), mse, rtol=1e-12)
    ro = m(v, rollout_context=2)
    want = ((ro.predictions - target) ** 2).mean()
    assert torch.allclose(video_prediction_loss(ro, "mse"), want, rtol=1e-12)
    with pytest.raises(ValueError, match=r"pixel_loss must be one of .*, got .l2."):
        video_prediction_loss(ro, "l2")


def test_mse_keeps_the_brightness_of_an_uncertain_pixel_and_l1_drops_it():
    """Why ``pixel_loss="mse"`` exists: a pixel lit (+1) in 10 % of the cases, dark (−1)
    otherwise (a digit whose place the model does not know). The best constant answer under
    MSE is the mean (−0.8: brightness 0.1 in [0, 1], the truth's); under the paper's
    0.5 MSE + 0.5 L1 it is the dark frame (the minimiser a = −1.2 lies outside tanh's
    range)."""
    target = torch.full((1000,), -1.0, dtype=torch.float64)
    target[:100] = 1.0
    answers = torch.linspace(-1, 1, 2001, dtype=torch.float64)
    best = {}
    for kind in ("mse", "mse_l1"):
        losses = torch.stack([pixel_loss(a.expand(1000), target, kind) for a in answers])
        best[kind] = float(answers[losses.argmin()])
    assert best["mse"] == pytest.approx(-0.8, abs=1e-3)
    assert best["mse_l1"] == -1.0
