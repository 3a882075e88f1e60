"""Use a trained checkpoint: load it, run the SPEC section 5 evaluation, generate videos.

These are the library functions behind ``convssm evaluate`` and ``convssm generate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from convssm.train.checkpoint import CheckpointInfo, load_checkpoint, load_model_weights
from convssm.train.config import (
    ExperimentConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
)
from convssm.train.distributed import resolve_device
from convssm.train.eval_stream import StreamingEvaluator, VideoArrayWriter
from convssm.train.evaluation import iter_generated, to_uint8, write_eval_outputs
from convssm.train.factory import build_eval_dataset, build_model, split_item
from convssm.train.media import plot_error_curves, side_by_side, write_gif, write_mp4, write_strip

__all__ = [
    "TrainedModel",
    "load_trained",
    "open_eval_set",
    "evaluate_checkpoint",
    "read_input_video",
    "generate_from_checkpoint",
    "write_media",
]


@dataclass
class TrainedModel:
    model: torch.nn.Module
    config: ExperimentConfig
    info: CheckpointInfo
    device: torch.device


def load_trained(checkpoint: str | Path, device: str = "auto") -> TrainedModel:
    """Model (eval mode, on ``device``) and experiment config from a checkpoint."""
    info = load_checkpoint(checkpoint)
    cfg = info.config
    if cfg.train.threads is not None:
        torch.set_num_threads(cfg.train.threads)
    model = build_model(cfg.model)
    load_model_weights(model, info.weights, f"checkpoint {str(info.path)!r}")
    dev = resolve_device(device)
    return TrainedModel(model.to(dev).eval(), cfg, info, dev)


def open_eval_set(path: str | Path, num_frames: int) -> Dataset:
    """A fixed evaluation set: a ``convssm data make-eval-set`` directory or an
    ``mnist_test_seq.npy`` file; items (T, C, H, W) in [-1, 1]."""
    import convssm.data as cdata

    path = Path(path)
    if not path.exists():
        raise ValueError(f"evaluation set {str(path)!r} does not exist")
    if path.is_dir():
        return cdata.load_eval_set(path, num_frames=num_frames)
    if path.suffix == ".npy":
        return cdata.MnistTestSeq(path)
    raise ValueError(
        f"evaluation set {str(path)!r} is neither an eval-set directory nor an .npy file"
    )


def evaluate_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    eval_set: str | Path | None = None,
    num_videos: int | None = None,
    device: str = "auto",
    precision: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> tuple[Any, dict[str, Path]]:
    """The checkpoint's evaluation protocol (``eval.protocol``) with its ``eval`` config.

    ``teco``: see :mod:`convssm.train.teco_run` (returns a ``TecoResult``). ``spec5``
    (returns an ``EvalResult``): SPEC section 5 with the checkpoint's ``eval`` config.

    Generates and scores batch by batch (:mod:`convssm.train.eval_stream`), so memory does
    not grow with the number of videos. Writes ``metrics.json``; when ``eval.save_videos``,
    ``videos_truth.npy`` (N, context + H, C, H, W) and ``videos_pred.npy`` (N, H, C, H, W),
    uint8; and for the first video a GIF, MP4, PNG strip and error plot. ``eval_set`` (else
    the config's ``eval.eval_set``, else the config's seeded held-out videos) names a fixed
    set; ``overrides`` (``eval.key=value``) change the checkpoint's evaluation settings.
    """
    tm = load_trained(checkpoint, device)
    for text in overrides:
        if not text.startswith("eval."):
            raise ValueError(f"evaluate takes only eval.* overrides, got {text!r}")
    if overrides:
        tm.config = config_from_dict(apply_overrides(config_to_dict(tm.config), overrides))
    ev = tm.config.eval
    eval_set = eval_set if eval_set is not None else ev.eval_set
    if ev.protocol == "teco":
        from convssm.train.teco_run import evaluate_teco_checkpoint

        return evaluate_teco_checkpoint(
            tm, out_dir, eval_set=eval_set, num_videos=num_videos, precision=precision
        )
    horizon = max(ev.horizons)
    frames = ev.context + horizon
    if eval_set is not None:
        dataset = open_eval_set(eval_set, frames)
    else:
        dataset = build_eval_dataset(tm.config, num_videos or ev.num_videos, frames)
    if num_videos is not None and num_videos < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(num_videos))
    n = len(dataset)
    out = Path(out_dir)
    image = (tm.config.model.image_channels, tm.config.model.image_size, tm.config.model.image_size)
    scorer = StreamingEvaluator(
        ev.context, ev.horizons, ev.metrics, n, image[1:], fvd_chunk=ev.fvd_chunk
    )
    writers = (
        (VideoArrayWriter(out / "videos_truth.npy", n, (frames, *image)),
         VideoArrayWriter(out / "videos_pred.npy", n, (horizon, *image)))
        if ev.save_videos else None
    )  # fmt: skip
    first = None
    batches = (split_item(b) for b in DataLoader(dataset, batch_size=ev.batch_size))
    precision = precision or tm.config.train.precision
    for truth, pred in iter_generated(tm.model, batches, ev.context, horizon, tm.device, precision):
        scorer.update(truth, pred)
        if writers is not None:
            writers[0].append(truth)
            writers[1].append(pred)
        if first is None:
            first = (truth[0].clone(), pred[0].clone())
        del truth, pred  # hold no batch while the next one is generated
    result = scorer.result()
    extra = {
        "checkpoint": str(tm.info.path),
        "step": tm.info.step,
        "eval_set": str(eval_set)
        if eval_set is not None
        else f"generated: {tm.config.data.dataset} eval split, seed {ev.seed}",
        "train_length": tm.config.data.seq_len,
    }
    paths = write_eval_outputs(out, result, extra=extra)
    if writers is not None:
        paths["videos_truth"], paths["videos_pred"] = (w.close() for w in writers)
    paths.update(write_media(out, *first, ev.context, result.per_frame, tm.config.data.seq_len))
    return result, paths


def write_media(
    out: Path,
    truth: torch.Tensor,
    pred: torch.Tensor,
    context: int,
    curves: dict[str, list[float]],
    train_length: int | None = None,
    stem: str = "sample",
) -> dict[str, Path]:
    """GIF + MP4 (truth | prediction), PNG strip and per-frame error plot of one video.

    truth (context + H, C, H, W) and pred (H, C, H, W), both in [-1, 1].
    """
    out.mkdir(parents=True, exist_ok=True)
    t8, p8 = to_uint8(truth), to_uint8(pred)
    frames = side_by_side(t8, p8, context)
    scale = max(1, 128 // t8.shape[-1])
    horizon = p8.shape[0]
    title = f"context {context}, {horizon} generated frames"
    if train_length:
        title += f" (trained on {train_length})"
    return {
        "gif": write_gif(out / f"{stem}.gif", frames, scale=scale),
        "mp4": write_mp4(out / f"{stem}.mp4", frames, scale=scale),
        "strip": write_strip(out / f"{stem}_strip.png", t8, p8, context, title=title),
        "error_plot": plot_error_curves(
            out / f"{stem}_error.png",
            curves,
            title=title,
            train_length=train_length - context
            if train_length and train_length > context
            else None,
        ),
    }


def read_input_video(path: str | Path) -> torch.Tensor:
    """A video file (mp4, or npz with ``video``) -> (T, C, H, W) float in [-1, 1].

    npz ``video`` may be (T, H, W), (T, H, W, C) or (T, C, H, W) uint8.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"input video {str(path)!r} does not exist")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                if "video" not in data:
                    raise ValueError(f"{str(path)!r} has no 'video' array (has {data.files})")
                video = np.asarray(data["video"])
        except (OSError, EOFError) as err:
            raise ValueError(f"unreadable npz {str(path)!r}: {err}") from None
    elif path.suffix.lower() in (".mp4", ".mov", ".avi", ".mkv", ".webm"):
        import av

        try:
            with av.open(str(path)) as container:
                video = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        except (av.FFmpegError, ValueError) as err:
            raise ValueError(f"unreadable video {str(path)!r}: {err}") from None
    else:
        raise ValueError(f"input {str(path)!r}: expected an .mp4 or .npz file")
    if video.dtype != np.uint8:
        raise ValueError(f"{str(path)!r}: video must be uint8, got {video.dtype}")
    if video.ndim == 3:
        video = video[:, None]
    elif video.ndim == 4 and video.shape[-1] in (1, 3) and video.shape[1] not in (1, 3):
        video = np.moveaxis(video, -1, 1)
    if video.ndim != 4 or video.shape[1] not in (1, 3):
        raise ValueError(f"{str(path)!r}: cannot read video of shape {video.shape}")
    return torch.from_numpy(np.ascontiguousarray(video)).float().div(127.5).sub(1.0)


