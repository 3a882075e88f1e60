"""VideoFolder on small datasets written here in exactly TECO's layouts, and its error cases.

mp4 tolerance: the files are written with libx264rgb at crf 0 (lossless RGB), so frames
must come back exactly (0 grey levels). Where only libx264 (YUV 4:4:4, crf 0) exists, the
RGB<->YUV rounding allows up to 3 grey levels (3 / 127.5 in [-1, 1] units).
"""

from __future__ import annotations

import zipfile

import av
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from convssm.data import VideoFolder

T, H, W = 20, 16, 16
if "libx264rgb" in av.codecs_available:
    CODEC, PIX_FMT, TOLERANCE = "libx264rgb", "rgb24", 0
else:
    CODEC, PIX_FMT, TOLERANCE = "libx264", "yuv444p", 3


def _video(seed: int, frames: int = T) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(frames, H, W, 3), dtype=np.uint8)


def _actions(seed: int, frames: int = T) -> np.ndarray:
    return np.random.default_rng(seed + 100).integers(0, 6, size=frames).astype(np.int32)


def _write_mp4(path, video: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODEC, rate=10)
        stream.width, stream.height, stream.pix_fmt = video.shape[2], video.shape[1], PIX_FMT
        stream.options = {"crf": "0"}
        for frame in video:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _save_npz(path, compressed=False, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)


def _as_uint8(video: torch.Tensor) -> np.ndarray:
    """(T, C, H, W) in [-1, 1] -> (T, H, W, C) uint8."""
    return ((video.permute(0, 2, 3, 1).numpy() + 1.0) * 127.5).round().astype(np.int64)


@pytest.fixture
def npz_root(tmp_path):
    root = tmp_path / "dmlab"
    _save_npz(root / "train" / "a" / "0.npz", video=_video(0), actions=_actions(0))
    _save_npz(root / "train" / "b" / "c" / "1.npz", True, video=_video(1), actions=_actions(1))
    _save_npz(root / "test" / "2.npz", video=_video(2), actions=_actions(2))
    return root


@pytest.fixture
def mp4_root(tmp_path):
    root = tmp_path / "minecraft"
    for k, sub in enumerate(["train/x", "train/y/z"]):
        _write_mp4(root / sub / f"{k}.mp4", _video(k))
        _save_npz(root / sub / f"{k}.npz", actions=_actions(k))
    return root


def test_npz_folder_loads_back_equal_with_actions(npz_root):
    ds = VideoFolder(npz_root, "train", seq_len=8)
    assert len(ds) == 2 and ds.with_actions
    for i, seed in enumerate([0, 1]):
        item = ds[i]
        start = ds.window_start(i)
        assert item["video"].shape == (8, 3, H, W) and item["video"].dtype == torch.float32
        assert item["video"].min() >= -1 and item["video"].max() <= 1
        np.testing.assert_array_equal(_as_uint8(item["video"]), _video(seed)[start : start + 8])
        assert item["actions"].dtype == torch.int64
        np.testing.assert_array_equal(item["actions"].numpy(), _actions(seed)[start : start + 8])
    assert len(VideoFolder(npz_root, "test", seq_len=T)) == 1
    starts = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        starts.add(ds.window_start(0))
    assert len(starts) > 1  # windows are random ...
    again = VideoFolder(npz_root, "train", seq_len=8)
    again.set_epoch(5)
    assert again.window_start(0) == ds.window_start(0)  # ... and reproducible


def test_mp4_folder_loads_back_within_codec_tolerance_with_actions(mp4_root):
    ds = VideoFolder(mp4_root, "train", seq_len=12)
    assert len(ds) == 2 and ds.with_actions
    for i in range(2):
        item = ds[i]
        start = ds.window_start(i)
        want = _video(i)[start : start + 12].astype(np.int64)
        assert np.abs(_as_uint8(item["video"]) - want).max() <= TOLERANCE
        np.testing.assert_array_equal(item["actions"].numpy(), _actions(i)[start : start + 12])
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["video"].shape == (2, 12, 3, H, W) and batch["actions"].shape == (2, 12)


def test_mp4_without_actions_and_mixed_folders(tmp_path, mp4_root):
    root = tmp_path / "habitat"
    _write_mp4(root / "train" / "v.mp4", _video(3))
    item = VideoFolder(root, "train", seq_len=5)[0]
    assert set(item) == {"video"}
    with pytest.raises(ValueError, match="no actions"):
        VideoFolder(root, "train", seq_len=5, actions="require")
    _write_mp4(mp4_root / "train" / "extra.mp4", _video(4))
    with pytest.raises(ValueError, match=r"some videos .* have actions .*extra.mp4"):
        VideoFolder(mp4_root, "train", seq_len=5)
    assert set(VideoFolder(mp4_root, "train", seq_len=5, actions="ignore")[0]) == {"video"}


