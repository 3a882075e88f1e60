"""Benchmark Moving-MNIST generation: sequences per second produced by one worker.

One process, ``torch.set_num_threads(1)`` (what one DataLoader worker has). Each repeat
generates ``--per-repeat`` fresh videos (new indices every repeat); the figure is the median
over ``--repeats`` of videos / second. Rows, all measured in the same run:

- ``item (float32)``: ``MovingMNIST.__getitem__``, the training item (T, 1, 64, 64) in [-1, 1];
- ``video_uint8``: the generator alone, (T, 64, 64) uint8;
- ``reference pipeline``: the same videos with the plain references (``trajectory_ref``:
  frame-by-frame loop; ``render_ref``: each digit zero-padded to a full canvas, then max);
- the same ``item`` row at 1 300 frames (the evaluation length).

Target: >= 20 sequences/s of 300 frames, so data never limits a CPU training step.

Run: PYTHONPATH=src python benchmarks/bench_data.py [--out benchmarks/results/data.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from convssm.data import MovingMNIST, load_digits
from convssm.data.trajectories import pixel_positions, render_ref, trajectory_ref

TARGET = 20.0


def _rate(fn, per_repeat: int, repeats: int) -> float:
    fn(range(per_repeat))  # warm-up (also on indices outside the timed ones)
    rates = []
    for r in range(repeats):
        indices = range((r + 1) * per_repeat, (r + 2) * per_repeat)
        t0 = time.perf_counter()
        fn(indices)
        rates.append(per_repeat / (time.perf_counter() - t0))
    return statistics.median(rates)


def _reference_video(ds: MovingMNIST, i: int):
    plan = ds.plan(i)
    pos, _ = trajectory_ref(plan.start, plan.direction, ds.params.num_frames, ds.params.step)
    px = pixel_positions(pos, ds.params.free_range)
    return render_ref(px, ds.pool[plan.digit_ids], ds.params.image_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--per-repeat", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default="benchmarks/results/data.json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    source = load_digits()
    ds = MovingMNIST(10**6, num_frames=args.frames, digits=source)
    long = MovingMNIST(10**6, num_frames=1300, digits=source)
    n, reps = args.per_repeat, args.repeats
    rows = [
        ("item (float32)", args.frames, _rate(lambda ix: [ds[i] for i in ix], n, reps)),
        ("video_uint8", args.frames, _rate(lambda ix: [ds.video_uint8(i) for i in ix], n, reps)),
        (
            "reference pipeline",
            args.frames,
            _rate(lambda ix: [_reference_video(ds, i) for i in ix], max(n // 8, 2), reps),
        ),
        ("item (float32)", 1300, _rate(lambda ix: [long[i] for i in ix], max(n // 4, 2), reps)),
    ]
    fast = rows[1][2]
    print(f"Moving-MNIST generation, one process, 1 thread, 64x64, 2 digits ({platform.machine()})")
    print(f"{'path':<22}{'frames':>8}{'seq/s':>10}{'ms/seq':>10}")
    for name, frames, rate in rows:
        print(f"{name:<22}{frames:>8}{rate:>10.1f}{1000 / rate:>10.2f}")
    print(f"generator vs reference pipeline: {fast / rows[2][2]:.1f}x")
    ok = rows[0][2] >= TARGET
    print(f"target >= {TARGET:.0f} seq/s of {args.frames} frames: {'met' if ok else 'MISSED'}")

    result = {
        "benchmark": "moving_mnist_generation",
        "torch": torch.__version__,
        "threads": 1,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "per_repeat": n,
        "repeats": reps,
        "rows": [{"path": p, "frames": f, "seq_per_s": r} for p, f, r in rows],
        "speedup_vs_reference": fast / rows[2][2],
        "target_seq_per_s": TARGET,
        "target_met": ok,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
