"""Scoring of the evaluation protocol (docs/design.md#evaluation-protocol): predictions against
ground truth.

The protocol conditions every video on ``context`` frames and generates ``max(horizons)``
frames (deterministic, so the first ``h`` generated frames are the ``h``-frame prediction);
the generation is the caller's (``convssm.run``, or validation during training). Here the
predictions are scored per frame, and for each horizon ``h``:

- PSNR and SSIM on the ``h`` predicted frames in [0, 1], mean over frames then videos;
- LPIPS (AlexNet, v0.1 heads) on the same frames, mean over frames then videos;
- FVD over whole videos (context plus ``h`` frames), mean and std over chunks of 256.

Physical fields (a model with ``normalization`` statistics, trained on ``data.dataset:
array``) are scored by kind: per-channel RMSE and MAE in the data's own units (``rmse`` and
``mae``: one number per channel per horizon, one list of C numbers per frame), always; PSNR,
SSIM and MSE on the fields mapped through the model's normaliser (its training range onto
[0, 1]); LPIPS and FVD, which score natural video, are skipped with that reason.

A metric that cannot run (its weights are not installed, the frames are too small, fewer
videos than one FVD chunk) is not silently left out: the result lists it under ``skipped``
with the reason.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from convssm.metrics.field import channel_mae, channel_mse
from convssm.metrics.fvd import FVDAccumulator
from convssm.metrics.i3d import InceptionI3d
from convssm.metrics.image import psnr, ssim
from convssm.metrics.lpips import LPIPS, lpips

__all__ = [
    "EvalResult",
    "frame_metric_functions",
    "evaluate_predictions",
    "json_safe",
    "to_unit",
    "to_uint8",
]

FRAME_METRICS = ("psnr", "ssim", "lpips")
_FRAME_METRIC_FNS: dict[str, Callable] = {"psnr": psnr, "ssim": ssim, "lpips": lpips}
FIELD_METRICS = ("rmse", "mae")
FVD_CHUNK = 256
LPIPS_MIN_SIZE = 31


@dataclass
class EvalResult:
    """Metrics per horizon, per-frame curves and what was skipped, JSON-able via ``to_dict``."""

    context: int
    horizons: list[int]
    num_videos: int
    per_horizon: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_frame: dict[str, list[float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    channels: list[str] | None = None  # fields: ``name [unit]`` of each channel

    def to_dict(self) -> dict[str, Any]:
        labels = {} if self.channels is None else {"channels": self.channels}
        return json_safe(
            {
                **labels,
                "protocol": "docs/design.md#evaluation-protocol: condition on context, generate, "
                "score predicted "
                "frames in [0, 1]; FVD over whole videos including the context",
                "context": self.context,
                "horizons": self.horizons,
                "num_videos": self.num_videos,
                "per_horizon": self.per_horizon,
                "per_frame": self.per_frame,
                "skipped": self.skipped,
                "seconds": self.seconds,
            }
        )


def json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def to_unit(video: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] float32 (clamped)."""
    return ((video.float() + 1.0) * 0.5).clamp_(0.0, 1.0)


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """[-1, 1] (…, C, H, W) -> uint8 array of the same shape."""
    return (to_unit(video) * 255.0).round_().to(torch.uint8).cpu().numpy()


def frame_metric_functions(
    names: Iterable[str], frame_size: tuple[int, int] | None = None
) -> tuple[dict[str, Callable], dict[str, str]]:
    """The per-frame metric functions for ``names`` that can run here, and the skips.

    Each function maps (pred, target) videos (B, T, C, H, W) in [0, 1] to (B, T). LPIPS
    loads its AlexNet weights once here; when they are not installed, or the frames are
    smaller than AlexNet accepts (31 pixels), it is skipped with the reason.
    """
    found, skipped = {}, {}
    for name in names:
        if name not in FRAME_METRICS:
            continue
        fn = _FRAME_METRIC_FNS[name]
        if name == "lpips":
            if frame_size is not None and min(frame_size) < LPIPS_MIN_SIZE:
                skipped[name] = (
                    f"LPIPS (AlexNet) needs frames of at least {LPIPS_MIN_SIZE}x{LPIPS_MIN_SIZE}, "
                    f"got {frame_size[0]}x{frame_size[1]}"
                )
                continue
            try:
                model = LPIPS.from_pretrained()
            except (ImportError, FileNotFoundError, OSError) as err:
                skipped[name] = f"LPIPS weights unavailable: {err}"
                continue
            found[name] = functools.partial(fn, model=model)
            continue
        found[name] = fn
    return found, skipped


