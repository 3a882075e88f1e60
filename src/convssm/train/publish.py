"""``convssm publish RUN [--step N] --out DIR``: a model folder from a run's own records.

The folder holds the checkpoint's weights and ``config.json`` (``save_pretrained``, so
``from_pretrained(DIR)`` loads it), ``experiment.yaml`` (the run's data and evaluation
settings, which ``convssm generate/evaluate DIR`` read), the scored step's picture
(``strip.png``), ``lineage.json`` (the facts below, machine-readable) and ``README.md``, a
model card in the Hugging Face format: YAML front matter (``library_name: convssm``, tags,
datasets, ``model-index`` with the held-out scores), then text.

Every fact comes from what the runs recorded: the checkpoint (config, step, the run's wall
and CPU seconds), ``sessions.jsonl`` (machine and command of each process that trained it),
``plan.json`` (``train.minutes``), ``init_from.json`` (which earlier checkpoint a phase
started from: its run is read the same way, phase by phase) and ``scores.jsonl`` with its
strips. What a run did not record is said to be unknown, never filled in.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import yaml

from convssm._files import atomic_write_text, relative_command
from convssm.train.checkpoint import load_checkpoint, load_model_weights, write_experiment_yaml
from convssm.train.config import ExperimentConfig, model_kind
from convssm.train.factory import build_model
from convssm.train.heldout import STRIP_FRAMES
from convssm.train.runlog import read_jsonl

__all__ = ["publish_run", "run_lineage", "card_front_matter", "card_before_scores", "CARD_METRICS"]

# the scores a card's front matter and table show, when the run has them
CARD_METRICS = (
    "rel_best@10",
    "rel_empty@100",
    "brightness@50-100",
    "psnr@10",
    "ssim@10",
    "lpips@10",
    "psnr@100",
    "ssim@100",
)


def _checkpoint_dir(run: Path, step: int | None) -> Path:
    ckpts = run / "checkpoints"
    found = sorted(
        int(p.name.removeprefix("step_"))
        for p in ckpts.glob("step_*")
        if p.name.removeprefix("step_").isdigit() and (p / "manifest.json").is_file()
    )
    if not found:
        raise ValueError(f"run {run.as_posix()!r} has no checkpoint under {ckpts.as_posix()!r}")
    step = found[-1] if step is None else step
    if step not in found:
        raise ValueError(
            f"run {run.as_posix()!r} keeps no checkpoint of step {step}; it keeps steps {found}"
        )
    return ckpts / f"step_{step:08d}"


def _phase(run: Path, checkpoint: Path) -> tuple[dict[str, Any], ExperimentConfig, Any]:
    """One phase's record from its run and the checkpoint of it that was used."""
    info = load_checkpoint(checkpoint)
    run_time = info.training_state.get("run_time") or {}
    sessions = [s for s in read_jsonl(run / "sessions.jsonl") if s["start_step"] < info.step]
    plan = run / "plan.json"
    phase = {
        "name": info.config.name,
        "run": run.as_posix(),
        "step": info.step,
        "wall_s": run_time.get("wall_s"),
        "cpu_s": run_time.get("cpu_s"),
        "sessions": sessions,
        "plan": json.loads(plan.read_text()) if plan.is_file() else None,
        "init_from": info.config.train.init_from,
    }
    return phase, info.config, info


def run_lineage(run: str | Path, step: int | None = None) -> list[dict[str, Any]]:
    """The phases that made checkpoint ``step`` (None: the newest) of ``run``, first phase
    first: each from its run's records, following ``train.init_from`` back while the earlier
    runs' records are there (a phase whose start is not found says so in ``start``)."""
    run = Path(run)
    phase, _, _ = _phase(run, _checkpoint_dir(run, step))
    phases = [phase]
    while phase["init_from"] is not None:
        phase["start"] = _earlier(run, phase)
        if phase["start"]["kind"] != "checkpoint":
            break
        earlier = Path(phase["start"]["checkpoint"])
        run = earlier.parent.parent  # the earlier phase's run: its records say where it began
        phase, _, _ = _phase(run, earlier)
        phases.append(phase)
    return phases[::-1]


def _earlier(run: Path, phase: dict[str, Any]) -> dict[str, Any]:
    """Where a phase started, from its run's ``init_from.json``."""
    record = run / "init_from.json"
    if not record.is_file():
        return {"kind": "unknown", "why": "the run recorded no init_from.json"}
    source = json.loads(record.read_text())
    folder = Path(source["checkpoint"])  # as seen from where the phase was trained
    beside = source.get("checkpoint_from_workdir")  # as seen from the run (newer runs)
    if not folder.exists() and beside is not None and (run / beside).exists():
        folder = Path(os.path.normpath(run / beside))
    if source["step"] is None:
        return {"kind": "model folder", "checkpoint": folder.as_posix()}
    if not (folder / "manifest.json").is_file():
        return {"kind": "unknown", "why": f"checkpoint {folder.as_posix()} is not here any more"}
    return {"kind": "checkpoint", "checkpoint": folder.as_posix(), "step": source["step"]}


