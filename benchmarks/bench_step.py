"""One ConvS5Block.step per frame (recurrent mode, eval, no grad) at the GPU target shapes.

S1: dim 64, P 32, 16x16, batch 2; S2: dim 256, P 128, 16x16, batch 2; S3: dim 64, P 32,
16x16, batch 1. Targets (quiet 2-core machine): S1 <= 1.8 ms, S2 <= 8 ms, S3 <= 0.9 ms.
Besides the eager step it times each shape's four convolutions alone (the floor of a
step), for S2 the step under bf16 autocast, and with ``--compile`` the step under
torch.compile (inductor).

Side by side with other code (e.g. the previous commit's ``src``, extracted with
``git archive <commit> src | tar -x -C old``): both versions are imported into one
process and timed in alternating blocks (A, B, A, B, ...), so load from other processes on
the shared machine hits them alike; the ratio column is the median of the per-pair ratios:

    PYTHONPATH=src python benchmarks/bench_step.py --compare old/src
    PYTHONPATH=src python benchmarks/bench_step.py            # this checkout only

Writes benchmarks/results/convs5_block_step.json (``--out``).
"""

from __future__ import annotations

import os

# Before torch starts OpenMP, as in the other benchmarks (spinning threads hurt when shared).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SHAPES = {  # name: (dim, state_dim, size, batch, target_ms)
    "S1": (64, 32, 16, 2, 1.8),
    "S2": (256, 128, 16, 2, 8.0),
    "S3": (64, 32, 16, 1, 0.9),
}


def _import_as(src: str, alias: str):
    """Another checkout's ``convssm`` (its ``src`` directory) importable as ``alias``.

    Copies the package into a temporary directory with every ``convssm`` name (imports and
    custom-op namespaces) renamed, so that both versions live in this one process and can
    be timed in alternation: a load swing on the shared machine then hits both alike.
    """
    dst = Path(tempfile.mkdtemp(prefix="bench_step_")) / alias
    shutil.copytree(Path(src) / "convssm", dst, ignore=shutil.ignore_patterns("__pycache__"))
    for path in dst.rglob("*.py"):
        path.write_text(re.sub(r"\bconvssm\b", alias, path.read_text()))
    sys.path.insert(0, str(dst.parent))
    return importlib.import_module(f"{alias}.nn")


def _block_time(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def _callables(versions, dim, p, size, batch, bf16: bool, compiled: bool) -> dict:
    """What to time at one shape: each version's step (same weights and input), the four
    convolutions alone, optionally the first version's step under bf16 autocast or compiled."""
    x = torch.randn(batch, dim, size, size)
    fns, ref = {}, None
    for label, nn_mod in versions.items():
        torch.manual_seed(0)
        block = nn_mod.ConvS5Block(dim, p).eval()
        ref = block.state_dict() if ref is None else ref
        block.load_state_dict(ref)
        _, state = block.step(x)
        fns[label] = lambda block=block, state=state: block.step(x, state)
    w_b, w_c = torch.randn(2 * p, dim, 3, 3), torch.randn(dim, 2 * p, 3, 3)
    w_d, xr = torch.randn(dim, dim, 3, 3), torch.randn(batch, 2 * p, size, size)

    def convs():
        F.conv2d(x, w_b, padding=1)
        F.conv2d(xr, w_c, padding=1)
        F.conv2d(x, w_d, padding=1)
        F.conv2d(x, w_d, padding=1)

    fns["convs"] = convs
    first = fns[next(iter(versions))]
    if bf16:

        def bf16_step():
            with torch.autocast("cpu", torch.bfloat16):
                return first()

        fns["bf16 autocast"] = bf16_step
    if compiled:
        fns["compiled"] = torch.compile(first, fullgraph=True)
    return fns


def op_counts(versions: dict) -> dict:
    """ATen ops per ``ConvS5Block.step`` at S1 (top level, and all calls including nested
    ones): the per-step dispatch work, a count that the machine's load cannot blur."""
    dim, p, size, batch, _ = SHAPES["S1"]
    out = {}
    for label, nn_mod in versions.items():
        block = nn_mod.ConvS5Block(dim, p).eval()
        x = torch.randn(batch, dim, size, size)
        with torch.no_grad():
            _, state = block.step(x)
            block.step(x, state)
            with torch.profiler.profile() as prof:
                for _ in range(10):
                    block.step(x, state)
        events = [e for e in prof.events() if e.name.startswith("aten::")]
        top = [e for e in events if not (e.cpu_parent and e.cpu_parent.name.startswith("aten::"))]
        out[f"S1 {label} aten ops per step (top level / all)"] = (len(top) / 10, len(events) / 10)
    return out


def measure(versions: dict, seconds: float, compiled: bool) -> dict:
    """Per shape: ms per call of each version's ``ConvS5Block.step`` (same weights and input),
    the four convolutions alone, in alternating ~50 ms blocks; medians, and the median of the
    per-pair ratios against the first version."""
    out = {}
    for name, (dim, p, size, batch, _) in SHAPES.items():
        with torch.no_grad():
            fns = _callables(versions, dim, p, size, batch, name == "S2", compiled)
            for fn in fns.values():  # warm up (and compile)
                for _ in range(5):
                    fn()
            n = {k: max(1, int(0.05 / max(_block_time(fn, 2), 1e-6))) for k, fn in fns.items()}
            times = {k: [] for k in fns}
            end = time.perf_counter() + seconds
            while time.perf_counter() < end or len(times["convs"]) < 5:
                for k, fn in fns.items():
                    times[k].append(_block_time(fn, n[k]))
        base = next(iter(versions))
        for k, ts in times.items():
            out[f"{name} {k}"] = 1e3 * statistics.median(ts)
            if k != base:
                ratios = [t / b for t, b in zip(ts, times[base], strict=True)]
                out[f"{name} {k} / {base}"] = statistics.median(ratios)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", help="another checkout's src directory, timed alongside")
    parser.add_argument("--seconds", type=float, default=6.0, help="per shape")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(step)")
    parser.add_argument("--out", default="benchmarks/results/convs5_block_step.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import convssm.nn

    versions = {"this": convssm.nn}
    if args.compare:
        versions["compare"] = _import_as(args.compare, "convssm_compare")
    load0 = os.getloadavg()
    res = measure(versions, args.seconds, args.compile)
    counts = op_counts(versions)
    load1 = os.getloadavg()
    print(f"{'ms per frame (median of alternating blocks)':48s}{'value':>10s}")
    for key, value in res.items():
        shape = key.split()[0]
        target = f" (target <= {SHAPES[shape][4]} ms)" if key == f"{shape} this" else ""
        print(f"{key + target:48s}{value:10.3f}")
    for key, value in counts.items():
        print(f"{key:60s}{value[0]:6.0f} / {value[1]:.0f}")
    print(f"load average (1, 5, 15 min): before {load0}, after {load1}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "convs5_block_step",
        "command": " ".join(sys.argv),
        "shapes": SHAPES,
        "threads": args.threads,
        "compare": args.compare,
        "results": res,
        "op_counts": counts,
        "loadavg_before": load0,
        "loadavg_after": load1,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
