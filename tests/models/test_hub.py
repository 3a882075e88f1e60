"""Models load by Hugging Face Hub id (from a hub cache made here, offline) and push to the
hub (to a stub: no test reaches a network)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from hub_cache import add_to_hub_cache
from huggingface_hub import HfApi
from huggingface_hub.utils import filter_repo_objects
from tiny_models import TINY

from convssm.models import (
    VideoPredictor,
    model_kind,
    push_folder_to_hub,
)
from convssm.models.pretrained import parse_hub_id

PUBLISHED = Path(__file__).resolve().parents[2] / "pretrained" / "moving_mnist"
COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


def _model(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    return model_kind(kind).build(TINY[kind])


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    assert a.config == b.config
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("kind", list(TINY))
def test_every_kind_loads_by_hub_id_as_from_its_folder(kind, offline_hub, tmp_path):
    model = _model(kind)
    folder = model.save_pretrained(tmp_path / "local")
    add_to_hub_cache(offline_hub, "owner/tiny", folder, commit=COMMIT_A, refs=("main", "v1"))
    cls = type(model)
    local = cls.from_pretrained(folder)
    for loaded in (
        cls.from_pretrained("owner/tiny"),  # HF_HUB_CACHE, branch main
        cls.from_pretrained("owner/tiny", revision="v1", cache_dir=offline_hub),
        cls.from_pretrained("owner/tiny@" + COMMIT_A, local_files_only=True),
    ):
        _same(loaded, model)
        _same(loaded, local)


def test_the_revision_picks_the_commit(offline_hub, tmp_path):
    old, new = _model("video_predictor", 0), _model("video_predictor", 1)
    add_to_hub_cache(offline_hub, "owner/m", old.save_pretrained(tmp_path / "old"),
                     commit=COMMIT_A, refs=("v1",))  # fmt: skip
    add_to_hub_cache(offline_hub, "owner/m", new.save_pretrained(tmp_path / "new"),
                     commit=COMMIT_B, refs=("main",))  # fmt: skip
    _same(VideoPredictor.from_pretrained("owner/m"), new)
    _same(VideoPredictor.from_pretrained("owner/m", revision="v1"), old)
    _same(VideoPredictor.from_pretrained("owner/m@v1"), old)
    _same(VideoPredictor.from_pretrained("owner/m", revision=COMMIT_A), old)
    with pytest.raises(ValueError, match="names revision 'v1'"):
        VideoPredictor.from_pretrained("owner/m@v1", revision="main")


def test_the_committed_published_folders_load_by_hub_id(offline_hub):
    for folder in sorted(p for p in PUBLISHED.iterdir() if (p / "config.json").is_file()):
        add_to_hub_cache(offline_hub, f"convssm/{folder.name}", folder)
        _same(VideoPredictor.from_pretrained(f"convssm/{folder.name}"),
              VideoPredictor.from_pretrained(folder))  # fmt: skip


def test_offline_and_not_cached_names_the_id(offline_hub):
    with pytest.raises(FileNotFoundError, match=r"hub model 'owner/absent@v2' \(no local folder"):
        VideoPredictor.from_pretrained("owner/absent@v2")
    with pytest.raises(FileNotFoundError, match="'owner/absent'"):
        VideoPredictor.from_pretrained("owner/absent", cache_dir=offline_hub)


def test_the_sha256_check_holds_for_hub_models(offline_hub, tmp_path):
    folder = _model("video_predictor").save_pretrained(tmp_path / "m")
    snapshot = add_to_hub_cache(offline_hub, "owner/m", folder)
    blob = (snapshot / "model.safetensors").resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt or was altered"):
        VideoPredictor.from_pretrained("owner/m")


def test_what_is_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "x").mkdir(parents=True)
    assert parse_hub_id("owner/name") == ("owner/name", None)
    assert parse_hub_id("owner/my-model.v2@refs/pr/1") == ("owner/my-model.v2", "refs/pr/1")
    assert parse_hub_id("runs/x") is None  # an existing folder is local
    assert parse_hub_id(Path("owner/name")) is None  # a Path is always local
    for text in ("name", "/abs/folder", "a/b/c", "./x", "owner/name@", "owner/na me"):
        assert parse_hub_id(text) is None, text
    with pytest.raises(FileNotFoundError, match="no model directory"):
        VideoPredictor.from_pretrained(tmp_path / "missing")
    with pytest.raises(ValueError, match="revision='v1' is for hub ids"):
        VideoPredictor.from_pretrained("runs/x", revision="v1")


@pytest.fixture
def hub_stub(monkeypatch, tmp_path, offline_hub):
    """``HfApi.create_repo`` / ``upload_folder`` replaced: what would be uploaded is copied
    to ``uploads/<n>`` (the patterns applied as huggingface_hub applies them) and recorded."""
    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        sent = tmp_path / "uploads" / str(len(calls))
        sent.mkdir(parents=True)
        names = [str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*")]
        for name in filter_repo_objects(
            names, allow_patterns=kwargs.get("allow_patterns"),
            ignore_patterns=kwargs.get("ignore_patterns"),
        ):  # fmt: skip
            shutil.copy(Path(folder_path) / name, sent / name)
        calls.append(("upload_folder", repo_id, {**kwargs, "sent": sent}))
        return f"commit of {repo_id}"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


@pytest.mark.parametrize("kind", list(TINY))
def test_push_to_hub_uploads_a_loadable_folder_with_a_card(kind, hub_stub, offline_hub):
    model = _model(kind)
    assert model.push_to_hub("me/tiny", private=True) == "commit of me/tiny"
    (_, repo, created), (_, _, upload) = hub_stub
    assert repo == "me/tiny" and created["private"] is True and created["exist_ok"] is True
    sent = upload["sent"]
    assert sorted(p.name for p in sent.iterdir()) == ["README.md", "config.json",
                                                      "model.safetensors"]  # fmt: skip
    card = (sent / "README.md").read_text()
    cls = type(model).__name__
    assert card.startswith("---\nlibrary_name: convssm\n")
    assert f'{cls}.from_pretrained("me/tiny")' in card
    _same(type(model).from_pretrained(sent), model)
    # what was uploaded loads back by id
    add_to_hub_cache(offline_hub, "me/tiny", sent)
    _same(type(model).from_pretrained("me/tiny"), model)


def test_push_to_hub_takes_a_model_card(hub_stub):
    card = "---\nlibrary_name: convssm\n---\n# My model\n"
    _model("video_predictor").push_to_hub("me/m", model_card=card, branch="dev")
    upload = hub_stub[-1][2]
    assert (upload["sent"] / "README.md").read_text() == card and upload["revision"] == "dev"


def test_a_published_folder_is_pushed_as_it_is(hub_stub, tmp_path):
    folder = shutil.copytree(PUBLISHED / "convs5_1digit_roll48_24", tmp_path / "pub")
    (folder / ".model.safetensors.x.tmp").write_bytes(b"an unfinished write")
    push_folder_to_hub(folder, "me/convs5")
    sent = hub_stub[-1][2]["sent"]
    want = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert "README.md" in want and "strip.png" in want
    assert sorted(p.name for p in sent.iterdir()) == want
    for name in want:
        assert (sent / name).read_bytes() == (folder / name).read_bytes()


def test_a_corrupt_folder_is_not_pushed(hub_stub, tmp_path):
    folder = _model("video_predictor").save_pretrained(tmp_path / "m")
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt or was altered"):
        push_folder_to_hub(folder, "me/m")
    assert hub_stub == []
