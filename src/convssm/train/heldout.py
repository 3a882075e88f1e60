"""Held-out scoring along the way for video predictors (``eval.score_videos``).

A fixed, seeded set of Moving-MNIST videos from the *evaluation* digits (which training never
sees): ``eval.score_context`` true frames in, ``eval.score_horizon`` generated. Each scored
step gives one row of ``scores.jsonl`` (:func:`prediction_scores`: MSE over generated frames
1–10 and 1–100 beside the empty frame and repeat-last, brightness over frames 50–100, PSNR and
SSIM over 1–10 and 1–100, LPIPS when asked for and installed) and a picture
(:func:`score_strip`: for the first :data:`STRIP_VIDEOS` videos, the last context frame, then
the truth above the prediction at generated frames :data:`STRIP_FRAMES`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from convssm.metrics import LPIPS, MissingWeightsError, lpips, psnr, ssim, trivial_predictor_scores
from convssm.train.config import ExperimentConfig
from convssm.train.factory import build_eval_dataset
from convssm.train.recall_eval import recall_strip
from convssm.train.validation import generate_videos

__all__ = [
    "STRIP_FRAMES",
    "HeldOutScorer",
    "held_out_set",
    "lpips_function",
    "prediction_scores",
    "score_strip",
    "scored_steps",
]

STRIP_FRAMES = (1, 2, 3, 5, 10, 20, 30, 50, 100)
STRIP_VIDEOS = 3
SCORED_HORIZONS = (10, 100)


def scored_steps(cfg: ExperimentConfig) -> Callable[[int], bool]:
    """Whether step ``s`` is scored: ``eval.score_count`` times spread over ``train.steps``
    (and the last step), else at every validation (``train.eval_every``, the last step)."""
    steps, count = cfg.train.steps, cfg.eval.score_count
    every = max(1, steps // count) if count is not None else cfg.train.eval_every
    return lambda s: cfg.eval.score_videos > 0 and (s % every == 0 or s == steps)


def prediction_scores(
    pred: torch.Tensor,
    truth: torch.Tensor,
    last_context: torch.Tensor,
    lpips_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Scores of generated frames ``pred`` (N, h, C, H, W) against ``truth`` (same shape),
    all in [0, 1], ``last_context`` (N, C, H, W) the last true frame: the trivial-predictor
    ratios (:func:`convssm.metrics.trivial_predictor_scores` at 10 and 100 frames where the
    horizon reaches them, brightness over frames 50–100 when it reaches 100), PSNR (capped at
    100 dB per frame) and SSIM, and LPIPS when ``lpips_fn`` is given."""
    h = truth.shape[1]
    horizons = [x for x in SCORED_HORIZONS if x <= h] or [h]
    out = trivial_predictor_scores(
        pred, truth, last_context, horizons, (50, 100) if h >= 100 else None
    )
    p, s = psnr(pred, truth), ssim(pred, truth)
    for x in horizons:
        out[f"psnr@{x}"] = float(p[:, :x].clamp(max=100).mean())
        out[f"ssim@{x}"] = float(s[:, :x].mean())
        if lpips_fn is not None:
            out[f"lpips@{x}"] = float(lpips_fn(pred[:, :x], truth[:, :x]).mean())
    return out


def score_strip(videos: torch.Tensor, pred: torch.Tensor, context: int) -> np.ndarray:
    """The picture of a scored step (uint8 grey): per video, the last context frame, then the
    true frames above the generated ones at :data:`STRIP_FRAMES` (those within the horizon).
    videos (N, context + h, C, H, W) and pred (N, h, C, H, W) in [−1, 1]."""
    n = min(STRIP_VIDEOS, len(pred))
    idx = [f - 1 for f in STRIP_FRAMES if f <= pred.shape[1]]
    truth = videos[:n, context:][:, idx]
    return recall_strip(videos[:n, context - 1], truth, {"prediction": pred[:n][:, idx]})


def held_out_set(
    cfg: ExperimentConfig,
    num_videos: int | None = None,
    horizon: int | None = None,
    seed: int | None = None,
) -> Dataset:
    """The config's held-out scoring set: ``eval.score_videos`` videos (or ``num_videos``)
    of ``eval.score_context + eval.score_horizon`` frames (or that ``horizon``) from the
    evaluation digits, drawn from ``eval.score_seed`` (or ``seed``)."""
    ev = cfg.eval
    n = ev.score_videos if num_videos is None else num_videos
    frames = ev.score_context + (ev.score_horizon if horizon is None else horizon)
    return build_eval_dataset(cfg, n, frames, seed=ev.score_seed if seed is None else seed)


def lpips_function(cfg: ExperimentConfig, device: torch.device):
    """LPIPS on the CPU when ``eval.metrics`` names it and its weights are installed."""
    if "lpips" not in cfg.eval.metrics or device.type != "cpu":
        return None
    try:
        net = LPIPS.from_pretrained()
    except MissingWeightsError:  # the weights are an optional install
        return None
    return lambda p, t: lpips(p, t, net)


class HeldOutScorer:
    """The fixed held-out set of a config and the scoring of a model on it."""

    def __init__(self, cfg: ExperimentConfig, device: torch.device) -> None:
        ev = cfg.eval
        self.context, self.horizon = ev.score_context, ev.score_horizon
        held_out = held_out_set(cfg)
        self.videos = torch.stack([held_out[i] for i in range(len(held_out))])
        self.batch_size = ev.batch_size
        self.device = device
        self.precision = cfg.train.precision
        self.lpips_fn = lpips_function(cfg, device)

    def score(self, model: torch.nn.Module) -> tuple[dict[str, Any], np.ndarray]:
        """(scores, strip) of ``model`` on the held-out set (generation in eval mode)."""
        was_training = model.training
        batches = self.videos.split(self.batch_size)
        _, pred = generate_videos(
            model, batches, self.context, self.horizon, self.device, self.precision
        )
        model.train(was_training)
        pred = pred.clamp(-1, 1)
        c = self.context
        scores = prediction_scores(
            (pred + 1) / 2, (self.videos[:, c:] + 1) / 2, (self.videos[:, c - 1] + 1) / 2,
            self.lpips_fn,
        )  # fmt: skip
        return scores, score_strip(self.videos, pred, c)
