"""docs/custom_data.md runs end to end: its data script, config, commands and analysis, at
smaller sizes (fewer sequences, two training steps)."""

from __future__ import annotations

import re
import runpy
import shlex
import sys
from pathlib import Path

import numpy as np

from convssm.cli.main import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "custom_data.md"
SMALL = {
    "train": ["--set", "train.steps=2", "--set", "train.eval_every=2", "--set",
              "train.checkpoint_every=2", "--set", "train.log_every=1", "--set",
              "train.threads=1", "--set", "train.progress=false"],
    "evaluate": ["--videos", "2"],
    "generate": [],
}  # fmt: skip


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_tutorial_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make, analyse = _blocks("python")
    (config,) = _blocks("yaml")
    (commands,) = _blocks("bash")
    Path("make_field.py").write_text(make)
    monkeypatch.setattr(sys, "argv", ["make_field.py", "--sequences", "12"])
    runpy.run_path("make_field.py", run_name="__main__")
    field = np.load("field.npy")
    assert field.shape == (4, 48, 2, 32, 32) and field.dtype == np.float32
    assert 280 < field[:, :, 0].mean() < 296 and 0 < field[:, :, 1].mean() < 2e-3
    Path("field.yaml").write_text(config)
    for line in commands.strip().splitlines():
        argv = shlex.split(line)
        assert argv[0] == "convssm"
        assert main(argv[1:] + SMALL[argv[1]]) == 0, line
    assert Path("runs/field/eval/step_00000002/metrics.json").is_file()
    assert np.load("predictions/predictions.npy").shape == (8, 40, 2, 32, 32)
    capsys.readouterr()
    exec(compile(analyse, "analysis", "exec"), {})
    out = capsys.readouterr().out
    assert "temperature: RMSE" in out and "tracer: RMSE" in out
