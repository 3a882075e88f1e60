"""Your own arrays end to end on tiny sizes: train on a 2-channel physical field, evaluate
per channel in physical units, generate from .npy / .h5 / .zarr arrays in their own format,
resume, and use published folders (new ones with statistics, the committed old ones)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from convssm.cli.main import main
from convssm.data import channel_stats_ref, read_array, write_array
from convssm.models import VideoPredictor

PUBLISHED = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "format1"
N, T, C, S = 6, 12, 2, 16


def _field(seed=0):
    """Two channels in very different units: ~290 K temperature, ~1e-3 concentration."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.arange(S), np.arange(S), indexing="ij")
    out = np.empty((N, T, C, S, S))
    for n in range(N):
        cy, cx = rng.uniform(4, 12, size=2)
        for t in range(T):
            blob = np.exp(-(((y - cy - 0.5 * t) % S - 0) ** 2) / 8 - ((x - cx) % S) ** 2 / 8)
            out[n, t, 0] = 285 + 10 * blob
            out[n, t, 1] = 1e-3 * blob
    return out


def _config(root, **data):
    return {
        "name": "field",
        "model": {"image_channels": C, "image_size": S, "encoder_widths": [8, 16],
                  "norm_groups": 4, "dim": 16,
                  "sequence_options": {"depth": 1, "state_dim": 8, "norm_groups": 4}},
        "data": {"dataset": "array", "root": str(root), "seq_len": 6,
                 "options": {"val_fraction": 0.34}, **data},
        "optim": {"lr": 1e-3, "warmup_steps": 1},
        "train": {"steps": 2, "batch_size": 2, "log_every": 1, "eval_every": 2,
                  "checkpoint_every": 1, "progress": False, "threads": 1},
        "eval": {"context": 3, "horizons": [2, 4], "num_videos": 2, "batch_size": 2,
                 "val_videos": 1},
    }  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    data = _field()
    write_array(root / "field.h5", data, key="fields/u")
    h5py = pytest.importorskip("h5py")
    with h5py.File(root / "field.h5", "a") as f:  # the file names its channels and units...
        f["fields/u"].attrs["channel_names"] = ["temperature", "concentration"]
        f["fields/u"].attrs["units"] = ["degC", "ppm"]
    config = root / "field.yaml"  # ...and the config's units win over the file's
    config.write_text(yaml.safe_dump(_config(root / "field.h5", key="fields/u",
                                              channel_units=["K", "mol/m^3"])))  # fmt: skip
    workdir = root / "run"
    assert main(["train", str(config), "--workdir", str(workdir)]) == 0
    return root, data, config, workdir


def test_training_stores_the_split_statistics_with_the_model(run):
    root, data, _, workdir = run
    model = VideoPredictor.from_pretrained(workdir / "checkpoints" / "step_00000002")
    stats = model.config.normalization
    want = channel_stats_ref(data[:4]).to_dict()  # the 4 training sequences, float64
    for k in ("mean", "std", "min", "max"):
        np.testing.assert_allclose(stats[k], want[k], rtol=1e-12)
    assert stats["count"] == want["count"]
    val = [json.loads(x) for x in (workdir / "val_log.jsonl").read_text().splitlines()]
    assert len(val[-1]["rmse@2"]) == C  # validation scores fields per channel


def test_evaluate_scores_fields_per_channel_beside_the_run(run, capsys):
    _, _, _, workdir = run
    assert main(["evaluate", str(workdir)]) == 0
    out = workdir / "eval" / "step_00000002"  # beside the run, not in the checkpoint
    assert not (workdir / "checkpoints" / "step_00000002" / "eval").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kind"] == "field" and metrics["num_videos"] == 2
    row = metrics["per_horizon"]["4"]
    assert len(row["rmse"]) == C and len(row["mae"]) == C and "psnr" in row
    assert row["rmse"][0] > 100 * row["rmse"][1]  # kelvin and concentration keep their units
    assert set(metrics["skipped"]) >= {"lpips", "fvd"}
    assert "natural video" in metrics["skipped"]["fvd"]
    videos = np.load(out / "videos.npz")
    assert videos["pred"].dtype == np.float32 and 270 < videos["pred"][:, :, 0].mean() < 310
    printed = capsys.readouterr().out
    assert "rmse (temperature [K]: " in printed and "concentration [mol/m^3]: " in printed
    assert "(temperature [K])" in printed  # the baselines' verdict names the channel too
    assert metrics["channels"] == ["temperature [K]", "concentration [mol/m^3]"]
    assert metrics["channel_names"] == ["temperature", "concentration"]  # from the file
    assert metrics["channel_units"] == ["K", "mol/m^3"]  # from the config
    assert "temperature [K]" in metrics["baselines"]["worse_from"]["training mean"]