def evaluate_predictions(
    truth: torch.Tensor,
    pred: torch.Tensor,
    context: int,
    horizons: list[int],
    metric_names: Iterable[str] = ("psnr", "ssim", "lpips", "fvd"),
    batch_size: int = 16,
    fvd_chunk: int = FVD_CHUNK,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> EvalResult:
    """Score predictions (N, H, C, H, W) against ground truth (N, context + H, C, H, W).

    Both in [-1, 1] — or, with ``normalize`` (a field model's map from physical units onto
    [-1, 1]), both in physical units, scored as fields (module docstring). Per-frame curves
    cover all generated frames; per-horizon numbers the first ``h`` of them. ``mse``
    (per-pixel, in [0, 1]) is always reported; ``rmse``/``mae`` (per channel, in the units
    of ``truth``) when asked, and always for fields.
    """
    start = time.perf_counter()
    metric_names = list(metric_names)
    unit = to_unit if normalize is None else (lambda v: to_unit(normalize(v.float())))
    natural_only: dict[str, str] = {}
    if normalize is not None:
        for name in ("lpips", "fvd"):
            if name in metric_names:
                natural_only[name] = f"{name.upper()} scores natural video, not physical fields"
        metric_names = [*FIELD_METRICS] + [
            m for m in metric_names if m not in FIELD_METRICS and m not in natural_only
        ]
    horizon = pred.shape[1]
    if truth.shape[1] != context + horizon:
        raise ValueError(
            f"truth has {truth.shape[1]} frames, expected context {context} + horizon {horizon}"
        )
    if max(horizons) > horizon:
        raise ValueError(f"horizons {horizons} exceed the {horizon} generated frames")
    result = EvalResult(context=context, horizons=list(horizons), num_videos=int(pred.shape[0]))
    target = truth[:, context:]
    fns, result.skipped = frame_metric_functions(metric_names, tuple(pred.shape[-2:]))
    result.skipped.update(natural_only)
    per_frame = {"mse": ((unit(pred) - unit(target)) ** 2).mean(dim=(2, 3, 4))}
    for name, fn in fns.items():
        parts = []
        for i in range(0, pred.shape[0], batch_size):
            p, t = pred[i : i + batch_size], target[i : i + batch_size]
            parts.append(fn(unit(p), unit(t)).float().cpu())
        per_frame[name] = torch.cat(parts)
    result.per_frame = {k: v.mean(0).tolist() for k, v in per_frame.items()}
    for h in horizons:
        result.per_horizon[str(h)] = {
            k: float(v[:, :h].mean(1).mean(0)) for k, v in per_frame.items()
        }
    _add_channel_errors(result, pred, target, horizons, metric_names)
    if "fvd" in metric_names:
        _add_fvd(result, truth, pred, context, horizons, fvd_chunk)
    result.seconds = time.perf_counter() - start
    return result


def _add_channel_errors(
    result: EvalResult,
    pred: torch.Tensor,
    target: torch.Tensor,
    horizons: list[int],
    metric_names: list[str],
) -> None:
    """Per-channel RMSE / MAE in the units of ``target``: per horizon a list of C numbers,
    per frame a list of C numbers (RMSE: root of the mean squared error over videos)."""
    wanted = [m for m in FIELD_METRICS if m in metric_names]
    if not wanted:
        return
    errors = {
        "rmse": channel_mse(pred.double(), target.double()),  # (N, T, C)
        "mae": channel_mae(pred.double(), target.double()),
    }
    finish = {"rmse": torch.sqrt, "mae": lambda v: v}
    for name in wanted:
        err, done = errors[name], finish[name]
        result.per_frame[name] = done(err.mean(0)).tolist()
        for h in horizons:
            result.per_horizon[str(h)][name] = done(err[:, :h].mean(dim=(0, 1))).tolist()


def _add_fvd(
    result: EvalResult,
    truth: torch.Tensor,
    pred: torch.Tensor,
    context: int,
    horizons: list[int],
    chunk: int,
) -> None:
    """FVD over whole videos (context + h frames), mean and std over chunks of ``chunk``."""
    n = truth.shape[0]
    if n < chunk:
        result.skipped["fvd"] = (
            f"FVD needs at least one full chunk of {chunk} videos, got {n} "
            "(set eval.fvd_chunk lower to compute it, and report the chunk size with it)"
        )
        return
    try:
        i3d = InceptionI3d.from_pretrained()
    except (ImportError, FileNotFoundError, OSError) as err:
        result.skipped["fvd"] = f"I3D weights unavailable: {err}"
        return
    for h in horizons:
        acc = FVDAccumulator(chunk, i3d)
        for i in range(0, n, 8):
            real = to_unit(truth[i : i + 8, : context + h])
            fake = torch.cat([to_unit(truth[i : i + 8, :context]), to_unit(pred[i : i + 8, :h])], 1)
            acc.update(real, fake)
        res = acc.compute()
        result.per_horizon[str(h)].update(
            fvd=res.mean, fvd_std=res.std, fvd_chunks=len(res.chunk_fvds),
            fvd_chunk_size=res.chunk_size, fvd_frames=context + h,
        )  # fmt: skip
