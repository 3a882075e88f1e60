"""Scores against trivial predictors: is a model doing better than predicting nothing?

On Moving-MNIST, pixel MSE rewards a blur or an empty frame over a sharp digit in the wrong
place, so an absolute MSE says little. These scores put every error beside the two trivial
predictors on the same videos:

- the **empty frame** (every predicted frame is background, 0), and
- **repeat-last** (every predicted frame is the last context frame),

and add a **brightness ratio**, the predicted frames' mean intensity over the true frames',
which catches a model that fades to black (ratio → 0) or blows up (ratio ≫ 1) even where
its MSE looks fine.

All videos are (B, T, C, H, W) in [0, 1]; ``pred`` and ``truth`` hold the generated frames
only (frame 1 is the first generated frame), ``last_context`` (B, C, H, W) the last frame
the model was given.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from convssm.metrics.image import check_video_pair

__all__ = ["trivial_predictor_scores", "brightness_ratio"]


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).square().mean())


def brightness_ratio(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean intensity of ``pred`` over that of ``truth`` (both in [0, 1]); 1 is right."""
    check_video_pair(pred, truth)
    true_mean = float(truth.double().mean())
    if true_mean <= 0:
        raise ValueError("the true frames are all zero: the brightness ratio is undefined")
    return float(pred.double().mean()) / true_mean


def trivial_predictor_scores(
    pred: torch.Tensor,
    truth: torch.Tensor,
    last_context: torch.Tensor,
    horizons: Sequence[int] = (10, 100),
    brightness_frames: tuple[int, int] | None = (50, 100),
) -> dict[str, float]:
    """MSE over generated frames 1..h for each h, beside the trivial predictors.

    Returns, for every ``h`` in ``horizons`` (h ≤ T): ``mse@h`` (the model's per-pixel MSE
    over frames 1..h, mean over pixels, frames and videos), ``mse_empty@h``,
    ``mse_repeat@h``, ``rel_empty@h`` = mse / mse_empty and ``rel_best@h`` = mse / min(empty,
    repeat). With ``brightness_frames = (a, b)`` also ``brightness@a-b``, the
    :func:`brightness_ratio` over generated frames a..b (1-based, inclusive).
    """
    check_video_pair(pred, truth)
    b, t = truth.shape[:2]
    if tuple(last_context.shape) != (b, *truth.shape[2:]):
        raise ValueError(
            f"last_context must have shape {(b, *truth.shape[2:])} (B, C, H, W), "
            f"got {tuple(last_context.shape)}"
        )
    out: dict[str, float] = {}
    for h in horizons:
        if not isinstance(h, int) or isinstance(h, bool) or not 1 <= h <= t:
            raise ValueError(f"horizons must be ints in [1, {t}] (generated frames), got {h!r}")
        p, y = pred[:, :h], truth[:, :h]
        mse = _mse(p, y)
        empty = _mse(torch.zeros_like(y), y)
        repeat = _mse(last_context[:, None].expand_as(y), y)
        out[f"mse@{h}"] = mse
        out[f"mse_empty@{h}"] = empty
        out[f"mse_repeat@{h}"] = repeat
        out[f"rel_empty@{h}"] = mse / empty if empty > 0 else float("inf")
        out[f"rel_best@{h}"] = mse / min(empty, repeat) if min(empty, repeat) > 0 else float("inf")
    if brightness_frames is not None:
        lo, hi = brightness_frames
        if not 1 <= lo <= hi <= t:
            raise ValueError(f"brightness_frames must satisfy 1 <= a <= b <= {t}, got {lo, hi}")
        out[f"brightness@{lo}-{hi}"] = brightness_ratio(pred[:, lo - 1 : hi], truth[:, lo - 1 : hi])
    return out
