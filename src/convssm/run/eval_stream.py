"""The evaluation protocol (docs/design.md#evaluation-protocol) in bounded memory: generate and
score batch by batch.

:func:`evaluate_predictions` (``convssm.metrics``) scores videos held whole in
memory — the plain reference, fine for validation during training. The reference protocol
(1 024 videos × 1 300 frames of 64×64) would need ~39 GiB that way, so a full evaluation
streams instead:

- :func:`~convssm.train.validation.iter_generated`: one batch of (truth, prediction) at a
  time;
- :class:`StreamingEvaluator`: running sums per generated frame of MSE, PSNR, SSIM and
  LPIPS (float64, so the per-horizon means equal the in-memory path's; each metric sees at
  most ``frames_per_call`` frames at once), and one
  :class:`~convssm.metrics.FVDAccumulator` per horizon fed per batch;
- :class:`VideoArrayWriter`: truth and predictions appended as uint8 to memory-mapped
  ``.npy`` files, moved into place when complete.

Peak memory is that of one batch, whatever the number of videos.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from convssm._files import fsync_dir, fsync_file
from convssm.metrics import FVDAccumulator, InceptionI3d
from convssm.metrics.scoring import EvalResult, frame_metric_functions, to_uint8, to_unit

__all__ = ["StreamingEvaluator", "VideoArrayWriter"]


class StreamingEvaluator:
    """Scores (truth, prediction) batches as they come; :meth:`result` gives the
    :class:`EvalResult` that :func:`evaluate_predictions` gives on all of them at once.

    Args:
        num_videos: how many videos will come (FVD is skipped up front with the reason
            when there are fewer than one chunk of them).
        frame_size: (H, W), to tell whether LPIPS can run.
    """

    def __init__(
        self,
        context: int,
        horizons: list[int],
        metric_names: Iterable[str],
        num_videos: int,
        frame_size: tuple[int, int],
        fvd_chunk: int = 256,
        frames_per_call: int = 256,
    ) -> None:
        self.context, self.horizons = context, list(horizons)
        self.horizon, self.frames_per_call = max(self.horizons), frames_per_call
        metric_names = list(metric_names)
        self.fns, self.skipped = frame_metric_functions(metric_names, frame_size)
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.fvd: dict[int, object] = {}
        if "fvd" in metric_names:
            self._start_fvd(num_videos, fvd_chunk)
        self.seconds = 0.0

    def _start_fvd(self, num_videos: int, chunk: int) -> None:
        if num_videos < chunk:
            self.skipped["fvd"] = (
                f"FVD needs at least one full chunk of {chunk} videos, got {num_videos} "
                "(set eval.fvd_chunk lower to compute it, and report the chunk size with it)"
            )
            return
        try:
            i3d = InceptionI3d.from_pretrained()
        except (ImportError, FileNotFoundError, OSError) as err:
            self.skipped["fvd"] = f"I3D weights unavailable: {err}"
            return
        # one video per I3D pass: a 1 300-frame video at 224x224 is ~0.8 GB of input alone
        self.fvd = {h: FVDAccumulator(chunk, i3d, batch_size=1) for h in self.horizons}

    def _add(self, name: str, per_frame: torch.Tensor) -> None:
        """Add per-frame values (B, horizon) to the running sum over videos."""
        total = per_frame.double().sum(0)
        self.sums[name] = self.sums[name] + total if name in self.sums else total

    def _per_frame(self, fn, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """fn's (B, horizon) values, ``frames_per_call`` frames at a time (a metric's
        intermediates on a whole batch of long videos would outgrow the batch itself)."""
        per_video = max(1, self.frames_per_call // pred.shape[1])
        step = min(pred.shape[1], self.frames_per_call)
        rows = []
        for i in range(0, pred.shape[0], per_video):
            p, t = pred[i : i + per_video], target[i : i + per_video]
            parts = [
                fn(to_unit(p[:, j : j + step]), to_unit(t[:, j : j + step])).float().cpu()
                for j in range(0, p.shape[1], step)
            ]
            rows.append(torch.cat(parts, 1))
        return torch.cat(rows)

    def update(self, truth: torch.Tensor, pred: torch.Tensor) -> None:
        """Score a batch: truth (B, context + horizon, C, H, W), pred (B, horizon, C, H, W),
        both in [-1, 1]."""
        start = time.perf_counter()
        if pred.shape[1] != self.horizon or truth.shape[1] != self.context + self.horizon:
            raise ValueError(
                f"expected truth of {self.context + self.horizon} and predictions of "
                f"{self.horizon} frames, got {truth.shape[1]} and {pred.shape[1]}"
            )
        target = truth[:, self.context :]
        self._add("mse", ((to_unit(pred) - to_unit(target)) ** 2).mean(dim=(2, 3, 4)))
        for name, fn in self.fns.items():
            self._add(name, self._per_frame(fn, pred, target))
        for h, acc in self.fvd.items():
            real = to_unit(truth[:, : self.context + h])
            fake = torch.cat([to_unit(truth[:, : self.context]), to_unit(pred[:, :h])], 1)
            acc.update(real, fake)
        self.count += pred.shape[0]
        self.seconds += time.perf_counter() - start

    def result(self) -> EvalResult:
        """Per-frame curves (mean over videos), per-horizon means and FVD."""
        if self.count == 0:
            raise ValueError("no videos were scored")
        result = EvalResult(self.context, self.horizons, self.count, skipped=dict(self.skipped))
        per_frame = {k: v / self.count for k, v in self.sums.items()}
        result.per_frame = {k: v.tolist() for k, v in per_frame.items()}
        for h in self.horizons:
            result.per_horizon[str(h)] = {k: float(v[:h].mean()) for k, v in per_frame.items()}
        for h, acc in self.fvd.items():
            res = acc.compute()
            result.per_horizon[str(h)].update(
                fvd=res.mean, fvd_std=res.std, fvd_chunks=len(res.chunk_fvds),
                fvd_chunk_size=res.chunk_size, fvd_frames=self.context + h,
            )  # fmt: skip
        result.seconds = self.seconds
        return result


class VideoArrayWriter:
    """Appends videos as uint8 to a memory-mapped ``.npy`` file of known shape.

    Each :meth:`append` maps the file, writes its batch, flushes and unmaps it, so the
    written pages do not stay in this process's resident memory. The file is written under
    a temporary name beside ``path`` and moved onto it (fsynced) by :meth:`close` once all
    ``num_videos`` have come, so a crash leaves no partial file.
    """

    def __init__(self, path: str | Path, num_videos: int, frame_shape: tuple[int, ...]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.shape = (num_videos, *frame_shape)
        array = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.uint8, shape=self.shape)
        del array  # header written, file sized
        self.count = 0

    def append(self, videos: torch.Tensor) -> None:
        """videos (B, *frame_shape) in [-1, 1]."""
        n = videos.shape[0]
        if self.count + n > self.shape[0]:
            raise ValueError(f"{self.path}: more than the {self.shape[0]} videos announced")
        array = np.lib.format.open_memmap(self.tmp, mode="r+")
        array[self.count : self.count + n] = to_uint8(videos)
        array.flush()
        del array
        self.count += n

    def close(self) -> Path:
        if self.count != self.shape[0]:
            raise ValueError(
                f"{self.path}: got {self.count} videos, {self.shape[0]} were announced"
            )
        fsync_file(self.tmp)
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)
        return self.path
