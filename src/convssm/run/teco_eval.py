"""TECO's evaluation protocol for the 3-D environment sets (DMLab, Minecraft, Habitat, MazeWorld).

On videos of ``frames`` frames (TECO's: 300; unset, the videos' own length, with the contexts
keeping TECO's shares of it: ``TecoProtocol.for_videos``), two settings:

- ``actions``: condition on the first ``context_with_actions`` (144) frames and on the
  actions of the whole video, predict the remaining 156 frames;
- ``no_actions``: condition on the first ``context_without_actions`` (36) frames, no
  actions, predict the remaining 264 frames.

For each setting: PSNR, SSIM and LPIPS on the predicted frames only (in [0, 1]; mean over
frames, then videos) and FVD (I3D) over the whole videos — the real context followed by the
predicted frames, against the real videos, context included — as mean ± std over chunks of
``fvd_chunk`` videos. FVD is comparable only at the same frame count and protocol.

The models are reached through a small interface, :class:`VideoGenerator` (see
``convssm.run.generators`` for the VideoPredictor and the VQ-latent adapters). The
evaluation streams: per-frame metrics are running sums over videos, the FVD accumulators
are fed batch by batch (real videos' I3D features computed once per batch and shared by the
settings), and only the first ``keep_videos`` videos are held for pictures.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from convssm.metrics import FVDAccumulator, InceptionI3d, i3d_features
from convssm.metrics.scoring import frame_metric_functions, json_safe, to_unit
from convssm.train.config import TecoProtocol, TecoSetting

__all__ = [
    "TecoResult",
    "VideoGenerator",
    "evaluate_teco",
]


@runtime_checkable
class VideoGenerator(Protocol):
    """What the protocol needs of a model.

    ``generator(context, horizon, actions)``: context frames (B, T_c, C, H, W) in [-1, 1],
    ``actions`` (B, T_c + horizon) int64 (``actions[:, t]`` as the data set has them) or
    ``None`` -> the next ``horizon`` frames (B, horizon, C, H, W) in [-1, 1].
    ``takes_actions``: it can condition on actions; ``needs_actions``: it cannot run
    without them.
    """

    takes_actions: bool
    needs_actions: bool

    def __call__(
        self, context: torch.Tensor, horizon: int, actions: torch.Tensor | None
    ) -> torch.Tensor: ...


@dataclass
class TecoResult:
    """Per setting: mean metrics, per-frame curves, FVD; plus what was skipped and why."""

    frames: int
    num_videos: int = 0
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "protocol": "TECO: 'actions' = condition on frames and all actions, "
                "'no_actions' = on frames alone; PSNR/SSIM/LPIPS on predicted frames in "
                "[0, 1]; FVD (I3D) over whole videos including the context",
                "frames": self.frames,
                "num_videos": self.num_videos,
                "settings": self.settings,
                "skipped": self.skipped,
                "seconds": self.seconds,
            }
        )


class _Running:
    """Running sums of one setting: per-frame metric sums over videos, FVD, kept videos."""

    def __init__(self, setting: TecoSetting, fvd_acc: Any) -> None:
        self.setting = setting
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.fvd = fvd_acc
        self.kept: list[tuple[torch.Tensor, torch.Tensor]] = []

    def add(self, name: str, values: torch.Tensor) -> None:
        """values (B, horizon) of one metric for a batch."""
        total = values.double().sum(0)
        self.sums[name] = self.sums[name] + total if name in self.sums else total


def _generator_skips(generator: VideoGenerator, settings: list[TecoSetting]) -> dict[str, str]:
    skips = {}
    for s in settings:
        if s.actions and not generator.takes_actions:
            skips[s.name] = "the model takes no actions"
        if not s.actions and generator.needs_actions:
            skips[s.name] = (
                "the model cannot generate without actions (it has no 'no action' input)"
            )
    return skips


def _i3d_features(device: torch.device) -> tuple[Callable | None, str | None]:
    try:
        model = InceptionI3d.from_pretrained().to(device)
    except (ImportError, FileNotFoundError, OSError) as err:
        return None, f"I3D weights unavailable: {err}"
    return lambda videos: i3d_features(videos.to(device), model).cpu(), None


def evaluate_teco(
    generator: VideoGenerator,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]],
    protocol: TecoProtocol | None = None,
    *,
    metrics: Iterable[str] = ("psnr", "ssim", "lpips", "fvd"),
    fvd_chunk: int = 256,
    num_videos: int | None = None,
    device: torch.device | str = "cpu",
    features: Callable[[torch.Tensor], torch.Tensor] | None = None,
    keep_videos: int = 1,
) -> tuple[TecoResult, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Run the protocol over ``batches`` of (videos (B, T, C, H, W) in [-1, 1], actions).

    Args:
        num_videos: how many videos the batches hold, when known: FVD is skipped up front
            (with the reason) when fewer than one chunk, instead of after computing features.
        features: FVD features of videos in [0, 1] -> (B, D) (default: I3D's 400 logits).
        keep_videos: videos per setting returned for pictures.
    Returns:
        the result, and per setting (truth (K, frames, ...), prediction (K, horizon, ...))
        of the first ``keep_videos`` videos, both in [-1, 1].
    """
    start = time.perf_counter()
    protocol = protocol or TecoProtocol()
    if not protocol.resolved:  # unset lengths come from the videos (the first batch's)
        batches = iter(batches)
        first = next(batches, None)
        if first is None:
            raise ValueError("TECO evaluation got no videos")
        protocol = protocol.for_videos(first[0].shape[1] if first[0].ndim == 5 else None)
        batches = itertools.chain([first], batches)
    device = torch.device(device)
    metrics = list(metrics)
    settings = protocol.setting_list()
    result = TecoResult(frames=protocol.frames)
    result.skipped.update(_generator_skips(generator, settings))
    settings = [s for s in settings if s.name not in result.skipped]
    if not settings:
        raise ValueError(f"no TECO setting can run with this model: {result.skipped}")
    use_fvd = "fvd" in metrics
    if use_fvd and num_videos is not None and num_videos < fvd_chunk:
        result.skipped["fvd"] = (
            f"FVD needs at least one full chunk of {fvd_chunk} videos, got {num_videos} "
            "(set eval.fvd_chunk lower to compute it, and report the chunk size with it)"
        )
        use_fvd = False
    if use_fvd and features is None:
        features, why = _i3d_features(device)
        if features is None:
            result.skipped["fvd"], use_fvd = why, False
    running: dict[str, _Running] = {}
    fns: dict[str, Callable] | None = None
    for video, actions in batches:
        if video.ndim != 5:
            raise ValueError(f"TECO evaluation needs videos (B, T, C, H, W), got {video.shape}")
        if video.shape[1] < protocol.frames:
            raise ValueError(
                f"eval.teco.frames={protocol.frames} but a batch of videos has "
                f"{video.shape[1]} frames: set eval.teco.frames to at most {video.shape[1]}"
            )
        video = video[:, : protocol.frames].float()
        truth = to_unit(video)
        if fns is None:
            fns, frame_skips = frame_metric_functions(metrics, tuple(video.shape[-2:]))
            result.skipped.update(frame_skips)
        real = features(truth) if use_fvd else None
        for s in settings:
            acts = None
            if s.actions:
                if actions is None:
                    raise ValueError("the 'actions' setting needs a data set with actions")
                acts = actions[:, : protocol.frames].to(device)
            pred = generator(video[:, : s.context].to(device), s.horizon, acts)
            pred = pred.detach().float().cpu()
            want = (video.shape[0], s.horizon, *video.shape[2:])
            if tuple(pred.shape) != want:
                raise ValueError(f"generator returned {tuple(pred.shape)}, expected {want}")
            run = running.get(s.name)
            if run is None:
                acc = FVDAccumulator(fvd_chunk, dim=real.shape[1]) if use_fvd else None
                run = running[s.name] = _Running(s, acc)
            p_unit, target = to_unit(pred), truth[:, s.context :]
            run.add("mse", ((p_unit - target) ** 2).mean(dim=(2, 3, 4)))
            for name, fn in fns.items():
                run.add(name, fn(p_unit, target).float().cpu())
            if use_fvd:
                run.fvd.update_features(
                    real, features(torch.cat([truth[:, : s.context], p_unit], 1))
                )
            n = keep_videos - sum(k[0].shape[0] for k in run.kept)
            if n > 0:
                run.kept.append((video[:n], pred[:n]))
            run.count += video.shape[0]
        result.num_videos += video.shape[0]
    if not result.num_videos:
        raise ValueError("TECO evaluation got no videos")
    kept = {}
    for name, run in running.items():
        result.settings[name] = _summary(run, protocol, result, use_fvd)
        if run.kept:
            kept[name] = (torch.cat([k[0] for k in run.kept]), torch.cat([k[1] for k in run.kept]))
    result.seconds = time.perf_counter() - start
    return result, kept


def _summary(run: _Running, protocol: TecoProtocol, result: TecoResult, use_fvd: bool) -> dict:
    s = run.setting
    curves = {k: (v / run.count) for k, v in run.sums.items()}
    row: dict[str, Any] = {
        "context": s.context,
        "horizon": s.horizon,
        "actions": s.actions,
        "num_videos": run.count,
        "metrics": {k: float(v.mean()) for k, v in curves.items()},
        "per_frame": {k: v.tolist() for k, v in curves.items()},
    }
    if use_fvd:
        try:
            fvd = run.fvd.compute()
        except ValueError as err:  # fewer videos than one chunk
            result.skipped[f"{s.name}/fvd"] = str(err)
        else:
            row["metrics"].update(
                fvd=fvd.mean, fvd_std=fvd.std, fvd_chunks=len(fvd.chunk_fvds),
                fvd_chunk_size=fvd.chunk_size, fvd_frames=protocol.frames,
            )  # fmt: skip
    return row
