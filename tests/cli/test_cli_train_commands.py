"""CLI smoke tests on tiny sizes: train, resume, evaluate, generate, demo, and clear errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import yaml

from convssm.cli.main import main
from convssm.models import VideoPredictor

TINY = {
    "name": "tiny",
    "model": {
        "image_size": 16,
        "encoder_widths": [8, 16],
        "norm_groups": 4,
        "dim": 16,
        "sequence_model": "convs5",
        "sequence_options": {"depth": 1, "state_dim": 8, "norm_groups": 4},
    },
    "data": {"seq_len": 6, "options": {"digit_size": 8}},
    "optim": {"lr": 1e-3, "warmup_steps": 1},
    "train": {"steps": 3, "batch_size": 2, "log_every": 1, "eval_every": 3,
              "checkpoint_every": 2, "progress": False, "threads": 1},
    "eval": {"context": 3, "horizons": [3, 6], "num_videos": 3, "batch_size": 2,
             "metrics": ["psnr", "ssim"], "val_videos": 2},
}  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    workdir = root / "run"
    assert main(["train", str(config), "--workdir", str(workdir)]) == 0
    return config, workdir


def test_train_writes_checkpoints_and_logs(trained):
    _, workdir = trained
    assert (workdir / "checkpoints" / "step_00000003" / "model.safetensors").is_file()
    lines = (workdir / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3]
    assert (workdir / "train_log.csv").is_file() and (workdir / "val_log.jsonl").is_file()


def test_checkpoint_is_a_pretrained_model_dir(trained):
    _, workdir = trained
    model = VideoPredictor.from_pretrained(workdir / "checkpoints" / "step_00000003")
    assert model.config.dim == 16


def test_resume_continues_from_the_newest_checkpoint(trained, tmp_path):
    config, _ = trained
    work = tmp_path / "r"
    assert main(["train", str(config), "--workdir", str(work), "--set", "train.steps=2"]) == 0
    rc = main(["train", str(config), "--workdir", str(work), "--set", "train.steps=3",
               "--resume"])  # fmt: skip
    assert rc == 0
    steps = [json.loads(x)["step"] for x in (work / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_evaluate_writes_metrics_per_horizon_and_videos(trained, tmp_path, capsys):
    _, workdir = trained
    assert main(["evaluate", str(workdir), "--out", str(tmp_path / "ev")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(metrics["per_horizon"]) == {"3", "6"}
    assert len(metrics["per_frame"]["mse"]) == 6 and metrics["num_videos"] == 3
    assert {"psnr", "ssim", "mse"} <= set(metrics["per_horizon"]["6"])
    assert len(metrics["per_frame"]["psnr"]) == 6
    truth = np.load(tmp_path / "ev" / "videos_truth.npy", mmap_mode="r")
    pred = np.load(tmp_path / "ev" / "videos_pred.npy", mmap_mode="r")
    assert truth.shape == (3, 9, 1, 16, 16) and pred.shape == (3, 6, 1, 16, 16)
    assert truth.dtype == pred.dtype == np.uint8
    assert (tmp_path / "ev" / "sample_strip.png").is_file()
    assert "horizon 6:" in capsys.readouterr().out


def test_evaluate_overrides_only_the_eval_section(trained, tmp_path, capsys):
    _, workdir = trained
    out = tmp_path / "ev2"
    argv = ["evaluate", str(workdir), "--out", str(out), "--set", "eval.horizons=[2]",
            "--set", "eval.metrics=[lpips,fvd]", "--videos", "2"]  # fmt: skip
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["per_horizon"]) == ["2"] and metrics["num_videos"] == 2
    # 16x16 frames are too small for AlexNet; 2 videos are fewer than one FVD chunk
    assert set(metrics["skipped"]) == {"lpips", "fvd"}
    assert main(["evaluate", str(workdir), "--set", "train.steps=1"]) == 1
    assert "only eval.* overrides" in capsys.readouterr().err


def test_generate_from_moving_mnist_and_from_files(trained, tmp_path):
    _, workdir = trained
    out = tmp_path / "g"
    assert main(["generate", str(workdir), "--moving-mnist-seed", "4", "--horizon", "12",
                 "--out", str(out)]) == 0  # fmt: skip
    for name in ("generated.gif", "generated.mp4", "generated_strip.png", "generated_error.png"):
        assert (out / name).stat().st_size > 0, name
    pred = np.load(out / "generated.npz")["pred"]
    assert pred.shape == (12, 1, 16, 16)
    # round trip: the generated npz's truth as input, and an mp4 as input
    video = np.load(out / "generated.npz")["truth"][:, 0]  # (T, H, W)
    np.savez(tmp_path / "in.npz", video=video)
    assert main(["generate", str(workdir), "--input", str(tmp_path / "in.npz"), "--context",
                 "4", "--horizon", "5", "--out", str(tmp_path / "g2")]) == 0  # fmt: skip
    assert np.load(tmp_path / "g2" / "generated.npz")["pred"].shape == (5, 1, 16, 16)


def test_threads_sets_the_thread_count_over_the_checkpoints(trained, tmp_path, capsys):
    """--threads wins over the run's train.threads (1) and stays set for what follows."""
    _, workdir = trained
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert main(["generate", str(workdir), "--horizon", "2", "--threads", "2",
                     "--out", str(tmp_path / "g")]) == 0  # fmt: skip
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        assert main(["evaluate", str(workdir), "--videos", "2", "--threads", "2",
                     "--out", str(tmp_path / "e")]) == 0  # fmt: skip
        assert torch.get_num_threads() == 2
        for command in ("generate", "evaluate"):
            assert main([command, str(workdir), "--threads", "0"]) == 1
            assert "--threads must be positive, got 0" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "missing.yaml"], "does not exist"),
        (["evaluate", "no/such/ckpt"], "does not exist"),
        (["generate", "no/such/ckpt"], "does not exist"),
    ],
)
def test_bad_paths_give_one_line_errors(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"convssm {argv[0]}: error:") and message in err


