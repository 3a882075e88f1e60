"""The learning harness (experiments/learning): real steps on tiny data, two phases."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

LEARNING = Path(__file__).resolve().parents[2] / "experiments" / "learning"
MODEL = {"image_size": 32, "encoder_widths": [4, 8], "norm_groups": 4, "dim": 8,
         "sequence_model": "convs5",
         "sequence_options": {"depth": 1, "state_dim": 4, "norm_groups": 4}}  # fmt: skip


@pytest.fixture
def harness(monkeypatch):
    monkeypatch.syspath_prepend(str(LEARNING))
    import harness

    yield harness
    # The scripts' module names (study, run, ...) are other experiments' too: forget them, so a
    # later test that imports its own ``study`` does not get this one from sys.modules.
    for name, module in list(sys.modules.items()):
        if Path(getattr(module, "__file__", None) or "/").parent == LEARNING:
            del sys.modules[name]


def _recipe(harness, name, **train):
    return harness.Recipe(
        name=name,
        model=dict(MODEL),
        data={"image_size": 32, "digit_size": 14, "num_digits": 1, "seq_len": 5},
        optim={"lr": 1e-3, "warmup_steps": 1, "batch_size": 2},
        train={"steps": 2, "scores": 1, "rollout_context": 2, "rollout_start": 0.5, **train},
        eval={"videos": 2, "context": 2, "horizon": 10, "batch": 2},
    )


def test_two_phases_mse_rollout(harness, tmp_path):
    first = _recipe(harness, "first", pixel_loss="mse")
    rows = harness.train_recipe(first, tmp_path / "first", torch.device("cpu"))
    assert [r["step"] for r in rows] == [2]
    for key in ("rel_best@10", "psnr@10", "ssim@10"):
        assert key in rows[0]
    saved = tmp_path / "first" / "model_000002"
    assert (tmp_path / "first" / "strip_000002.png").is_file() and saved.is_dir()
    line = json.loads((tmp_path / "first" / "scores.jsonl").read_text().splitlines()[0])
    assert line["step"] == 2 and line["cpu_s"] > 0

    # a second phase starts from the first's weights
    second = _recipe(harness, "second", init_from=str(saved), steps=1)
    start = harness._initial_weights(second, harness.VideoPredictor(**second.model))
    reference = torch.load(tmp_path / "first" / "state.pt")["model"]
    assert all(torch.equal(start[k], reference[k]) for k in reference)
    harness.train_recipe(second, tmp_path / "second", torch.device("cpu"))

    other = _recipe(harness, "other", init_from=str(saved))
    other.model["dim"] = 16
    with pytest.raises(ValueError, match="holds a different model"):
        harness._initial_weights(other, harness.VideoPredictor(**other.model))


def test_recipe_rejects_unknown_keys(harness):
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['pixel_los'\] in section 'train'"):
        _recipe(harness, "bad", pixel_los="mse")


ARMS = {
    "convs5": {"depth": 1, "state_dim": 4, "norm_groups": 4},
    "convlstm": {"depth": 1, "kernel_size": 3},
    "transformer": {"embed_dim": 8, "mlp_dim": 16, "heads": 2, "depth": 1, "window": 32,
                    "max_len": 64},
}  # fmt: skip


def test_study_compares_the_three_arms(harness, tmp_path, monkeypatch):
    import study

    runs = tmp_path / "runs"
    for arm, options in ARMS.items():
        recipe = _recipe(harness, f"study_{arm}")
        recipe.model.update(sequence_model=arm, sequence_options=options)
        harness.train_recipe(recipe, runs / f"study_{arm}", torch.device("cpu"))
    out, figures = tmp_path / "study.json", tmp_path / "figures"
    argv = ["study.py", str(runs), "--json", str(out), "--figures", str(figures), "--threads", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    study.main()
    result = json.loads(out.read_text())
    assert list(result["arms"]) == list(ARMS)
    for arm in result["arms"].values():
        final = arm["final"]
        assert arm["steps"] == 2 and arm["ms_per_generated_frame"] > 0
        # the per-frame curves score the same model on the same videos as the harness did
        mse = arm["per_frame"]["mse"]
        assert len(mse) == 10
        assert sum(mse) / 10 == pytest.approx(final["mse@10"], rel=1e-5)
        empty = result["empty_per_frame"]["mse"]
        assert sum(empty) / 10 == pytest.approx(final["mse_empty@10"], rel=1e-5)
    for name in ("learning_curves.png", "per_frame_mse.png", "rollouts.png"):
        assert (figures / name).stat().st_size > 0
    with pytest.raises(ValueError, match="no scored checkpoint"):
        (runs / "study_convlstm" / "scores.jsonl").write_text("")
        study.load_arm(runs, "convlstm")


def test_long_rollout_reports_time_and_brightness_per_window(harness, tmp_path):
    import long_rollout

    model = harness.VideoPredictor(**MODEL)
    model.save_pretrained(tmp_path / "model")
    data = {"image_size": 32, "digit_size": 14, "num_digits": 1}
    (tmp_path / "model" / "training.json").write_text(json.dumps({"data": data}))
    out = tmp_path / "long.json"
    long_rollout.main([str(tmp_path / "model"), "--frames", "6", "--window", "3",
                       "--videos", "2", "--out", str(out)])  # fmt: skip
    result = json.loads(out.read_text())
    assert result["videos"] == 2 and [r["frames"] for r in result["rows"]] == ["1-3", "4-6"]
    for row in result["rows"]:
        assert row["median_ms"] > 0 and 0 <= row["brightness"] <= row["max_brightness"] <= 1
        assert 0 < row["true_brightness"] < 1
    with pytest.raises(SystemExit, match="--videos must be at least 1"):
        long_rollout.main([str(tmp_path / "model"), "--videos", "0"])