@pytest.mark.parametrize(
    ("arrays", "error", "message"),
    [
        ({"video": _video(0).astype(np.float32)}, TypeError, "must be uint8"),
        ({"video": _video(0)[..., 0]}, ValueError, r"shape \(T, H, W, 1 or 3\)"),
        ({"video": _video(0), "actions": _actions(0)[:5]}, ValueError, r"shape \(20,\)"),
        ({"video": _video(0), "actions": np.zeros(T)}, TypeError, "integer"),
        ({"frames": _video(0)}, ValueError, "no array 'video'"),
        ({"video": _video(0, frames=4)}, ValueError, "shorter than seq_len"),
    ],
)
def test_bad_npz_files_raise_naming_the_file(tmp_path, arrays, error, message):
    _save_npz(tmp_path / "train" / "bad.npz", **arrays)
    with pytest.raises(error, match=message) as info:
        VideoFolder(tmp_path, "train", seq_len=8)
    assert "bad.npz" in str(info.value)


def test_truncated_npz_and_unreadable_mp4(tmp_path):
    _save_npz(tmp_path / "a" / "train" / "cut.npz", video=_video(0), actions=_actions(0))
    path = tmp_path / "a" / "train" / "cut.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="cut.npz"):
        VideoFolder(tmp_path / "a", "train", seq_len=8)
    junk = tmp_path / "b" / "train" / "junk.mp4"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(ValueError, match="junk.mp4"):
        VideoFolder(tmp_path / "b", "train", seq_len=8)
    _write_mp4(tmp_path / "c" / "train" / "short.mp4", _video(0, frames=6))
    with pytest.raises(ValueError, match="short.mp4.*shorter than seq_len"):
        VideoFolder(tmp_path / "c", "train", seq_len=8)


def test_missing_paths(tmp_path, npz_root):
    with pytest.raises(ValueError, match="not found"):
        VideoFolder(tmp_path / "nothing", "train", seq_len=4)
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="no npz or mp4"):
        VideoFolder(tmp_path / "empty", "train", seq_len=4)
    ds = VideoFolder(npz_root, "train", seq_len=4)
    ds.files[0].path.unlink()  # disappears after indexing
    with pytest.raises(ValueError, match="0.npz"):
        ds[0]


def test_skip_warns_and_never_hides_a_bad_file(npz_root):
    bad = npz_root / "train" / "zz_bad.npz"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("video.npy", b"not an npy file")
    with pytest.raises(ValueError, match="zz_bad.npz"):
        VideoFolder(npz_root, "train", seq_len=8)
    with pytest.warns(RuntimeWarning, match="skipping bad video file.*zz_bad.npz"):
        ds = VideoFolder(npz_root, "train", seq_len=8, on_error="skip")
    assert len(ds) == 2
    ds.files[0].path.unlink()
    with pytest.warns(RuntimeWarning, match="0.npz"):
        item = ds[0]  # falls through to the next video, with a warning
    start = ds.window_start(1)
    np.testing.assert_array_equal(_as_uint8(item["video"]), _video(1)[start : start + 8])


def test_a_wrong_layout_or_an_unreadable_file_says_what_was_expected(tmp_path):
    flat = tmp_path / "flat"  # videos straight in the root, no split folder
    flat.mkdir()
    np.savez(flat / "a.npz", video=_video(0))
    with pytest.raises(ValueError, match=r"flat/test.*<root>/<split>/.*1 video file\(s\) directly"):
        VideoFolder(flat, "test", seq_len=4)
    other = tmp_path / "other"  # a split under another name
    (other / "valid").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"holds the folders \['valid'\]"):
        VideoFolder(other, "test", seq_len=4)
    bad = tmp_path / "bad" / "test"
    bad.mkdir(parents=True)
    (bad / "clip.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match=r"clip.mp4.*expected an npz archive .*'video'.*mp4"):
        VideoFolder(tmp_path / "bad", "test", seq_len=4)
    (bad / "clip.mp4").unlink()
    np.savez(bad / "frames.npz", frames=_video(0))  # the wrong array name
    with pytest.raises(ValueError, match=r"no array 'video' \(arrays: \['frames'\]\); expected"):
        VideoFolder(tmp_path / "bad", "test", seq_len=4)