def card_front_matter(name: str, tags: list[str], datasets: list[str], results: list) -> str:
    """The YAML front matter of a Hugging Face model card for a convssm model."""
    meta = {
        "library_name": "convssm",
        "license": "apache-2.0",
        "tags": tags,
        "datasets": datasets,
        "model-index": [{"name": name, "results": results}],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


SCORES_HEADING = "\n## Scores\n"


def card_before_scores(card: str, title: str, front_matter: bool = True) -> str:
    """The part of a card :func:`publish_run` wrote that comes before its "Scores" section,
    with its title line replaced by ``title`` (and, unless ``front_matter``, without its YAML
    front matter): for a study's publisher that writes its own scores below it. Refuses a
    card without that section (a changed card is not cut blindly)."""
    if SCORES_HEADING not in card:
        raise ValueError(f"the card has no {SCORES_HEADING.strip()!r} section to replace")
    head = card.split(SCORES_HEADING)[0]
    if not front_matter:
        head = head.split("---\n", 2)[2]
    return re.sub(r"(?m)^# .*$", lambda _: title, head, count=1)


def _dataset(cfg: ExperimentConfig) -> tuple[str, list[str], str]:
    """(a description, the hub dataset ids, the model-index dataset type) of the run's data."""
    d = cfg.data
    if d.dataset == "moving_mnist":
        size = cfg.model.image_size
        digit = d.options.get("digit_size", 28)
        text = f"Moving-MNIST, {d.num_digits} digit(s) of {digit} px on {size}×{size}"
        return text, ["mnist"], "moving-mnist"
    return f"{d.dataset} data", [], d.dataset


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


# what the card says of each score it shows
MEANINGS = {
    "rel_best@10": "MSE over generated frames 1–10 over that of the better trivial predictor "
    "(empty frame or repeat-last)",
    "rel_empty@100": "MSE over frames 1–100 over the empty frame's",
    "brightness@50-100": "predicted over true mean intensity in frames 50–100",
}


def _machines(phase: dict[str, Any]) -> str:
    seen = []
    for s in phase["sessions"]:
        text = f"{s['machine']} {s['system']}, {s['cpu_count']} CPUs, {s['threads']} thread(s)"
        if s["device"] != "cpu":
            text += f", {s['device_name'] or s['device']} ×{s['world_size']}"
        text += f", torch {s['torch']}"
        if text not in seen:
            seen.append(text)
    return "; ".join(seen) or "not recorded"


def _commands(phases: list[dict[str, Any]]) -> list[str]:
    """The recorded commands of every phase, in order (unrecorded ones left out)."""
    return [s["command"] for p in phases for s in p["sessions"] if s.get("command")]


def _relative_commands(phases: list[dict[str, Any]]) -> None:
    """Rewrite each session's recorded command with the paths inside the working directory
    relative to it (runs recorded before ``convssm train`` did so themselves)."""
    for phase in phases:
        for session in phase["sessions"]:
            if session.get("command"):
                session["command"] = relative_command(session["command"])


def _table(rows: list[dict], keys: list[str]) -> str:
    head = "| step | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1) + "\n"
    return head + "".join(
        f"| {r['step']} | " + " | ".join(f"{r[k]:.3f}" if k in r else "" for k in keys) + " |\n"
        for r in rows
    )


# what publish_run writes into its folder (save_pretrained's files among them)
PUBLISHED_FILES = frozenset(
    {"README.md", "config.json", "model.safetensors", "experiment.yaml", "lineage.json",
     "strip.png"}
)  # fmt: skip


def _check_out_folder(out: Path) -> None:
    """Refuse a folder holding files publishing would not replace: left beside the new
    model (an older format's ``training.json``, say), they would contradict its card."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out {out.as_posix()!r} exists and is not a folder")
    other = sorted(p.name for p in out.iterdir() if p.name not in PUBLISHED_FILES)
    if other:
        raise ValueError(
            f"--out {out.as_posix()!r} holds files a publication does not write ({other}); "
            "they would be left beside the new model: remove them or choose another folder"
        )


def publish_run(run: str | Path, out: str | Path, step: int | None = None) -> Path:
    """Write the model folder of checkpoint ``step`` (None: the newest) of ``run`` into
    ``out`` (see the module docstring); return ``out``."""
    run, out = Path(run), Path(out)
    phases = run_lineage(run, step)
    _relative_commands(phases)
    this = phases[-1]
    _, cfg, info = _phase(run, _checkpoint_dir(run, this["step"]))
    model = build_model(info.model_config)
    load_model_weights(model, info.weights, str(info.path))
    _check_out_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    write_experiment_yaml(out, cfg)
    scores = [r for r in read_jsonl(run / "scores.jsonl") if r["step"] <= this["step"]]
    row = next((r for r in scores if r["step"] == this["step"]), None)
    strip = run / f"strip_{this['step']:06d}.png"
    if row is not None and strip.is_file():
        shutil.copyfile(strip, out / "strip.png")
    else:  # an earlier publication's picture would show another step
        (out / "strip.png").unlink(missing_ok=True)
    publish_cmd = shlex.join(
        ["convssm", "publish", run.as_posix(), "--step", str(this["step"]), "--out", out.as_posix()]
    )
    record = {
        "run": this["name"],
        "step": this["step"],
        "steps_total": sum(p["step"] for p in phases),  # every phase counts from step 0
        "phases": phases,
        "commands": [*_commands(phases), publish_cmd],
        "scores": row,
        "scores_along_the_way": scores,
    }
    atomic_write_text(out / "lineage.json", json.dumps(record, indent=1) + "\n")
    atomic_write_text(out / "README.md", _card(out, cfg, model, phases, record, row, scores))
    return out


def _card(out, cfg, model, phases, record, row, scores) -> str:
    data_text, datasets, data_type = _dataset(cfg)
    kind = model_kind(cfg.model)
    seq = getattr(cfg.model, "sequence_model", None)
    context, horizon = cfg.eval.score_context, cfg.eval.score_horizon
    keys = [k for k in CARD_METRICS if row is not None and k in row]
    results = []
    if row is not None:
        held_out = (
            f"{data_text}, {cfg.eval.score_videos} held-out videos (seed {cfg.eval.score_seed})"
        )
        results.append({
            "task": {"type": "video-prediction", "name": f"{horizon} frames after {context}"},
            "dataset": {"type": data_type, "name": held_out},
            "metrics": [{"type": k, "value": round(float(row[k]), 4), "name": k} for k in keys],
        })  # fmt: skip
    tags = ["video-prediction", kind.replace("_", "-")] + ([seq] if seq else [])
    if cfg.data.dataset == "moving_mnist":
        tags.append("moving-mnist")
    text = card_front_matter(out.name, tags, datasets, results)
    n_params = sum(p.numel() for p in model.parameters())
    text += f"\n# {out.name}: {seq or kind} on {data_text}\n\n"
    text += (
        f"A `{type(model).__name__}` published from checkpoint step {record['step']} of the "
        f"run `{phases[-1]['run']}` (experiment `{record['run']}`) by `convssm publish`. Load it "
        f'with `{type(model).__name__}.from_pretrained("{out.as_posix()}")`; `lineage.json` '
        "holds everything below in machine-readable form, `experiment.yaml` the run's data "
        f"and evaluation settings. {n_params:,} parameters.\n\n## Training\n\n"
    )
    total_wall = [p["wall_s"] for p in phases]
    total_cpu = [p["cpu_s"] for p in phases]
    text += "| phase | run | steps | wall | CPU | machine |\n|---|---|---|---|---|---|\n"
    for i, p in enumerate(phases, 1):
        text += (
            f"| {i}: `{p['name']}` | `{p['run']}` | {p['step']} | {_minutes(p['wall_s'])} | "
            f"{_minutes(p['cpu_s'])} | {_machines(p)} |\n"
        )
    text += f"\nIn all {record['steps_total']} steps"
    if None not in total_wall and None not in total_cpu:
        text += f", {_minutes(sum(total_wall))} wall and {_minutes(sum(total_cpu))} CPU"
    text += ".\n"
    first = phases[0]
    if first["init_from"] is not None:
        start = first.get("start", {})
        where = start.get("checkpoint") or start.get("why", "unknown")
        text += (
            f"\nThe first phase listed started from `{first['init_from']}` ({start.get('kind')}: "
            f"{where}); what came before it is not in these records.\n"
        )
    for p in phases:
        if p["plan"] is not None:
            plan = p["plan"]
            text += (
                f"\n`{p['name']}` fitted its steps to `train.minutes: {plan['minutes']:g}`: a "
                f"probe measured {plan['step_s']:.3g} s per step ({plan['clock']} clock), "
                f"so {plan['steps']} steps.\n"
            )
    text += "\nReproduce (the commands the runs recorded, then this folder's):\n\n```bash\n"
    text += "\n".join(record["commands"]) + "\n```\n"
    if len(_commands(phases)) < sum(len(p["sessions"]) for p in phases) or not _commands(phases):
        text += (
            "\nSome processes of these runs recorded no command (trained through the Python "
            "API); their configs are in each run's `config.yaml`.\n"
        )
    text += SCORES_HEADING + "\n"
    if row is None:
        text += "The run scored no held-out videos at this step (`eval.score_videos`).\n"
        return text
    text += (
        f"Held-out set: {cfg.eval.score_videos} videos from the evaluation digits (seed "
        f"{cfg.eval.score_seed}), {context} context frames, {horizon} generated frames "
        "(`convssm.train.heldout`). "
        + "; ".join(f"`{k}`: {MEANINGS[k]}" for k in keys if k in MEANINGS)
        + ".\n\n"
    )
    text += _table(scores, keys)
    if (out / "strip.png").is_file():
        shown = ", ".join(str(f) for f in STRIP_FRAMES if f <= horizon)
        text += (
            "\n![per video: the last context frame, then the truth above the prediction at "
            f"generated frames {shown}](strip.png)\n"
        )
    return text
