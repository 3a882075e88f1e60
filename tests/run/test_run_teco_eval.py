"""TECO's evaluation protocol: settings, streaming over batches, generators, skips."""

from __future__ import annotations

import pytest
import torch

from convssm.data import MazeWorld
from convssm.metrics import FVDAccumulator, psnr, ssim
from convssm.metrics.scoring import to_unit
from convssm.models import VideoPredictor
from convssm.run.generators import LatentGenerator, PredictorGenerator
from convssm.run.teco_eval import VideoGenerator, evaluate_teco
from convssm.train.config import TecoProtocol, TecoSetting

FRAMES, SIZE = 8, 16
SMALL = TecoProtocol(frames=FRAMES, context_with_actions=5, context_without_actions=2)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny convolutions: one thread avoids OpenMP spin-waits on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(num_actions: int) -> VideoPredictor:
    torch.manual_seed(0)
    return VideoPredictor(
        image_channels=3, image_size=SIZE, encoder_widths=[8, 16], norm_groups=4, dim=16,
        sequence_options={"depth": 1, "state_dim": 8, "norm_groups": 4},
        num_actions=num_actions,
    ).eval()  # fmt: skip


@pytest.fixture(scope="module")
def maze():
    ds = MazeWorld(4, num_frames=FRAMES, image_size=SIZE, seed=9, split="test")
    items = [ds[i] for i in range(len(ds))]
    return torch.stack([x["video"] for x in items]), torch.stack([x["actions"] for x in items])


def _batches(videos, actions, size):
    return [(videos[i : i + size], actions[i : i + size]) for i in range(0, len(videos), size)]


def _features(videos: torch.Tensor) -> torch.Tensor:
    """A cheap stand-in for I3D: per-frame channel means, (B, T * C) (for exact checks)."""
    return videos.mean(dim=(3, 4)).flatten(1).double()


def test_defaults_are_tecos_settings():
    tecos = [TecoSetting("actions", 144, 156, True), TecoSetting("no_actions", 36, 264, False)]
    assert TecoProtocol().for_videos(300).setting_list() == tecos
    assert TecoProtocol().for_videos(None).setting_list() == tecos  # videos of any length
    for bad in ({"frames": 1}, {"frames": 300, "context_with_actions": 300},
                {"settings": ["both"]}, {"settings": []}, {"temperature": -1.0}):  # fmt: skip
        with pytest.raises(ValueError):
            TecoProtocol(**bad)


def test_unset_lengths_come_from_the_videos_and_a_mismatch_names_the_setting(maze):
    assert TecoProtocol().for_videos(64).setting_list() == [
        TecoSetting("actions", 31, 33, True),  # TECO's shares, 144/300 and 36/300, of 64
        TecoSetting("no_actions", 8, 56, False),
    ]
    mine = TecoProtocol(context_without_actions=4).for_videos(64)
    assert (mine.frames, mine.context_with_actions, mine.context_without_actions) == (64, 31, 4)
    with pytest.raises(ValueError, match=r"eval\.teco\.frames=300 .* 64 frames") as err:
        TecoProtocol(frames=300).for_videos(64)
    assert "seq_len" not in str(err.value)
    with pytest.raises(ValueError, match=r"eval\.teco\.context_with_actions=10 .* 8 frames"):
        TecoProtocol(context_with_actions=10).for_videos(8)
    videos, actions = maze  # FRAMES-frame videos, nothing set: the protocol fits them
    gen = PredictorGenerator(_model(6))
    result, _ = evaluate_teco(gen, _batches(videos, actions, 4), TecoProtocol(), metrics=["psnr"])
    assert result.frames == FRAMES and result.settings["actions"]["context"] == 4
    with pytest.raises(ValueError, match=r"eval\.teco\.frames=12 .* 8 frames"):
        evaluate_teco(gen, _batches(videos, actions, 4), TecoProtocol(frames=12), metrics=["psnr"])


