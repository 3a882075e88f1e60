"""Score the delayed-recall models that run.py trained, side by side; a table, JSON, figures.

    python experiments/recall/report.py [--runs runs/recall] [--videos 32]
        [--delays 16,64,256,1024,4096] [--out recall_report]

For every phase that run.py finished (``RUNS/MODEL/delay_D/phase.json``) it takes the model
trained up to that phase when D is 256 (the equal-budget comparison) or the last phase
of a model (ConvS5's longer curriculum), and measures:

- ``rel_recall`` (:func:`convssm.train.recall_eval.recall_scores`) at every delay of
  ``--delays`` on ``--videos`` held-out videos (evaluation digits, ``eval.seed``), and the
  same with the delay frames left blank (a diagnostic: a memory that fades with time against
  one the distractor disturbs);
- for each architecture (ConvS5 — the ablations share its architecture —, ConvLSTM, the
  Transformer with its KV cache and without it, as the paper samples): time per generated
  frame after a context of each delay (median over 16 frames, batch 1), the conditioning
  time and the peak resident memory during that generation (the kernel's high-water mark,
  reset after the model and data are loaded), each in a fresh child process so that no
  measurement sees another's allocations;
- the CPU minutes each model trained for (from phase.json).

``--merge EARLIER.json`` adds the model rows of an earlier report (one made with the same
``--videos``; a delay it did not score is left empty) to the table, the figure and the JSON,
each marked with the command that scored it, so models trained later join the comparison
without their predecessors' workdirs; their strips are not redrawn.

It writes ``OUT/recall.json``, ``OUT/rel_recall.png`` (rel_recall against delay),
``OUT/time_per_frame.png`` and ``OUT/strip_delay{D}.png`` (the shown digit, the true recall
frames, then each model's, for 4 videos) and prints the tables.
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
from PIL import Image

from convssm._files import atomic_write_text
from convssm.models import VideoPredictor
from convssm.train.checkpoint import load_checkpoint, load_model_weights
from convssm.train.factory import delayed_recall
from convssm.train.recall_eval import recall_predictions, recall_scores, recall_strip

LABELS = {
    "convs5": "ConvS5",
    "convs5_short": "ConvS5, short timescales",
    "convs5_random": "ConvS5, random Λ",
    "convs5_mixed": "ConvS5, mixed delays",
    "convs5_real": "ConvS5, real Λ",
    "convs5_real_mixed": "ConvS5, real Λ, mixed delays",
    "convs5_real_log": "ConvS5, held log-spaced real Λ",
    "convs5_real_log_mixed": "ConvS5, held log-spaced real Λ, mixed delays",
    "convs5_real_log_cue": "ConvS5, held log-spaced real Λ, moving cue",
    "convs5_real_log_share": "ConvS5, real_log, moving cue, distractor share",
    "convs5_real_log_blank": "ConvS5, real_log, moving cue, distractor share, blank offset",
    "convs5_real_log_still": "ConvS5, real_log, moving cue, distractor share and speed",
    "convs5_real_log_blank_still": "ConvS5, real_log, moving cue, distractor share and speed, "
    "blank offset",
    "convs5_real_log_penalty": "ConvS5, real_log, distractor share and speed, state penalty",
    "convs5_real_log_penalty_strong": "ConvS5, real_log, distractor share and speed, "
    "state penalty ×10",
    "convs5_real_log_penalty_blank": "ConvS5, real_log, distractor share and speed, state penalty, "
    "blank offset",
    "convs5_real_log_distractor": "ConvS5, real_log, blank offset, distractor penalty",
    "convs5_real_log_distractor_strong": "ConvS5, real_log, blank offset, distractor penalty ×10",
    "convs5_real_log_distractor_depth1": "ConvS5, real_log, blank offset, distractor penalty, "
    "one layer",
    "convs5_real_log_distractor_depth1_strong": "ConvS5, real_log, blank offset, distractor "
    "penalty ×10, one layer",
    "convs5_real_log_rectified": "ConvS5, real_log, blank offset, distractor penalty ×10, "
    "one layer, rectified latents",
    "convs5_real_log_rectified_recall_only": "ConvS5, real_log, blank offset, distractor "
    "penalty ×10, one layer, rectified latents, loss on the recall frames only",
    "convs5_real_log_rectified_l1": "ConvS5, real_log, blank offset, one layer, rectified "
    "latents, loss on the recall frames only, distractor penalty on mean |x|",
    "convs5_real_log_rectified_l1_strong": "ConvS5, real_log, blank offset, one layer, "
    "rectified latents, loss on the recall frames only, distractor penalty on mean |x| ×4",
    "convs5_rectified_hippo": "ConvS5, the rectified recipe with HiPPO's Λ",
    "convs5_rectified_random": "ConvS5, the rectified recipe with a random Λ",
    "convlstm_rectified": "ConvLSTM, the rectified recipe (no distractor penalty)",
    "convlstm": "ConvLSTM",
    "transformer": "Transformer",
}
COMPARE_DELAY = 256  # the delay every model of the equal-budget comparison trained up to
REL_RECALL_AXIS_TOP = 2.0  # worse than twice the mean pattern's error: drawn at the top
TIMED = ("convs5", "convlstm", "transformer")  # the architectures (ablations are ConvS5's)


def load_run_model(workdir: Path):
    """(model, experiment config) of a phase's newest checkpoint."""
    info = load_checkpoint(workdir)
    model = VideoPredictor(info.config.model)
    load_model_weights(model, info.weights, str(info.path))
    return model.eval(), info.config


