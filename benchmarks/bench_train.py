"""Benchmark training throughput of the small CPU configs, and checkpoint save/load.

For every ``configs/cpu/*_small.yaml`` whose sequence model is registered: optimizer steps
per second (forward + backward + AdamW on one batch of the config: 4 videos of 16 frames,
32x32), median over ``--repeats`` steps after one warm-up step, with 1 and with 2 torch
threads, measured side by side in one run; plus the time to write and to read back (with
SHA-256 verification) one atomic checkpoint of that model. The machine is shared: quote
medians and the 1-vs-2-thread ratio from one run.

Run: PYTHONPATH=src python benchmarks/bench_train.py [--repeats 10] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from convssm._resources import shipped_dir
from convssm.nn import sequence_model_names
from convssm.run.demo import step_times
from convssm.train.checkpoint import load_checkpoint, save_checkpoint
from convssm.train.config import load_config
from convssm.train.factory import build_model


def _step_times(cfg, threads: int, repeats: int) -> list[float]:
    cfg.train.threads = threads
    return step_times(cfg, repeats)


def _checkpoint_times(cfg) -> tuple[float, float, int]:
    model = build_model(cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        path = save_checkpoint(d, 1, model, cfg, {"optimizer": opt.state_dict()})
        t1 = time.perf_counter()
        load_checkpoint(path)
        t2 = time.perf_counter()
        size = sum(f.stat().st_size for f in path.iterdir())
    return t1 - t0, t2 - t1, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results/train.json")
    args = parser.parse_args()
    rows, skipped = [], []
    for path in sorted((shipped_dir("configs") / "cpu").glob("*_small.yaml")):
        cfg = load_config(path)
        if cfg.model.sequence_model not in sequence_model_names():
            skipped.append(f"{path.name}: sequence model {cfg.model.sequence_model!r} not here")
            continue
        t1 = statistics.median(_step_times(cfg, 1, args.repeats))
        t2 = statistics.median(_step_times(cfg, 2, args.repeats))
        save_s, load_s, size = _checkpoint_times(cfg)
        params = sum(p.numel() for p in build_model(cfg.model).parameters())
        rows.append(
            {
                "config": path.name,
                "params": params,
                "steps_per_s_1thread": 1 / t1,
                "steps_per_s_2threads": 1 / t2,
                "ratio_2_over_1": t1 / t2,
                "checkpoint_save_s": save_s,
                "checkpoint_load_s": load_s,
                "checkpoint_bytes": size,
            }
        )
    head = f"{'config':<24}{'params':>9}{'steps/s 1t':>12}{'steps/s 2t':>12}{'2t/1t':>7}"
    print(head + f"{'save s':>8}{'load s':>8}{'MB':>7}")
    for r in rows:
        print(
            f"{r['config']:<24}{r['params']:>9}{r['steps_per_s_1thread']:>12.2f}"
            f"{r['steps_per_s_2threads']:>12.2f}{r['ratio_2_over_1']:>7.2f}"
            f"{r['checkpoint_save_s']:>8.3f}{r['checkpoint_load_s']:>8.3f}"
            f"{r['checkpoint_bytes'] / 1e6:>7.2f}"
        )
    for s in skipped:
        print("skipped:", s)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "repeats": args.repeats,
        "load_avg": os.getloadavg(),
    }
    out.write_text(json.dumps({"meta": meta, "rows": rows, "skipped": skipped}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
