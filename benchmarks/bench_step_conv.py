"""Batch-1 3x3 convolutions through PyTorch's own path (``F.conv2d``) against oneDNN
(``torch.mkldnn_convolution``), the measurement behind ``convssm.ops.step_conv2d``'s rule.

For float32 CPU tensors PyTorch sends a convolution with batch 1, a kernel of at most 3x3
and at most 20 480 input elements to its native im2col + GEMM path; the generation step at
16x16 lands there. For each (C_in, C_out) of the grid, 16x16 frames (and 12x12 with
``--sizes``), the two are timed in alternating ~10 ms blocks (A, B, A, B, ...) so that load
from other processes hits both alike; the figure is the median of per-pair ratios
oneDNN / F.conv2d (< 1: oneDNN faster). Run at 1 and at 2 threads:

    PYTHONPATH=src python benchmarks/bench_step_conv.py --threads 2
    PYTHONPATH=src python benchmarks/bench_step_conv.py --threads 1 \\
        --out benchmarks/results/step_conv_1thread.json

Writes benchmarks/results/step_conv.json (``--out``).
"""

from __future__ import annotations

import os

# Before torch starts OpenMP, as in the other benchmarks (spinning threads hurt when shared).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from convssm.ops import step_conv_path  # noqa: E402


def _block(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return 1e6 * (time.perf_counter() - t0) / n


def measure(c_in: int, c_out: int, size: int, seconds: float) -> dict:
    x = torch.randn(1, c_in, size, size)
    w = torch.randn(c_out, c_in, 3, 3) / (9 * c_in) ** 0.5
    b = torch.randn(c_out)
    fns = {
        "F.conv2d": lambda: F.conv2d(x, w, b, padding=1),
        "mkldnn": lambda: torch.mkldnn_convolution(x, w, b, (1, 1), (1, 1), (1, 1), 1),
    }
    n = {}
    for k, fn in fns.items():
        for _ in range(3):
            fn()
        n[k] = max(2, int(0.01 / max(_block(fn, 2) * 1e-6, 1e-6)))
    times = {k: [] for k in fns}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times["mkldnn"]) < 5:
        for k, fn in fns.items():
            times[k].append(_block(fn, n[k]))
    ratios = [m / f for f, m in zip(times["F.conv2d"], times["mkldnn"], strict=True)]
    return {
        "F.conv2d us": statistics.median(times["F.conv2d"]),
        "mkldnn us": statistics.median(times["mkldnn"]),
        "mkldnn / F.conv2d": statistics.median(ratios),
        "rule": step_conv_path(x, w),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.4, help="per shape")
    parser.add_argument("--channels", default="16,32,48,64,96,128", help="C_in and C_out")
    parser.add_argument("--sizes", default="16", help="frame sides, comma-separated")
    parser.add_argument("--out", default="benchmarks/results/step_conv.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    channels = [int(c) for c in args.channels.split(",")]
    load0, rows = os.getloadavg(), []
    with torch.no_grad():
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"{size}x{size}, {args.threads} threads: F.conv2d / oneDNN us (oneDNN / F)")
            for c_in in channels:
                if c_in * size * size > 20480:  # PyTorch uses oneDNN there itself
                    continue
                cells = []
                for c_out in channels:
                    r = measure(c_in, c_out, size, args.seconds)
                    rows.append({"size": size, "c_in": c_in, "c_out": c_out, **r})
                    mark = "*" if r["rule"] == "mkldnn" else " "
                    cells.append(
                        f"{r['F.conv2d us']:6.0f}/{r['mkldnn us']:5.0f}"
                        f" ({r['mkldnn / F.conv2d']:4.2f}){mark}"
                    )
                print(f"  C_in {c_in:3d}: " + " ".join(cells), flush=True)
    load1 = os.getloadavg()
    print(f"C_out: {channels}; * = step_conv2d's rule takes oneDNN")
    print(f"load average (1, 5, 15 min): before {load0}, after {load1}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "step_conv",
        "command": " ".join(sys.argv),
        "threads": args.threads,
        "rows": rows,
        "loadavg_before": load0,
        "loadavg_after": load1,
        "torch": torch.__version__,
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
