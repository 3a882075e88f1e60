"""Publish one of the MazeWorld study's models with a card that states what the study measured.

    python experiments/maze/publish.py --out runs/maze60 --model convlstm \
        --dest pretrained/maze/convlstm_actions --seen "blurred by +1, colour blobs by +4"

``convssm publish`` writes the folder from the run's own records (weights, config, lineage,
the commands that reproduce it, a Hugging Face card); this script then replaces the card's
"Scores" section (the study's runs score no held-out set along the way) by the study's
numbers for that model, read from ``OUT/study.json`` (run study.py first; the study must have
scored the very checkpoint being published): action use, the one-step error on first visits
and on revisits, and the three yardsticks beside them (a predictor with no memory, two that
fetch the old frame). ``strip.png`` is the study's first test window, truth above this
model's 16 generated frames. ``--seen`` is what a person saw in that strip (the card prints
it as such; nothing in it is computed).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch
from common import run_dir
from study import TestSet, write_strip

from convssm._files import atomic_write_text
from convssm.models import VideoPredictor
from convssm.train.publish import card_before_scores, publish_run

LABELS = {"convs5": "ConvS5", "convlstm": "ConvLSTM", "transformer": "frame Transformer"}


def _study_record(out: Path, model: str, step: int) -> tuple[dict, dict]:
    path = out / "study.json"
    if not path.is_file():
        raise ValueError(f"no {path}: run experiments/maze/study.py --out {out} first")
    study = json.loads(path.read_text())
    record = study["models"].get(model)
    if record is None:
        raise ValueError(f"{path} did not score {model!r} (it scored {sorted(study['models'])})")
    if record["step"] != step:
        raise ValueError(
            f"{path} scored {model} at step {record['step']}, the run's newest checkpoint is "
            f"step {step}: rerun study.py"
        )
    if "references" not in study:
        raise ValueError(f"{path} predates the yardsticks (references): rerun study.py")
    return study, record


def study_section(model: str, study: dict, record: dict, seen: str | None) -> str:
    """The card's section on what the study measured (markdown)."""
    s, use, view = study["settings"], record["action_use"], record["memory"]["view"]
    turns = record["memory"]["view_turns"]
    refs = study["references"]
    far = s["far"]
    ratio, mem, turn = use["ratio"], view["far"]["ratio"], turns["far"]["ratio"]
    copy = refs["copy_last"]["view"]["far"]["ratio"]
    text = (
        f"\n## What it does, and what it does not\n\n"
        f"Scored by the MazeWorld study (`experiments/maze/study.py`, `docs/maze.md`) on "
        f"{s['test_videos']} held-out test videos of {s['test_frames']} frames: "
        f"{use['windows']} windows of {s['context']} context + {s['horizon']} generated "
        "frames, and teacher-forced one-step errors over whole videos. MSE of frames in "
        "[−1, 1]. Yardsticks beside it: copying the last frame (no memory at all), and "
        "fetching the frame at which the view (the same cell and quarter of the compass) or "
        "the pose (the same cell and exact heading) was last seen (a memory that keeps every "
        "frame).\n\n| | this model | copy the last frame | fetch the view | fetch the pose |"
        "\n| --- | --- | --- | --- | --- |\n"
        f"| MSE over the {s['horizon']} generated frames, true actions | {use['mse_true']:.4f} "
        "| | | |\n"
        f"| the same with another video's actions | {use['mse_shuffled']:.4f} "
        f"(**{ratio:.2f}×**) | | | |\n"
    )
    for name, block in (("first visits of a view", "first"), (f"revisits, k ≥ {far}", "far")):
        row = [view[block]["mse"]] + [refs[r]["view"][block]["mse"] for r in refs]
        text += f"| one-step MSE, {name} | " + " | ".join(f"{v:.4f}" for v in row) + " |\n"
    row = [mem] + [refs[r]["view"]["far"]["ratio"] for r in refs]
    text += (
        f"| revisits k ≥ {far} over first visits | " + " | ".join(f"{v:.3f}" for v in row) + " |\n"
    )
    row = [turn] + [refs[r]["view_turns"]["far"]["ratio"] for r in refs]
    text += (
        "| the same on frames that turn into another heading sector | "
        + " | ".join(f"{v:.3f}" for v in row)
        + f" |\n\n(`study.json` of the study that scored step {record['step']}.)\n\n"
    )
    uses = "yes" if ratio >= 1.2 else "not shown (the target is ≥ 1.2)"
    text += (
        f"- **Actions: {uses}.** Another video's actions change its error by "
        f"{100 * (ratio - 1):+.0f} %.\n"
    )
    if mem < 1:
        verdict = (
            f"**Memory of places: yes** — revisits at k ≥ {far} are predicted better than "
            "first visits"
        )
    else:
        verdict = (
            f"**Memory of places: not shown.** A view it saw {far} or more frames before is "
            f"predicted {100 * (mem - 1):.1f} % worse than a new one"
        )
    text += (
        f"- {verdict}; copying the last frame, which remembers nothing, scores {copy:.3f} on "
        "the same frames.\n"
    )
    if seen:
        text += f"- **Its frames, as looked at** (`strip.png`): {seen}\n"
    return text + (
        "\n![truth above this model: the last context frame, then generated frames of the "
        "study's first test window](strip.png)\n"
    )


def _write_strip(dest: Path, out: Path, context: int, horizon: int, label: str) -> None:
    """The study's first test window: truth above this model's generated frames."""
    model = VideoPredictor.from_pretrained(dest).eval()
    _, videos, actions = next(TestSet(out).batches(1))
    with torch.no_grad():
        pred = model.generate(videos[:, :context], horizon, actions, check_values=False)
    write_strip(dest / "strip.png", videos[0], {label: pred[0]}, context)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="run.py's and study.py's --out")
    parser.add_argument("--model", required=True, choices=sorted(LABELS))
    parser.add_argument("--dest", required=True, help="the model folder to write")
    parser.add_argument("--seen", default=None, help="what a person saw in the strip")
    args = parser.parse_args(argv)
    out, dest = Path(args.out), Path(args.dest)
    run = run_dir(out, args.model)
    try:
        publish_run(run, dest)
        lineage = json.loads((dest / "lineage.json").read_text())
        study, record = _study_record(out, args.model, lineage["step"])
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    settings = study["settings"]
    _write_strip(dest, out, settings["context"], settings["horizon"], LABELS[args.model])
    title = f"# {dest.name}: {LABELS[args.model]} on MazeWorld, 32×32 pixels with actions"
    try:
        head = card_before_scores((dest / "README.md").read_text(), title)
    except ValueError as err:
        print(f"error: {dest / 'README.md'}: {err}", file=sys.stderr)
        return 2
    command = shlex.join([
        "python", "experiments/maze/publish.py", "--out", out.as_posix(), "--model", args.model,
        "--dest", dest.as_posix(),
    ])  # fmt: skip
    if args.seen:  # the text itself is the card's last line, not repeated in the command
        command += ' --seen "<what the strip shows, as the last line below>"'
    study_cmd = f"python experiments/maze/study.py --out {out.as_posix()}"
    head += (
        f"\nThis folder was written by `{command}` after `{study_cmd}`, which runs the "
        "`convssm publish` above and adds the study's scores below.\n"
    )
    text = head + study_section(args.model, study, record, args.seen)
    atomic_write_text(dest / "README.md", text)
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
