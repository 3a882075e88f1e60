"""Published model folders record the SHA-256 of their weights and are checked on load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from convssm.models import VideoPredictor

REPO = Path(__file__).resolve().parents[2]
# every published folder, and the first study's format-1 folders kept as test fixtures
FOLDERS = sorted(REPO.glob("pretrained/*/*/config.json")) + sorted(
    REPO.glob("tests/fixtures/format1/*/config.json")
)


def _saved(tmp_path):
    torch.manual_seed(0)
    model = VideoPredictor(image_size=16, encoder_widths=(8, 16), norm_groups=4, dim=8,
                           sequence_options=dict(state_dim=4, depth=1, norm_groups=4))  # fmt: skip
    return model, model.save_pretrained(tmp_path / "m")


def test_flipped_bytes_in_the_weights_are_refused(tmp_path):
    model, folder = _saved(tmp_path)
    meta = json.loads((folder / "config.json").read_text())
    assert len(meta["weights_sha256"]) == 64
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    for i in range(len(data) - 1000, len(data)):  # 1 000 bytes of float data, not the header
        data[i] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="model.safetensors is corrupt or was altered: its SHA"):
        VideoPredictor.from_pretrained(folder)


def test_folders_without_a_hash_load_with_a_warning(tmp_path):
    model, folder = _saved(tmp_path)
    meta = json.loads((folder / "config.json").read_text())
    del meta["weights_sha256"]
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="records no SHA-256 of its weights"):
        loaded = VideoPredictor.from_pretrained(folder)
    for a, b in zip(loaded.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("config", FOLDERS, ids=lambda c: c.parent.relative_to(REPO).as_posix())
def test_the_committed_folders_verify(config, tmp_path, recwarn):
    folder = config.parent
    VideoPredictor.from_pretrained(folder)
    assert not [w for w in recwarn if "SHA-256" in str(w.message)]
    copy = shutil.copytree(folder, tmp_path / folder.name)
    f = copy / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt or was altered"):
        VideoPredictor.from_pretrained(copy)
