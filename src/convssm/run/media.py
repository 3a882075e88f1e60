"""Pictures and movies of predictions: GIF, MP4 (PyAV), PNG strips and error plots
(:func:`write_media`: all four of one video).

Videos are uint8 arrays (T, C, H, W) with C = 1 or 3, or (T, H, W) grey. Plots use
matplotlib's Agg canvas directly (no pyplot, no global backend switch). GIF and MP4 writers
take any iterable of frames and encode one frame at a time (upscaled one at a time), so
their memory does not grow with the number of frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import GifImagePlugin, Image

from convssm.metrics.scoring import to_uint8

__all__ = [
    "to_rgb_frames",
    "side_by_side",
    "side_by_side_frames",
    "write_gif",
    "write_mp4",
    "write_strip",
    "plot_error_curves",
    "write_media",
]


def to_rgb_frames(video: np.ndarray) -> np.ndarray:
    """(T, C, H, W) or (T, H, W) uint8 -> (T, H, W, 3) uint8."""
    video = np.asarray(video)
    if video.dtype != np.uint8:
        raise TypeError(f"video must be uint8, got {video.dtype}")
    if video.ndim == 3:
        video = video[:, None]
    if video.ndim != 4 or video.shape[1] not in (1, 3):
        raise ValueError(f"video must be (T, C, H, W) with C in (1, 3), got {video.shape}")
    frames = np.moveaxis(video, 1, -1)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    return np.ascontiguousarray(frames)


def side_by_side(truth: np.ndarray, pred: np.ndarray, context: int, gap: int = 2) -> np.ndarray:
    """(T, H, W, 3) frames: ground truth left, prediction right (context frames repeated).

    ``pred`` holds only the generated frames; during the context the right panel shows the
    ground truth with a green border, afterwards the prediction with a red one.
    """
    return np.stack(list(side_by_side_frames(truth, pred, context, gap)))


def side_by_side_frames(
    truth: np.ndarray, pred: np.ndarray, context: int, gap: int = 2
) -> Iterator[np.ndarray]:
    """:func:`side_by_side` one (H, W, 3) frame at a time (nothing held between frames)."""
    n = min(len(truth), context + len(pred))
    for t in range(n):
        left = to_rgb_frames(truth[t : t + 1])[0]
        right = left if t < context else to_rgb_frames(pred[t - context : t - context + 1])[0]
        h, w = left.shape[:2]
        out = np.full((h + 2, 2 * w + gap + 2, 3), 255, dtype=np.uint8)
        out[:, w + gap :] = (0, 160, 0) if t < context else (200, 0, 0)
        out[1 : h + 1, 1 : w + 1] = left
        out[1 : h + 1, w + gap + 1 : 2 * w + gap + 1] = right
        yield out


def write_gif(
    path: str | Path, frames: Iterable[np.ndarray], fps: float = 10.0, scale: int = 1
) -> Path:
    """Write (H, W, 3) uint8 frames (an array (T, H, W, 3) or any iterable) as a looping
    GIF, encoding one frame at a time (each with its own adaptive palette)."""
    path = Path(path)
    duration = int(1000 / fps)
    with open(path, "wb") as f:
        started = False
        for frame in frames:
            image = Image.fromarray(_upscale(np.asarray(frame)[None], scale)[0])
            image = image.convert("P", palette=Image.Palette.ADAPTIVE)
            if not started:
                header, _ = GifImagePlugin.getheader(image, info={"loop": 0})
                f.writelines(header)
                started = True
            chunks = GifImagePlugin.getdata(image, include_color_table=True, duration=duration)
            f.writelines(chunks)
        if not started:
            raise ValueError(f"no frames to write to {path}")
        f.write(b";")  # GIF trailer
    return path


def write_mp4(
    path: str | Path, frames: Iterable[np.ndarray], fps: int = 10, scale: int = 1
) -> Path:
    """Write (H, W, 3) uint8 frames (an array (T, H, W, 3) or any iterable) as H.264 MP4
    (padded to even sides) with PyAV, one frame at a time."""
    import av

    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = None
        for frame in frames:
            frame = _upscale(np.asarray(frame)[None], scale)[0]
            h, w = frame.shape[:2]
            ph, pw = h + h % 2, w + w % 2
            if (ph, pw) != (h, w):
                padded = np.zeros((ph, pw, 3), dtype=np.uint8)
                padded[:h, :w] = frame
                frame = padded
            if stream is None:
                stream = container.add_stream("libx264", rate=int(fps))
                stream.width, stream.height, stream.pix_fmt = pw, ph, "yuv420p"
                stream.options = {"crf": "18"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise ValueError(f"no frames to write to {path}")
        for packet in stream.encode():
            container.mux(packet)
    return path


def _upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    if scale == 1:
        return frames
    return frames.repeat(scale, axis=1).repeat(scale, axis=2)


def _pick_times(context: int, total: int, columns: int) -> list[int]:
    """Frame indices for a strip: the last context frame, then evenly spread predictions."""
    if total <= context:
        return list(range(total))[-columns:]
    preds = np.unique(np.linspace(context, total - 1, num=max(columns - 1, 1)).round().astype(int))
    return [context - 1, *preds.tolist()] if context > 0 else preds.tolist()


def write_strip(
    path: str | Path,
    truth: np.ndarray,
    pred: np.ndarray,
    context: int,
    columns: int = 10,
    title: str | None = None,
) -> Path:
    """PNG with ground truth (top) against prediction (bottom) at spread-out time steps.

    Args:
        truth: (T, C, H, W) uint8, context frames included.
        pred: (T - context, C, H, W) uint8 generated frames.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    total = min(len(truth), context + len(pred))
    times = _pick_times(context, total, columns)
    fig = Figure(figsize=(1.3 * len(times), 3.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(times), squeeze=False)
    for j, t in enumerate(times):  # only the shown frames are converted
        axes[0, j].imshow(to_rgb_frames(truth[t : t + 1])[0])
        shown = truth[t : t + 1] if t < context else pred[t - context : t - context + 1]
        axes[1, j].imshow(to_rgb_frames(shown)[0])
        label = f"t={t + 1}" if t < context else f"+{t - context + 1}"
        axes[0, j].set_title(label, fontsize=8)
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("truth", fontsize=9)
    axes[1, 0].set_ylabel("predicted", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def plot_error_curves(
    path: str | Path,
    curves: Mapping[str, Sequence[float]],
    title: str = "per-frame error against horizon",
    train_length: int | None = None,
) -> Path:
    """PNG plot of per-frame curves (e.g. MSE, PSNR, SSIM) against the prediction horizon.

    ``train_length`` draws a vertical line where generation leaves the training length.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("no curves to plot")
    fig = Figure(figsize=(4.0 * len(curves), 3.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (name, values) in zip(axes, curves.items(), strict=True):
        values = np.asarray(values, dtype=np.float64)
        ax.plot(np.arange(1, len(values) + 1), values, lw=1.2)
        ax.set_xlabel("frames after the context")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if train_length is not None and train_length < len(values):
            ax.axvline(train_length, color="grey", ls="--", lw=1)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


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
    scale = max(1, 128 // t8.shape[-1])
    horizon = p8.shape[0]
    title = f"context {context}, {horizon} generated frames"
    if train_length:
        title += f" (trained on {train_length})"
    return {
        "gif": write_gif(out / f"{stem}.gif", side_by_side_frames(t8, p8, context), scale=scale),
        "mp4": write_mp4(out / f"{stem}.mp4", side_by_side_frames(t8, p8, context), scale=scale),
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
