"""Trivial predictors beside every prediction: the numbers, the words, the plots and the
commands that print them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from convssm.cli.main import main
from convssm.metrics import trivial_predictor_scores
from convssm.run.baselines import EMPTY, MEAN, REPEAT, TrivialBaselines, worse_from
from convssm.run.demo import published_summary
from convssm.run.media import _panels, plot_error_curves


def _fading(frames=30, videos=3, seed=0):
    """Truth in [-1, 1]; a prediction that starts right and fades to grey."""
    g = torch.Generator().manual_seed(seed)
    truth = torch.rand(videos, frames + 1, 1, 8, 8, generator=g) * 2 - 1
    fade = torch.linspace(0, 1, frames).view(1, frames, 1, 1, 1)
    pred = truth[:, 1:] * (1 - fade)  # grey (0) at the end: worse than black on dark frames
    return truth, pred


def test_ratios_match_the_trivial_predictor_scores():
    truth, pred = _fading()
    b = TrivialBaselines(30, 1)
    b.update(0, truth[:, 1:], pred, truth[:, 0])
    want = trivial_predictor_scores((pred + 1) / 2, (truth[:, 1:] + 1) / 2, (truth[:, 0] + 1) / 2,
                                    [10, 30], None)  # fmt: skip
    row = b.table([10, 30])
    for h in (10, 30):
        assert row[str(h)]["mse"] == pytest.approx(want[f"mse@{h}"], rel=1e-6)
        assert row[str(h)]["mse_empty"] == pytest.approx(want[f"mse_empty@{h}"], rel=1e-6)
        assert row[str(h)]["rel_repeat"] == pytest.approx(
            want[f"mse@{h}"] / want[f"mse_repeat@{h}"], rel=1e-6
        )


def test_frame_by_frame_equals_all_at_once():
    truth, pred = _fading()
    whole, frames = TrivialBaselines(30, 1), TrivialBaselines(30, 1)
    whole.update(0, truth[:, 1:], pred, truth[:, 0])
    for k in range(30):
        frames.update(k, truth[:, 1 + k], pred[:, k], truth[:, 0])
    got, want = frames.table([5, 30]), whole.table([5, 30])
    for h, row in want.items():
        assert got[h] == pytest.approx(row, rel=1e-12), h


def test_worse_from_is_the_start_of_the_last_run_of_worse_frames():
    assert worse_from([1, 3, 1, 3, 3], [2, 2, 2, 2, 2]) == 4
    assert worse_from([3, 3], [2, 2]) == 1
    assert worse_from([3, 1], [2, 2]) is None


def test_the_verdict_says_from_which_frame_the_model_is_worse():
    b = TrivialBaselines(4, 1)
    truth = torch.full((1, 4, 1, 2, 2), -0.5)  # dark frames
    pred = torch.tensor([-0.5, -0.5, 0.5, 0.5]).view(1, 4, 1, 1, 1).expand(1, 4, 1, 2, 2)
    b.update(0, truth, pred, truth[:, 0])
    lines = b.lines([2, 4])
    assert lines[0].startswith(f"baselines: '{EMPTY}' predicts black")
    assert lines[1] == "frames 1-2: mse 0; empty frame 0.0625 (x0), repeat last frame 0 (x1)"
    assert "worse than an empty frame from +3 on" in lines[-1]
    assert "worse than repeating the last frame from +3 on" in lines[-1]


def test_fields_are_compared_per_channel_with_the_training_mean():
    truth = torch.zeros(2, 3, 2, 4, 4)
    truth[:, :, 1] = 10.0
    pred = truth + torch.tensor([1.0, 0.0]).view(1, 1, 2, 1, 1)
    b = TrivialBaselines(3, 2, field=True, mean=[0.0, 12.0], channel_names=["T [K]", "u"])
    b.update(0, truth, pred, truth[:, 0])
    row = b.table([3])["3"]
    assert row["rmse"] == pytest.approx([1.0, 0.0]) and row["rmse_empty"] == pytest.approx([0, 2])
    words = b.verdict()
    assert f"worse than the {MEAN} (T [K]) over all 3 frames" in words
    assert "worse than repeating the last frame (T [K])" in words and "(u)" in words
    assert b.curves()[1]["rmse"].keys() == {MEAN, REPEAT}
    with pytest.raises(ValueError, match="training mean of their 2 channels"):
        TrivialBaselines(3, 2, field=True)


def test_plots_have_one_panel_per_channel_with_baselines(tmp_path):
    model = [[1.0, 2.0], [1.5, 2.5]]
    base = {"rmse": {MEAN: [[2.0, 1.0], [2.0, 1.0]], REPEAT: [[0.5, 3.0], [1.0, 3.0]]}}
    panels = _panels({"rmse": model}, base, ["T [K]", "u [m/s]"])
    assert [p[0] for p in panels] == ["rmse, T [K]", "rmse, u [m/s]"]
    assert list(panels[1][2]) == [MEAN, REPEAT] and panels[1][2][MEAN].tolist() == [1.0, 1.0]
    path = plot_error_curves(tmp_path / "e.png", {"rmse": model}, baselines=base, train_length=1)
    assert path.stat().st_size > 0 and [p.name for p in tmp_path.iterdir()] == ["e.png"]


def test_the_demo_summary_names_where_the_model_loses_to_an_empty_frame():
    b = TrivialBaselines(4, 1)
    truth = torch.full((1, 4, 1, 2, 2), -0.5)
    pred = torch.tensor([-0.5, -0.5, 0.5, 0.5]).view(1, 4, 1, 1, 1).expand(1, 4, 1, 2, 2)
    b.update(0, truth, pred, truth[:, 0])
    lines = published_summary(b, {"brightness@2-4": 0.547}, [2, 4])
    assert any("worse than an empty frame from +3 on" in line for line in lines)
    assert lines[-1].startswith("brightness over frames 2-4: the predicted frames hold 55%")


MODEL = {"image_size": 16, "encoder_widths": [8, 16], "norm_groups": 4, "dim": 16,
         "sequence_model": "convs5",
         "sequence_options": {"depth": 1, "state_dim": 8, "norm_groups": 4}}  # fmt: skip


def _model_and_video(tmp_path, frames, size=16):
    from convssm.models import VideoPredictor

    torch.manual_seed(0)
    VideoPredictor(**{**MODEL, "image_size": size}).save_pretrained(tmp_path / "model")
    video = np.random.default_rng(0).integers(0, 256, (frames, size, size), np.uint8)
    np.savez(tmp_path / "in.npz", video=video)
    return tmp_path / "model"


def test_generate_reports_baselines_only_with_ground_truth(tmp_path, capsys):
    model = _model_and_video(tmp_path, 10)
    argv = ["generate", str(model), "--input", str(tmp_path / "in.npz"), "--context", "4",
            "--horizon", "8", "--out", str(tmp_path / "g"), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"baselines: '{EMPTY}'" in out and "frames 1-6: mse" in out
    assert "over 6 frames with ground truth, the model is" in out
    record = json.loads((tmp_path / "g" / "baselines.json").read_text())
    assert record["frames_with_truth"] == 6 and len(record["per_frame"][EMPTY]) == 6
    argv[argv.index("--context") + 1] = "10"  # the whole input is context: no truth
    argv[argv.index("--out") + 1] = str(tmp_path / "h")
    assert main(argv) == 0
    assert "baselines" not in capsys.readouterr().out
    assert not (tmp_path / "h" / "baselines.json").exists()


def test_evaluate_prints_and_records_baselines(tmp_path, capsys):
    model = _model_and_video(tmp_path, 4, size=32)
    argv = ["evaluate", str(model), "--videos", "2", "--out", str(tmp_path / "e"), "--set",
            "eval.horizons=[3]", "--set", "eval.metrics=[psnr]", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    table = out.index("horizon 3:")
    assert out.index(f"baselines: '{EMPTY}'") > table and "frames 1-3: mse" in out
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    row = metrics["baselines"]["per_horizon"]["3"]
    assert row["mse"] == pytest.approx(metrics["per_horizon"]["3"]["mse"], rel=1e-5)
    assert row["rel_empty"] == pytest.approx(row["mse"] / row["mse_empty"])
    # an --input array is scored in memory: the same report
    array = np.random.default_rng(1).uniform(-1, 1, (2, 13, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "a.npy", array)
    argv[argv.index("--out") + 1] = str(tmp_path / "f")
    assert main([*argv, "--input", str(tmp_path / "a.npy"), "--set", "eval.context=10"]) == 0
    assert "frames 1-3: mse" in capsys.readouterr().out
    assert "baselines" in json.loads((tmp_path / "f" / "metrics.json").read_text())