def lineage(workdir: Path) -> list[dict]:
    """The phase records that led to ``workdir``'s model, oldest first, following each
    phase's ``init_from`` (run.py's phases of one model, and the run it started from; a
    published folder, ``publish.py``'s, lists its phases in ``lineage.json``'s ``recall``
    record)."""
    if not (workdir / "phase.json").is_file():
        published = workdir / "lineage.json"
        recall = json.loads(published.read_text()).get("recall") if published.is_file() else None
        if recall is None:
            raise ValueError(
                f"{workdir.as_posix()} is neither a phase of run.py (phase.json) nor a folder "
                "published by publish.py (lineage.json with a recall record)"
            )
        return recall["phases"]
    record = json.loads((workdir / "phase.json").read_text())
    record["workdir"] = workdir.as_posix()
    before = lineage(Path(record["init_from"])) if record.get("init_from") else []
    return [*before, record]


def entries(runs: Path, only: list[str] | None = None, suffix: str = "") -> list[dict]:
    """The models to score: each model at delay 256, and each model's last phase;
    ``suffix`` is added to their labels (runs of one config under another ``--runs``)."""
    found = []
    for name in only or LABELS:
        delays = sorted(
            json.loads(p.read_text())["delay"] for p in (runs / name).glob("delay_*/phase.json")
        )
        for k, delay in enumerate(delays):
            if delay != COMPARE_DELAY and k != len(delays) - 1:
                continue
            workdir = runs / name / f"delay_{delay}"
            phases = lineage(workdir)
            found.append(
                {
                    "model": name,
                    "label": f"{LABELS[name]}{suffix} (to {delay})",
                    "trained_to": delay,
                    "workdir": str(workdir),
                    "cpu_min": sum(p["cpu_s_process"] for p in phases) / 60,
                    "budget_cpu_min": sum(p["budget_cpu_min"] for p in phases),
                    "curriculum": [f"{p['model']}:{p['delay']}" for p in phases],
                }
            )
    return found


class ScoreCache:
    """Measurements already made on a phase's checkpoint (``report_cache.json`` in its
    workdir, keyed by what was measured and the checkpoint's step), so the report can be
    re-run as more models finish without scoring the finished ones again."""

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "report_cache.json"
        self.step = load_checkpoint(workdir, training_state=False).step
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def get(self, key: str) -> dict | None:
        return self.data.get(f"step{self.step}:{key}")

    def put(self, key: str, value: dict) -> None:
        self.data[f"step{self.step}:{key}"] = value
        atomic_write_text(self.path, json.dumps(self.data, indent=1) + "\n")


def timing_child(workdir: str, delay: int, frames: int, no_cache: bool = False) -> dict:
    """In a child process: generation time and peak memory after a context of ``delay``
    (``no_cache``: a Transformer samples as the paper does, re-running its window)."""
    model, cfg = load_run_model(Path(workdir))
    if no_cache:
        model.sequence.cache = False
    ds = delayed_recall(cfg, "eval", 1, cfg.eval.seed, delay=delay)
    context = ds[0]["video"][None, : ds.cue_index + 1]
    base = _status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak: measure generation alone
    t0 = time.perf_counter()
    frames_iter = model.iter_generate(context, frames, context_chunk=256, check_values=False)
    next(frames_iter)  # conditioning and the first frame
    condition_s = time.perf_counter() - t0
    times = []
    for _ in range(frames - 1):
        t = time.perf_counter()
        next(frames_iter)
        times.append(time.perf_counter() - t)
    return {
        "condition_s": condition_s,
        "ms_per_frame": 1e3 * statistics.median(times),
        "peak_rss_mib": _status_mib("VmHWM"),  # the peak since the reset: the generation's
        "rss_before_mib": base,  # the model and the context, loaded
    }


