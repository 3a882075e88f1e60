"""How narrow is a recall model's memory? rel_recall at delays around the one it trained at.

    python experiments/recall/delay_sweep.py MODEL [MODEL ...] [--delays 192,224,240,248,
        252,256,260,264,272,288,320] [--videos 16] [--out recall_sweep] [--merge EARLIER.json]

Each MODEL is a published folder (``pretrained/recall/convs5_delay256``) or a phase's
workdir made by run.py (``runs/recall/convs5_real/delay_256``). Every model is scored by
:func:`convssm.train.recall_eval.recall_scores` on the same held-out videos at each delay.
A memory that holds the pattern whatever the delay scores about the same at 250 as at 256;
one that decodes the state as it looks after exactly the trained delay does not.

Writes ``OUT/sweep.json`` (the scores and the command) and ``OUT/sweep.png`` (rel_recall
against the delay, one line per model) and prints the table. Nothing is written into a
model folder or a workdir. ``--merge`` adds the rows of an earlier ``sweep.json`` scored on
the same videos and delays (each keeps the command that scored it), so a model trained later
joins the table without scoring the others again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from convssm._files import atomic_write_text
from convssm.models import VideoPredictor
from convssm.train.checkpoint import load_checkpoint, load_model_weights, read_experiment_yaml
from convssm.train.factory import delayed_recall
from convssm.train.recall_eval import recall_scores

DELAYS = "192,224,240,248,252,256,260,264,272,288,320"


def load_model(path: Path):
    """(model in eval mode, experiment config) of a published folder or a run's workdir."""
    if (path / "experiment.yaml").is_file() and (path / "config.json").is_file():
        model = VideoPredictor.from_pretrained(path)
        return model.eval(), read_experiment_yaml(path, model.config)
    if (path / "checkpoints").is_dir():
        info = load_checkpoint(path, training_state=False)
        model = VideoPredictor(info.config.model)
        load_model_weights(model, info.weights, str(info.path))
        return model.eval(), info.config
    raise SystemExit(
        f"{path}: neither a published folder (experiment.yaml and config.json) nor a "
        "run's workdir (checkpoints/)"
    )


def plot(rows: list[dict], delays: list[int], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for row in rows:
        ax.plot(delays, [row["rel_recall"][str(d)] for d in delays], marker="o", label=row["model"])
    ax.axhline(1.0, color="grey", ls="--", lw=1, label="no memory (the mean pattern)")
    ax.set_xlabel("delay (frames between the digit and the cue)")
    ax.set_ylabel("rel_recall (0 perfect, 1 no memory)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="published folders or run.py workdirs")
    parser.add_argument("--delays", default=DELAYS)
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--out", default="recall_sweep")
    parser.add_argument("--merge", help="an earlier sweep.json whose rows to add")
    args = parser.parse_args(argv)
    try:
        delays = [int(d) for d in args.delays.split(",")]
    except ValueError:
        parser.error(f"--delays must be comma-separated integers, got {args.delays!r}")
    if args.videos < 1 or any(d < 1 for d in delays):
        parser.error("--videos and every delay must be positive")
    torch.set_num_threads(1)
    earlier = earlier_rows(Path(args.merge), args.videos, delays) if args.merge else []
    earlier = [r for r in earlier if r["model"] not in args.models]  # scored again: new wins
    rows = []
    for name in args.models:
        model, cfg = load_model(Path(name))
        row = {"model": name, "rel_recall": {}}
        t0 = time.process_time()
        for d in delays:
            ds = delayed_recall(cfg, "eval", args.videos, cfg.eval.seed, delay=d)
            row["rel_recall"][str(d)] = recall_scores(model, ds, batch_size=8)["rel_recall"]
            print(f"{name:45s} delay {d:5d}: rel_recall {row['rel_recall'][str(d)]:.3f}",
                  flush=True)  # fmt: skip
        row["score_cpu_s"] = time.process_time() - t0
        rows.append(row)
    rows = earlier + rows
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python experiments/recall/delay_sweep.py " + " ".join(argv or sys.argv[1:]),
        "videos": args.videos,
        "delays": delays,
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}",
        "models": rows,
    }
    atomic_write_text(out / "sweep.json", json.dumps(record, indent=1) + "\n")
    plot(rows, delays, out / "sweep.png")
    print(
        "\nrel_recall on held-out digits\n" + f"{'model':45s}" + "".join(f"{d:>7}" for d in delays)
    )
    for row in rows:
        print(f"{row['model']:45s}" + "".join(f"{row['rel_recall'][str(d)]:>7.3f}" for d in delays))
    return 0


def earlier_rows(path: Path, videos: int, delays: list[int]) -> list[dict]:
    """The rows of an earlier sweep, each marked ``scored_by`` its command; refused unless it
    scored the same number of videos at the same delays (other scores do not compare)."""
    if not path.is_file():
        raise SystemExit(f"--merge: {path} does not exist")
    earlier = json.loads(path.read_text())
    if earlier.get("videos") != videos or earlier.get("delays") != delays:
        raise SystemExit(
            f"--merge: {path} scored {earlier.get('videos')} videos at delays "
            f"{earlier.get('delays')}, this sweep {videos} at {delays}; scores over other "
            "videos or delays are not comparable"
        )
    return [{**r, "scored_by": r.get("scored_by", earlier["command"])} for r in earlier["models"]]


if __name__ == "__main__":
    raise SystemExit(main())
