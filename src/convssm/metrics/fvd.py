"""Fréchet video distance (FVD) with the PyTorch I3D, streaming and distributed.

docs/design.md#evaluation-protocol: whole videos (context frames included) in [0, 1] are resized
frame by frame to 224x224 (bilinear, half-pixel centres, antialiased when shrinking — as
``jax.image.resize``), grey is repeated to RGB, values are scaled to [-1, 1], and I3D's 400
Kinetics logits averaged over time are the features. FVD is the Fréchet distance between
Gaussians fitted to the real and generated features,

    ||mu_r - mu_g||^2 + tr(C_r) + tr(C_g) - 2 tr((C_r C_g)^(1/2)),

with unbiased covariances (ddof 1), reported as mean ± std (ddof 0) over chunks of 256
videos. FVD is only comparable at the same frame count and protocol: report them with it.

Streaming: :class:`FeatureStats` keeps only the count, the sum and the sum of outer
products of the features (float64), so videos never need to be held in memory, and stats
merge by addition — across batches and across ``torch.distributed`` ranks (all_reduce).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from convssm._checks import check_tensor
from convssm.metrics.frechet import (
    FeatureStats,
    frechet_distance,
    frechet_distance_scipy,
    fvd_from_stats,
)
from convssm.metrics.i3d import I3D_SIZE, NUM_CLASSES, InceptionI3d
from convssm.metrics.image import check_unit_range

__all__ = [
    "preprocess_for_i3d",
    "i3d_features",
    "frechet_distance",
    "frechet_distance_scipy",
    "FeatureStats",
    "FVDAccumulator",
    "FVDResult",
    "fvd",
    "fvd_from_stats",
    "FVD_CHUNK",
]

FVD_CHUNK = 256


def preprocess_for_i3d(videos: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) in [0, 1], C in {1, 3} -> (B, T, 3, 224, 224) in [-1, 1], float32."""
    videos = check_tensor(videos, "videos", ndim=5, floating=True)
    b, t, c, h, w = videos.shape
    if c not in (1, 3):
        raise ValueError(f"videos must have 1 or 3 channels, got shape {tuple(videos.shape)}")
    check_unit_range(videos, "videos")
    x = videos.float().reshape(b * t, c, h, w)
    if (h, w) != (I3D_SIZE, I3D_SIZE):
        x = F.interpolate(
            x, size=(I3D_SIZE, I3D_SIZE), mode="bilinear", align_corners=False, antialias=True
        )
    x = x.clamp(0.0, 1.0) * 2.0 - 1.0  # bilinear weights are convex; clamp only rounding
    if c == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.reshape(b, t, 3, I3D_SIZE, I3D_SIZE)


def i3d_features(
    videos: torch.Tensor, model: InceptionI3d | None = None, *, batch_size: int = 4
) -> torch.Tensor:
    """FVD features of videos in [0, 1]: (B, T, C, H, W) -> (B, 400) float32.

    Videos go through :func:`preprocess_for_i3d` and I3D ``batch_size`` at a time on the
    model's device. ``model`` defaults to a fresh :meth:`InceptionI3d.from_pretrained`.
    """
    videos = check_tensor(videos, "videos", ndim=5, floating=True)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if model is None:
        model = InceptionI3d.from_pretrained().to(videos.device)
    device = model.logits.weight.device
    out = []
    with torch.no_grad():
        for i in range(0, videos.shape[0], batch_size):
            chunk = preprocess_for_i3d(videos[i : i + batch_size].to(device))
            out.append(model(chunk).float())
    if not out:
        return torch.zeros(0, NUM_CLASSES)
    return torch.cat(out)


@dataclass(frozen=True)
class FVDResult:
    """FVD as the protocol reports it: mean ± std over full chunks of ``chunk_size``
    videos; ``overall`` is the distance between all real and all generated videos at once
    (not the reported number); ``num_dropped`` videos of a last, partial chunk are left out
    of the mean and std (they count in ``overall``)."""

    mean: float
    std: float
    chunk_fvds: tuple[float, ...]
    chunk_size: int
    num_videos: int
    num_dropped: int
    overall: float
    num_frames: int | None

    def __str__(self) -> str:
        frames = f", {self.num_frames} frames" if self.num_frames is not None else ""
        return (
            f"FVD {self.mean:.2f} ± {self.std:.2f} ({len(self.chunk_fvds)} chunk(s) of "
            f"{self.chunk_size} videos{frames})"
        )