def test_streaming_equals_all_at_once_and_batching_does_not_matter(maze):
    videos, actions = maze
    gen = PredictorGenerator(_model(6))
    assert isinstance(gen, VideoGenerator) and gen.takes_actions and gen.needs_actions
    protocol = TecoProtocol(frames=FRAMES, context_with_actions=5, context_without_actions=2,
                            settings=["actions"])  # fmt: skip
    kwargs = dict(metrics=["psnr", "ssim", "fvd"], fvd_chunk=2, features=_features)
    by4, kept = evaluate_teco(gen, _batches(videos, actions, 4), protocol, **kwargs)
    by2, _ = evaluate_teco(gen, _batches(videos, actions, 2), protocol, **kwargs)
    row = by4.settings["actions"]
    assert row["context"] == 5 and row["horizon"] == 3 and row["num_videos"] == 4
    for k, v in row["metrics"].items():  # (the model's float rounding depends on the batch)
        assert by2.settings["actions"]["metrics"][k] == pytest.approx(v, rel=1e-4), k
    # All at once: the same generations, scored in one go.
    pred = gen(videos[:, :5], 3, actions)
    truth = to_unit(videos)
    p, t = to_unit(pred), truth[:, 5:]
    assert row["metrics"]["psnr"] == pytest.approx(float(psnr(p, t).mean()), rel=1e-5)
    assert row["metrics"]["ssim"] == pytest.approx(float(ssim(p, t).mean()), rel=1e-5)
    curve = psnr(p, t).mean(0).tolist()
    assert row["per_frame"]["psnr"] == pytest.approx(curve, rel=1e-5)
    # FVD over whole videos: real context + predictions against the real videos.
    acc = FVDAccumulator(2, dim=FRAMES * 3)
    acc.update_features(_features(truth), _features(torch.cat([truth[:, :5], p], 1)))
    ref = acc.compute()
    assert row["metrics"]["fvd"] == pytest.approx(ref.mean, rel=1e-6)
    assert row["metrics"]["fvd_chunks"] == 2 and row["metrics"]["fvd_frames"] == FRAMES
    # kept videos for pictures: the first ones, truth whole and prediction
    k_truth, k_pred = kept["actions"]
    assert k_truth.shape == (1, FRAMES, 3, SIZE, SIZE) and k_pred.shape == (1, 3, 3, SIZE, SIZE)
    torch.testing.assert_close(k_pred, pred[:1])


def test_generator_gets_the_context_and_the_actions_of_its_setting(maze):
    videos, actions = maze
    calls = []

    class Spy:
        takes_actions, needs_actions = True, False

        def __call__(self, context, horizon, acts):
            calls.append((context.clone(), horizon, None if acts is None else acts.clone()))
            return context[:, -1:].expand(-1, horizon, -1, -1, -1)  # repeat the last frame

    result, _ = evaluate_teco(Spy(), _batches(videos, actions, 3), SMALL, metrics=["psnr"])
    assert [c[1] for c in calls] == [3, 6, 3, 6]  # per batch: actions, then no_actions
    torch.testing.assert_close(calls[0][0], videos[:3, :5])
    torch.testing.assert_close(calls[0][2], actions[:3, :FRAMES])
    torch.testing.assert_close(calls[1][0], videos[:3, :2])
    torch.testing.assert_close(calls[2][0], videos[3:, :5])
    assert calls[1][2] is None
    assert set(result.settings) == {"actions", "no_actions"}
    assert result.skipped == {}  # psnr only: nothing asked for was left out
    assert result.settings["no_actions"]["horizon"] == 6


def test_settings_a_model_cannot_run_are_skipped_with_the_reason(maze):
    videos, actions = maze
    batches = _batches(videos, actions, 3)
    with_actions, _ = evaluate_teco(PredictorGenerator(_model(6)), batches, SMALL,
                                    metrics=["psnr"])  # fmt: skip
    assert set(with_actions.settings) == {"actions"}
    assert "no action" in with_actions.skipped["no_actions"]
    without, _ = evaluate_teco(PredictorGenerator(_model(0)), batches, SMALL, metrics=["psnr"])
    assert set(without.settings) == {"no_actions"}
    assert "takes no actions" in without.skipped["actions"]
    only = TecoProtocol(frames=FRAMES, context_with_actions=5, context_without_actions=2,
                        settings=["actions"])  # fmt: skip
    with pytest.raises(ValueError, match="no TECO setting"):
        evaluate_teco(PredictorGenerator(_model(0)), batches, only, metrics=["psnr"])