def _fit_to_model(video: torch.Tensor, model_cfg: Any, where: str) -> torch.Tensor:
    c, size = model_cfg.image_channels, model_cfg.image_size
    if video.shape[1] == 3 and c == 1:
        video = video.mean(dim=1, keepdim=True)  # RGB -> grey for a grey model
    if video.shape[1] != c:
        raise ValueError(f"{where}: video has {video.shape[1]} channels, the model takes {c}")
    if tuple(video.shape[-2:]) != (size, size):
        raise ValueError(
            f"{where}: frames are {tuple(video.shape[-2:])}, the model takes {size}x{size}"
        )
    return video


def generate_from_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    input_path: str | Path | None = None,
    moving_mnist_seed: int | None = None,
    context: int | None = None,
    horizon: int | None = None,
    device: str = "auto",
) -> dict[str, Path]:
    """Generate from a video file or a fresh Moving-MNIST sample; write GIF, MP4, PNGs, npz.

    With an input file, the frames after the context (if any) are the ground truth of the
    error plot; a fresh Moving-MNIST sample has ground truth for the whole horizon.
    """
    tm = load_trained(checkpoint, device)
    ev = tm.config.eval
    context = context or ev.context
    horizon = horizon or max(ev.horizons)
    if context < 1 or horizon < 1:
        raise ValueError(f"context and horizon must be positive, got {context}, {horizon}")
    if input_path is not None and moving_mnist_seed is not None:
        raise ValueError("give either an input video or a Moving-MNIST seed, not both")
    if input_path is not None:
        video = _fit_to_model(read_input_video(input_path), tm.config.model, str(input_path))
    else:
        from convssm.data import MovingMNIST

        if tm.config.data.dataset != "moving_mnist":
            raise ValueError("this checkpoint was not trained on Moving-MNIST: pass --input")
        ds = MovingMNIST(
            1,
            num_frames=context + horizon,
            image_size=tm.config.model.image_size,
            num_digits=tm.config.data.num_digits,
            split="eval",
            seed=moving_mnist_seed or 0,
            digits=tm.config.data.mnist_path,
            **tm.config.data.options,
        )
        video = ds[0]
    if video.shape[0] < context:
        raise ValueError(f"the input has {video.shape[0]} frames, fewer than context {context}")
    with torch.no_grad():
        pred = tm.model.generate(video[None, :context].to(tm.device), horizon)[0].float().cpu()
    truth = video[: context + horizon]
    known = truth.shape[0] - context
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if known > 0:
        err = ((pred[:known] - truth[context:]) * 0.5).pow(2).mean(dim=(1, 2, 3))
        curves = {"mse": err.tolist()}
    else:
        curves = {
            "frame change (no ground truth)": (pred.diff(dim=0) * 0.5)
            .pow(2)
            .mean(dim=(1, 2, 3))
            .tolist()
            or [0.0]
        }
    # no ground truth beyond the end of the input: black frames in the truth panel
    padded = torch.cat([truth, torch.full_like(pred[known:], -1.0)], dim=0)
    paths = write_media(out, padded, pred, context, curves, tm.config.data.seq_len, "generated")
    paths["npz"] = out / "generated.npz"
    np.savez_compressed(
        paths["npz"], context=to_uint8(video[:context]), pred=to_uint8(pred), truth=to_uint8(truth)
    )
    return paths
