"""Build the model and the data sets an :class:`ExperimentConfig` describes.

Items of every data set are (T, C, H, W) float tensors — in [-1, 1] for video, in physical
units for ``data.dataset: array`` — or dicts with ``video`` of that shape and optionally
``actions`` (T,) int; code caches (``data.dataset: codes``) give dicts with ``codes``
(T, h, w) int64 instead of ``video``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from convssm.data import (
    ArrayDataset,
    CodeFolder,
    DelayedRecall,
    MovingMNIST,
    VideoFolder,
    channel_labels,
)
from convssm.models import build_model, kind_of
from convssm.train.config import DataConfig, ExperimentConfig, model_kind

__all__ = [
    "build_model",
    "build_train_dataset",
    "build_eval_dataset",
    "split_item",
    "delayed_recall",
    "with_channel_labels",
    "with_normalization",
    "check_data",
]


def _image_size(cfg: ExperimentConfig) -> int:
    return cfg.model.image_size  # video predictors and tokenizers both have one


def _moving_mnist(
    data: DataConfig, *, split: str, num_videos: int, num_frames: int, image_size: int, seed: int
) -> Dataset:
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
            image_size=_image_size(cfg),
            seed=data.seed,
        )
        return ds, data.num_videos is not None
    if data.dataset == "video_folder":
        return _video_folder(cfg, "train", data.seq_len), True
    if data.dataset == "array":
        return _array(cfg, "train", data.seq_len, data.seed), True
    if data.dataset == "codes":
        return _codes(cfg, "train", data.seq_len), True
    if data.dataset == "delayed_recall":
        n = data.num_videos or cfg.train.steps * cfg.train.batch_size
        return delayed_recall(cfg, "train", n, data.seed), data.num_videos is not None
    raise ValueError(f"unknown data.dataset {data.dataset!r}")  # pragma: no cover


def build_eval_dataset(
    cfg: ExperimentConfig, num_videos: int, num_frames: int, seed: int | None = None
) -> Dataset:
    """``num_videos`` held-out videos of ``num_frames`` frames (digits disjoint from training);
    generated ones are drawn from ``seed`` (None: ``eval.seed``)."""
    data, ev = cfg.data, cfg.eval
    seed = ev.seed if seed is None else seed
    if data.dataset == "moving_mnist":
        return _moving_mnist(
            data,
            split="eval",
            num_videos=num_videos,
            num_frames=num_frames,
            image_size=_image_size(cfg),
            seed=seed,
        )
    if data.dataset == "video_folder":
        return _video_folder(cfg, "test", num_frames)
    if data.dataset == "array":
        val = _array(cfg, "val", num_frames, seed)
        return Subset(val, range(num_videos)) if num_videos < len(val) else val
    if data.dataset == "codes":
        return _codes(cfg, "test", num_frames)
    if data.dataset == "delayed_recall":  # the length is the delay's, not num_frames
        return delayed_recall(cfg, "eval", num_videos, seed)
    raise ValueError(f"unknown data.dataset {data.dataset!r}")  # pragma: no cover


def delayed_recall(
    cfg: ExperimentConfig, split: str, num_videos: int, seed: int, delay: int | None = None
):
    """The config's :class:`convssm.data.DelayedRecall` set (``delay``: a fixed delay to score
    a model at, whatever the config's delay and ``min_delay``; the eval split of a config
    whose cue moves, ``vary: cue``, is scored at the config's own delay; the eval split always
    shows the distractor on every delay frame at its one speed, whatever
    ``min_distractor_share`` and ``min_step``). Its length must be
    ``data.seq_len`` at the config's own delay."""

    data = cfg.data
    options = dict(data.options)
    if "delay" not in options:
        raise ValueError("data.options must set 'delay' when data.dataset is 'delayed_recall'")
    for key in ("image_size", "seed", "split", "digits"):
        if key in options:
            raise ValueError(
                f"data.options.{key} is set by the config itself for delayed_recall "
                "(model.image_size, data.seed / eval.seed, the split, data.mnist_path)"
            )
    own_delay = options["delay"]
    if delay is None and split == "eval" and options.get("vary") == "cue":
        delay = own_delay  # the scorer needs one cue frame: validate at the config's delay
    if delay is not None:  # scoring at one delay: every video waits exactly that long
        options["delay"] = delay
        options.pop("min_delay", None)
        options.pop("vary", None)
    if split == "eval":  # scores and validation use the task itself: a distractor on every
        options.pop("min_distractor_share", None)  # delay frame, moving at data.options.step
        options.pop("min_step", None)
    try:
        ds = DelayedRecall(
            num_videos,
            image_size=_image_size(cfg),
            seed=seed,
            split=split,
            digits=data.mnist_path,
            **options,
        )
    except TypeError as err:
        raise ValueError(f"data.options: {err}") from None
    expected = own_delay + ds.recall_frames + 2
    if data.seq_len != expected:
        raise ValueError(
            f"data.seq_len must be delay + recall_frames + 2 = {expected} for delayed_recall "
            f"(delay {own_delay}, recall_frames {ds.recall_frames}), got {data.seq_len}"
        )
    return ds


