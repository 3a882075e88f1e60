"""``convssm publish``: two tiny real phases trained with ``convssm train``, published as a
folder that loads, with a model card whose front matter and commands are the runs' own."""

from __future__ import annotations

import json
import re
import shlex

import pytest
import torch
import yaml

from convssm.cli.main import build_parser, main
from convssm.models import VideoPredictor
from convssm.train.checkpoint import load_checkpoint
from convssm.train.runlog import read_jsonl

CONFIG = {
    "name": "tiny_phase1",
    "model": {"image_size": 16, "encoder_widths": [8, 8], "norm_groups": 4, "dim": 8,
              "sequence_options": {"depth": 1, "state_dim": 4, "norm_groups": 4}},
    "data": {"seq_len": 5, "num_digits": 1, "options": {"digit_size": 8}},
    "optim": {"lr": 1e-3, "warmup_steps": 1},
    "train": {"steps": 4, "batch_size": 2, "log_every": 1, "progress": False, "threads": 1,
              "precision": "fp32", "device": "cpu", "rollout_context": 2, "rollout_start": 0.5,
              "checkpoint_every": 1000, "keep_checkpoints": 5},
    "eval": {"context": 2, "horizons": [3], "val_videos": 2, "batch_size": 2,
             "metrics": ["psnr", "ssim"], "score_videos": 3, "score_context": 2,
             "score_horizon": 12, "score_count": 2},
}  # fmt: skip


