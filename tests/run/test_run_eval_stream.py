"""Streaming evaluation: batch-by-batch scores equal the in-memory reference path; the
memory-mapped video files; eval.eval_set is honoured."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import DataLoader
from train_standin import RandomVideos, StandInPredictor

from convssm.cli.main import main
from convssm.data import write_eval_set
from convssm.metrics import evaluate_predictions
from convssm.models import VideoPredictorConfig
from convssm.run.eval_stream import StreamingEvaluator, VideoArrayWriter
from convssm.train.validation import generate_videos, iter_generated

METRICS = ["psnr", "ssim", "lpips", "fvd"]


class CheapI3D(torch.nn.Module):
    """Stands in for I3D (minutes on a small CPU): 400 fixed samples of the preprocessed
    video as its features. FVD's plumbing, not I3D, is under test here."""

    def __init__(self) -> None:
        super().__init__()
        self.logits = torch.nn.Linear(1, 1)  # where i3d_features looks for the device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        return flat[:, :: flat.shape[1] // 400][:, :400]


def test_streaming_scores_equal_the_in_memory_path(monkeypatch):
    import convssm.metrics as metrics

    monkeypatch.setattr(metrics.InceptionI3d, "from_pretrained", classmethod(lambda c: CheapI3D()))
    torch.manual_seed(0)
    model = StandInPredictor(VideoPredictorConfig(image_size=32, encoder_widths=[8], dim=4))
    data = RandomVideos(n=4, frames=11, size=32)  # I3D needs >= 9 frames
    cpu = torch.device("cpu")

    def batches():  # 3 + 1: FVD chunks of 2 straddle a batch boundary
        return iter(DataLoader(data, batch_size=3))

    truth, pred = generate_videos(model, batches(), 5, 6, cpu)
    want = evaluate_predictions(truth, pred, 5, [4, 6], METRICS, fvd_chunk=2)
    scorer = StreamingEvaluator(  # metrics see 4 frames at a time: sliced along videos and time
        5, [4, 6], METRICS, len(data), (32, 32), fvd_chunk=2, frames_per_call=4
    )
    for t, p in iter_generated(model, batches(), 5, 6, cpu):
        scorer.update(t, p)
    got = scorer.result()
    assert got.skipped == want.skipped == {}  # every metric ran (weights installed)
    assert got.num_videos == want.num_videos == 4
    assert got.per_horizon.keys() == want.per_horizon.keys()
    for h, row in want.per_horizon.items():
        assert set(got.per_horizon[h]) == set(row) and "fvd" in row and "lpips" in row
        for k, v in row.items():
            assert got.per_horizon[h][k] == pytest.approx(v, rel=1e-5, abs=1e-9), (h, k)
    for k, curve in want.per_frame.items():
        assert got.per_frame[k] == pytest.approx(curve, rel=1e-5, abs=1e-9), k


def test_fvd_with_fewer_videos_than_a_chunk_is_skipped_with_the_reason():
    scorer = StreamingEvaluator(2, [2], ["psnr", "fvd"], 3, (32, 32), fvd_chunk=4)
    assert "at least one full chunk of 4 videos, got 3" in scorer.skipped["fvd"]
    with pytest.raises(ValueError, match="no videos"):
        scorer.result()


def test_video_array_writer_appends_and_moves_into_place(tmp_path):
    path = tmp_path / "v.npy"
    writer = VideoArrayWriter(path, 3, (2, 1, 4, 4))
    writer.append(torch.full((2, 2, 1, 4, 4), 1.0))
    assert not path.exists()  # complete files only
    with pytest.raises(ValueError, match="got 2 videos, 3 were announced"):
        writer.close()
    writer.append(torch.full((1, 2, 1, 4, 4), -1.0))
    with pytest.raises(ValueError, match="more than the 3"):
        writer.append(torch.zeros(1, 2, 1, 4, 4))
    writer.close()
    array = np.load(path, mmap_mode="r")
    assert array.dtype == np.uint8 and array.shape == (3, 2, 1, 4, 4)
    assert (array[:2] == 255).all() and (array[2] == 0).all()


def test_evaluate_honours_the_configs_eval_set(tmp_path):
    eval_set = tmp_path / "evalset"
    write_eval_set(eval_set, num_videos=2, num_frames=6, image_size=16, digit_size=8)
    config = {
        "name": "tiny",
        "model": {"image_size": 16, "encoder_widths": [4, 8], "norm_groups": 4, "dim": 8,
                  "sequence_options": {"depth": 1, "state_dim": 4, "norm_groups": 4}},
        "data": {"seq_len": 4, "options": {"digit_size": 8}},
        "optim": {"warmup_steps": 1},
        "train": {"steps": 1, "batch_size": 1, "progress": False, "threads": 1},
        "eval": {"context": 2, "horizons": [4], "num_videos": 5, "batch_size": 1,
                 "metrics": ["psnr"], "val_videos": 1, "eval_set": str(eval_set)},
    }  # fmt: skip
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "c.yaml"), "--workdir", str(tmp_path / "run")]) == 0
    assert main(["evaluate", str(tmp_path / "run"), "--out", str(tmp_path / "ev")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["eval_set"] == str(eval_set) and metrics["num_videos"] == 2  # not 5
    assert np.load(tmp_path / "ev" / "videos_pred.npy").shape == (2, 4, 1, 16, 16)
