"""An installed wheel finds the demo's configs and published model and the benchmarks'
scripts as package data, not through the source tree or the current directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
from convssm.run.demo import find_demo_config, find_demo_model
from convssm.run.recall_demo import find_recall_models
from convssm.cli.bench import available
from convssm.train.config import load_config
print(find_demo_config())
print(load_config(find_demo_config()).name)
print(",".join(sorted(available())))
print(find_demo_model())
print(",".join(str(p) for p in find_recall_models().values()))
"""


def test_wheel_ships_configs_and_benchmarks(tmp_path):
    pytest.importorskip("hatchling")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("convssm-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(site)
    assert "convssm/configs/cpu/convs5_small.yaml" in names
    assert "convssm/benchmarks/bench_train.py" in names
    assert "convssm/pretrained/moving_mnist/convs5_1digit_roll48_24/model.safetensors" in names
    assert "convssm/pretrained/recall/convs5_rectified_scratch/model.safetensors" in names
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    config, name, benches, model, recall = run.stdout.strip().splitlines()
    assert recall.split(",") == [
        str(site / "convssm" / "pretrained" / "recall" / name)
        for name in ("convs5_rectified_scratch", "convlstm_delay256")
    ]
    published = site / "convssm" / "pretrained" / "moving_mnist"
    assert Path(model) == published / "convs5_1digit_roll48_24"
    assert Path(config) == site / "convssm" / "configs" / "cpu" / "convs5_small.yaml"
    assert name == "convs5_small" and "train" in benches.split(",")
