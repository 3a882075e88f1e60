"""Delayed recall in `convssm train`: the recall-weighted loss, its config checks, a phase that
starts from another (train.init_from), a CPU-time budget, and held-out rel_recall."""

from __future__ import annotations

import json

import pytest
import torch

from convssm.data import DelayedRecall
from convssm.models import VideoPredictor
from convssm.train.checkpoint import load_checkpoint
from convssm.train.config import config_from_dict
from convssm.train.loop import train_and_evaluate
from convssm.train.objectives import pixel_loss
from convssm.train.recall_eval import recall_scores
from convssm.train.step import recall_frame_weights

MODEL = {
    "image_size": 16,
    "encoder_widths": [8, 8],
    "norm_groups": 4,
    "dim": 8,
    "sequence_model": "convs5",
    "sequence_options": {"state_dim": 4, "depth": 1, "norm_groups": 4},
}


def _config(delay=4, **train):
    return config_from_dict(
        {
            "model": MODEL,
            "data": {
                "dataset": "delayed_recall",
                "seq_len": delay + 4,
                "options": {"delay": delay, "recall_frames": 2},
            },
            "optim": {"warmup_steps": 1},
            "train": {
                "steps": 4,
                "batch_size": 2,
                "log_every": 2,
                "eval_every": 2,
                "checkpoint_every": 2,
                "progress": False,
                "recall_loss_share": 0.5,
                "pixel_loss": "mse",
                **train,
            },
            "eval": {"val_videos": 2, "batch_size": 2},
        }
    )


def test_frame_weights_give_the_recall_frames_their_share():
    recall = torch.tensor([[False, False, False, False, True, True]])
    w = recall_frame_weights(recall, 0.8)
    assert w.shape == (1, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(1))
    torch.testing.assert_close(w[0, 3:], torch.full((2,), 0.4))
    torch.testing.assert_close(w[0, :3], torch.full((3,), 0.2 / 3))
    with pytest.raises(ValueError, match="no recall frame"):
        recall_frame_weights(torch.zeros(1, 4, dtype=torch.bool), 0.5)


@pytest.mark.parametrize("kind", ["mse", "mse_l1"])
def test_equal_weights_give_the_unweighted_loss(kind):
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 5, 1, 4, 4, generator=g), torch.rand(2, 5, 1, 4, 4, generator=g)
    weights = torch.full((2, 5), 1 / 5)
    torch.testing.assert_close(
        pixel_loss(pred, target, kind, frame_weights=weights), pixel_loss(pred, target, kind)
    )


def test_config_checks_name_the_key():
    with pytest.raises(ValueError, match="data.seq_len must be delay \\+ recall_frames \\+ 2 = 8"):
        from convssm.train.factory import build_train_dataset

        build_train_dataset(
            config_from_dict(
                {
                    **_raw(),
                    "data": {
                        "dataset": "delayed_recall",
                        "seq_len": 9,
                        "options": {"delay": 4, "recall_frames": 2},
                    },
                }
            )
        )
    with pytest.raises(ValueError, match="recall_loss_share weighs the recall frames"):
        config_from_dict({"train": {"recall_loss_share": 0.5}})
    with pytest.raises(ValueError, match=r"recall_loss_share must be in \[0, 1\]"):
        _config(recall_loss_share=1.5)
    with pytest.raises(ValueError, match="options must set 'delay'"):
        from convssm.train.factory import build_train_dataset

        build_train_dataset(
            config_from_dict({**_raw(), "data": {"dataset": "delayed_recall", "seq_len": 9}})
        )


def _raw():
    data = {"dataset": "delayed_recall", "seq_len": 8, "options": {"delay": 4, "recall_frames": 2}}
    return {"model": MODEL, "data": data, "train": {"steps": 2, "batch_size": 2}}


