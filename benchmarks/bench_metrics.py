"""Benchmark: I3D feature time per video (FVD features), 64x64 videos on CPU.

Times :func:`convssm.metrics.fvd.i3d_features` on one video of each length — the whole FVD
feature path: resize 64x64 -> 224x224, grey -> RGB, [-1, 1], I3D, mean logits over time.
Prints a table of medians over repeats and writes JSON.

    python benchmarks/bench_metrics.py [--frames 16 300] [--repeats 3] [--threads 2]
        [--device cpu] [--out benchmarks/results/metrics.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from convssm.metrics.fvd import i3d_features
from convssm.metrics.i3d import InceptionI3d


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_features(model, video: torch.Tensor, repeats: int) -> list[float]:
    device = video.device
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        feats = i3d_features(video, model, batch_size=1)
        _sync(device)
        times.append(time.perf_counter() - start)
        assert feats.shape == (1, 400) and bool(torch.isfinite(feats).all())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 300])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/metrics.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = InceptionI3d.from_pretrained().to(device)
    gen = torch.Generator().manual_seed(0)
    # Warm-up on the shortest length (allocator, kernel selection).
    warm = torch.rand(1, min(args.frames), args.channels, args.size, args.size, generator=gen)
    i3d_features(warm.to(device), model)

    rows = []
    for t in args.frames:
        video = torch.rand(1, t, args.channels, args.size, args.size, generator=gen).to(device)
        times = time_features(model, video, args.repeats)
        med = statistics.median(times)
        rows.append(
            {
                "frames": t,
                "median_s": med,
                "ms_per_frame": 1000 * med / t,
                "times_s": times,
            }
        )

    header = f"{'frames':>6} | {'median s/video':>14} | {'ms/frame':>8} | repeats"
    print(
        f"I3D features, {args.size}x{args.size}x{args.channels} videos, device {device}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['frames']:>6} | {r['median_s']:>14.2f} | {r['ms_per_frame']:>8.1f} | "
            f"{len(r['times_s'])}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "i3d_features",
        "size": args.size,
        "channels": args.channels,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
