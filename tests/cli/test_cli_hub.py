"""``convssm generate`` / ``evaluate`` take a Hugging Face Hub id wherever they take a model
folder (from a hub cache made here, offline: no test reaches a network)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import torch
from hub_cache import add_to_hub_cache

from convssm.cli.main import main
from convssm.models import VideoPredictor
from convssm.run.inference import default_out_dir, load_trained

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = REPO / "tests" / "fixtures" / "format1"  # the first study's folders
COMMIT = "c" * 40


def test_load_trained_by_hub_id_reads_the_folder_with_its_experiment(offline_hub):
    snapshot = add_to_hub_cache(offline_hub, "owner/convs5", PUBLISHED / "convs5", commit=COMMIT)
    local, hub = load_trained(PUBLISHED / "convs5", "cpu"), load_trained("owner/convs5", "cpu")
    assert hub.path == snapshot and hub.config == local.config and hub.info is None
    for a, b in zip(hub.model.state_dict().values(), local.model.state_dict().values(),
                    strict=True):  # fmt: skip
        assert torch.equal(a, b)


def test_generate_and_evaluate_take_a_hub_id(offline_hub, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    add_to_hub_cache(offline_hub, "owner/convs5", PUBLISHED / "convs5", commit=COMMIT)
    add_to_hub_cache(offline_hub, "owner/convlstm", PUBLISHED / "convlstm", commit=COMMIT,
                     refs=("v1",))  # fmt: skip
    assert main(["generate", "owner/convs5", "--horizon", "2", "--context", "3"]) == 0
    # written under the working directory, never inside the hub cache
    out = Path("convssm_outputs") / "owner--convs5" / "generate" / COMMIT[:12]
    assert np.load(out / "generated.npz")["pred"].shape == (2, 1, 32, 32)
    argv = ["evaluate", "owner/convlstm@v1", "--videos", "2", "--out", str(tmp_path / "e"),
            "--set", "eval.horizons=[2]", "--set", "eval.metrics=[psnr]"]  # fmt: skip
    assert main(argv) == 0
    assert "psnr" in json.loads((tmp_path / "e" / "metrics.json").read_text())["per_horizon"]["2"]
    assert not any(p.name in ("generate", "eval") for p in offline_hub.rglob("*"))


def test_an_uncached_hub_id_offline_is_a_clear_error(offline_hub, capsys):
    for command in ("generate", "evaluate"):
        assert main([command, "owner/absent@v3"]) == 1
        err = capsys.readouterr().err
        assert f"convssm {command}: error: hub model 'owner/absent@v3' (no local" in err
        assert "is not in the hub cache" in err
        assert "HF_HUB_OFFLINE=1" in err


def test_default_out_dir_keeps_out_of_the_hub_cache_and_model_folders(tmp_path):
    snapshot = tmp_path / "hub" / "models--owner--name" / "snapshots" / COMMIT
    outputs = Path("convssm_outputs")
    assert default_out_dir(snapshot, "eval") == outputs / "owner--name" / "eval" / COMMIT[:12]
    run = tmp_path / "run" / "checkpoints" / "step_00000010"
    assert default_out_dir(run, "eval") == tmp_path / "run" / "eval" / "step_00000010"
    assert default_out_dir(tmp_path / "model", "eval") == outputs / "model" / "eval"
    assert default_out_dir(Path("."), "generate") == outputs / Path.cwd().name / "generate"


def _doc_section() -> str:
    text = (REPO / "docs" / "training.md").read_text()
    return text.split("## Models on the Hugging Face Hub\n", 1)[1].split("\n## ", 1)[0]


def test_the_docs_hub_section_runs_as_written(offline_hub, tmp_path, monkeypatch):
    """Its code blocks run in a checkout; its hub examples run on a cache holding the folder
    under the id they name."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pretrained").symlink_to(REPO / "pretrained")
    section = _doc_section()
    python = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    shell = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert python and shell
    for block in python:
        exec(block, {})
    for line in "".join(shell).splitlines():
        assert main(shlex.split(line)[1:]) == 0
    assert (tmp_path / "gen" / "generated.npz").is_file()
    folder = REPO / "pretrained" / "moving_mnist" / "convs5_1digit_roll48_24"
    add_to_hub_cache(offline_hub, "you/convs5-mnist", folder, commit=COMMIT, refs=("main", "v1"))
    spans = re.findall(r"`([^`]*you/convs5-mnist[^`]*)`", section.replace("\n", " "))
    loads = [s for s in spans if s.startswith("VideoPredictor.from_pretrained(")]
    commands = [s for s in spans if s.startswith("convssm ")]
    assert len(loads) == 2 and len(commands) == 1
    for expr in loads:
        assert eval(expr, {"VideoPredictor": VideoPredictor}).config.image_size == 32
    assert main(shlex.split(commands[0])[1:]) == 0
    made = tmp_path / "convssm_outputs" / "you--convs5-mnist" / "generate" / COMMIT[:12]
    assert (made / "generated.npz").is_file()
