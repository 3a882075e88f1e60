"""The MazeWorld study (experiments/maze): revisit bands, the action shuffle, and the runner and
analysis end to end on tiny data (a few short videos, 2-3 training steps, tiny widths)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from maze_modules import maze_modules

TINY = [
    "model.encoder_widths=[4,8,8]",
    "model.norm_groups=4",
    "model.dim=8",
    "data.seq_len=8",
    "train.log_every=1",
    "train.checkpoint_every=1",
    "eval.context=4",
    "eval.val_horizon=4",
    "eval.val_videos=2",
]


@pytest.fixture
def maze(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only wait on each other
    try:
        with maze_modules(monkeypatch) as modules:
            yield modules
    finally:
        torch.set_num_threads(threads)


def test_revisit_gaps_count_from_the_last_sighting_before_the_return(maze):
    _, study, _ = maze
    a, b, c, d = "abcd"
    gaps = study.revisit_gaps([a, a, b, c, a, a, b, d, b])
    # first stays are first visits; a return counts from the last sighting before it and
    # keeps counting while the camera stays; b at 8 was last seen at 6, before the d
    assert gaps.tolist() == [-1, -1, -1, -1, 3, 4, 4, -1, 2]


def test_view_keys_sectors_are_centred_on_the_axes(maze):
    _, study, _ = maze
    cells = np.zeros((6, 2), dtype=np.int64)
    heading = np.array([0, 2, 21, 3, 6, 12])  # 24 headings: sector 0 is 21..2
    keys = study.view_keys(cells, heading, 24, 4)
    assert [k[2] for k in keys] == [0, 0, 0, 1, 1, 2]
    assert len(set(study.view_keys(cells, heading, 24, 1))) == 1  # the cell alone
    with pytest.raises(ValueError, match="sectors"):
        study.view_keys(cells, heading, 24, 5)


def test_band_masks_partition_the_frames(maze):
    _, study, _ = maze
    gaps = np.random.default_rng(0).integers(-1, 300, size=(7, 300))
    gaps[gaps == 0] = -1  # a gap is never 0
    bands = study.parse_bands("1-31,32-63,64-127,128-")
    masks = study.band_masks(gaps, bands)
    assert list(masks) == ["first", "1-31", "32-63", "64-127", "128+"]
    stacked = np.stack(list(masks.values())).astype(int)
    assert (stacked.sum(0) == 1).all()  # every frame in exactly one class
    assert (gaps[masks["32-63"]] >= 32).all() and (gaps[masks["32-63"]] <= 63).all()
    # bands with a hole leave its frames out, and never overlap
    holed = study.band_masks(gaps, study.parse_bands("1-31,64-"))
    counts = np.stack(list(holed.values())).astype(int).sum(0)
    assert counts.max() == 1 and (counts == 0).sum() == ((gaps >= 32) & (gaps <= 63)).sum()
    for bad in ("32-63,1-31", "1-31,16-40", "5-,10-20", "0-3", "x"):
        with pytest.raises(ValueError, match="--bands"):
            study.parse_bands(bad)


def test_memory_by_band_compares_with_first_visits_at_the_same_times(maze):
    _, study, _ = maze
    gaps = np.full((1, 100), -1)
    gaps[0, 50:60] = 40  # revisits at k = 40, frames 50..59
    errors = np.where(np.arange(100) < 32, 4.0, 1.0)[None].astype(float)
    errors[0, 50:60] = 0.5
    out = study.memory_by_band(errors, gaps, study.parse_bands("1-31,32-"), far=32)
    assert out["32+"]["frames"] == 10 and out["32+"]["mse"] == pytest.approx(0.5)
    assert out["32+"]["first_same_times"] == pytest.approx(1.0)  # frames 32.. only
    assert out["far"]["ratio"] == pytest.approx(0.5)
    assert out["first"]["frames"] == 89  # frame 0 is never predicted
    assert out["1-31"]["mse"] is None


def test_derangement_and_shuffle(maze):
    _, study, _ = maze
    perm = study.derangement(9, seed=3)
    assert sorted(perm.tolist()) == list(range(9)) and (perm != np.arange(9)).all()
    assert np.array_equal(perm, study.derangement(9, seed=3))
    assert not np.array_equal(perm, study.derangement(9, seed=4))
    with pytest.raises(ValueError, match="at least 2"):
        study.derangement(1, seed=0)
    actions = torch.arange(9)[:, None] * 100 + torch.arange(20)
    shuffled = study.shuffle_actions(actions, perm, [(4, 8), (12, 16)])
    inside = torch.zeros(20, dtype=torch.bool)
    inside[4:8] = inside[12:16] = True
    assert torch.equal(shuffled[:, ~inside], actions[:, ~inside])
    assert torch.equal(shuffled[:, inside], actions[torch.as_tensor(perm)][:, inside])


class _FakeTest:
    """Three random 'videos' with random actions, shaped as study.TestSet serves them."""

    def __init__(self, frames: int = 12) -> None:
        g = torch.Generator().manual_seed(0)
        self.num_frames = frames
        self.videos = torch.rand(3, frames, 3, 16, 16, generator=g) * 2 - 1
        self.actions = torch.randint(0, 6, (3, frames), generator=g)

    def __len__(self) -> int:
        return 3

    def batches(self, size):
        for i in range(0, 3, size):
            yield i, self.videos[i : i + size], self.actions[i : i + size]


def _tiny_predictor():
    from convssm.models import VideoPredictor, VideoPredictorConfig

    torch.manual_seed(0)
    cfg = VideoPredictorConfig(
        image_channels=3, image_size=16, encoder_widths=[4, 8], norm_groups=4, dim=8,
        sequence_model="convs5", sequence_options={"depth": 1, "state_dim": 4, "norm_groups": 4},
        num_actions=6, action_embed_dim=4,
    )  # fmt: skip
    return VideoPredictor(cfg).eval()


def test_action_use_tells_a_model_that_reads_actions_from_one_that_does_not(maze):
    _, study, _ = maze
    test, model = _FakeTest(), _tiny_predictor()
    donors = study.derangement(3, seed=0)
    reads = study.action_use(model, test, context=4, horizon=2, donors=donors, batch=2)
    assert reads["windows"] == 3 * 2  # windows at 0 and 6 of 12 frames
    assert reads["mse_true"] != reads["mse_shuffled"]
    assert reads["strip"].shape == (2, 3, 16, 16)
    with torch.no_grad():
        model.action_embed.weight.zero_()  # every action now looks the same to the model
    blind = study.action_use(model, test, context=4, horizon=2, donors=donors, batch=2)
    assert blind["ratio"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
def test_runner_and_study_end_to_end(maze, tmp_path, capsys):
    run, study, publish = maze
    out = tmp_path / "maze"
    data = ["--train-videos", "4", "--train-frames", "16", "--test-videos", "3"]
    data += ["--test-frames", "40", "--cpu-minutes", "1"]
    sets = [a for s in [*TINY, "train.steps=2"] for a in ("--set", s)]
    assert run.main(["--out", str(out), *data, *sets]) == 0
    for model in ("convs5", "convlstm", "transformer"):
        record = json.loads((out / "runs" / model / "run.json").read_text())
        assert record["steps"] == 2 and record["cpu_s_process"] > 0
        assert record["parameters"] > 0 and record["attempts"] == 1
    manifest = json.loads((out / "data" / "mazeworld-test.json").read_text())
    assert manifest["params"]["image_size"] == 32 and manifest["params"]["num_frames"] == 40

    # rerunning skips the data and every finished model
    stamp = (out / "data" / "mazeworld-train.json").stat().st_mtime_ns
    assert run.main(["--out", str(out), *data, *sets]) == 0
    assert (out / "data" / "mazeworld-train.json").stat().st_mtime_ns == stamp
    assert "finished earlier" in capsys.readouterr().out
    # an unfinished model resumes from its checkpoint with what is left of its budget
    (out / "runs" / "convs5" / "run.json").unlink()
    more = [a for s in [*TINY, "train.steps=3"] for a in ("--set", s)]
    assert run.main(["--out", str(out), *data, *more, "--models", "convs5"]) == 0
    attempts = run.read_attempts(out / "runs" / "convs5")
    assert [(a["from_step"], a["to_step"]) for a in attempts] == [(0, 2), (2, 3)]
    assert attempts[1]["limit_s"] < 60.0  # the first attempt's CPU time came off the budget

    args = ["--out", str(out), "--context", "8", "--horizon", "4", "--bands", "1-7,8-"]
    assert study.main([*args, "--far", "8"]) == 0
    summary = json.loads((out / "study.json").read_text())
    assert set(summary["models"]) == {"convs5", "convlstm", "transformer"}
    for name, r in summary["models"].items():
        use = r["action_use"]
        assert use["windows"] == 3 * 3  # windows at 0, 12, 24 of 40 frames
        assert use["mse_true"] != use["mse_shuffled"], name  # the actions reach the output
        assert 0 <= use["shuffled_equal_true"] < 1
        view = r["memory"]["view"]
        frames = view["first"]["frames"] + view["1-7"]["frames"] + view["8+"]["frames"]
        assert frames == 3 * 39  # every predicted frame in one class
        assert r["memory"]["place"]["first"]["frames"] <= view["first"]["frames"]
    assert summary["models"]["convs5"]["step"] == 3
    for name in ("copy_last", "recall_view", "recall_pose"):  # yardsticks, scored as models
        view = summary["references"][name]["view"]
        assert view["first"]["frames"] == 3 * 39 - view["1-7"]["frames"] - view["8+"]["frames"]
    for png in ("strip.png", "bands.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"

    # publishing: convssm publish's folder, then the study's section in its card
    dest = tmp_path / "published" / "convlstm_actions"
    seen = "a test, nothing was looked at"
    argv = ["--out", str(out), "--model", "convlstm", "--dest", str(dest), "--seen", seen]
    assert publish.main(argv) == 0
    card = (dest / "README.md").read_text()
    record = summary["models"]["convlstm"]
    assert f"{record['action_use']['ratio']:.2f}×" in card and seen in card
    assert "## Scores" not in card and "convssm publish" in card
    assert (dest / "strip.png").read_bytes()[:4] == b"\x89PNG"
    from convssm.models import VideoPredictor

    assert VideoPredictor.from_pretrained(dest).num_actions == 6
    # a study of another step is refused, not published under the wrong numbers
    summary["models"]["convs5"]["step"] = 2
    (out / "study.json").write_text(json.dumps(summary))
    other = ["--out", str(out), "--model", "convs5", "--dest", str(tmp_path / "c")]
    assert publish.main(other) == 2
    assert "scored convs5 at step 2" in capsys.readouterr().err


def test_sector_turns_and_memory_restricted_to_frames(maze):
    _, study, _ = maze
    keys = [(0, 0, 0), (0, 0, 0), (0, 0, 1), (0, 1, 1), (0, 1, 2), (0, 1, 2)]
    assert study.sector_turns(keys).tolist() == [False, False, True, False, True, False]
    gaps = np.full((1, 100), -1)
    gaps[0, 50:60] = 40
    errors = np.ones((1, 100))
    errors[0, 50:55] = 0.25  # the revisits that are turns
    turns = np.zeros((1, 100), dtype=bool)
    turns[0, [40, 41, 50, 51, 52, 53, 54]] = True
    out = study.memory_by_band(errors, gaps, study.parse_bands("32-"), far=32, frames=turns)
    assert out["first"]["frames"] == 2 and out["far"]["frames"] == 5
    assert out["far"]["ratio"] == pytest.approx(0.25)


def test_reference_errors_copy_the_last_frame_or_the_view_last_seen(maze):
    _, study, _ = maze
    test = _FakeTest(frames=12)
    gaps = np.full((3, 12), -1)
    gaps[1, 9] = 5  # video 1, frame 9 revisits the view last seen at frame 4
    refs = study.reference_errors(test, {"recall_view": gaps})
    v = test.videos.double()
    assert np.isnan(refs["copy_last"][:, 0]).all() and np.isnan(refs["recall_view"][:, 0]).all()
    last = ((v[:, 1:] - v[:, :-1]) ** 2).mean(dim=(2, 3, 4)).numpy()
    np.testing.assert_allclose(refs["copy_last"][:, 1:], last)
    recalled = refs["recall_view"].copy()
    assert recalled[1, 9] == pytest.approx(float(((v[1, 4] - v[1, 9]) ** 2).mean()))
    recalled[1, 9] = refs["copy_last"][1, 9]  # every other frame falls back to the last one
    np.testing.assert_array_equal(recalled[:, 1:], refs["copy_last"][:, 1:])
