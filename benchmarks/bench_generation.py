"""Generation cost: time per generated frame against the number of frames already there.

Protocol (CPU widths: 4 layers, width 64, 16x16, batch 2; ConvS5 state_dim 64;
Transformer embed 64, 4 heads, MLP 256, window 1500 so that it covers every frame, as
the reference's 1500): condition on 100 random context frames with one parallel
``forward``, then generate autoregressively (each output is the next input) until 1000
frames precede the new one. The three generators advance one frame each in turn, so load
from other processes hits them alike:

- ``convs5``: ``ConvS5.step`` (O(1) per frame);
- ``transformer (KV cache)``: ``FrameTransformer.step_cached`` (O(n) attention per frame);
- ``transformer (no cache)``: ``FrameTransformer.step_nocache`` - the reference's
  sampling, re-running the model over all (up to 1500) frames for every new one.

Per-frame time at n (the table, the markers in the plot): the state of every generator
is saved at n = 100, 200, ..., 1000 during generation; afterwards one step from each saved
state is timed in turn, ``--rounds`` times, and the median is reported. The checkpoints
are thus measured side by side, so that load from other processes (large on the shared
machine) cannot masquerade as growth. The faint lines in the plot are the steps timed
during generation itself (median of 11). Also reported: the total time for 800 frames
generated after 100 context frames, as ratios to ConvS5; whether ConvS5's per-frame time
is flat within 10 % from frame 100 to frame 1000. ``--paper-point`` adds one CPU measurement at
the paper's widths (8 layers; ConvS5 width 256, state_dim 128; the reference Transformer,
embed 1024, 16 heads, MLP 4096) with 900 frames already generated.

Threads: ``torch.set_num_threads(2)`` and ``OMP_WAIT_POLICY=PASSIVE`` unless set (see
bench_sequence_models.py for why).

Run: PYTHONPATH=src python benchmarks/bench_generation.py [--paper-point]
     [--out benchmarks/results/generation.json] [--plot docs/figures/generation_time.png]
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
from convssm.nn.frame_transformer import FrameWindow  # noqa: E402

SIZE, BATCH = 16, 2
LABELS = ("convs5", "transformer (KV cache)", "transformer (no cache)")


def build(width: int, depth: int, paper: bool = False) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    s5 = build_sequence_model("convs5", width, state_dim=128 if paper else 64, depth=depth)
    if paper:
        size = dict(embed_dim=1024, heads=16, mlp_dim=4096)
    else:
        size = dict(embed_dim=64, heads=4, mlp_dim=256)
    tf = build_sequence_model(
        "transformer", width, height=SIZE, width=SIZE, depth=depth, window=1500, max_len=1536,
        **size,
    )  # fmt: skip
    return s5.eval(), tf.eval()


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


@torch.no_grad()
def generation_curve(
    context: int, last: int, checkpoints: list[int], rounds: int
) -> tuple[dict[str, list[float]], dict[str, dict[int, float]]]:
    """Generate, timing every step; then re-time the steps at the checkpoints side by side.

    Returns (step seconds per generator, entry j = the step with context + j frames before
    it; per-frame seconds per generator and checkpoint n, the median over ``rounds``
    rounds, each round timing one step from the state saved at every checkpoint in turn,
    so that load from other processes hits all checkpoints alike).
    """
    s5, tf = build(64, 4)
    x = torch.randn(BATCH, context, 64, SIZE, SIZE)
    y_s5, st_s5 = s5(x)
    y_kv, st_kv = tf(x, tf.init_cache(BATCH, SIZE, SIZE))
    y_nc, st_nc = tf(x, tf.init_window(BATCH, SIZE, SIZE))
    steps = {
        "convs5": [s5.step, y_s5[:, -1], st_s5],
        "transformer (KV cache)": [tf.step_cached, y_kv[:, -1], st_kv],
        "transformer (no cache)": [tf.step_nocache, y_nc[:, -1], st_nc],
    }
    times = {label: [] for label in LABELS}
    saved = {label: {} for label in LABELS}
    for n in range(context, last + 1):
        for label in LABELS:
            fn, x_t, state = steps[label]
            if n in checkpoints:
                saved[label][n] = (x_t, state)
            dt, (y_t, state) = _timed(fn, x_t, state)
            steps[label][1:] = [y_t, state]
            times[label].append(dt)
    side_by_side = {label: {n: [] for n in checkpoints} for label in LABELS}
    for _ in range(rounds):
        for label in LABELS:
            for n in checkpoints:
                x_t, state = saved[label][n]
                side_by_side[label][n].append(_timed(steps[label][0], x_t, state)[0])
    medians = {
        label: {n: statistics.median(ts) for n, ts in per_n.items()}
        for label, per_n in side_by_side.items()
    }
    return times, medians


def per_frame_at(times: list[float], context: int, n: int) -> float:
    j = n - context
    return statistics.median(times[max(0, j - 5) : j + 6])


@torch.no_grad()
def paper_point(history: int, repeats: int = 3) -> dict[str, float]:
    """Per-frame seconds at the paper's widths with ``history`` frames already there."""
    s5, tf = build(256, 8, paper=True)
    x_t = torch.randn(BATCH, 256, SIZE, SIZE)
    past = torch.randn(BATCH, history, 256, SIZE, SIZE)
    st_s5 = s5.init_state(BATCH, SIZE, SIZE)
    _, st_kv = tf(past, tf.init_cache(BATCH, SIZE, SIZE))
    window = FrameWindow(past[:, -(tf.window - 1) :], max(0, history - (tf.window - 1)))
    runs = {
        "convs5": lambda: s5.step(x_t, st_s5),
        "transformer (KV cache)": lambda: tf.step_cached(x_t, st_kv),
        "transformer (no cache)": lambda: tf.step_nocache(x_t, window),
    }
    times = {label: [] for label in runs}
    for r in range(repeats + 1):
        for label, fn in runs.items():
            dt, _ = _timed(fn)
            if r:  # the first round is a warm-up
                times[label].append(dt)
    return {label: statistics.median(ts) for label, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--context", type=int, default=100)
    parser.add_argument("--last", type=int, default=1000)
    parser.add_argument("--generated", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--paper-point", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/generation.json")
    parser.add_argument("--plot", default="docs/figures/generation_time.png")
    args = parser.parse_args()
    torch.set_num_threads(2)
    ctx = args.context

    checkpoints = list(range(ctx, args.last + 1, 100))
    times, medians = generation_curve(ctx, args.last, checkpoints, args.rounds)
    header = " ".join(f"{label:>23}" for label in LABELS)
    print(f"{'frames before':>13} {header}   (ms/frame)")
    curve = []
    for n in checkpoints:
        row = {label: medians[label][n] for label in LABELS}
        curve.append(dict(frames_before=n, **row))
        print(f"{n:>13} " + " ".join(f"{1e3 * row[label]:>23.2f}" for label in LABELS))

    totals = {label: sum(times[label][: args.generated]) for label in LABELS}
    s5_first, s5_last = curve[0]["convs5"], curve[-1]["convs5"]
    drift = s5_last / s5_first - 1
    s5_all = [row["convs5"] for row in curve]
    spread = max(s5_all) / min(s5_all) - 1
    summary = dict(
        generated=args.generated,
        context=ctx,
        total_seconds=totals,
        ratio_nocache_over_convs5=totals["transformer (no cache)"] / totals["convs5"],
        ratio_kvcache_over_convs5=totals["transformer (KV cache)"] / totals["convs5"],
        convs5_drift_first_to_last=drift,
        convs5_spread_max_over_min=spread,
        convs5_flat_within_10pct=abs(drift) <= 0.10,
    )
    print(f"\n{args.generated} frames after {ctx} context frames, total seconds:")
    for label in LABELS:
        ratio = totals[label] / totals["convs5"]
        print(f"  {label:<24} {totals[label]:8.2f}  ({ratio:.2f}x convs5)")
    print(
        f"ConvS5 per-frame time at {checkpoints[-1]} vs {checkpoints[0]}: {100 * drift:+.1f} % "
        f"({'flat' if abs(drift) <= 0.10 else 'NOT flat'} within 10 %); "
        f"max/min over all checkpoints {100 * spread:+.1f} %"
    )
    if args.paper_point:
        point = paper_point(900)
        summary["paper_widths_at_900"] = point
        summary["paper_widths_ratio_nocache_over_convs5"] = (
            point["transformer (no cache)"] / point["convs5"]
        )
        print("\nPaper widths, 900 frames already there (s/frame):")
        for label, seconds in point.items():
            print(f"  {label:<24} {seconds:8.3f}  ({seconds / point['convs5']:.2f}x convs5)")

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
        size=SIZE,
    )
    result = dict(meta=meta, curve=curve, summary=summary, step_seconds=times)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    plot(times, curve, ctx, Path(args.plot))


def plot(times: dict[str, list[float]], curve: list[dict], context: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for color, label in zip(("C0", "C1", "C2"), LABELS, strict=True):
        ts = times[label]
        xs = list(range(context, context + len(ts), 10))
        ys = [1e3 * per_frame_at(ts, context, n) for n in xs]
        ax.plot(xs, ys, color=color, alpha=0.3, linewidth=1)
        pts = [(row["frames_before"], 1e3 * row[label]) for row in curve]
        ax.plot(*zip(*pts, strict=True), color=color, marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("frames already generated (100 context frames, then generated)")
    ax.set_ylabel("ms per generated frame")
    ax.set_title("Generation, 4 layers, width 64, 16x16, batch 2 (2-core CPU)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