def test_phase_from_another_run_scores_rel_recall_and_stops_on_cpu_time(tmp_path):
    first = train_and_evaluate(_config(), tmp_path / "a")
    assert first.step == 4
    val = [json.loads(x) for x in (tmp_path / "a" / "val_log.jsonl").read_text().splitlines()]
    assert [v["step"] for v in val] == [2, 4] and all(v["videos"] == 2 for v in val)
    assert all(v["rel_recall"] > 0 for v in val)
    train_log = (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()
    assert json.loads(train_log[-1])["cpu_s"] > 0

    # a second phase at a longer delay starts from the first one's weights
    cfg = _config(delay=6, init_from=str(tmp_path / "a"), steps=1)
    seen = {}

    def factory(c):
        model = VideoPredictor(c.model)
        seen["model"] = model
        return model

    train_and_evaluate(cfg, tmp_path / "b", model_factory=factory, stop_after=0)
    weights = load_checkpoint(tmp_path / "a").weights
    for name, value in seen["model"].state_dict().items():
        torch.testing.assert_close(value, weights[name], msg=name)

    # a CPU-time budget ends the run early, with a checkpoint and a held-out score
    out = train_and_evaluate(
        _config(steps=1000, time_clock="cpu", time_limit_s=1e-3), tmp_path / "c"
    )
    assert out.step == 1 and out.checkpoint is not None and out.validation["videos"] == 2


def test_init_from_refuses_another_model(tmp_path):
    train_and_evaluate(_config(steps=2), tmp_path / "a")
    other = dict(MODEL, dim=12)
    cfg = config_from_dict(
        {
            **_raw(),
            "model": other,
            "train": {
                "steps": 1,
                "batch_size": 2,
                "init_from": str(tmp_path / "a"),
                "progress": False,
            },
        }
    )
    with pytest.raises(ValueError, match=r"init_from .* differs from this config's in \['dim'\]"):
        train_and_evaluate(cfg, tmp_path / "b")


def test_init_changes_lets_named_keys_differ_and_records_them(tmp_path):
    train_and_evaluate(_config(steps=2), tmp_path / "a")

    def changed(**train):
        raw = {**_raw(), "model": dict(MODEL, blank_offset=True)}
        raw["train"] = {"steps": 1, "batch_size": 2, "progress": False, **train}
        return config_from_dict(raw)

    source = str(tmp_path / "a")
    with pytest.raises(ValueError, match=r"differs from this config's in \['blank_offset'\]"):
        train_and_evaluate(changed(init_from=source), tmp_path / "b")
    with pytest.raises(ValueError, match=r"init_changes names keys the model config has not"):
        train_and_evaluate(changed(init_from=source, init_changes=["offset"]), tmp_path / "c")
    cfg = changed(init_from=source, init_changes=["blank_offset"])
    train_and_evaluate(cfg, tmp_path / "d", stop_after=0)
    record = json.loads((tmp_path / "d" / "init_from.json").read_text())
    assert record["model_changes"] == {"blank_offset": {"from": False, "to": True}}
    # a key allowed to differ does not let another one through
    other = config_from_dict(
        {**_raw(), "model": dict(MODEL, blank_offset=True, dim=12),
         "train": {"steps": 1, "batch_size": 2, "progress": False, "init_from": source,
                   "init_changes": ["blank_offset"]}}
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"in \['dim'\] \(allowed to differ"):
        train_and_evaluate(other, tmp_path / "e")


def test_recall_scores_do_not_depend_on_context_chunks():
    torch.manual_seed(0)
    model = VideoPredictor(**MODEL)
    ds = DelayedRecall(3, delay=9, recall_frames=2, split="eval")
    whole = recall_scores(model, ds, batch_size=2, context_chunk=None)
    chunked = recall_scores(model, ds, batch_size=2, context_chunk=4)
    assert whole["videos"] == 3
    assert chunked["rel_recall"] == pytest.approx(whole["rel_recall"], rel=1e-5)


def test_blank_delay_feeds_background_between_the_pattern_and_the_cue():
    ds = DelayedRecall(2, delay=5, recall_frames=2, split="eval")
    seen = []

    class Recorder(torch.nn.Module):
        def generate(self, context, horizon, **kwargs):
            seen.append(context.clone())
            return torch.zeros(context.shape[0], horizon, *context.shape[2:])

    for blank in (False, True):
        recall_scores(Recorder(), ds, batch_size=2, blank_delay=blank)
    video = torch.stack([ds[i]["video"] for i in range(2)])
    torch.testing.assert_close(seen[0], video[:, :7])
    assert bool((seen[1][:, 1:6] == -1).all())
    torch.testing.assert_close(seen[1][:, 0], video[:, 0])  # the pattern
    torch.testing.assert_close(seen[1][:, 6], video[:, 6])  # the cue


def test_scoring_at_a_delay_ignores_varied_training_delays():
    from convssm.train.factory import delayed_recall

    raw = _raw()
    raw["data"]["options"] = {"delay": 4, "min_delay": 1, "recall_frames": 2}
    cfg = config_from_dict(raw)
    assert delayed_recall(cfg, "train", 2, 0).min_delay == 1  # training: varied delays
    scored = delayed_recall(cfg, "eval", 2, 0, delay=9)
    assert scored.min_delay is None and scored.delay == 9


def test_training_variations_of_the_distractor_stay_out_of_the_eval_split():
    from convssm.train.factory import delayed_recall

    raw = _raw()
    raw["data"]["options"].update(min_distractor_share=0.25, min_step=0.0)
    cfg = config_from_dict(raw)
    train = delayed_recall(cfg, "train", 4, 0)
    assert train.min_distractor_share == 0.25 and train.min_step == 0.0
    for ds in (delayed_recall(cfg, "eval", 4, 1), delayed_recall(cfg, "eval", 4, 1, delay=9)):
        assert ds.min_distractor_share == 1.0 and ds.min_step is None


def _state_size_after_training(tmp_path, video, key, norm="l2", **train):
    """{None: size, 100.0: size}: the state_magnitude (``norm``) of ``video``'s states after
    6 steps without and with ``train.<key>: 100`` (the same seed and batches otherwise)."""
    from convssm.train.objectives import state_magnitude

    size = {}
    for penalty in (None, 100.0):
        cfg = _config(steps=6, eval_every=100, **{key: penalty}, **train)
        out = train_and_evaluate(cfg, tmp_path / str(penalty))
        info = load_checkpoint(out.checkpoint)
        model = VideoPredictor(info.config.model)
        model.load_state_dict(info.weights)
        with torch.no_grad():
            size[penalty] = state_magnitude(model(video).states, norm).item()
    return size


def test_state_penalty_weighs_the_states_and_shrinks_them(tmp_path):
    from convssm.train.objectives import state_magnitude

    states = [torch.randn(2, 3, 4, 4, dtype=torch.complex64) for _ in range(2)]
    want = sum((s.real**2 + s.imag**2).mean() for s in states) / 2
    torch.testing.assert_close(state_magnitude(states), want)

    for bad, message in [
        ({"state_penalty": -1.0}, "state_penalty must be >= 0"),
        (
            {"state_penalty": 1.0, "sequence_parallel": 2, "recall_loss_share": None},
            "cannot be combined with train.state_penalty",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            _config(**bad)
    with pytest.raises(ValueError, match="state_penalty weighs the states of a convs5"):
        config_from_dict(
            {**_raw(), "model": dict(MODEL, sequence_model="convlstm", sequence_options={}),
             "train": {"state_penalty": 1.0}}
        )  # fmt: skip

    video = torch.stack([DelayedRecall(2, delay=4, recall_frames=2)[i]["video"] for i in range(2)])
    size = _state_size_after_training(tmp_path, video, "state_penalty")
    assert size[100.0] < 0.75 * size[None]  # the same seed and batches: equal without it


def test_delay_frames_only_keeps_the_delay_and_blanks_the_rest():
    from convssm.train.objectives import delay_frames_only

    ds = DelayedRecall(2, delay=6, min_delay=2, vary="cue", recall_frames=2, seed=3)
    items = [ds[i] for i in range(2)]
    video = torch.stack([it["video"] for it in items])
    recall = torch.stack([it["recall"] for it in items])
    quiet = delay_frames_only(video, recall)
    for row in range(2):
        cue = int(recall[row].nonzero()[0]) - 1
        torch.testing.assert_close(quiet[row, 1:cue], video[row, 1:cue], rtol=0, atol=0)
        assert bool((quiet[row, 0] == -1).all()) and bool((quiet[row, cue:] == -1).all())
    with pytest.raises(ValueError, match=r"recall must be \(B, T\)"):
        delay_frames_only(video, recall[0])
    with pytest.raises(ValueError, match="has no recall frame"):
        delay_frames_only(video, torch.zeros_like(recall))


def test_distractor_penalty_batch_scores_the_videos_as_alone():
    """The doubled batch's pixel loss and first-half states equal the batch's own."""
    from convssm.train.step import _with_delay_frames_only, sequence_loss

    torch.manual_seed(0)
    model = VideoPredictor(_config().model).double()
    ds = DelayedRecall(3, delay=4, recall_frames=2)
    video = torch.stack([ds[i]["video"] for i in range(3)]).double()
    recall = torch.stack([ds[i]["recall"] for i in range(3)])
    for weights in (None, recall_frame_weights(recall, 0.5).double()):
        alone, states = sequence_loss(model, video, None, pixel_loss="mse", frame_weights=weights)
        both, acts, w = _with_delay_frames_only(video, None, recall, weights)
        doubled, states2 = sequence_loss(model, both, acts, pixel_loss="mse", frame_weights=w)
        torch.testing.assert_close(doubled, alone, rtol=1e-12, atol=1e-12)
        for s, s2 in zip(states, states2, strict=True):
            torch.testing.assert_close(s2[:3], s, rtol=1e-12, atol=1e-12)


def test_distractor_penalty_refusals_and_it_shrinks_the_delay_states(tmp_path):
    from convssm.train.objectives import delay_frames_only

    for bad, message in [
        ({"distractor_penalty": -1.0}, "distractor_penalty must be >= 0"),
        ({"distractor_penalty": 1.0, "tbptt_chunk": 2, "recall_loss_share": None}, "tbptt_chunk"),
        ({"distractor_penalty": 1.0, "rollout_context": 2}, "rollout_context to null"),
        (
            {"distractor_penalty": 1.0, "sequence_parallel": 2, "recall_loss_share": None},
            "cannot be combined with train.distractor_penalty",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            _config(**bad)
    with pytest.raises(ValueError, match="distractor_penalty weighs the states of a convs5"):
        config_from_dict(
            {**_raw(), "model": dict(MODEL, sequence_model="convlstm", sequence_options={}),
             "train": {"distractor_penalty": 1.0}}
        )  # fmt: skip

    ds = DelayedRecall(2, delay=4, recall_frames=2)
    video = torch.stack([ds[i]["video"] for i in range(2)])
    quiet = delay_frames_only(video, torch.stack([ds[i]["recall"] for i in range(2)]))
    size = _state_size_after_training(tmp_path, quiet, "distractor_penalty")
    assert size[100.0] < 0.75 * size[None]  # the same seed and batches: equal without it


def test_penalty_norm_l1_measures_mean_abs_and_shrinks_the_delay_states(tmp_path):
    from convssm.train.objectives import delay_frames_only, state_magnitude

    states = [torch.randn(2, 3, 4, 4, dtype=torch.complex64) for _ in range(2)]
    want = sum((s.real**2 + s.imag**2).sqrt().mean() for s in states) / 2
    torch.testing.assert_close(state_magnitude(states, "l1"), want)
    with pytest.raises(ValueError, match="norm must be 'l2' or 'l1'"):
        state_magnitude(states, "l3")
    with pytest.raises(ValueError, match="penalty_norm"):
        _config(distractor_penalty=1.0, penalty_norm="l3")

    ds = DelayedRecall(2, delay=4, recall_frames=2)
    video = torch.stack([ds[i]["video"] for i in range(2)])
    quiet = delay_frames_only(video, torch.stack([ds[i]["recall"] for i in range(2)]))
    size = _state_size_after_training(
        tmp_path, quiet, "distractor_penalty", norm="l1", penalty_norm="l1"
    )
    assert size[100.0] < 0.75 * size[None]  # the same seed and batches: equal without it
