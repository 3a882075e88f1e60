"""Trivial predictors beside every prediction that has ground truth: ``evaluate``,
``generate`` (when the input runs past the context) and the demo.

- **empty frame**: every predicted frame is the background (0 in [0, 1]; for physical
  fields, where 0 means nothing in particular, the training data's per-channel mean: the
  ``training mean``);
- **repeat last frame** (persistence): every predicted frame is the last context frame.

:class:`TrivialBaselines` accumulates the per-frame squared errors of the model and of both
predictors, batch by batch or frame by frame (a few numbers per frame: its memory does not
depend on the frames' size or the number of videos), and reports per-frame curves (MSE in
[0, 1] for video, per-channel RMSE in the data's units for fields), per-horizon ratios (the
model's error over a predictor's; below 1 the model is better) and, in words, from which
frame on the model is worse than a trivial predictor. The scores of
:func:`convssm.metrics.trivial_predictor_scores` are the same ratios for videos held whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = [
    "EMPTY",
    "MEAN",
    "REPEAT",
    "TrivialBaselines",
    "channel_titles",
    "explain_baselines",
    "worse_from",
]

EMPTY = "empty frame"
MEAN = "training mean"
REPEAT = "repeat last frame"


def channel_titles(
    channels: int, names: Sequence[str] | None = None, units: Sequence[str] | None = None
) -> list[str]:
    """``name [unit]`` of each of ``channels`` physical-field channels, for printed metrics
    and plots: ``channel c`` without names, ``(data units)`` without units."""
    titles = []
    for c in range(channels):
        name = names[c] if names else f"channel {c}"
        titles.append(f"{name} [{units[c]}]" if units else f"{name} (data units)")
    return titles


def explain_baselines(field: bool) -> str:
    """One line saying what the trivial predictors are and how to read their ratios."""
    empty = (
        f"'{MEAN}' predicts each channel's training-data mean everywhere"
        if field
        else f"'{EMPTY}' predicts black (background) everywhere"
    )
    return (
        f"baselines: {empty}, '{REPEAT}' repeats the last context frame; x<ratio> = the "
        "model's error / the baseline's (below 1: the model is better)"
    )


def worse_from(model: Sequence[float], baseline: Sequence[float]) -> int | None:
    """The first generated frame (1-based) from which ``model``'s error exceeds
    ``baseline``'s at every frame to the end, or None when the model is not worse at the
    last frame."""
    start = None
    for k in range(len(model) - 1, -1, -1):
        if not model[k] > baseline[k]:
            break
        start = k + 1
    return start


class TrivialBaselines:
    """Per-frame errors of a model and of the trivial predictors over ``horizon`` frames.

    Args:
        horizon: generated frames; frames 1..horizon may each receive any number of videos
            (a frame without ground truth receives none and ends the curves).
        channels: channels per frame.
        field: physical fields (per-channel RMSE in the data's units, against the
            ``training mean``) rather than video in [-1, 1] (MSE in [0, 1] against an empty
            frame).
        mean: (C,) the training data's per-channel mean (fields only).
        channel_names: names for the per-channel lines of fields (``name [unit]``, see
            :func:`channel_titles`; ``channel c (data units)`` otherwise).
    """

    FRAMES_PER_STEP = 64  # frames of a batch compared at once

    def __init__(
        self,
        horizon: int,
        channels: int,
        field: bool = False,
        mean: Sequence[float] | None = None,
        channel_names: Sequence[str] | None = None,
    ) -> None:
        if field and (mean is None or len(mean) != channels):
            raise ValueError(f"fields need the training mean of their {channels} channels")
        self.field, self.channels = field, channels
        self.empty_name = MEAN if field else EMPTY
        empty = torch.tensor(mean, dtype=torch.float64) if field else torch.full((channels,), -1.0)
        self.empty = empty.double().view(1, channels, 1, 1)
        self.names = list(channel_names or channel_titles(channels))
        self.sums = {k: torch.zeros(horizon, channels, dtype=torch.float64)
                     for k in ("model", self.empty_name, REPEAT)}  # fmt: skip
        self.counts = torch.zeros(horizon, dtype=torch.float64)

    def update(self, t: int, truth: torch.Tensor, pred: torch.Tensor, last: torch.Tensor) -> None:
        """Frame ``t`` (0-based) of a batch: truth and pred (B, C, H, W), ``last`` (B, C, H, W)
        the last context frame; or (B, k, C, H, W) for frames t .. t + k - 1."""
        if truth.ndim == 4:
            truth, pred = truth[:, None], pred[:, None]
        last, empty = last.float()[:, None], self.empty.float()
        k = truth.shape[1]
        for j in range(0, k, self.FRAMES_PER_STEP):  # float32 temporaries of a few frames
            y = truth[:, j : j + self.FRAMES_PER_STEP].float()
            guesses = {"model": pred[:, j : j + y.shape[1]].float(), self.empty_name: empty,
                       REPEAT: last}  # fmt: skip
            for name, guess in guesses.items():
                err = (guess - y).square().mean(dim=(-2, -1)).double().sum(0)
                self.sums[name][t + j : t + j + y.shape[1]] += err
        self.counts[t : t + k] += truth.shape[0]

    @property
    def frames(self) -> int:
        """How many leading frames have ground truth."""
        seen = (self.counts > 0).int()
        return int(seen.cumprod(0).sum())

    def _per_frame(self, name: str, n: int) -> torch.Tensor:
        """(n, C) mean squared error per frame and channel (in [-1, 1] units for video)."""
        return self.sums[name][:n] / self.counts[:n, None]

    def _finish(self, mse: torch.Tensor) -> Any:
        """Per channel RMSE (fields) or MSE in [0, 1] averaged over channels (video), from
        (…, C) mean squared errors."""
        return mse.sqrt() if self.field else mse.mean(-1) * 0.25

    @property
    def metric(self) -> str:
        return "rmse" if self.field else "mse"

    def curves(self) -> tuple[dict[str, list], dict[str, dict[str, list]]]:
        """``{metric: per-frame model}`` and ``{metric: {predictor: per-frame}}`` over the
        frames with ground truth (for :func:`~convssm.run.media.plot_error_curves`)."""
        n = self.frames
        done = {k: self._finish(self._per_frame(k, n)).tolist() for k in self.sums}
        model = done.pop("model")
        return {self.metric: model}, {self.metric: done}

    def table(self, horizons: Sequence[int]) -> dict[str, dict[str, Any]]:
        """Per horizon h (frames 1..h, only those with ground truth): the model's error, each
        predictor's, and ``rel_empty`` / ``rel_repeat`` (model / predictor)."""
        n, out = self.frames, {}
        for h in horizons:
            if not 1 <= h <= n:
                continue
            row = {k: self._finish(self._per_frame(k, h).mean(0)) for k in self.sums}
            model = row.pop("model")
            entry: dict[str, Any] = {self.metric: model.tolist()}
            for name, short in ((self.empty_name, "empty"), (REPEAT, "repeat")):
                value = row[name]
                entry[f"{self.metric}_{short}"] = value.tolist()
                ratio = torch.where(model == value, 1.0, model / value)  # 0/0: equal
                entry[f"rel_{short}"] = ratio.tolist()  # inf where only the baseline is exact
            out[str(h)] = entry
        return out

    def to_dict(self, horizons: Sequence[int]) -> dict[str, Any]:
        """What ``metrics.json`` records under ``baselines``."""
        model, base = self.curves()
        return {
            "meaning": explain_baselines(self.field),
            "metric": self.metric,
            "frames_with_truth": self.frames,
            "per_horizon": self.table(horizons),
            "per_frame": {"model": model[self.metric], **base[self.metric]},
            "worse_from": self.worse(),
        }

    def worse(self) -> dict[str, Any]:
        """Per predictor (per channel for fields): the first frame from which the model is
        worse than it to the end (None: not worse at the last frame)."""
        model, base = self.curves()
        m = torch.tensor(model[self.metric], dtype=torch.float64)
        out: dict[str, Any] = {}
        for name, values in base[self.metric].items():
            b = torch.tensor(values, dtype=torch.float64)
            if self.field:
                out[name] = {self.names[c]: worse_from(m[:, c].tolist(), b[:, c].tolist())
                             for c in range(self.channels)}  # fmt: skip
            else:
                out[name] = worse_from(m.tolist(), b.tolist())
        return out

    def lines(self, horizons: Sequence[int]) -> list[str]:
        """The explanation, one line per horizon with the ratios, and what the model is
        worse than, in words."""
        if self.frames == 0:
            return []
        lines = [explain_baselines(self.field)]
        fmt = (lambda v: "[" + ", ".join(f"{x:.3g}" for x in v) + "]") if self.field else (
            lambda v: f"{v:.3g}"
        )  # fmt: skip
        for h, row in self.table(horizons).items():
            lines.append(
                f"frames 1-{h}: {self.metric} {fmt(row[self.metric])}; {self.empty_name} "
                f"{fmt(row[f'{self.metric}_empty'])} (x{fmt(row['rel_empty'])}), {REPEAT} "
                f"{fmt(row[f'{self.metric}_repeat'])} (x{fmt(row['rel_repeat'])})"
                + (f" [{', '.join(self.names)}]" if self.field else "")
            )
        lines.append(self.verdict())
        return lines

    def verdict(self) -> str:
        """In words: from which frame on the model is worse than each trivial predictor."""
        n, parts = self.frames, []
        for name, start in self.worse().items():
            starts = start if isinstance(start, dict) else {None: start}
            for channel, k in starts.items():
                where = f" ({channel})" if channel else ""
                article = "the" if name == MEAN else "an" if name == EMPTY else "a"
                what = f"{article} {name}" if name != REPEAT else "repeating the last frame"
                if k == 1:
                    parts.append(f"worse than {what}{where} over all {n} frames")
                elif k is not None:
                    parts.append(f"worse than {what}{where} from +{k} on")
                else:
                    parts.append(f"better than {what}{where} at +{n}")
        return f"over {n} frames with ground truth, the model is " + "; ".join(parts)
