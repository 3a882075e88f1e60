"""``convssm data encode`` / ``encode_folder`` and the ``CodeFolder`` that reads the cache:
codes equal the tokenizer's, actions travel along, an interrupted run resumes, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from convssm.cli.main import main
from convssm.data import CodeFolder
from convssm.models import VQTokenizer
from convssm.run import encode as encode_module
from convssm.run.encode import default_codes_dir, encode_folder


def _tokenizer():
    torch.manual_seed(0)
    return VQTokenizer(
        image_size=16, channels=8, channel_mult=[1, 2], num_res_blocks=1, norm_groups=4,
        embed_dim=4, codebook_size=16, attention=False,
    ).eval()  # fmt: skip


def _folder(root, frames=5):
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("test", 1)):
        for i in range(n):
            path = root / split / f"sub{i}" / f"{i}.npz"
            path.parent.mkdir(parents=True)
            video = rng.integers(0, 256, (frames, 16, 16, 3), dtype=np.uint8)
            np.savez(path, video=video, actions=rng.integers(0, 6, frames))
    return root


def test_cli_encode_writes_codes_the_tokenizer_gives_and_code_folder_reads_them(tmp_path):
    root = _folder(tmp_path / "maze")
    tok = _tokenizer()
    tok.save_pretrained(tmp_path / "tok")
    assert main(["data", "encode", str(root), "--tokenizer", str(tmp_path / "tok"), "--quiet"]) == 0
    out = default_codes_dir(root)
    assert out == tmp_path / "maze.codes"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"] == {"test": 1, "train": 2}
    assert not (out / "encoding.json").exists()
    with np.load(root / "train/sub1/1.npz") as src, np.load(out / "train/sub1/1.npz") as got:
        video = torch.from_numpy(src["video"]).permute(0, 3, 1, 2).float() / 127.5 - 1
        want = tok.encode(video[None])[0]
        assert got["codes"].dtype == np.uint16
        assert np.array_equal(got["codes"], want.numpy())
        assert np.array_equal(got["actions"], src["actions"])
    ds = CodeFolder(out, "train", seq_len=3)
    assert len(ds) == 2 and ds.codebook_size == 16 and ds.latent_size == 8
    item = ds[1]
    s = ds.window_start(1)
    assert torch.equal(item["codes"], want[s : s + 3])
    assert item["actions"].dtype == torch.int64 and item["actions"].shape == (3,)
    # a second run refuses to overwrite unless asked
    assert main(["data", "encode", str(root), "--tokenizer", str(tmp_path / "tok")]) == 1
    args = ["data", "encode", str(root), "--tokenizer", str(tmp_path / "tok"), "--overwrite"]
    assert main([*args, "--quiet"]) == 0


def test_interrupted_encoding_resumes_and_is_refused_until_finished(tmp_path, monkeypatch):
    root = _folder(tmp_path / "v")
    tok = _tokenizer()
    real, calls = encode_module._encode, []

    def flaky(*args, **kw):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(encode_module, "_encode", flaky)
    with pytest.raises(KeyboardInterrupt):
        encode_folder(root, tok, progress=False)
    out = default_codes_dir(root)
    with pytest.raises(ValueError, match="not a finished code cache"):
        CodeFolder(out, "train", seq_len=2)
    done = sorted(out.rglob("*.npz"))
    assert len(done) == 2
    stamps = [p.stat().st_mtime_ns for p in done]
    monkeypatch.setattr(encode_module, "_encode", real)
    with pytest.raises(ValueError, match="started with another tokenizer"):
        encode_folder(root, VQTokenizer(tok.config, codebook_size=8), progress=False)
    encode_folder(root, tok, progress=False)
    assert [p.stat().st_mtime_ns for p in done] == stamps  # kept, not re-encoded
    assert len(CodeFolder(out, "train", seq_len=2)) == 2


def test_code_folder_errors(tmp_path):
    root = _folder(tmp_path / "v", frames=3)
    out = encode_folder(root, _tokenizer(), progress=False)
    with pytest.raises(ValueError, match="shorter than seq_len=4"):
        CodeFolder(out, "train", seq_len=4)
    with pytest.raises(ValueError, match="code directory not found"):
        CodeFolder(out, "val", seq_len=2)
    with pytest.raises(ValueError, match="no split folders"):
        encode_folder(tmp_path / "v" / "train" / "sub0", _tokenizer(), progress=False)
