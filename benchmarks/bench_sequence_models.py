"""Training-step time of the three sequence models against sequence length.

One training step = forward + backward of the sequence model alone on random
(B, L, width, 16, 16) input (loss: mean square of the output), gradients zeroed between
steps. Rows, all measured in ONE run, the models interleaved within every repeat so that
load from other processes hits them alike; each figure is the median over ``--repeats``
after one warm-up step:

- CPU-sized: 4 layers, width 64, 16x16, batch 2, L in {32, 64, 128, 300};
  ConvS5 state_dim 64; Transformer embed 64, 4 heads, MLP 256.
- Paper width: width 256 at L = 64 (batch 2, 4 layers); ConvS5 state_dim 128 (the
  reference's ssm_size 256); Transformer embed 256, 4 heads, MLP 1024 (equal width), and
  the reference's Transformer size (embed 1024, 16 heads, MLP 4096) for comparison.

Target: ConvS5 >= 2x faster than ConvLSTM at L = 300 on CPU at equal width.

Threads: ``torch.set_num_threads(2)``, and ``OMP_WAIT_POLICY=PASSIVE`` unless set: on a
shared, oversubscribed machine OpenMP's default spin-waiting made every small op ~20-100x
slower with 2 threads (measured: tanh on 2x256x16x16 took 12 ms instead of 0.15 ms),
which punishes the step-by-step ConvLSTM far more than the others.

Run: PYTHONPATH=src python benchmarks/bench_sequence_models.py
     [--repeats 3] [--lengths 32 64 128 300] [--out benchmarks/results/sequence_models.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from convssm.nn import build_sequence_model  # noqa: E402

SIZE, BATCH, DEPTH = 16, 2, 4


def model_options(width: int) -> dict[str, tuple[str, dict]]:
    """The models compared at one width: label -> (registry name, options)."""
    tf = dict(height=SIZE, width=SIZE, depth=DEPTH, window=1500, max_len=1536)
    rows = {
        "convs5": ("convs5", dict(state_dim=64 if width == 64 else 128, depth=DEPTH)),
        "convlstm": ("convlstm", dict(depth=DEPTH)),
        "transformer": ("transformer", dict(tf, embed_dim=width, heads=4, mlp_dim=4 * width)),
    }
    if width == 256:
        rows["transformer (ref. size)"] = (
            "transformer",
            dict(tf, embed_dim=1024, heads=16, mlp_dim=4096),
        )
    return rows


def train_step(model: torch.nn.Module, x: torch.Tensor) -> float:
    model.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    y, _ = model(x)
    y.square().mean().backward()
    return time.perf_counter() - t0


def measure(width: int, length: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    models = {
        label: build_sequence_model(name, width, **opts).train()
        for label, (name, opts) in model_options(width).items()
    }
    x = torch.randn(BATCH, length, width, SIZE, SIZE)
    times: dict[str, list[float]] = {label: [] for label in models}
    for model in models.values():
        train_step(model, x)  # warm-up
    for _ in range(repeats):
        for label, model in models.items():
            times[label].append(train_step(model, x))
    return {label: statistics.median(ts) for label, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 64, 128, 300])
    parser.add_argument("--paper-length", type=int, default=64, help="0: skip width 256")
    parser.add_argument("--out", default="benchmarks/results/sequence_models.json")
    parser.add_argument("--plot", default="docs/figures/train_step_time.png")
    parser.add_argument(
        "--plot-from", nargs="+", metavar="JSON", help="only redraw the plot from saved runs"
    )
    args = parser.parse_args()
    if args.plot_from:
        runs = {Path(f).stem: json.loads(Path(f).read_text())["rows"] for f in args.plot_from}
        plot(runs, Path(args.plot))
        return
    torch.set_num_threads(2)

    runs = [(64, length) for length in args.lengths]
    if args.paper_length:
        runs.append((256, args.paper_length))
    rows = []
    print(f"{'width':>5} {'L':>4} {'model':<24} {'s/step':>8} {'ConvLSTM / this':>16}")
    for width, length in runs:
        result = measure(width, length, args.repeats)
        for label, seconds in result.items():
            ratio = result["convlstm"] / seconds
            rows.append(dict(width=width, length=length, model=label, seconds=seconds))
            print(f"{width:>5} {length:>4} {label:<24} {seconds:>8.3f} {ratio:>16.2f}")

    at300 = {r["model"]: r["seconds"] for r in rows if r["width"] == 64 and r["length"] == 300}
    summary = {}
    if at300:
        speedup = at300["convlstm"] / at300["convs5"]
        summary = dict(convs5_speedup_vs_convlstm_L300=speedup, target=2.0, met=speedup >= 2.0)
        print(f"\nConvS5 vs ConvLSTM at L=300, width 64: {speedup:.2f}x (target >= 2x)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        machine=platform.machine(),
        cpus=os.cpu_count(),
        load_average=os.getloadavg(),
        batch=BATCH,
        depth=DEPTH,
        size=SIZE,
        repeats=args.repeats,
        models={w: {k: v[1] for k, v in model_options(w).items()} for w in (64, 256)},
    )
    out.write_text(json.dumps(dict(meta=meta, rows=rows, summary=summary), indent=2) + "\n")
    print(f"wrote {out}")
    plot({out.stem: rows}, Path(args.plot))


def plot(runs: dict[str, list[dict]], path: Path) -> None:
    """Width-64 training-step time against L, one line per model and run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    styles = ["-", "--", ":", "-."]
    for k, (run, rows) in enumerate(runs.items()):
        models = ("convs5", "convlstm", "transformer")
        for color, label in zip(("C0", "C1", "C2"), models, strict=True):
            pts = sorted(
                (r["length"], r["seconds"])
                for r in rows
                if r["width"] == 64 and r["model"] == label
            )
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            name = f"{label} ({run})" if len(runs) > 1 else label
            ax.plot(xs, ys, styles[k % 4], color=color, marker="os^d"[k % 4], label=name)
    ax.set_xlabel("sequence length L (frames)")
    ax.set_ylabel("forward + backward (s, median)")
    ax.set_title("Training step, 4 layers, width 64, 16x16, batch 2 (2-core CPU)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
