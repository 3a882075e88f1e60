"""Mean training loss over windows of steps, side by side for several runs.

    python experiments/reference_init/losses.py runs/init_old runs/init_new --window 50

Reads each run's ``train_log.jsonl`` (train with ``--set train.log_every=1`` so that every
step is there) and prints one row per window: the mean loss of each run over those steps.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_losses(run: Path) -> dict[int, float]:
    """step -> loss from ``run/train_log.jsonl`` (its training records only)."""
    out = {}
    for line in (run / "train_log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "loss" in rec and "step" in rec:
            out[int(rec["step"])] = float(rec["loss"])
    if not out:
        raise ValueError(f"{run / 'train_log.jsonl'} holds no training losses")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--window", type=int, default=50)
    args = p.parse_args()
    losses = [read_losses(r) for r in args.runs]
    last = min(max(steps) for steps in losses)
    print("steps".ljust(12) + "".join(r.name.rjust(14) for r in args.runs))
    for start in range(1, last + 1, args.window):
        steps = range(start, min(start + args.window, last + 1))
        means = [sum(run[s] for s in steps) / len(steps) for run in losses]
        print(f"{start}-{steps[-1]}".ljust(12) + "".join(f"{m:14.5f}" for m in means))


if __name__ == "__main__":
    main()
