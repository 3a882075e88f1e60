"""VideoPredictor reads tensor values (NaN/inf, the [-1, 1] range) once per forward and once
per generate call, whatever its depth and horizon, never per generated frame; not at all
with check_values=False; and compiles whole (forward and step) under torch.compile."""

from __future__ import annotations

import pytest
import torch

from convssm.models import VideoPredictor
from convssm.train.objectives import video_prediction_loss


def _model(sequence_model: str, depth: int) -> VideoPredictor:
    torch.manual_seed(0)
    options = dict(depth=depth)
    if sequence_model == "convs5":
        options.update(state_dim=4, norm_groups=4)
    return VideoPredictor(
        image_size=8,
        encoder_widths=(4, 8),
        norm_groups=4,
        dim=8,
        sequence_model=sequence_model,
        sequence_options=options,
    )


def _video(t=4):
    return torch.rand(2, t, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.mark.parametrize("sequence_model", ["convs5", "convlstm"])
def test_value_reads_do_not_grow_with_depth_or_horizon(sequence_model, host_reads):
    counts = {}
    for depth, horizon in [(2, 2), (6, 2), (2, 5)]:
        model = _model(sequence_model, depth)
        video = _video()
        with host_reads() as train:
            video_prediction_loss(model(video)).backward()
        model.eval()
        with host_reads() as gen:
            model.generate(video, horizon)
        with host_reads() as unchecked:
            model(video, check_values=False)
            model.generate(video, horizon, check_values=False)
        counts[depth, horizon] = (train[0], gen[0], unchecked[0])
    assert len(set(counts.values())) == 1, f"value reads by (depth, horizon): {counts}"
    assert counts[2, 2] == (1, 1, 0), counts[2, 2]


def test_value_checks_still_name_the_problem():
    model = _model("convs5", 1)
    video = _video()
    with pytest.raises(ValueError, match=r"video must be scaled to \[-1, 1\]"):
        model(video * 3)
    video[0, 1, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="video contains non-finite"):
        model(video)
    with pytest.raises(ValueError, match="context contains non-finite"):
        model.generate(video, 2)
    model(video, check_values=False)  # switched off: no error (and no host sync)


@pytest.mark.parametrize("sequence_model", ["convs5", "convlstm"])
def test_fullgraph_compile_of_forward_and_step_matches_eager(sequence_model):
    model = _model(sequence_model, 2)
    video = _video()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    out = compiled(video)
    video_prediction_loss(out).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    ref = model(video)
    video_prediction_loss(ref).backward()
    torch.testing.assert_close(out.predictions, ref.predictions, rtol=1e-5, atol=1e-5)
    for g, r in zip(grads, [p.grad for p in model.parameters()], strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)
    model.eval()
    with torch.no_grad():
        _, states = model.sequence(model.encode(video[:, :2]))
        step = torch.compile(model.step, fullgraph=True, backend="aot_eager")
        frame, new_states = step(video[:, 2], states)
        frame_ref, states_ref = model.step(video[:, 2], states)
        torch.testing.assert_close(frame, frame_ref, rtol=1e-5, atol=1e-5)
        # The step is generate's per-frame unit: generate's second frame is step(first).
        first, second = model.generate(video[:, :2], 2).unbind(1)
        torch.testing.assert_close(model.step(first, states)[0], second)
