"""The demo's first look: memory. A digit shown once, a moving distractor for 1 000 frames, a
cue, and the digit redrawn — by the published ConvS5 recall model and by the ConvLSTM trained
on the same task, side by side, each with its ``rel_recall``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from convssm._files import atomic_write_text
from convssm._resources import shipped_dir
from convssm.data import DelayedRecall
from convssm.metrics import rel_recall
from convssm.models import VideoPredictor
from convssm.train.checkpoint import read_experiment_yaml
from convssm.train.factory import delayed_recall
from convssm.train.recall_eval import recall_predictions, recall_strip

__all__ = ["RECALL_MODELS", "RECALL_DELAY", "find_recall_models", "recall_in_words", "show_recall"]

# label -> published folder under pretrained/: ConvS5 first, the baseline beside it
RECALL_MODELS = {
    "ConvS5": Path("pretrained") / "recall" / "convs5_rectified_scratch",
    "ConvLSTM": Path("pretrained") / "recall" / "convlstm_delay256",
}
RECALL_DELAY = 1000  # both trained at delays up to 256; both recall at any delay to 4 096
RECALL_VIDEOS = 8
TASK_FRAMES = (0, 1, 2, 3, 250, 500, 750, 1000)  # the start, the distractor; then the cue


def find_recall_models() -> dict[str, Path]:
    """The published recall models, shipped with the package (package data in a wheel, the
    repository's ``pretrained/`` in a source checkout)."""
    found = {}
    for label, rel in RECALL_MODELS.items():
        path = shipped_dir("pretrained") / rel.relative_to("pretrained")
        if not (path / "config.json").is_file():
            raise ValueError(f"this installation has no published recall model at {path}")
        found[label] = path
    return found


def _task_picture(ds: DelayedRecall, path: Path, scale: int = 4) -> Path:
    """One video's frames 0, 1, 2, 3, 250, 500, 750, 1000 (those within its delay) and the cue,
    left to right."""
    video = ds.video_uint8(0)
    picks = [t for t in TASK_FRAMES if t <= ds.delay] + [ds.cue_index]
    h, w = video.shape[1:]
    row = np.full((h, len(picks) * (w + 1)), 96, dtype=np.uint8)
    for k, t in enumerate(picks):
        row[:, k * (w + 1) : k * (w + 1) + w] = video[t]
    Image.fromarray(np.kron(row, np.ones((scale, scale), dtype=np.uint8))).save(path)
    return path


def recall_in_words(score: float) -> str:
    """A ``rel_recall`` in words: what fraction of the no-memory error is left."""
    if score >= 1:
        return "no better than drawing the average digit (no memory)"
    return f"{100 * (1 - score):.0f}% of the average digit's error removed"


@torch.no_grad()
def show_recall(
    out_dir: str | Path,
    *,
    models: dict[str, Path] | None = None,
    delay: int = RECALL_DELAY,
    videos: int = RECALL_VIDEOS,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Score each published recall model on ``videos`` held-out videos at ``delay``; write
    the task's frames, a strip of the recalls and the scores. Returns paths and scores."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = models or find_recall_models()
    scores, preds, ds = {}, {}, None
    for label, folder in models.items():
        model = VideoPredictor.from_pretrained(folder).eval()
        cfg = read_experiment_yaml(folder, model.config)
        ds = delayed_recall(cfg, "eval", videos, cfg.eval.seed, delay=delay)
        pred, truth = next(recall_predictions(model, ds, batch_size=videos))  # one pass
        scores[label] = rel_recall(pred, truth, ds.mean_pattern())
        preds[label] = pred[:4]
        log(
            f"demo [1/3]: {label} ({folder.name}): rel_recall {scores[label]:.3f} after "
            f"{delay} distractor frames: {recall_in_words(scores[label])} "
            f"({time.perf_counter() - t0:.0f} s)"
        )
    truth = torch.stack([ds[i]["video"][ds.cue_index + 1 :] for i in range(4)])
    first = torch.stack([ds[i]["video"][0] for i in range(4)])
    paths = {
        "recall_task": _task_picture(ds, out / "task.png"),
        "recall_strip": out / "recall.png",
        "recall_scores": out / "scores.json",
    }
    Image.fromarray(recall_strip(first, truth, preds)).save(paths["recall_strip"])
    log(
        f"demo [1/3]: the pictures: {paths['recall_task'].name} is the task (the digit, the "
        f"distractor, the cue), {paths['recall_strip'].name} the digit shown and each model's "
        "redrawing; rel_recall = the model's error / drawing the average digit (0: exact, 1: "
        "no memory)"
    )
    record = {"delay": delay, "videos": videos, "rel_recall": scores}
    atomic_write_text(paths["recall_scores"], json.dumps(record, indent=1))
    return {"paths": paths, "scores": scores}