def _video_folder(cfg: ExperimentConfig, split: str, num_frames: int) -> Dataset:
    data, model = cfg.data, cfg.model
    if data.root is None:
        raise ValueError("data.root must name a folder when data.dataset is 'video_folder'")
    options = dict(data.options)
    channels, size = getattr(model, "image_channels", None), getattr(model, "image_size", None)
    if channels is not None and size is not None:  # every frame must fit the model
        options.setdefault("frame_shape", (channels, size, size))
    return VideoFolder(data.root, split=split, seq_len=num_frames, **options)


def _array(cfg: ExperimentConfig, split: str, num_frames: int, seed: int) -> Dataset:
    data, model = cfg.data, cfg.model
    if data.root is None:
        raise ValueError("data.root must name an array file when data.dataset is 'array'")
    try:
        ds = ArrayDataset(
            data.root, key=data.key, split=split, seq_len=num_frames, seed=seed, **data.options
        )
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise ValueError(f"data.options: {err}") from None
        raise
    c, h, w = ds.frame_shape
    if c != model.image_channels:
        raise ValueError(
            f"data.root {data.root!r} has {c} channels per frame, but model.image_channels "
            f"is {model.image_channels}"
        )
    if (h, w) != (model.image_size, model.image_size):
        raise ValueError(
            f"data.root {data.root!r} has {h}x{w} frames, but model.image_size is "
            f"{model.image_size} (square frames of that side)"
        )
    return ds


def check_data(*datasets: Dataset | None) -> None:
    """Before the first step: stream each file-backed split the run reads (arrays) once for
    non-finite values, naming the file and sequence; frame sizes and channels were checked
    against the model when the sets were built."""
    for ds in datasets:
        base = ds.dataset if isinstance(ds, Subset) else ds
        if callable(getattr(base, "check_finite", None)):
            base.check_finite()


def with_normalization(cfg: ExperimentConfig, train_dataset: Dataset) -> ExperimentConfig:
    """``cfg`` with ``model.normalization`` filled from the training split's per-channel
    statistics (streamed, float64) when the data are physical arrays and the config leaves
    it null; otherwise ``cfg`` itself. Deterministic: a resumed run computes the same."""
    if cfg.data.dataset != "array" or model_kind(cfg.model) != "video_predictor":
        return cfg
    if cfg.model.normalization is not None:
        return cfg
    stats = getattr(train_dataset, "channel_stats", None)
    if not callable(stats):
        raise ValueError(
            "data.dataset is 'array' but the training set has no channel_stats(): set "
            "model.normalization in the config"
        )
    model = dataclasses.replace(cfg.model, normalization=stats().to_dict())
    return dataclasses.replace(cfg, model=model)


def with_channel_labels(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` with ``data.channel_names`` / ``data.channel_units`` read from the array's
    ``channel_names`` / ``units`` attributes (HDF5, zarr) where the config leaves them null
    and the file has them; otherwise ``cfg`` itself. Saved with the run, so evaluation of
    the run or of its published folder names the channels and their units."""
    data = cfg.data
    if data.dataset != "array" or data.root is None:
        return cfg
    if data.channel_names is not None and data.channel_units is not None:
        return cfg
    names, units = channel_labels(data.root, data.key)
    found = {"channel_names": names, "channel_units": units}
    changes = {k: v for k, v in found.items() if v is not None and getattr(data, k) is None}
    if not changes:
        return cfg
    return dataclasses.replace(cfg, data=dataclasses.replace(data, **changes))


def _codes(cfg: ExperimentConfig, split: str, num_frames: int) -> Dataset:
    data = cfg.data
    if data.root is None:
        raise ValueError("data.root must name a code cache when data.dataset is 'codes'")
    ds = CodeFolder(data.root, split=split, seq_len=num_frames, **data.options)
    model = cfg.model
    if kind_of(model).predicts_codes:
        if ds.codebook_size != model.codebook_size or ds.latent_size != model.latent_size:
            raise ValueError(
                f"the code cache {data.root} holds {ds.latent_size}x{ds.latent_size} codes of a "
                f"{ds.codebook_size}-code tokenizer; model.codebook_size is "
                f"{model.codebook_size} and model.latent_size {model.latent_size}"
            )
    return ds


def split_item(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(video (B, T, C, H, W) or codes (B, T, h, w), actions (B, T) or None) from a
    collated batch."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, dict):
        if "video" in batch:
            return batch["video"], batch.get("actions")
        if "codes" in batch:
            return batch["codes"], batch.get("actions")
        raise ValueError(f"a batch dict needs a 'video' or 'codes' entry, got {sorted(batch)}")
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0], batch[1] if len(batch) > 1 else None
    raise TypeError(f"cannot read a video batch from {type(batch).__name__}")
