"""Make the MazeWorld study's data once, then train each model for the same CPU-time budget.

    python experiments/maze/run.py --out runs/maze --cpu-minutes 12 [--models convs5,convlstm]

Data (skipped when ``OUT/data`` already holds it): ``--train-videos`` videos of
``--train-frames`` frames (``train``) and ``--test-videos`` of ``--test-frames`` (``test``),
32x32 RGB with actions, written by ``convssm.data.write_maze_folder`` (what ``convssm data
make-maze`` runs) in TECO's DMLab layout, with the manifests that let study.py regenerate each
test video's trajectory.

Training: ``convssm train experiments/maze/configs/MODEL.yaml --workdir OUT/runs/MODEL`` in a
subprocess (one thread), stopped by ``train.time_limit_s`` on the CPU clock. Rerunning the
same command skips finished models and resumes an interrupted one from its newest checkpoint
with what is left of its budget: every attempt's CPU time is appended to
``OUT/runs/MODEL/attempts.jsonl`` (``cpu_s_process``, all of the subprocess: start-up, data,
validation; ``cpu_s_training``, the training loop's own clock, what the budget counts). A
finished model has ``run.json``: budget, CPU seconds (sums over attempts), steps, parameters,
the last training loss and validation scores. ``--set KEY=VALUE`` goes to every model's
``convssm train`` (the tests shrink the models with it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from common import (
    MODELS,
    config_path,
    count_parameters,
    data_root,
    latest_checkpoint,
    run_dir,
)

from convssm.data import maze_manifest_path, write_maze_folder

IMAGE_SIZE = 32


def make_data(out: Path, args: argparse.Namespace) -> Path:
    """Write the train and test splits under ``OUT/data`` unless they are there already."""
    root = data_root(out)
    for split, videos, frames in (
        ("train", args.train_videos, args.train_frames),
        ("test", args.test_videos, args.test_frames),
    ):
        manifest = maze_manifest_path(root, split)
        if manifest.is_file():
            old = json.loads(manifest.read_text())
            same = (
                old.get("complete")
                and old.get("num_videos") == videos
                and old.get("seed") == args.seed
                and old.get("params", {}).get("num_frames") == frames
                and old.get("params", {}).get("image_size") == IMAGE_SIZE
            )
            if same:
                print(f"data: {root / split} present ({videos} videos x {frames} frames)")
                continue
        print(f"data: writing {videos} MazeWorld videos x {frames} frames to {root / split}")
        write_maze_folder(
            root, videos, num_frames=frames, image_size=IMAGE_SIZE, seed=args.seed, split=split
        )  # resumes a partial folder; a different generator there is an error
    return root


def read_attempts(workdir: Path) -> list[dict]:
    path = workdir / "attempts.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _last_line(path: Path) -> dict | None:
    lines = path.read_text().splitlines() if path.is_file() else []
    return json.loads(lines[-1]) if lines else None


def _step_of(checkpoint: Path | None) -> int:
    return int(checkpoint.name.split("_")[-1]) if checkpoint is not None else 0


def train_model(model: str, out: Path, minutes: float, overrides: list[str]) -> dict:
    """Train (or resume, or skip) one model; returns its ``run.json`` record."""
    workdir = run_dir(out, model)
    done = workdir / "run.json"
    if done.is_file():
        record = json.loads(done.read_text())
        print(f"{model}: finished earlier ({record['steps']} steps), skipped")
        return record
    budget = minutes * 60.0
    attempts = read_attempts(workdir)
    remaining = budget - sum(a["cpu_s_training"] for a in attempts)
    if remaining > 1.0:
        attempts.append(_attempt(model, workdir, out, remaining, overrides))
    train = _last_line(workdir / "train_log.jsonl") or {}
    val = _last_line(workdir / "val_log.jsonl") or {}
    record = {
        "model": model,
        "budget_cpu_min": minutes,
        "cpu_s_training": sum(a["cpu_s_training"] for a in attempts),
        "cpu_s_process": sum(a["cpu_s_process"] for a in attempts),
        "attempts": len(attempts),
        "steps": train.get("step"),
        "loss": train.get("loss"),
        "val": {k: v for k, v in val.items() if k != "step"},
        "parameters": count_parameters(model, overrides),
        "overrides": overrides,
    }
    done.write_text(json.dumps(record, indent=2) + "\n")
    return record


def _attempt(model: str, workdir: Path, out: Path, limit_s: float, overrides: list[str]) -> dict:
    """One ``convssm train`` subprocess with ``limit_s`` CPU seconds; appends its CPU time to
    ``attempts.jsonl`` whether it succeeds or not (a failure is raised after)."""
    workdir.mkdir(parents=True, exist_ok=True)
    start = latest_checkpoint(workdir / "checkpoints")
    cmd = [sys.executable, "-m", "convssm", "train", str(config_path(model))]
    cmd += ["--workdir", str(workdir)]
    sets = [f"data.root={data_root(out)}", *overrides, f"train.time_limit_s={limit_s:.1f}"]
    cmd += [a for s in sets for a in ("--set", s)]
    if start is not None:
        cmd.append("--resume")
    print("+", " ".join(cmd), flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    last = _last_line(workdir / "train_log.jsonl") or {}
    ran = last.get("step", 0) > _step_of(start)  # the log's last line is this attempt's
    attempt = {
        "from_step": _step_of(start),
        "to_step": last.get("step") if ran else _step_of(start),
        "limit_s": round(limit_s, 1),
        "cpu_s_training": last.get("cpu_s", 0.0) if ran else 0.0,
        "cpu_s_process": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "returncode": proc.returncode,
    }
    with open(workdir / "attempts.jsonl", "a") as f:
        f.write(json.dumps(attempt) + "\n")
    if proc.returncode != 0:
        raise SystemExit(f"{model}: convssm train failed (exit {proc.returncode}); see above")
    return attempt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/maze", help="data, workdirs and results")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated configs")
    parser.add_argument("--cpu-minutes", type=float, default=12.0, help="budget per model")
    parser.add_argument("--train-videos", type=int, default=1000)
    parser.add_argument("--train-frames", type=int, default=128)
    parser.add_argument("--test-videos", type=int, default=64)
    parser.add_argument("--test-frames", type=int, default=192)
    parser.add_argument("--seed", type=int, default=0, help="MazeWorld seed of both splits")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="a config override for every model's convssm train (repeatable)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for model in models:
        try:
            config_path(model)
        except ValueError as err:
            parser.error(str(err))
    if args.cpu_minutes <= 0:
        parser.error("--cpu-minutes must be positive")
    out = Path(args.out)
    make_data(out, args)
    for model in models:
        print(json.dumps(train_model(model, out, args.cpu_minutes, args.overrides)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
