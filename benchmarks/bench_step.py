"""One ConvS5Block.step per frame (recurrent mode, eval, no grad) at the issue-14 shapes.

S1: dim 64, P 32, 16x16, batch 2; S2: dim 256, P 128, 16x16, batch 2; S3: dim 64, P 32,
16x16, batch 1. Targets (quiet 2-core machine): S1 <= 1.8 ms, S2 <= 8 ms, S3 <= 0.9 ms.
Besides the eager step it times the step under torch.compile (inductor) and, for S2, the
step under bf16 autocast, and each shape's four convolutions alone (the floor of a step).

Side by side with other code (e.g. the previous commit's ``src``), interleaved A, B, A, B
in fresh processes so that neither gets a quieter stretch of the shared machine:

    python benchmarks/bench_step.py --compare /tmp/convssm_old/src --rounds 3
    python benchmarks/bench_step.py            # this checkout only

Writes benchmarks/results/step.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

SHAPES = {  # name: (dim, state_dim, size, batch, target_ms)
    "S1": (64, 32, 16, 2, 1.8),
    "S2": (256, 128, 16, 2, 8.0),
    "S3": (64, 32, 16, 1, 0.9),
}


def _per_call_ms(fn, seconds: float, warmup: int = 20) -> float:
    """Median over blocks of calls of the time per call, in ms (about ``seconds`` in all)."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-6)
    n = max(1, int(0.05 / once))  # calls per block: ~50 ms
    blocks = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(blocks) < 5:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        blocks.append((time.perf_counter() - t0) / n)
    return 1e3 * statistics.median(blocks)


def measure(seconds: float, compiled: bool) -> dict[str, float]:
    """Times of this process's ``convssm`` (whichever is first on sys.path)."""
    from convssm.nn import ConvS5Block

    torch.manual_seed(0)
    out = {}
    for name, (dim, p, size, batch, _) in SHAPES.items():
        block = ConvS5Block(dim, p).eval()
        x = torch.randn(batch, dim, size, size)
        with torch.no_grad():
            _, state = block.step(x)

            def step(block=block, x=x, state=state):
                return block.step(x, state)

            out[f"{name} step"] = _per_call_ms(step, seconds)
            w_b = torch.randn(2 * p, dim, 3, 3)
            w_c = torch.randn(dim, 2 * p, 3, 3)
            w_d = torch.randn(dim, dim, 3, 3)
            xr = torch.randn(batch, 2 * p, size, size)

            def convs(x=x, xr=xr, w_b=w_b, w_c=w_c, w_d=w_d):
                F.conv2d(x, w_b, padding=1)
                F.conv2d(xr, w_c, padding=1)
                F.conv2d(x, w_d, padding=1)
                F.conv2d(x, w_d, padding=1)

            out[f"{name} convs"] = _per_call_ms(convs, seconds)
            if name == "S2":
                with torch.autocast("cpu", torch.bfloat16):
                    out[f"{name} step bf16"] = _per_call_ms(step, seconds)
            if compiled:
                fast = torch.compile(block.step, fullgraph=True)
                out[f"{name} step compiled"] = _per_call_ms(
                    lambda f=fast, x=x, state=state: f(x, state), seconds
                )
    return out


def _child(src: str, seconds: float, compiled: bool) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=src)
    cmd = [sys.executable, __file__, "--child", "--seconds", str(seconds)]
    cmd += ["--compiled"] if compiled else []
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", help="another src directory to time side by side")
    parser.add_argument("--rounds", type=int, default=2, help="A, B rounds (with --compare)")
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled step")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compiled", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="benchmarks/results/step.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(measure(args.seconds, args.compiled)))
        return
    here = str(Path(__file__).resolve().parents[1] / "src")
    sources = {"this": here} | ({"compare": args.compare} if args.compare else {})
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in sources}
    loads = []
    for r in range(args.rounds if args.compare else 1):
        for label, src in sources.items():
            loads.append(os.getloadavg()[0])
            # The compiled step only for this checkout, in the first round (compiling is slow).
            compiled = label == "this" and r == 0 and not args.no_compile
            runs[label].append(_child(src, args.seconds, compiled))
            print(f"round {r + 1} {label}: {runs[label][-1]}", flush=True)
    table = {}
    print(f"\n{'ms per frame (median of rounds)':38s}" + "".join(f"{k:>12s}" for k in sources))
    for key in runs["this"][0]:
        row = {}
        for label in sources:
            vals = [run[key] for run in runs[label] if key in run]
            row[label] = statistics.median(vals) if vals else None
        table[key] = row
        name = key.split()[0]
        target = f" (target <= {SHAPES[name][4]} ms)" if key.endswith(" step") else ""
        cells = "".join(f"{v:12.3f}" if v is not None else f"{'-':>12s}" for v in row.values())
        print(f"{key + target:38s}{cells}")
    print(f"load average (1 min) during the runs: {', '.join(f'{x:.1f}' for x in loads)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "convs5_block_step",
        "shapes": SHAPES,
        "threads": args.threads,
        "sources": sources,
        "rounds": runs,
        "median_ms": table,
        "loadavg_1min": loads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
