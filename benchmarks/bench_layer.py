"""ConvS5Block forward+backward against the same block's convolutions alone.

The target: the whole block costs at most 1.3x its convolutions (recurrence, norms,
activations and glue at most 30 %). Shapes: B = 2, T = 64, 16x16, dim 256, state 128.

    python benchmarks/bench_layer.py [--out benchmarks/results/layer.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from convssm.nn import ConvS5Block


def _median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--state", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/layer.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    b, t, s, d, p = args.batch, args.length, args.size, args.dim, args.state
    block = ConvS5Block(d, p)
    x = torch.randn(b, t, d, s, s, requires_grad=True)

    def block_step():
        y, _ = block(x)
        y.sum().backward()

    # The same four convolutions with the same shapes, nothing else: B (d -> 2p), C (2p -> d),
    # and the output block's two d -> d convolutions, all over the B*T folded frames.
    w_b = torch.randn(2 * p, d, 3, 3, requires_grad=True)
    w_c = torch.randn(d, 2 * p, 3, 3, requires_grad=True)
    w_1 = torch.randn(d, d, 3, 3, requires_grad=True)
    w_2 = torch.randn(d, d, 3, 3, requires_grad=True)
    xf = torch.randn(b * t, d, s, s, requires_grad=True)

    def convs_step():
        h = F.conv2d(xf, w_b, padding=1)
        y = F.conv2d(h, w_c, padding=1)
        y = F.conv2d(y, w_1, padding=1)
        y = F.conv2d(y, w_2, padding=1)
        y.sum().backward()

    rows = []
    # Interleave the two measurements so load changes hit both alike.
    block_times, conv_times = [], []
    for _ in range(args.repeats):
        block_times.append(_median_time(block_step, 1, warmup=1 if not block_times else 0))
        conv_times.append(_median_time(convs_step, 1, warmup=1 if not conv_times else 0))
    block_med, conv_med = statistics.median(block_times), statistics.median(conv_times)
    rows.append(("ConvS5Block fwd+bwd", block_med))
    rows.append(("its 4 convolutions fwd+bwd", conv_med))
    ratio = block_med / conv_med

    print(f"ConvS5Block B={b} T={t} {s}x{s} dim={d} state={p}, {args.threads} threads")
    print(f"{'what':32s} {'median ms':>10s}")
    for name, sec in rows:
        print(f"{name:32s} {sec * 1e3:10.1f}")
    print(f"{'ratio block / convolutions':32s} {ratio:10.3f}   (target <= 1.30)")

    result = {
        "benchmark": "layer",
        "shape": {"batch": b, "length": t, "size": s, "dim": d, "state_dim": p},
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "block_ms": block_med * 1e3,
        "convolutions_ms": conv_med * 1e3,
        "ratio": ratio,
        "target_ratio": 1.3,
        "block_times_ms": [x * 1e3 for x in block_times],
        "convolution_times_ms": [x * 1e3 for x in conv_times],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
