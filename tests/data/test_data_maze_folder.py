"""MazeWorld written in TECO's DMLab npz layout reads back through VideoFolder exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from convssm.cli.main import main
from convssm.data import MazeWorld, VideoFolder, maze_manifest_path, write_maze_folder

KW = dict(num_frames=12, image_size=16, seed=4, split="test")


def test_round_trip_through_video_folder(tmp_path):
    write_maze_folder(tmp_path, 11, **KW)
    files = sorted((tmp_path / "test").glob("*.npz"))
    assert [f.name for f in files[:2]] == ["00000.npz", "00001.npz"] and len(files) == 11
    with np.load(files[3]) as data:
        assert data["video"].shape == (12, 16, 16, 3) and data["video"].dtype == np.uint8
        assert data["actions"].shape == (12,) and np.issubdtype(data["actions"].dtype, np.integer)
    folder = VideoFolder(tmp_path, split="test", seq_len=12)
    direct = MazeWorld(11, **KW)
    assert len(folder) == 11 and folder.with_actions
    for i in (0, 3, 10):  # sorted names are index order: item i is video i
        a, b = folder[i], direct[i]
        torch.testing.assert_close(a["video"], b["video"], rtol=0, atol=0)
        torch.testing.assert_close(a["actions"], b["actions"], rtol=0, atol=0)
    manifest = json.loads(maze_manifest_path(tmp_path, "test").read_text())
    assert manifest["complete"] and manifest["seed"] == 4 and manifest["num_videos"] == 11
    assert manifest["params"]["num_frames"] == 12


def test_interrupted_write_resumes_and_mismatch_is_refused(tmp_path):
    write_maze_folder(tmp_path, 4, **KW)
    target = tmp_path / "test" / "00002.npz"
    before = target.read_bytes()
    target.unlink()  # as if the run had stopped before this video
    (tmp_path / "test" / "00003.npz").write_bytes(b"sentinel")  # existing files are kept
    write_maze_folder(tmp_path, 4, **KW)
    assert target.read_bytes() == before
    assert (tmp_path / "test" / "00003.npz").read_bytes() == b"sentinel"
    with pytest.raises(ValueError, match="seed"):
        write_maze_folder(tmp_path, 4, **{**KW, "seed": 5})
    with pytest.raises(ValueError, match="num_videos"):
        write_maze_folder(tmp_path, 3, **KW)
    write_maze_folder(tmp_path, 3, **{**KW, "seed": 5}, overwrite=True)
    assert len(list((tmp_path / "test").glob("*.npz"))) == 3
    assert not list((tmp_path / "test").glob("*.tmp"))


def test_foreign_npz_files_are_not_overwritten(tmp_path):
    (tmp_path / "train").mkdir()
    np.savez(tmp_path / "train" / "mine.npz", video=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="overwrite"):
        write_maze_folder(tmp_path, 2, num_frames=4, image_size=8)


def test_cli_make_maze(tmp_path, capsys):
    argv = ["data", "make-maze", str(tmp_path), "--videos", "2", "--frames", "5",
            "--image-size", "16", "--seed", "3", "--split", "train", "--quiet",
            "--option", "rooms=4"]  # fmt: skip
    assert main(argv) == 0
    assert "wrote 2 MazeWorld videos" in capsys.readouterr().out
    folder = VideoFolder(tmp_path, split="train", seq_len=5)
    expected = MazeWorld(2, num_frames=5, image_size=16, seed=3, rooms=4)[1]
    torch.testing.assert_close(folder[1]["video"], expected["video"], rtol=0, atol=0)
    assert main(argv[:-2] + ["--option", "colour=3"]) == 1
    assert "colour" in capsys.readouterr().err
    assert main(argv[:-2] + ["--option", "rooms"]) == 1
    assert "KEY=VALUE" in capsys.readouterr().err
