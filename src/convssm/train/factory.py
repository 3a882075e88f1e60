"""Build the model and the data sets an :class:`ExperimentConfig` describes.

Items of every data set are (T, C, H, W) float tensors in [-1, 1], or dicts with ``video``
of that shape and optionally ``actions`` (T,) int.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from convssm.models import VideoPredictor, VideoPredictorConfig
from convssm.train.config import DataConfig, EvalConfig, ExperimentConfig

__all__ = ["build_model", "build_train_dataset", "build_eval_dataset", "split_item"]


def build_model(cfg: VideoPredictorConfig) -> torch.nn.Module:
    """A fresh ``convssm.models.VideoPredictor`` for ``cfg``."""
    return VideoPredictor(cfg)


def _moving_mnist(
    data: DataConfig, *, split: str, num_videos: int, num_frames: int, image_size: int, seed: int
) -> Dataset:
    from convssm.data import MovingMNIST

    return MovingMNIST(
        num_videos,
        num_frames=num_frames,
        image_size=image_size,
        num_digits=data.num_digits,
        split=split,
        seed=seed,
        digits=data.mnist_path,
        **data.options,
    )


def build_train_dataset(cfg: ExperimentConfig) -> tuple[Dataset, bool]:
    """The training set and whether the sampler should shuffle it.

    On-the-fly Moving-MNIST gets one distinct video per training sample by default
    (``data.num_videos: null``), so no shuffling is needed.
    """
    data = cfg.data
    if data.dataset == "moving_mnist":
        n = data.num_videos or cfg.train.steps * cfg.train.batch_size
        ds = _moving_mnist(
            data,
            split="train",
            num_videos=n,
            num_frames=data.seq_len,
            image_size=cfg.model.image_size,
            seed=data.seed,
        )
        return ds, data.num_videos is not None
    if data.dataset == "video_folder":
        return _video_folder(data, "train", data.seq_len), True
    raise ValueError(f"unknown data.dataset {data.dataset!r}")  # pragma: no cover


def build_eval_dataset(cfg: ExperimentConfig, num_videos: int, num_frames: int) -> Dataset:
    """``num_videos`` held-out videos of ``num_frames`` frames (digits disjoint from training)."""
    data, ev = cfg.data, cfg.eval
    if data.dataset == "moving_mnist":
        return _moving_mnist(
            data,
            split="eval",
            num_videos=num_videos,
            num_frames=num_frames,
            image_size=cfg.model.image_size,
            seed=ev.seed,
        )
    if data.dataset == "video_folder":
        return _video_folder(data, "test", num_frames)
    raise ValueError(f"unknown data.dataset {data.dataset!r}")  # pragma: no cover


def _video_folder(data: DataConfig, split: str, num_frames: int) -> Dataset:
    import convssm.data as cdata

    if data.root is None:
        raise ValueError("data.root must name a folder when data.dataset is 'video_folder'")
    if not hasattr(cdata, "VideoFolder"):
        raise ValueError("this convssm has no convssm.data.VideoFolder")
    return cdata.VideoFolder(data.root, split=split, seq_len=num_frames, **data.options)


def split_item(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(video (B, T, C, H, W), actions (B, T) or None) from a collated batch."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, dict):
        if "video" not in batch:
            raise ValueError(f"a batch dict needs a 'video' entry, got keys {sorted(batch)}")
        return batch["video"], batch.get("actions")
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0], batch[1] if len(batch) > 1 else None
    raise TypeError(f"cannot read a video batch from {type(batch).__name__}")


def eval_config_frames(ev: EvalConfig) -> int:
    """Frames per evaluation video: context plus the longest horizon."""
    return ev.context + max(ev.horizons)
