"""The generation loops of VideoPredictor and LatentVideoPredictor: the real-arithmetic step
they run (ConvS5's ``step_real``) and, with ``compile_step``, its compiled form give the
frames of the public ``step`` (float64 and float32, odd frame sizes, actions); the step is
compiled once and reused; and the loop reads no tensor values and allocates a fixed amount
per frame, counted by the profiler."""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import torch

from convssm.models import LatentVideoPredictor, VideoPredictor, video_predictor
from convssm.models.video_predictor import compile_step_by_default


def _predictor(sequence_model="convs5", num_actions=0, dtype=torch.float64, size=12):
    torch.manual_seed(0)
    options = {"convs5": dict(state_dim=3, depth=2, norm_groups=4), "convlstm": dict(depth=2)}
    model = VideoPredictor(
        image_size=size,
        encoder_widths=(4, 8),
        norm_groups=4,
        dim=8,
        sequence_model=sequence_model,
        sequence_options=options[sequence_model],
        num_actions=num_actions,
        action_embed_dim=4,
    )
    return model.to(dtype).eval()


def _video(dtype=torch.float64, t=4, size=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(2, t, 1, size, size, generator=g, dtype=dtype) * 2 - 1).to(dtype)


def _reference_generation(model, context, horizon, actions=None):
    """The loop written with the public step (complex states for ConvS5)."""
    t_c = context.shape[1]
    with torch.no_grad():
        nxt = None if actions is None else actions[:, 1:]
        y, states = model.sequence(model.encode(context, nxt), check_values=False)
        frame = model.decode(y[:, -1:])[:, 0]
        frames = [frame]
        for k in range(1, horizon):
            a = None if actions is None else actions[:, t_c + k]
            frame, states = model.step(frame, states, a)
            frames.append(frame)
    return torch.stack(frames, 1)


@pytest.mark.parametrize(
    ("sequence_model", "dtype", "size", "num_actions"),
    [
        ("convs5", torch.float64, 12, 0),
        ("convs5", torch.float32, 10, 3),  # odd latent grid (5×5), actions
        ("convlstm", torch.float64, 12, 0),
    ],
)
def test_generate_equals_the_loop_of_public_steps(sequence_model, dtype, size, num_actions):
    model = _predictor(sequence_model, num_actions, dtype, size)
    context = _video(dtype, size=size)
    actions = None
    if num_actions:
        actions = torch.randint(0, num_actions, (2, 4 + 6), generator=torch.Generator())
    got = model.generate(context, 6, actions, compile_step=False)
    want = _reference_generation(model, context, 6, actions)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)


def _aot_eager_compile(monkeypatch):
    """torch.compile with the aot_eager backend (the graph capture and its decomposition,
    without inductor's slow C++ build), recording each call's options; the process-wide
    cache of compiled steps emptied for the test."""
    calls = []
    original = torch.compile
    monkeypatch.setattr(video_predictor, "_COMPILED_STEPS", {})

    def recording(fn, **options):
        calls.append(options)
        return original(fn, **{**options, "backend": "aot_eager"})

    monkeypatch.setattr(torch, "compile", recording)
    return calls


def test_compiled_generation_equals_eager_and_compiles_once(monkeypatch):
    calls = _aot_eager_compile(monkeypatch)
    torch._dynamo.reset()
    model = _predictor(dtype=torch.float32)
    context = _video(torch.float32)
    eager = model.generate(context, 5, compile_step=False)
    assert calls == []
    compiled = model.generate(context, 5, compile_step=True)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    assert calls == [dict(fullgraph=True, dynamic=False)]
    frames = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    again = model.generate(context, 7, compile_step=True)  # reused: nothing new compiled
    assert len(calls) == 1
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == frames
    torch.testing.assert_close(again[:, :5], compiled)
    # Nothing compiled is kept on the model: a copy is a model of its own.
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.sequence.layers[1].ssm.log_step.add_(1.0)
    twin_frames = twin.generate(context, 5, compile_step=True)
    torch.testing.assert_close(twin_frames, twin.generate(context, 5, compile_step=False))
    assert not torch.allclose(twin_frames, compiled)
    torch.testing.assert_close(model.generate(context, 5, compile_step=True), compiled)


def test_compiled_latent_generation_equals_eager(monkeypatch):
    calls = _aot_eager_compile(monkeypatch)
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = LatentVideoPredictor(
        12,
        4,
        dim=8,
        sequence_options=dict(state_dim=3, depth=2, norm_groups=4),
        code_embed_dim=6,
        encoder_widths=(8,),
        decoder_widths=(8,),
        decoder_blocks=1,
        norm_groups=4,
        num_actions=3,
        causal_masking=True,
        mask_context=4,
    ).eval()
    g = torch.Generator().manual_seed(0)
    context = torch.randint(0, 12, (2, 3, 4, 4), generator=g)
    actions = torch.randint(0, 3, (2, 3 + 5), generator=g)
    want = _reference_latent_generation(model, context, 5, actions)
    for compile_step in (False, True):
        got = model.generate(context, 5, actions, temperature=0, compile_step=compile_step)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert calls == [dict(fullgraph=True, dynamic=False)]


def _reference_latent_generation(model, context, horizon, actions):
    """The loop written with the public ``step`` (greedy sampling)."""
    t_c = context.shape[1]
    with torch.no_grad():
        logits, states = model.condition(context, actions[:, : t_c + 1])
        frames = []
        for k in range(horizon):
            codes = logits.argmax(dim=1)
            frames.append(codes)
            if k + 1 < horizon:
                logits, states = model.step(codes, t_c + k, states, actions[:, t_c + k + 1])
    return torch.stack(frames, 1)