def _status_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**10
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure_timing(workdir: str, delay: int, no_cache: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--timing-child", workdir, str(delay)]
    cmd += ["--no-cache"] if no_cache else []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(rows: list[dict], delays: list[int], key: str, ylabel: str, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # the legend has a panel of its own beside the axes, a line per row: it grows with them
    fig = Figure(figsize=(14.0, max(4.2, 0.8 + 0.15 * (len(rows) + 1))), dpi=100)
    FigureCanvasAgg(fig)
    ax, key_panel = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, 1.2]})
    key_panel.axis("off")
    top = REL_RECALL_AXIS_TOP if key == "rel_recall" else float("inf")
    styles = ("-", "--", ":")  # the colour cycle has ten colours: more rows change the line
    for k, row in enumerate(rows):
        xs = [d for d in delays if str(d) in row["delays"]]
        ys = [row["delays"][str(d)][key] for d in xs]
        style = dict(marker="o", linestyle=styles[k // 10 % 3], label=row["label"])
        (line,) = ax.plot(xs, [min(y, top) for y in ys], **style)
        for x, y in zip(xs, ys, strict=True):  # off the axis: drawn at its top, with the value
            if y > top:
                ax.annotate(f"{y:.1f}", (x, top), textcoords="offset points", xytext=(4, -10),
                            fontsize=7, color=line.get_color())  # fmt: skip
    ax.set_xscale("log", base=2)
    labelled = [d for k, d in enumerate(delays) if k == 0 or d > 1.1 * delays[k - 1]]
    ax.set_xticks(labelled, [str(d) for d in labelled])  # 250 beside 256: one label
    ax.set_xlabel("delay (frames between the digit and the cue)")
    ax.set_ylabel(ylabel)
    if key == "rel_recall":
        ax.axhline(1.0, color="grey", ls="--", lw=1, label="no memory (the mean pattern)")
        ax.set_ylim(0, min(top, ax.get_ylim()[1]) * 1.04)
    ax.grid(alpha=0.3)
    key_panel.legend(*ax.get_legend_handles_labels(), fontsize=7, loc="center left")
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/recall")
    parser.add_argument("--videos", type=int, default=32)
    parser.add_argument("--delays", default="16,64,256,1024,4096")
    parser.add_argument("--out", default="recall_report")
    parser.add_argument("--no-timing", action="store_true", help="skip time and memory")
    parser.add_argument("--models", default=",".join(LABELS), help="which models (all)")
    parser.add_argument(
        "--timing-child", nargs=2, metavar=("WORKDIR", "DELAY"), help=argparse.SUPPRESS
    )
    parser.add_argument("--no-cache", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--merge", help="an earlier report's recall.json whose rows to add")
    parser.add_argument(
        "--label-suffix", default="", help="added to the labels of the models scored here"
    )
    args = parser.parse_args(argv)
    if args.timing_child:
        workdir, delay = args.timing_child[0], int(args.timing_child[1])
        print(json.dumps(timing_child(workdir, delay, 16, args.no_cache)))
        return 0
    torch.set_num_threads(1)
    delays = [int(d) for d in args.delays.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    unknown = [m for m in args.models.split(",") if m not in LABELS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; known: {', '.join(LABELS)}")
    rows = entries(Path(args.runs), args.models.split(","), args.label_suffix)
    if not rows:
        parser.error(f"no finished phase under {args.runs}: run experiments/recall/run.py first")
    earlier = merged_rows(Path(args.merge), args.videos, rows) if args.merge else ([], [])
    strips: dict[int, dict] = {d: {} for d in delays}
    shown = min(4, args.videos)  # videos in the strips
    for row in rows:
        model, cfg = load_run_model(Path(row["workdir"]))
        row["parameters"] = sum(p.numel() for p in model.parameters())
        row["delays"] = {}
        cache = ScoreCache(Path(row["workdir"]))
        for d in delays:
            ds = delayed_recall(cfg, "eval", args.videos, cfg.eval.seed, delay=d)
            scores = cache.get(f"scores:{d}:{args.videos}")
            if scores is None:
                t0 = time.process_time()
                scores = recall_scores(model, ds, batch_size=8)
                scores["score_cpu_s"] = time.process_time() - t0
                blank = recall_scores(model, ds, batch_size=8, blank_delay=True)
                scores["rel_recall_blank_delay"] = blank["rel_recall"]
                cache.put(f"scores:{d}:{args.videos}", scores)
            pred, truth = next(recall_predictions(model, ds, num_videos=shown, batch_size=shown))
            strips[d][row["label"]] = pred
            strips[d]["_truth"] = truth
            strips[d]["_first"] = torch.stack([ds[i]["video"][0] for i in range(shown)])
            row["delays"][str(d)] = scores
            print(f"{row['label']:34s} delay {d:5d}: rel_recall {scores['rel_recall']:.3f} "
                  f"(blank delay {scores['rel_recall_blank_delay']:.3f})", flush=True)  # fmt: skip
    timing = []  # one row per architecture: the ablations share ConvS5's, and its timing
    if not args.no_timing:
        archs = {r["model"]: r for r in rows if r["model"] in TIMED}  # the last phase of each
        for name, row in archs.items():
            modes = [(LABELS[name], False)]
            if name == "transformer":  # the paper's sampling: no KV cache, the window re-run
                modes.append(("Transformer, no cache (the paper's sampling)", True))
            for label, no_cache in modes:
                cache = ScoreCache(Path(row["workdir"]))
                cells = {}
                for d in delays:
                    key = f"timing-hwm:{d}:{no_cache}"
                    cells[str(d)] = cache.get(key) or measure_timing(row["workdir"], d, no_cache)
                    cache.put(key, cells[str(d)])
                timing.append({"label": label, "workdir": row["workdir"], "delays": cells})
    for d in delays:
        parts = {k: v for k, v in strips[d].items() if not k.startswith("_")}
        image = recall_strip(strips[d]["_first"], strips[d]["_truth"], parts)
        Image.fromarray(image).save(out / f"strip_delay{d}.png")
    rows, timing = earlier[0] + rows, earlier[1] + timing
    plot(rows, delays, "rel_recall", "rel_recall (0 perfect, 1 no memory)", out / "rel_recall.png")
    if timing:
        plot(timing, delays, "ms_per_frame", "ms per generated frame (batch 1)",
             out / "time_per_frame.png")  # fmt: skip
    command = "python experiments/recall/report.py " + " ".join(argv or sys.argv[1:])
    record = {
        "command": command,
        "videos": args.videos,
        "delays": delays,
        "strip_rows": ["truth", *[r["label"] for r in rows]],
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}",
        "load_at_end": os.getloadavg(),
        "models": rows,
        "timing": timing,
    }
    (out / "recall.json").write_text(json.dumps(record, indent=1) + "\n")
    print_table(rows, delays, timing)
    return 0


def merged_rows(path: Path, videos: int, new: list[dict]) -> tuple[list[dict], list[dict]]:
    """The model and timing rows of an earlier report, each marked ``scored_by`` its command;
    rows for a workdir this report scores again are dropped (the new score wins)."""
    if not path.is_file():
        raise SystemExit(f"--merge: {path} does not exist")
    earlier = json.loads(path.read_text())
    if earlier.get("videos") != videos:
        raise SystemExit(
            f"--merge: {path} scored {earlier.get('videos')} videos per delay, this report "
            f"{videos}; scores over different videos are not comparable (use --videos "
            f"{earlier.get('videos')})"
        )
    fresh = {r["workdir"] for r in new}
    rows = [r for r in earlier["models"] if r["workdir"] not in fresh]
    for r in [*rows, *earlier.get("timing", [])]:
        r.setdefault("scored_by", earlier["command"])
    return rows, earlier.get("timing", [])


def _cell(row: dict, d: int, key: str) -> str:
    """One score, 8 wide, or a dash where the row has no score at that delay."""
    cell = row["delays"].get(str(d))
    return f"{cell[key]:>8.3f}" if cell else f"{'-':>8}"


def print_table(rows: list[dict], delays: list[int], timing: list[dict]) -> None:
    head = f"{'model':34s}{'CPU min':>8}" + "".join(f"{d:>8}" for d in delays)
    print("\nrel_recall on held-out digits\n" + head)
    for r in rows:
        cells = "".join(_cell(r, d, "rel_recall") for d in delays)
        print(f"{r['label']:34s}{r['cpu_min']:>8.1f}{cells}")
    print("\nthe same with the delay frames left blank (no distractor): a diagnostic\n" + head)
    for r in rows:
        cells = "".join(_cell(r, d, "rel_recall_blank_delay") for d in delays)
        print(f"{r['label']:34s}{r['cpu_min']:>8.1f}{cells}")
    if timing:
        print("\nms per generated frame / peak RSS MiB (batch 1, one thread)\n" + head)
        for r in timing:
            cells = "".join(
                f"{c['ms_per_frame']:>5.1f}/{c['peak_rss_mib']:<4.0f}" if c else f"{'-':>8}"
                for c in (r["delays"].get(str(d)) for d in delays)
            )
            print(f"{r['label'][:34]:34s}{'':>8}{cells}")


if __name__ == "__main__":
    raise SystemExit(main())
