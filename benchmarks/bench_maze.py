"""Benchmark MazeWorld generation: videos per second produced by one worker.

One process, ``torch.set_num_threads(1)`` (what one DataLoader worker has). Each repeat
generates ``--per-repeat`` fresh videos (new indices every repeat); the figure is the median
over ``--repeats`` of videos / second, from CPU time of this process (``time.process_time``)
and from wall time; on a shared machine the CPU-time figure is the one that says what a core
can do, the wall-time one what this run got. Rows, all measured in the same run:

- ``item (float32)``: ``MazeWorld.__getitem__``, the training item: (T, 3, 64, 64) in [-1, 1]
  and (T,) actions;
- ``video_uint8``: the npz arrays ((T, 64, 64, 3) uint8 and actions);
- ``episode``: the maze and the agent's path alone (no rendering);
- ``render``: the ray caster alone (atlas indices of every pixel);
- ``reference renderer``: ``render_ref``, pixel by pixel, timed on ``--ref-frames`` frames
  and scaled to a whole video;
- ``make-maze write``: ``video_uint8`` plus the compressed, atomic npz write.

Target: >= 20 videos/s of 300 frames on one core.

Run: PYTHONPATH=src python benchmarks/bench_maze.py [--out benchmarks/results/maze.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from convssm.data import MazeWorld
from convssm.data.maze_folder import _write_npz
from convssm.data.maze_render import render_ref

TARGET = 20.0


def _rates(fn, per_repeat: int, repeats: int, start: int = 0) -> tuple[float, float]:
    """Median (CPU-time rate, wall-time rate) of ``fn(indices)`` over ``repeats``."""
    fn(range(start, start + 1))  # warm-up (builds the texture atlas once)
    cpu, wall = [], []
    for r in range(repeats):
        indices = range(start + (r + 1) * per_repeat, start + (r + 2) * per_repeat)
        c0, w0 = time.process_time(), time.perf_counter()
        fn(indices)
        cpu.append(per_repeat / (time.process_time() - c0))
        wall.append(per_repeat / (time.perf_counter() - w0))
    return statistics.median(cpu), statistics.median(wall)


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:  # pragma: no cover
        return "unavailable"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--per-repeat", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ref-frames", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/maze.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = _uptime()

    ds = MazeWorld(10**6, num_frames=args.frames, image_size=args.image_size)
    n, reps = args.per_repeat, args.repeats
    episodes = {}

    def episode(ix):
        for i in ix:
            episodes[i] = ds.episode(i)

    def rendered(ix):
        for i in ix:
            ds.texels(episodes[i] if i in episodes else ds.episode(i))

    def reference(ix):
        for i in ix:
            ep = ds.episode(i)
            tr = ep.trajectory
            render_ref(
                ep.layout,
                tr.position[: args.ref_frames],
                tr.heading[: args.ref_frames],
                num_headings=ds.params.num_headings,
                image_size=args.image_size,
            )

    with tempfile.TemporaryDirectory() as tmp:

        def write(ix):
            for i in ix:
                video, actions = ds.video_uint8(i)
                _write_npz(Path(tmp) / f"{i:07d}.npz", video, actions)

        measured = [
            ("item (float32)", _rates(lambda ix: [ds[i] for i in ix], n, reps)),
            ("video_uint8", _rates(lambda ix: [ds.video_uint8(i) for i in ix], n, reps)),
            ("episode", _rates(episode, n, reps, start=10_000)),
            ("render", _rates(rendered, n, reps, start=10_000)),
            ("make-maze write", _rates(write, max(n // 4, 2), reps)),
        ]
        ref_cpu, ref_wall = _rates(reference, 1, max(reps // 2, 1))
    scale = args.ref_frames / args.frames
    measured.insert(4, ("reference renderer", (ref_cpu * scale, ref_wall * scale)))

    print(
        f"MazeWorld generation, one process, 1 thread, {args.image_size}x{args.image_size} RGB, "
        f"{args.frames} frames ({platform.machine()}, {os.cpu_count()} cores)"
    )
    print(f"load before: {load_before}")
    print(f"{'path':<22}{'videos/s cpu':>14}{'ms/video':>10}{'videos/s wall':>15}")
    for name, (cpu, wall) in measured:
        print(f"{name:<22}{cpu:>14.2f}{1000 / cpu:>10.1f}{wall:>15.2f}")
    item_cpu, item_wall = measured[0][1]
    speedup = measured[3][1][0] / measured[4][1][0]
    print(f"render vs reference renderer: {speedup:.0f}x")
    ok = item_cpu >= TARGET
    print(f"target >= {TARGET:.0f} videos/s of {args.frames} frames (CPU time, one core): "
          f"{'met' if ok else 'MISSED'} ({item_cpu:.1f}; wall {item_wall:.1f})")  # fmt: skip
    load_after = _uptime()
    print(f"load after: {load_after}")

    result = {
        "benchmark": "mazeworld_generation",
        "torch": torch.__version__,
        "threads": 1,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "frames": args.frames,
        "image_size": args.image_size,
        "per_repeat": n,
        "repeats": reps,
        "rows": [
            {"path": p, "videos_per_s_cpu": c, "videos_per_s_wall": w} for p, (c, w) in measured
        ],
        "render_speedup_vs_reference": speedup,
        "target_videos_per_s": TARGET,
        "target_met": ok,
        "uptime_before": load_before,
        "uptime_after": load_after,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