class FVDAccumulator:
    """Streams paired real/generated videos (or their features) into per-chunk stats.

    Video number ``g`` (a global index) belongs to chunk ``g // chunk_size``. By default the
    i-th video this process sees gets ``g = i * world_size + rank``, the order of a
    ``DistributedSampler`` without shuffling (``g = i`` in a single process); pass
    ``indices`` to say otherwise. Any assignment of distinct indices gives chunks of exactly
    ``chunk_size`` videos. :meth:`compute` sums the stats over all ranks first when
    ``torch.distributed`` is initialised (every rank must call it).

    Args:
        chunk_size: videos per chunk (the protocol's: 256).
        model: the I3D to use in :meth:`update`; loaded on first use if omitted.
        batch_size: videos per I3D forward pass in :meth:`update`.
        dim: feature size (400 for I3D logits).
    """

    def __init__(
        self,
        chunk_size: int = FVD_CHUNK,
        model: InceptionI3d | None = None,
        *,
        batch_size: int = 4,
        dim: int = NUM_CLASSES,
    ) -> None:
        if chunk_size < 2:
            raise ValueError(f"chunk_size must be at least 2, got {chunk_size}")
        self.chunk_size = chunk_size
        self.model = model
        self.batch_size = batch_size
        self.dim = dim
        self.chunks: dict[int, tuple[FeatureStats, FeatureStats]] = {}
        self.num_frames: int | None = None
        self._seen = 0

    def update(self, real_videos: torch.Tensor, fake_videos: torch.Tensor, indices=None) -> None:
        """Add paired videos (B, T, C, H, W) in [0, 1]; both sets must have the same T."""
        real_videos = check_tensor(real_videos, "real_videos", ndim=5, floating=True)
        fake_videos = check_tensor(fake_videos, "fake_videos", ndim=5, floating=True)
        t_real, t_fake = real_videos.shape[1], fake_videos.shape[1]
        if t_real != t_fake or (self.num_frames is not None and t_real != self.num_frames):
            raise ValueError(
                "FVD compares videos of one frame count: got "
                f"{t_real} (real) and {t_fake} (generated) frames"
                + (f", earlier {self.num_frames}" if self.num_frames is not None else "")
            )
        if self.model is None:
            self.model = InceptionI3d.from_pretrained().to(real_videos.device)
        real = i3d_features(real_videos, self.model, batch_size=self.batch_size)
        fake = i3d_features(fake_videos, self.model, batch_size=self.batch_size)
        self.update_features(real, fake, indices)
        self.num_frames = t_real

    def update_features(self, real: torch.Tensor, fake: torch.Tensor, indices=None) -> None:
        """Add paired features (N, dim) of real and generated videos."""
        real = check_tensor(real, "real", ndim=2, floating=True)
        fake = check_tensor(fake, "fake", ndim=2, floating=True)
        if real.shape != fake.shape or real.shape[1] != self.dim:
            raise ValueError(
                f"real and fake features must both be (N, {self.dim}), "
                f"got {tuple(real.shape)} and {tuple(fake.shape)}"
            )
        n = real.shape[0]
        if indices is None:
            rank, world = _rank_and_world()
            local = torch.arange(self._seen, self._seen + n)
            indices = local * world + rank
        else:
            indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
            if indices.shape[0] != n or bool((indices < 0).any()):
                raise ValueError(f"indices must be {n} non-negative integers")
        self._seen += n
        chunk_ids = (indices // self.chunk_size).tolist()
        for cid in sorted(set(chunk_ids)):
            rows = [i for i, c in enumerate(chunk_ids) if c == cid]
            if cid not in self.chunks:
                self.chunks[cid] = (FeatureStats(self.dim), FeatureStats(self.dim))
            self.chunks[cid][0].update(real[rows])
            self.chunks[cid][1].update(fake[rows])

    def reduced_chunks(self) -> dict[int, tuple[FeatureStats, FeatureStats]]:
        """Per-chunk stats summed over all ranks (a copy; this object is not changed)."""
        chunks = copy.deepcopy(self.chunks)
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return chunks
        device = torch.device("cpu")
        if dist.get_backend() == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        k = torch.tensor([max(chunks, default=-1) + 1], device=device)
        dist.all_reduce(k, op=dist.ReduceOp.MAX)
        k = int(k.item())
        counts = torch.zeros(k, 2, dtype=torch.float64)
        sums = torch.zeros(k, 2, self.dim, dtype=torch.float64)
        outers = torch.zeros(k, 2, self.dim, self.dim, dtype=torch.float64)
        for cid, pair in chunks.items():
            for j, s in enumerate(pair):
                counts[cid, j] = s.count
                sums[cid, j] = s.sum
                outers[cid, j] = s.sum_outer
        for t in (counts, sums, outers):
            t_dev = t.to(device)
            dist.all_reduce(t_dev)
            t.copy_(t_dev.cpu())
        out = {}
        for cid in range(k):
            if counts[cid, 0] == 0:
                continue
            pair = (FeatureStats(self.dim), FeatureStats(self.dim))
            for j, s in enumerate(pair):
                s.count = int(counts[cid, j].round())
                s.sum = sums[cid, j].clone()
                s.sum_outer = outers[cid, j].clone()
            out[cid] = pair
        return out

    def compute(self) -> FVDResult:
        """FVD mean ± std over the full chunks (all ranks; every rank must call this)."""
        chunks = self.reduced_chunks()
        full = [cid for cid in sorted(chunks) if chunks[cid][0].count == self.chunk_size]
        too_big = [cid for cid in chunks if chunks[cid][0].count > self.chunk_size]
        if too_big:
            raise ValueError(
                f"chunk(s) {too_big} hold more than {self.chunk_size} videos: "
                "the same video index was used twice"
            )
        total = sum(chunks[c][0].count for c in chunks)
        if not full:
            raise ValueError(
                f"FVD needs at least one full chunk of {self.chunk_size} videos, got {total} "
                "videos (lower chunk_size to evaluate fewer, and report it)"
            )
        fvds = [fvd_from_stats(*chunks[cid]) for cid in full]
        all_real, all_fake = FeatureStats(self.dim), FeatureStats(self.dim)
        for real, fake in chunks.values():
            all_real.merge(real)
            all_fake.merge(fake)
        values = torch.tensor(fvds, dtype=torch.float64)
        return FVDResult(
            mean=float(values.mean()),
            std=float(values.std(correction=0)),
            chunk_fvds=tuple(fvds),
            chunk_size=self.chunk_size,
            num_videos=total,
            num_dropped=total - len(full) * self.chunk_size,
            overall=fvd_from_stats(all_real, all_fake),
            num_frames=self.num_frames,
        )


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def fvd(
    real_videos: torch.Tensor,
    fake_videos: torch.Tensor,
    model: InceptionI3d | None = None,
    *,
    batch_size: int = 4,
) -> float:
    """One Fréchet distance between two sets of videos (N, T, C, H, W) in [0, 1] with the
    same T (the set sizes may differ), without chunks and in this process only.

    For the reported protocol (mean ± std over chunks of 256, streaming, all ranks) use
    :class:`FVDAccumulator`.
    """
    real_videos = check_tensor(real_videos, "real_videos", ndim=5, floating=True)
    fake_videos = check_tensor(fake_videos, "fake_videos", ndim=5, floating=True)
    if real_videos.shape[1] != fake_videos.shape[1]:
        raise ValueError(
            "FVD compares videos of one frame count: got "
            f"{real_videos.shape[1]} (real) and {fake_videos.shape[1]} (generated) frames"
        )
    if model is None:
        model = InceptionI3d.from_pretrained().to(real_videos.device)
    real = FeatureStats.of(i3d_features(real_videos, model, batch_size=batch_size))
    fake = FeatureStats.of(i3d_features(fake_videos, model, batch_size=batch_size))
    return fvd_from_stats(real, fake)
