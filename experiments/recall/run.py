"""Train one delayed-recall model over a curriculum of delays, each phase a `convssm train` run.

    python experiments/recall/run.py MODEL [--phases 64:6,256:14] [--out runs/recall]
        [--init-from WORKDIR]

MODEL names a config in experiments/recall/configs/ (convs5, convs5_short, convs5_random,
convlstm, transformer). Each phase ``DELAY:MINUTES`` trains at that delay for that many
CPU-minutes (``train.time_clock: cpu``), starting from the previous phase's model
(``train.init_from``); its workdir is ``OUT/MODEL/delay_DELAY``. A finished phase is skipped
and an interrupted one resumed, so the same command continues a run. Each phase writes
``phase.json``: the delay, the budget, the CPU seconds the training process used (all of
it: start-up, data, validation) and its last held-out ``rel_recall``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECALL_FRAMES = 4  # as in the configs: seq_len = delay + recall_frames + 2


def parse_phases(text: str) -> list[tuple[int, float]]:
    """``"64:6,256:14"`` -> [(64, 6.0), (256, 14.0)]."""
    phases = []
    for part in text.split(","):
        delay, _, minutes = part.partition(":")
        if not delay.strip().isdigit() or not minutes:
            raise ValueError(f"--phases: {part!r} must look like DELAY:MINUTES, e.g. 256:14")
        phases.append((int(delay), float(minutes)))
    return phases


def last_line(path: Path) -> dict | None:
    lines = path.read_text().splitlines() if path.is_file() else []
    return json.loads(lines[-1]) if lines else None


def run_phase(model: str, workdir: Path, delay: int, minutes: float, init: Path | None) -> dict:
    config = HERE / "configs" / f"{model}.yaml"
    overrides = [
        f"data.options.delay={delay}",
        f"data.seq_len={delay + RECALL_FRAMES + 2}",
        f"train.time_limit_s={minutes * 60:g}",
        f"name=recall_{model}_delay{delay}",
    ]
    if init is not None:
        overrides.append(f"train.init_from={init}")
    cmd = [sys.executable, "-m", "convssm", "train", str(config), "--workdir", str(workdir)]
    cmd += [a for o in overrides for a in ("--set", o)]
    if (workdir / "checkpoints").is_dir():
        cmd.append("--resume")
    print("+", " ".join(cmd), flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    train = last_line(workdir / "train_log.jsonl") or {}
    val = last_line(workdir / "val_log.jsonl") or {}
    record = {
        "model": model,
        "delay": delay,
        "budget_cpu_min": minutes,
        "cpu_s_process": cpu,
        "cpu_s_training": train.get("cpu_s"),
        "steps": train.get("step"),
        "rel_recall": val.get("rel_recall"),
        "init_from": str(init) if init else None,
    }
    (workdir / "phase.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a config name in experiments/recall/configs/")
    parser.add_argument("--phases", default="64:6,256:14", help="DELAY:CPU_MINUTES,...")
    parser.add_argument("--out", default="runs/recall", help="where the phases' workdirs go")
    parser.add_argument(
        "--init-from", default=None, help="a workdir or model folder the first phase starts from"
    )
    args = parser.parse_args(argv)
    if not (HERE / "configs" / f"{args.model}.yaml").is_file():
        known = sorted(p.stem for p in (HERE / "configs").glob("*.yaml"))
        parser.error(f"no config {args.model!r}; known: {', '.join(known)}")
    init = Path(args.init_from) if args.init_from else None
    for delay, minutes in parse_phases(args.phases):
        workdir = Path(args.out) / args.model / f"delay_{delay}"
        done = workdir / "phase.json"
        record = json.loads(done.read_text()) if done.is_file() else None
        if record is None:
            record = run_phase(args.model, workdir, delay, minutes, init)
        print(json.dumps(record), flush=True)
        init = workdir
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