def test_bad_inputs_are_named(maze):
    videos, actions = maze

    class Wrong:
        takes_actions, needs_actions = True, False

        def __call__(self, context, horizon, acts):
            return context[:, :1]

    with pytest.raises(ValueError, match="generator returned"):
        evaluate_teco(Wrong(), _batches(videos, actions, 3), SMALL, metrics=["psnr"])
    with pytest.raises(ValueError, match=r"eval\.teco\.frames=8 .* 6 frames"):
        evaluate_teco(Wrong(), [(videos[:, :6], actions[:, :6])], SMALL, metrics=["psnr"])
    with pytest.raises(ValueError, match="needs a data set with actions"):
        evaluate_teco(PredictorGenerator(_model(6)), [(videos, None)], SMALL, metrics=["psnr"])
    result, _ = evaluate_teco(
        PredictorGenerator(_model(6)), _batches(videos, actions, 3), SMALL,
        metrics=["psnr", "fvd"], num_videos=4, fvd_chunk=256,
    )  # fmt: skip
    assert "full chunk of 256" in result.skipped["fvd"]


class _PaletteTokenizer(torch.nn.Module):
    """Codes = grey level of each 4x4 block, quantised to 8 levels (a tokenizer's contract)."""

    def encode(self, frames):
        grey = frames.mean(dim=2)
        b, t, h, w = grey.shape
        blocks = grey.reshape(b, t, h // 4, 4, w // 4, 4).mean(dim=(3, 5))
        return ((blocks + 1) / 2 * 7).round().long().clamp(0, 7)

    def decode(self, codes):
        grey = codes.float() / 7 * 2 - 1
        up = grey.repeat_interleave(4, dim=-2).repeat_interleave(4, dim=-1)
        return up[:, :, None].expand(-1, -1, 3, -1, -1)


class _RandomCodes(torch.nn.Module):
    """Samples uniform codes with the given generator (a latent model's generate contract)."""

    num_actions = 6

    def generate(self, codes, horizon, actions=None, temperature=1.0, generator=None):
        self.seen = (codes.shape, horizon, actions, temperature)
        b, _, h, w = codes.shape
        return torch.randint(0, 8, (b, horizon, h, w), generator=generator)


def test_latent_generator_encodes_samples_decodes_reproducibly(maze):
    videos, actions = maze
    model = _RandomCodes()
    gen = LatentGenerator(model, _PaletteTokenizer(), temperature=0.5, seed=3)
    assert gen.takes_actions and not gen.needs_actions
    out = gen(videos[:2, :5], 3, actions[:2])
    assert out.shape == (2, 3, 3, SIZE, SIZE) and out.min() >= -1 and out.max() <= 1
    shape, horizon, acts, temperature = model.seen
    assert shape == (2, 5, SIZE // 4, SIZE // 4) and (horizon, temperature) == (3, 0.5)
    torch.testing.assert_close(acts, actions[:2])
    again = LatentGenerator(model, _PaletteTokenizer(), temperature=0.5, seed=3)
    torch.testing.assert_close(again(videos[:2, :5], 3, actions[:2]), out)
    result, _ = evaluate_teco(gen, _batches(videos, actions, 3), SMALL, metrics=["psnr"])
    assert set(result.settings) == {"actions", "no_actions"}


def test_config_keys_and_overrides():
    from convssm.train.config import apply_overrides, config_from_dict, config_to_dict

    sets = ["eval.protocol=teco", "eval.teco.frames=12", "eval.teco.context_with_actions=6",
            "eval.teco.context_without_actions=3", "eval.teco.settings=[actions]"]  # fmt: skip
    cfg = config_from_dict(apply_overrides({}, sets))
    assert cfg.eval.protocol == "teco"
    assert cfg.eval.teco.setting_list() == [TecoSetting("actions", 6, 6, True)]
    assert config_from_dict(config_to_dict(cfg)).eval.teco == cfg.eval.teco  # round trip
    assert config_from_dict({}).eval.protocol == "spec5"  # old configs keep the design's protocol
    with pytest.raises(ValueError, match="unknown key 'frame' in section 'eval.teco'"):
        config_from_dict(apply_overrides({}, ["eval.teco.frame=12"]))
    with pytest.raises(ValueError, match="eval.teco.context_with_actions"):
        config_from_dict(
            apply_overrides({}, ["eval.teco.frames=300", "eval.teco.context_with_actions=300"])
        )
    with pytest.raises(ValueError, match="eval.protocol"):
        config_from_dict(apply_overrides({}, ["eval.protocol=dmlab"]))
    with pytest.raises(ValueError, match="has no sub-keys"):
        apply_overrides({}, ["eval.fvd_chunk.x=1"])
