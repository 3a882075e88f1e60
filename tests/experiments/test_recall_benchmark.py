"""The recall benchmark end to end on a tiny budget: run.py's phases, report.py's scores,
timings and pictures, publish.py's folder and card."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from convssm.models import VideoPredictor
from convssm.train.checkpoint import load_checkpoint

RECALL = Path(__file__).resolve().parents[2] / "experiments" / "recall"


def _run(*args, cwd):
    out = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_phases_report_and_publish(tmp_path):
    runs = tmp_path / "runs"
    _run(RECALL / "run.py", "convs5", "--phases", "4:0.02,8:0.02", "--out", runs, cwd=tmp_path)
    first = json.loads((runs / "convs5" / "delay_4" / "phase.json").read_text())
    second = json.loads((runs / "convs5" / "delay_8" / "phase.json").read_text())
    assert first["init_from"] is None and second["init_from"].endswith("delay_4")
    assert second["steps"] >= 1 and second["rel_recall"] is not None
    assert second["cpu_s_process"] > 0
    # a finished phase is skipped when the command runs again
    again = _run(RECALL / "run.py", "convs5", "--phases", "4:0.02,8:0.02", "--out", runs,
                 cwd=tmp_path)  # fmt: skip
    assert "+ " not in again

    report = tmp_path / "rep"
    _run(RECALL / "report.py", "--runs", runs, "--delays", "4,8", "--videos", "2", "--out",
         report, cwd=tmp_path)  # fmt: skip
    record = json.loads((report / "recall.json").read_text())
    (row,) = record["models"]
    assert row["trained_to"] == 8 and row["curriculum"] == ["convs5:4", "convs5:8"]
    (timed,) = record["timing"]
    assert timed["label"] == "ConvS5" and timed["workdir"] == row["workdir"]
    for d in ("4", "8"):
        cell = row["delays"][d]
        assert cell["videos"] == 2 and cell["rel_recall"] > 0
        cell = timed["delays"][d]
        assert cell["ms_per_frame"] > 0 and cell["peak_rss_mib"] >= cell["rss_before_mib"]
    for name in ("rel_recall.png", "time_per_frame.png", "strip_delay4.png", "strip_delay8.png"):
        assert (report / name).is_file()

    # runs of one config under another root, told apart by a label suffix
    suffixed = tmp_path / "rep_suffix"
    _run(RECALL / "report.py", "--runs", runs, "--delays", "8", "--videos", "2", "--no-timing",
         "--label-suffix", ", again", "--out", suffixed, cwd=tmp_path)  # fmt: skip
    (again_row,) = json.loads((suffixed / "recall.json").read_text())["models"]
    assert again_row["label"] == "ConvS5, again (to 8)"

    # the first layer alone: the kept weights unchanged, a phase record that counts the source
    dropped = tmp_path / "depth1"
    _run(RECALL / "drop_layers.py", runs / "convs5" / "delay_8", dropped, "--depth", "1",
         cwd=tmp_path)  # fmt: skip
    small = VideoPredictor.from_pretrained(dropped)
    assert len(small.sequence.layers) == 1
    source = load_checkpoint(runs / "convs5" / "delay_8", training_state=False)
    kept = small.state_dict()
    assert set(source.weights) - set(kept) == {
        k for k in source.weights if k.startswith("sequence.layers.1.")
    }
    for k, v in kept.items():
        torch.testing.assert_close(v, source.weights[k], rtol=0, atol=0)
    phase = json.loads((dropped / "phase.json").read_text())
    assert phase["init_from"] == str(runs / "convs5" / "delay_8") and phase["cpu_s_process"] == 0
    source_dir = runs / "convs5" / "delay_8"
    refused = subprocess.run([sys.executable, RECALL / "drop_layers.py", source_dir,
                              tmp_path / "no", "--depth", "2"], cwd=tmp_path, capture_output=True,
                             text=True)  # fmt: skip
    assert refused.returncode != 0 and "--depth must be between 1 and 1" in refused.stderr

    # an earlier report's rows join the table and figure, marked with the command that scored them
    earlier = dict(record, command="python experiments/recall/report.py --earlier")
    earlier["models"] = [
        dict(row, workdir="gone", label="Earlier", delays={"4": row["delays"]["4"]})
    ]
    (tmp_path / "earlier.json").write_text(json.dumps(earlier))
    merged_dir = tmp_path / "rep2"
    args = ("--runs", runs, "--delays", "4,8", "--no-timing", "--out", merged_dir)
    table = _run(RECALL / "report.py", *args, "--videos", "2", "--merge", tmp_path / "earlier.json",
                 cwd=tmp_path)  # fmt: skip
    merged = json.loads((merged_dir / "recall.json").read_text())
    assert [r["label"] for r in merged["models"]] == ["Earlier", row["label"]]
    assert merged["models"][0]["scored_by"] == earlier["command"]
    # the earlier timing rows, marked, none measured again
    assert [dict(r, scored_by=None) for r in merged["timing"]] == [
        dict(r, scored_by=None) for r in record["timing"]
    ]
    assert any(
        line.startswith("Earlier") and line.rstrip().endswith("-") for line in table.splitlines()
    )
    again = [*map(str, args), "--videos", "3", "--merge", str(tmp_path / "earlier.json")]
    refused = subprocess.run([sys.executable, RECALL / "report.py", *again], cwd=tmp_path,
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode != 0 and "not comparable" in refused.stderr

    target = tmp_path / "published"
    _run(RECALL / "publish.py", runs / "convs5" / "delay_8", target, "--report",
         report / "recall.json", cwd=tmp_path)  # fmt: skip
    model = VideoPredictor.from_pretrained(target)
    assert model.config.sequence_model == "convs5"
    lineage = json.loads((target / "lineage.json").read_text())
    info = lineage["recall"]
    assert [p["delay"] for p in info["phases"]] == [4, 8]
    assert set(info["card_scores"]) == {"rel_recall@64", "rel_recall@1024"}
    # convssm publish followed both convssm train phases back through train.init_from
    assert [p["step"] for p in lineage["phases"]] == [p["steps"] for p in info["phases"]]
    assert lineage["commands"][-1].startswith("convssm publish ")
    card = (target / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["library_name"] == "convssm" and "convs5" in meta["tags"]
    assert {r["metrics"][0]["name"] for r in meta["model-index"][0]["results"]} == {
        "rel_recall@4", "rel_recall@8"
    }  # fmt: skip
    assert info["commands"][0] == (  # the root the phases ran under, as run.py was given it
        f"python experiments/recall/run.py convs5 --phases 4:0.02,8:0.02 --out {runs.as_posix()}"
    )
    # the report that scored it, as it recorded its own command, and this folder's command
    assert info["commands"][1] == record["command"]
    assert info["commands"][2].endswith(f"--report {(report / 'recall.json').as_posix()}")
    assert all(c in card for c in info["commands"] + lineage["commands"])
    assert card.count("\n## Scores\n") == 1 and "trained up to a delay of 8 frames" in card
    # publishing again over the folder replaces it; a folder holding other files is refused
    _run(RECALL / "publish.py", runs / "convs5" / "delay_8", target, "--report",
         report / "recall.json", cwd=tmp_path)  # fmt: skip
    (target / "training.json").write_text("{}")
    refused = subprocess.run([sys.executable, RECALL / "publish.py", runs / "convs5" / "delay_8",
                              target, "--report", report / "recall.json"], cwd=tmp_path,
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode != 0 and "training.json" in refused.stderr
    (target / "training.json").unlink()

    # the delay sweep reads a published folder and a workdir alike, and writes only under --out
    sweep = tmp_path / "sweep"
    table = _run(RECALL / "delay_sweep.py", target, runs / "convs5" / "delay_8", "--delays", "7,8",
                 "--videos", "2", "--out", sweep, cwd=tmp_path)  # fmt: skip
    record = json.loads((sweep / "sweep.json").read_text())
    assert [set(r["rel_recall"]) for r in record["models"]] == [{"7", "8"}] * 2
    first, second = record["models"]
    assert first["rel_recall"] == pytest.approx(second["rel_recall"])  # the same weights
    assert (sweep / "sweep.png").is_file() and "rel_recall on held-out digits" in table
    # a picture of recalls, from a published folder and a workdir alike, each with its score
    strip = tmp_path / "pictures" / "strip.png"
    printed = _run(RECALL / "strips.py", target, runs / "convs5" / "delay_8", "--delay", "8",
                   "--videos", "2", "--out", strip, cwd=tmp_path)  # fmt: skip
    scores = [line.split("rel_recall ")[1] for line in printed.splitlines() if "rel_recall" in line]
    assert len(scores) == 2 and scores[0] == scores[1]  # the same weights, the same videos
    assert strip.is_file()
    # the slow modes' state: what the digit left and what the delay frames added, by linearity
    slow = tmp_path / "slow"
    _run(RECALL / "slow_state.py", runs / "convs5" / "delay_8", "--delays", "4,8", "--videos", "2",
         "--modes", "2", "--out", slow, cwd=tmp_path)  # fmt: skip
    state = json.loads((slow / "slow_state.json").read_text())
    assert [r["delay"] for r in state["rows"]] == [4, 8] and not state["blank"]
    for r in state["rows"]:
        assert r["digit"] > 0 and r["delay_frames"] > 0 and 0 < r["slowest_kept_over_delay"] <= 1
        assert r["ratio"] == pytest.approx(r["delay_frames"] / r["digit"])
    # every layer's state at the cue: the background alone, the delay frames, the digit
    layers = tmp_path / "layers"
    _run(RECALL / "layer_states.py", runs / "convs5" / "delay_8", "--delays", "4,8", "--videos",
         "2", "--out", layers, cwd=tmp_path)  # fmt: skip
    rows = json.loads((layers / "layer_states.json").read_text())["rows"]
    assert [r["delay"] for r in rows] == [4, 8]
    for r in rows:
        assert len(r["blank"]) == len(r["delay_frames"]) == len(r["digit"]) == 2
        assert min(r["delay_frames"]) > 0 and min(r["digit"]) > 0
        z = r["latents"]  # no gate in this model: its latents are nearly all non-zero
        assert z["delay_nonzero"] > 0.9 and z["digit_nonzero"] > 0.9 and z["delay_mean_abs"] > 0
    # a later sweep joins the earlier rows (not scoring them again), only over the same videos
    merged = tmp_path / "merged"
    _run(RECALL / "delay_sweep.py", target, "--delays", "7,8", "--videos", "2", "--out", merged,
         "--merge", sweep / "sweep.json", cwd=tmp_path)  # fmt: skip
    rows = json.loads((merged / "sweep.json").read_text())["models"]
    assert [r["model"] for r in rows] == [str(runs / "convs5" / "delay_8"), str(target)]
    assert rows[0]["scored_by"] == record["command"] and "scored_by" not in rows[1]
    refused = subprocess.run(
        [sys.executable, RECALL / "delay_sweep.py", target, "--delays", "7,8", "--videos", "3",
         "--out", merged, "--merge", sweep / "sweep.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert refused.returncode != 0 and "not comparable" in refused.stderr


def test_lineage_names_a_folder_that_is_neither_phase_nor_publication(tmp_path):
    sys.path.insert(0, str(RECALL))
    try:
        from report import lineage
    finally:
        sys.path.remove(str(RECALL))
    with pytest.raises(ValueError, match="neither a phase of run.py"):
        lineage(tmp_path)
    (tmp_path / "lineage.json").write_text(json.dumps({"phases": []}))  # convssm publish's alone
    with pytest.raises(ValueError, match="lineage.json with a recall record"):
        lineage(tmp_path)
