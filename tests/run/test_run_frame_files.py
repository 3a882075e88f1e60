"""Array files written a frame at a time: the same bytes as numpy's own writers, nothing left
behind by an abort, and a clear error for a file left short."""

from __future__ import annotations

import numpy as np
import pytest

from convssm.run.frame_files import NpyFrameWriter, NpzFrameWriter


def test_npz_written_frame_by_frame_reads_as_savez_compressed(tmp_path):
    rng = np.random.default_rng(0)
    context = rng.integers(0, 256, (3, 1, 4, 4), np.uint8)
    pred = rng.integers(0, 256, (7, 1, 4, 4), np.uint8)
    with NpzFrameWriter(tmp_path / "g.npz") as w:
        w.write("context", context)
        w.begin("pred", pred.shape, np.uint8)
        for frame in pred:
            w.append(frame[None])
        w.end()
        w.close()
    got = np.load(tmp_path / "g.npz")
    assert got.files == ["context", "pred"]
    np.testing.assert_array_equal(got["context"], context)
    np.testing.assert_array_equal(got["pred"], pred)
    assert [p.name for p in tmp_path.iterdir()] == ["g.npz"]


def test_npz_member_left_short_is_refused_and_removed(tmp_path):
    w = NpzFrameWriter(tmp_path / "g.npz")
    w.begin("pred", (3, 2), np.uint8)
    w.append(np.zeros((1, 2), np.uint8))
    with pytest.raises(ValueError, match=r"'pred' of \(3, 2\) is not complete"):
        w.end()
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_npy_frames_land_at_their_sequence_and_time(tmp_path):
    values = np.random.default_rng(1).normal(size=(3, 5, 2, 4, 4)).astype(np.float32)
    w = NpyFrameWriter(tmp_path / "p.npy", 3, 5, (2, 4, 4))
    for t in range(5):
        w.put(0, t, values[:2, t])
        w.put(2, t, values[2:, t])
    np.testing.assert_array_equal(np.load(w.close()), values)


def test_npy_missing_frames_are_refused_and_nothing_is_published(tmp_path):
    w = NpyFrameWriter(tmp_path / "p.npy", 1, 4, (2,), single=True)
    w.put(0, 0, np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match="1 of 4 frames were written"):
        w.close()
    assert list(tmp_path.iterdir()) == []


def test_an_exception_inside_the_block_removes_the_unfinished_file(tmp_path):
    with pytest.raises(RuntimeError), NpyFrameWriter(tmp_path / "p.npy", 1, 2, (2,)) as w:
        w.put(0, 0, np.ones((1, 2), np.float32))
        raise RuntimeError("generation failed")
    assert list(tmp_path.iterdir()) == []