def _profiled_counts(fn) -> Counter:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return Counter(e.name for e in prof.events())


def _per_frame(counts: dict, name) -> list:
    """Increments of an op's count between the horizons of ``counts`` (horizons 3, 7, 11)."""
    h = sorted(counts)
    return [(counts[b][name] - counts[a][name]) / (b - a) for a, b in zip(h, h[1:], strict=False)]


ALLOCATIONS = ("aten::empty", "aten::empty_strided", "aten::empty_like")


@pytest.mark.parametrize("sequence_model", ["convs5", "convlstm"])
def test_generation_loop_reads_no_values_and_allocates_a_fixed_amount_per_frame(sequence_model):
    """``aten::_local_scalar_dense`` is every tensor-to-Python read (``.item()``, ``float``,
    ``bool``, ``if tensor``), the CPU form of a host sync: none per frame. Allocations grow
    by the same number every frame, no more than one public ``step`` makes."""
    model = _predictor(sequence_model, dtype=torch.float32)
    context = _video(torch.float32)
    model.generate(context, 2)  # once before counting: caches (ConvS5's kernels) filled
    counts = {
        h: _profiled_counts(lambda h=h: model.generate(context, h, check_values=False))
        for h in (3, 7, 11)
    }
    assert _per_frame(counts, "aten::_local_scalar_dense") == [0, 0], counts[11]
    allocs = {h: {"all": sum(c[a] for a in ALLOCATIONS)} for h, c in counts.items()}
    per_frame = _per_frame(allocs, "all")
    assert per_frame[0] == per_frame[1], per_frame
    with torch.no_grad():
        y, states = model.sequence(model.encode(context), check_values=False)
        frame = model.decode(y[:, -1:])[:, 0]
        one_step = _profiled_counts(lambda: model.step(frame, states))
    assert per_frame[0] <= sum(one_step[a] for a in ALLOCATIONS), (per_frame, one_step)


def test_the_sync_count_sees_a_read_per_frame(monkeypatch):
    """The counter above is not blind: a loop that reads one value per frame is caught."""
    model = _predictor(dtype=torch.float32)
    context = _video(torch.float32)
    model.generate(context, 2)
    step = model._step_real

    def reading_step(frame, states, action, kernels):
        frame, states = step(frame, states, action, kernels)
        frame.abs().max().item()
        return frame, states

    monkeypatch.setattr(model, "_step_real", reading_step)
    counts = {h: _profiled_counts(lambda h=h: model.generate(context, h)) for h in (3, 7, 11)}
    assert _per_frame(counts, "aten::_local_scalar_dense") == [1, 1]


def test_compile_step_is_off_by_default_where_unmeasured():
    assert compile_step_by_default("cpu") is False
    assert compile_step_by_default(torch.device("cpu")) is False


def test_a_parameter_change_during_iter_generate_is_followed():
    """The loop's SSM kernels are looked up every frame (cached while unchanged), so a
    parameter changed between yielded frames acts from the next frame on, as with ``step``."""
    model = _predictor(dtype=torch.float64)
    context = _video(torch.float64)
    before = model.generate(context, 5, compile_step=False)
    frames = model.iter_generate(context, 5, compile_step=False)
    got = [next(frames), next(frames)]
    with torch.no_grad():
        model.sequence.layers[0].ssm.log_step.add_(1.0)
    got += list(frames)
    after = _reference_generation(model, context, 5)
    torch.testing.assert_close(torch.stack(got[:2], 1), before[:, :2])
    # frame 2 is the first predicted with the changed step size
    assert not torch.allclose(got[2], before[:, 2])
    want = _reference_generation_changing(model, context, 5, at=2)
    torch.testing.assert_close(torch.stack(got, 1), want, rtol=1e-10, atol=1e-10)
    assert not torch.allclose(after, want)


def _reference_generation_changing(model, context, horizon, at):
    """The public-step loop, with ``log_step`` of layer 0 one lower until frame ``at``."""
    ssm = model.sequence.layers[0].ssm
    with torch.no_grad():
        ssm.log_step.sub_(1.0)
        y, states = model.sequence(model.encode(context), check_values=False)
        frame = model.decode(y[:, -1:])[:, 0]
        frames = [frame]
        for k in range(1, horizon):
            if k == at:
                ssm.log_step.add_(1.0)
            frame, states = model.step(frame, states)
            frames.append(frame)
    return torch.stack(frames, 1)


def test_bf16_precision_generates_close_to_fp32_in_the_models_dtype():
    """``precision="bf16"``: autocast per step, frames back in float32, near the fp32 frames
    (bf16 keeps ~3 significant digits); autocast does not leak out of the generator."""
    model = _predictor(dtype=torch.float32)
    context = _video(torch.float32)
    fp32 = model.generate(context, 4, compile_step=False)
    assert torch.equal(fp32, model.generate(context, 4, compile_step=False, precision="fp32"))
    frames = model.iter_generate(context, 4, compile_step=False, precision="bf16")
    got = []
    for frame in frames:
        assert not torch.is_autocast_enabled("cpu")
        got.append(frame)
    got = torch.stack(got, 1)
    assert got.dtype == torch.float32 and got.shape == fp32.shape
    torch.testing.assert_close(got, fp32, rtol=0, atol=0.15)  # frames in [-1, 1]
    assert (got - fp32).abs().mean() < 0.02
    with pytest.raises(ValueError, match="precision"):
        model.generate(context, 2, precision="half")