def test_bad_config_and_overrides_are_reported(trained, tmp_path, capsys):
    config, workdir = trained
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**TINY, "optim": {"learnin_rate": 1}}))
    assert main(["train", str(bad), "--workdir", str(tmp_path / "w")]) == 1
    assert "unknown key 'learnin_rate' in section 'optim'" in capsys.readouterr().err
    assert main(["train", str(config), "--set", "train.stepz=3"]) == 1
    assert "unknown key 'stepz'" in capsys.readouterr().err
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    assert main(["train", str(config), "--workdir", str(workdir)]) == 1  # holds a run
    assert "already holds a run; add --resume" in capsys.readouterr().err
    assert sorted(p.relative_to(workdir) for p in workdir.rglob("*")) == before


def test_corrupt_checkpoint_and_bad_inputs_are_reported(trained, tmp_path, capsys):
    import shutil

    _, workdir = trained
    ckpt = tmp_path / "ckpt"
    shutil.copytree(workdir / "checkpoints" / "step_00000003", ckpt)
    f = ckpt / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-7])
    assert main(["evaluate", str(ckpt)]) == 1
    assert "model.safetensors is corrupt" in capsys.readouterr().err
    assert main(["generate", str(workdir), "--input", str(tmp_path / "nope.mp4")]) == 1
    assert "does not exist" in capsys.readouterr().err
    np.savez(tmp_path / "wrong.npz", video=np.zeros((8, 20, 20), np.uint8))
    assert main(["generate", str(workdir), "--input", str(tmp_path / "wrong.npz")]) == 1
    assert "the model takes 16x16" in capsys.readouterr().err
    assert main(["generate", str(workdir), "--horizon", "0"]) == 1
    assert "--horizon must be positive" in capsys.readouterr().err


def _published(root):
    """A tiny model folder as the demo expects one: save_pretrained plus training.json."""
    torch.manual_seed(0)
    options = {"depth": 1, "state_dim": 8, "norm_groups": 4}
    model = VideoPredictor(image_size=16, encoder_widths=[8, 16], norm_groups=4, dim=16,
                           sequence_model="convs5", sequence_options=options)  # fmt: skip
    folder = model.save_pretrained(root / "published")
    data = {"image_size": 16, "digit_size": 8, "num_digits": 1, "seq_len": 4}
    (folder / "training.json").write_text(json.dumps({"data": data}))
    return folder


def test_demo_runs_end_to_end_on_a_tiny_budget(trained, tmp_path, capsys):
    config, _ = trained
    model = _published(tmp_path)
    rc = main(["demo", "--out", str(tmp_path / "demo"), "--minutes", "0.01", "--config",
               str(config), "--set", "eval.num_videos=2", "--model", str(model),
               "--recall-delay", "20"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "demo [1/3]: ConvS5 (convs5_rectified_scratch): rel_recall" in out
    assert "demo [1/3]: ConvLSTM (convlstm_delay256): rel_recall" in out
    recall = json.loads((tmp_path / "demo" / "recall" / "scores.json").read_text())
    assert recall["delay"] == 20 and set(recall["rel_recall"]) == {"ConvS5", "ConvLSTM"}
    for name in ("task.png", "recall.png"):
        assert (tmp_path / "demo" / "recall" / name).is_file()
    assert "demo [2/3]: published model published" in out
    assert "10 context frames -> 40 frames (10x the training length)" in out
    assert "60 generated frames (10x the training length)" in out
    # every phase says what its numbers mean and how they compare with trivial predictors
    assert "rel_recall = the model's error / drawing the average digit" in out
    assert "demo [2/3]: baselines: 'empty frame' predicts black" in out
    assert re.search(r"demo \[2/3\]: over \d+ frames with ground truth, the model is", out)
    assert "demo [3/3]: baselines: 'empty frame' predicts black" in out
    assert "demo [3/3]: frames 1-60: mse" in out
    assert "loss" in out and "(first" in out
    metrics = json.loads((tmp_path / "demo" / "eval" / "metrics.json").read_text())
    assert "60" in metrics["per_horizon"]
    assert (tmp_path / "demo" / "generate" / "generated.gif").is_file()
    for name in ("strip.png", "predicted.gif", "scores.json"):
        assert (tmp_path / "demo" / "published" / name).is_file()
    assert (tmp_path / "demo" / "loss.png").is_file()
    scores = json.loads((tmp_path / "demo" / "published" / "scores.json").read_text())
    assert scores["frames"] >= 1 and "rel_best@" + str(min(10, scores["frames"])) in scores


def test_demo_names_a_missing_published_model(trained, tmp_path, capsys):
    config, _ = trained
    rc = main(["demo", "--out", str(tmp_path / "d"), "--minutes", "0.01", "--config",
               str(config), "--model", str(tmp_path / "nowhere")])  # fmt: skip
    assert rc == 1
    assert "nowhere" in capsys.readouterr().err
