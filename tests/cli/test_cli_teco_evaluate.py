"""``convssm evaluate`` with ``eval.protocol: teco``: an action-conditioned VideoPredictor
trained for one step on a MazeWorld folder written by ``convssm data make-maze``."""

from __future__ import annotations

import json

import numpy as np
import yaml

from convssm.cli.main import main

CONFIG = {
    "name": "maze-teco",
    "model": {
        "image_channels": 3, "image_size": 16, "encoder_widths": [8, 16], "norm_groups": 4,
        "dim": 16, "sequence_options": {"depth": 1, "state_dim": 8, "norm_groups": 4},
        "num_actions": 6,
    },
    "data": {"dataset": "video_folder", "seq_len": 8},
    "optim": {"lr": 1e-3, "warmup_steps": 1},
    "train": {"steps": 1, "batch_size": 2, "log_every": 1, "eval_every": 1,
              "checkpoint_every": 1, "progress": False, "threads": 1},
    "eval": {"protocol": "teco", "context": 3, "horizons": [5], "num_videos": 3,
             "batch_size": 2, "metrics": ["psnr", "ssim"], "val_videos": 2,
             "teco": {"frames": 8, "context_with_actions": 5, "context_without_actions": 2}},
}  # fmt: skip


def test_teco_protocol_through_the_cli(tmp_path, capsys):
    root = tmp_path / "maze"
    for split, n in (("train", 4), ("test", 3)):
        argv = ["data", "make-maze", str(root), "--videos", str(n), "--frames", "8",
                "--image-size", "16", "--split", split, "--quiet"]  # fmt: skip
        assert main(argv) == 0
    cfg = dict(CONFIG, data=dict(CONFIG["data"], root=str(root)))
    config = tmp_path / "maze.yaml"
    config.write_text(yaml.safe_dump(cfg))
    workdir = tmp_path / "run"
    assert main(["train", str(config), "--workdir", str(workdir)]) == 0
    out = tmp_path / "ev"
    capsys.readouterr()
    assert main(["evaluate", str(workdir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "actions (context 5, 3 predicted): " in printed and "psnr" in printed
    assert "skipped no_actions: " in printed  # a VideoPredictor with actions needs them
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["frames"] == 8 and metrics["num_videos"] == 3
    row = metrics["settings"]["actions"]
    assert (row["context"], row["horizon"], row["num_videos"]) == (5, 3, 3)
    assert len(row["per_frame"]["psnr"]) == 3 and set(row["metrics"]) == {"mse", "psnr", "ssim"}
    with np.load(out / "videos_actions.npz") as data:
        assert data["truth"].shape == (2, 8, 3, 16, 16) and data["pred"].shape == (2, 3, 3, 16, 16)
    assert (out / "actions" / "sample.gif").is_file()
    # --eval-set is the Moving-MNIST protocol's; with teco it is a clear error
    assert main(["evaluate", str(workdir), "--eval-set", str(root)]) == 1
    assert "TECO protocol" in capsys.readouterr().err