@pytest.mark.parametrize("name, key", [("in.npy", None), ("in.h5", "u"), ("in.zarr", None)])
def test_generate_from_arrays_writes_the_input_format_in_physical_units(run, name, key, tmp_path):
    pytest.importorskip("zarr")
    _, data, _, workdir = run
    source = write_array(tmp_path / name, data[4:], key=key)
    out = tmp_path / "g"
    argv = ["generate", str(workdir), "--input", str(source), "--context", "3", "--horizon",
            "4", "--out", str(out)] + (["--key", key] if key else [])  # fmt: skip
    assert main(argv) == 0
    pred = read_array(out / f"predictions{Path(name).suffix}", key)
    assert pred.shape == (2, 4, C, S, S) and pred.dtype == np.float32
    assert 280 < pred[:, :, 0].mean() < 300 and abs(pred[:, :, 1].mean()) < 0.01
    assert (out / "generated_strip.png").stat().st_size > 0


def test_one_long_sequence_in_and_out(run, tmp_path):
    _, data, _, workdir = run
    source = write_array(tmp_path / "long.npy", data[5])  # (T, C, H, W)
    assert main(["generate", str(workdir), "--input", str(source), "--context", "4",
                 "--horizon", "2", "--out", str(tmp_path / "g")]) == 0  # fmt: skip
    assert np.load(tmp_path / "g" / "predictions.npy").shape == (2, C, S, S)
    model = VideoPredictor.from_pretrained(workdir / "checkpoints" / "step_00000002").eval()
    want = model.generate(torch.from_numpy(data[5][None, :4]).float(), 2)[0].numpy()
    np.testing.assert_allclose(np.load(tmp_path / "g" / "predictions.npy"), want, rtol=1e-5)


def test_resume_and_published_folders(run, tmp_path, capsys, monkeypatch):
    root, data, config, workdir = run
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(config), "--workdir", str(workdir), "--set", "train.steps=3",
                 "--resume"]) == 0  # fmt: skip
    published = VideoPredictor.from_pretrained(workdir / "checkpoints" / "step_00000003")
    folder = published.save_pretrained(tmp_path / "pub")  # a bare model folder
    source = write_array(tmp_path / "x.npy", data[4:5])
    assert main(["generate", str(folder), "--input", str(source), "--context", "3",
                 "--horizon", "2"]) == 0  # fmt: skip
    made = tmp_path / "convssm_outputs" / "pub" / "generate"  # never inside the model folder
    assert np.load(made / "predictions.npy").shape == (1, 2, C, S, S)
    small = ["--set", "eval.horizons=[2]", "--set", "eval.context=3"]  # a bare folder: defaults
    assert main(["evaluate", str(folder), "--input", str(source), *small,
                 "--out", str(tmp_path / "ev")]) == 0  # fmt: skip
    assert len(json.loads((tmp_path / "ev" / "metrics.json").read_text())["per_horizon"]["2"]
               ["rmse"]) == C  # fmt: skip
    assert np.load(tmp_path / "ev" / "predictions.npy").shape == (1, 2, C, S, S)
    np.save(tmp_path / "short.npy", data[4:5, :3])
    assert main(["evaluate", str(folder), "--input", str(tmp_path / "short.npy"), *small]) == 1
    assert "needs context 3 + horizon 2 = 5" in capsys.readouterr().err


def test_the_committed_published_models_generate_and_evaluate(tmp_path):
    out = tmp_path / "g"
    assert main(["generate", str(PUBLISHED / "convs5"), "--horizon", "3", "--context", "4",
                 "--out", str(out)]) == 0  # fmt: skip
    assert np.load(out / "generated.npz")["pred"].shape == (3, 1, 32, 32)
    argv = ["evaluate", str(PUBLISHED / "convlstm"), "--videos", "2", "--out", str(tmp_path / "e"),
            "--set", "eval.horizons=[2]", "--set", "eval.metrics=[psnr]"]  # fmt: skip
    assert main(argv) == 0
    assert "psnr" in json.loads((tmp_path / "e" / "metrics.json").read_text())["per_horizon"]["2"]