def _front_matter(text: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "the card has no YAML front matter"
    return yaml.safe_load(match.group(1))


def test_publish_two_phases_from_their_records(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the commands the runs record are relative, as typed
    (tmp_path / "phase1.yaml").write_text(yaml.safe_dump(CONFIG))
    second = {**CONFIG, "name": "tiny_phase2",
              "train": {**CONFIG["train"], "steps": 2, "init_from": "runs/one"}}  # fmt: skip
    (tmp_path / "phase2.yaml").write_text(yaml.safe_dump(second))
    assert main(["train", "phase1.yaml", "--workdir", "runs/one"]) == 0
    assert main(["train", "phase2.yaml", "--workdir", "runs/two", "--set", "train.seed=1"]) == 0

    assert main(["publish", "runs/two", "--step", "2", "--out", "published/tiny"]) == 0
    out = tmp_path / "published" / "tiny"
    model = VideoPredictor.from_pretrained(out)
    weights = load_checkpoint("runs/two/checkpoints/step_00000002").weights
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert (out / "experiment.yaml").is_file() and (out / "strip.png").is_file()
    lineage = json.loads((out / "lineage.json").read_text())
    assert [(p["name"], p["step"]) for p in lineage["phases"]] == [
        ("tiny_phase1", 4),
        ("tiny_phase2", 2),
    ]
    assert lineage["steps_total"] == 6
    assert lineage["phases"][1]["start"] == {
        "kind": "checkpoint",
        "checkpoint": "runs/one/checkpoints/step_00000004",
        "step": 4,
    }
    for phase in lineage["phases"]:
        assert phase["wall_s"] > 0 and phase["cpu_s"] > 0
        assert phase["sessions"][0]["threads"] == 1

    card = (out / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["library_name"] == "convssm" and "video-prediction" in meta["tags"]
    assert meta["datasets"] == ["mnist"]
    (result,) = meta["model-index"][0]["results"]
    row = read_jsonl(tmp_path / "runs" / "two" / "scores.jsonl")[-1]
    got = {m["type"]: m["value"] for m in result["metrics"]}
    assert got and all(v == round(row[k], 4) for k, v in got.items())
    assert "| 2: `tiny_phase2` | `runs/two` | 2 |" in card and "In all 6 steps" in card

    # the card's commands: both trainings as typed, then this publish; each parses
    (block,) = re.findall(r"```bash\n(.*?)```", card, re.S)
    commands = block.strip().splitlines()
    assert commands == [
        "convssm train phase1.yaml --workdir runs/one",
        "convssm train phase2.yaml --workdir runs/two --set train.seed=1",
        "convssm publish runs/two --step 2 --out published/tiny",
    ]
    parser = build_parser()
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "convssm"
        parser.parse_args(words[1:])

    # from another directory the earlier phase is found through the run's own records
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["publish", "../runs/two", "--step", "2", "--out", "again"]) == 0
    again = json.loads((elsewhere / "again" / "lineage.json").read_text())
    assert [p["name"] for p in again["phases"]] == ["tiny_phase1", "tiny_phase2"]
    assert again["phases"][1]["start"]["checkpoint"] == "../runs/one/checkpoints/step_00000004"

    # publishing again into a folder replaces what a publication writes, the picture too;
    # a folder holding another file is refused and left untouched
    assert main(["publish", "../runs/one", "--step", "2", "--out", "again"]) == 0
    again = json.loads((elsewhere / "again" / "lineage.json").read_text())
    assert (again["run"], again["step"]) == ("tiny_phase1", 2)
    picture = (tmp_path / "runs" / "one" / "strip_000002.png").read_bytes()
    assert (elsewhere / "again" / "strip.png").read_bytes() == picture
    (elsewhere / "again" / "training.json").write_text("{}")
    assert main(["publish", "../runs/two", "--step", "2", "--out", "again"]) == 1
    assert "holds files a publication does not write (['training.json'])" in (
        capsys.readouterr().err
    )
    assert json.loads((elsewhere / "again" / "lineage.json").read_text())["step"] == 2


def test_publish_follows_three_phases_back(tmp_path, monkeypatch):
    """Each earlier phase is found from its own run's records (a lineage of three once
    looped on the second phase's start)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p1.yaml").write_text(yaml.safe_dump(CONFIG))
    for k, before in ((2, "runs/one"), (3, "runs/two")):
        later = {**CONFIG, "name": f"tiny_phase{k}",
                 "train": {**CONFIG["train"], "steps": 2, "init_from": before}}  # fmt: skip
        (tmp_path / f"p{k}.yaml").write_text(yaml.safe_dump(later))
    for k, name in ((1, "one"), (2, "two"), (3, "three")):
        assert main(["train", f"p{k}.yaml", "--workdir", f"runs/{name}"]) == 0
    assert main(["publish", "runs/three", "--out", "published/three"]) == 0
    lineage = json.loads((tmp_path / "published" / "three" / "lineage.json").read_text())
    assert [(p["name"], p["step"]) for p in lineage["phases"]] == [
        ("tiny_phase1", 4), ("tiny_phase2", 2), ("tiny_phase3", 2)
    ]  # fmt: skip
    assert lineage["steps_total"] == 8 and len(lineage["commands"]) == 4


def test_publish_refuses_a_folder_without_a_run(tmp_path, capsys):
    assert main(["publish", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert "has no checkpoint under" in capsys.readouterr().err


def test_publish_names_the_steps_a_run_keeps(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    assert main(["train", "c.yaml", "--workdir", "runs/one"]) == 0
    capsys.readouterr()
    assert main(["publish", "runs/one", "--step", "3", "--out", "x"]) == 1
    assert "keeps no checkpoint of step 3; it keeps steps [2, 4]" in capsys.readouterr().err


def test_commands_name_paths_inside_the_working_directory_relative_to_it(tmp_path, monkeypatch):
    """A run started with absolute paths (as a script's subprocess does) records them relative
    to the working directory; a record made before that is rewritten on publishing."""
    from convssm._files import relative_command

    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    argv = ["train", str(tmp_path / "c.yaml"), "--workdir", str(tmp_path / "runs" / "one")]
    assert main(argv) == 0
    (session,) = read_jsonl(tmp_path / "runs" / "one" / "sessions.jsonl")
    assert session["command"] == "convssm train c.yaml --workdir runs/one"
    # an older record with the absolute paths: publishing writes them relative
    session["command"] = shlex.join(["convssm", "train", *argv[1:]])
    (tmp_path / "runs" / "one" / "sessions.jsonl").write_text(json.dumps(session) + "\n")
    assert main(["publish", "runs/one", "--out", "published/one"]) == 0
    lineage = json.loads((tmp_path / "published" / "one" / "lineage.json").read_text())
    assert lineage["commands"][0] == "convssm train c.yaml --workdir runs/one"
    assert str(tmp_path) not in (tmp_path / "published" / "one" / "README.md").read_text()
    # paths outside the directory, and values after "=", as the rule says
    line = f"convssm train /elsewhere/c.yaml --set data.root={tmp_path / 'd'} --set k=v"
    assert relative_command(line, tmp_path) == (
        "convssm train /elsewhere/c.yaml --set data.root=d --set k=v"
    )


def test_card_before_scores_cuts_retitles_and_refuses_a_changed_card():
    from convssm.train.publish import card_before_scores

    card = "---\nlibrary_name: convssm\n---\n\n# old: title\n\ntext\n\n## Scores\n\n| a |\n"
    head = card_before_scores(card, "# new title")
    assert head == "---\nlibrary_name: convssm\n---\n\n# new title\n\ntext\n"
    assert card_before_scores(card, "# t", front_matter=False) == "\n# t\n\ntext\n"
    with pytest.raises(ValueError, match="no '## Scores' section"):
        card_before_scores(card.replace("## Scores", "## Results"), "# t")
