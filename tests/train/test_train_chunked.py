"""Long sequences in bounded memory: chunked training with state carry (train.tbptt_chunk)
and activation checkpointing (train.activation_checkpointing)."""

from __future__ import annotations

import math

import pytest
import torch
from train_standin import RandomVideos, standin_factory, tiny_config

from convssm.models import VideoPredictor
from convssm.train import train_and_evaluate, train_step
from convssm.train.distributed import DistributedContext
from convssm.train.objectives import video_prediction_loss
from convssm.train.runlog import read_jsonl
from convssm.train.state import create_train_state

OPTIONS = {
    "convs5": {"state_dim": 4, "depth": 2, "norm_groups": 4, "dropout": 0.1},
    "convlstm": {"depth": 2, "dropout": 0.1},
    "transformer": {"embed_dim": 8, "mlp_dim": 16, "heads": 2, "depth": 2, "dropout": 0.1},
}


def _predictor(name: str) -> VideoPredictor:
    torch.manual_seed(0)
    return VideoPredictor(
        image_size=16,
        encoder_widths=[4, 8],
        norm_groups=4,
        dim=8,
        sequence_model=name,
        sequence_options=OPTIONS[name],
    ).double()


def _video(t: int = 8, b: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return (torch.rand(b, t, 1, 16, 16, generator=g, dtype=torch.float64) * 2 - 1).clamp(-1, 1)


def _state(**train):
    cfg = tiny_config(dropout=0.0, **train)
    torch.manual_seed(cfg.train.seed)
    return create_train_state(cfg, standin_factory(cfg), 24, True, DistributedContext())


def _batch(step: int) -> torch.Tensor:
    data = RandomVideos(n=24, frames=6)
    return torch.stack([data[i] for i in range(step * 4, step * 4 + 4)])


@pytest.mark.parametrize("chunk", [5, 6])  # 5 predicted frames: one chunk either way
def test_chunk_covering_the_sequence_is_exactly_the_unchunked_step(chunk):
    whole, chunked = _state(), _state(tbptt_chunk=chunk)
    for step in range(3):
        a, b = train_step(whole, _batch(step)), train_step(chunked, _batch(step))
        assert torch.equal(a["loss"], b["loss"])
    for p, q in zip(whole.model.parameters(), chunked.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_chunked_loss_is_the_whole_sequence_loss_and_the_update_truncates():
    whole, chunked = _state(), _state(tbptt_chunk=2)  # pieces of 2, 2, 1 predicted frames
    for step in range(2):  # the warm-up's first update has lr 0: same parameters at step 1
        a, b = train_step(whole, _batch(step)), train_step(chunked, _batch(step))
        torch.testing.assert_close(a["loss"], b["loss"], rtol=1e-6, atol=0)  # same forward
    pairs = zip(whole.model.parameters(), chunked.model.parameters(), strict=True)
    assert any(not torch.equal(p, q) for p, q in pairs)  # the carried state's gradient is cut


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_chunked_forward_with_carried_states_equals_the_whole_forward(name):
    model = _predictor(name).eval()
    video = _video(t=9)  # 8 predicted frames in pieces of 3, 3, 2
    with torch.no_grad():
        whole = model(video)
        states, preds, losses = None, [], []
        for start in (0, 3, 6):
            stop = min(start + 3, 8)
            out = model(video[:, start : stop + 1], states=states)
            states = out.states
            preds.append(out.predictions)
            losses.append(video_prediction_loss(out) * (stop - start) / 8)
    torch.testing.assert_close(torch.cat(preds, 1), whole.predictions, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(sum(losses), video_prediction_loss(whole), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_activation_checkpointing_gives_the_plain_gradients_in_float64(name):
    video = _video(t=5)
    grads = []
    for checkpointing in (False, True):
        model = _predictor(name).train()  # dropout on: the recomputation must replay it
        model.set_activation_checkpointing(checkpointing)
        torch.manual_seed(7)
        video_prediction_loss(model(video)).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    plain, checkpointed = grads
    assert plain.keys() == checkpointed.keys()
    for n in plain:
        torch.testing.assert_close(checkpointed[n], plain[n], rtol=1e-10, atol=1e-10, msg=n)


def test_the_loop_trains_chunked_with_checkpointing(tmp_path):
    cfg = tiny_config(steps=2, tbptt_chunk=2, activation_checkpointing=True)
    cfg.model = _predictor("convs5").config
    cfg.data.seq_len, cfg.data.options = 5, {"digit_size": 8}
    cfg.eval.val_videos = 1
    result = train_and_evaluate(cfg, tmp_path)
    losses = [r["loss"] for r in read_jsonl(tmp_path / "train_log.jsonl")]
    assert result.step == 2 and len(losses) == 2 and all(math.isfinite(v) for v in losses)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="train.tbptt_chunk must be positive"):
        tiny_config(tbptt_chunk=0)
    with pytest.raises(ValueError, match="set_activation_checkpointing"):
        _state(activation_checkpointing=True)


def test_chunking_is_refused_with_rollout_and_for_other_model_kinds():
    with pytest.raises(ValueError, match="tbptt_chunk and train.rollout_context cannot"):
        tiny_config(tbptt_chunk=2, rollout_context=2)
    tiny_config(rollout_context=2)  # each alone is fine
    tiny_config(tbptt_chunk=2)


def test_train_step_runs_with_value_checks_off(monkeypatch):
    """No host sync per step: the model's entry-point checks are off inside train_step (a
    NaN would still show in the loss the loop reads at its log interval)."""
    import convssm._checks as checks

    cfg = tiny_config(tbptt_chunk=2)
    cfg.model = _predictor("convs5").config
    torch.manual_seed(0)
    state = create_train_state(cfg, VideoPredictor(cfg.model), 4, False, DistributedContext())
    seen = []
    forward = state.model.forward

    def spy(*args, **kwargs):
        seen.append(checks.value_checks_enabled())
        return forward(*args, **kwargs)

    monkeypatch.setattr(state.model, "forward", spy)
    video = _video(t=6, b=4).float()
    video[0, 0, 0, 0, 0] = float("nan")
    loss = train_step(state, video)["loss"]
    assert seen == [False, False, False]  # 5 predicted frames in chunks of 2
    assert checks.value_checks_enabled() and not torch.isfinite(loss)
