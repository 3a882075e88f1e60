"""Pictures and movies of predictions: GIF, MP4 (PyAV), PNG strips and error plots
(:func:`write_media`: all four of one video).

Videos are uint8 arrays (T, C, H, W) with C = 1 or 3, or (T, H, W) grey. Plots use
matplotlib's Agg canvas directly (no pyplot, no global backend switch). GIF and MP4 writers
(:class:`GifWriter`, :class:`Mp4Writer`) encode one frame at a time (upscaled one at a
time), and :class:`MediaWriter` takes one generated frame at a time, so their memory does
not grow with the number of frames. Every file is written under a temporary name and moved
into place when complete.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import GifImagePlugin, Image

from convssm._files import atomic_write, move_into_place
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
    "side_by_side_frame",
    "GifWriter",
    "Mp4Writer",
    "MediaWriter",
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
        right = truth[t] if t < context else pred[t - context]
        yield side_by_side_frame(truth[t], right, t < context, gap)


def side_by_side_frame(
    truth: np.ndarray, pred: np.ndarray, in_context: bool, gap: int = 2
) -> np.ndarray:
    """One (H, W, 3) frame of :func:`side_by_side`: ``truth`` and ``pred`` (C, H, W) or
    (H, W) uint8; a green border during the context, a red one after it."""
    left = to_rgb_frames(np.asarray(truth)[None])[0]
    right = to_rgb_frames(np.asarray(pred)[None])[0]
    h, w = left.shape[:2]
    out = np.full((h + 2, 2 * w + gap + 2, 3), 255, dtype=np.uint8)
    out[:, w + gap :] = (0, 160, 0) if in_context else (200, 0, 0)
    out[1 : h + 1, 1 : w + 1] = left
    out[1 : h + 1, w + gap + 1 : 2 * w + gap + 1] = right
    return out


class _AtomicFrameFile(ABC):
    """A file written frame by frame under a temporary name beside ``path`` and moved onto
    it by :meth:`close` (fsynced, with the umask's mode), or removed by :meth:`abort`; as a
    context manager it closes on success and aborts on an exception."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.frames = 0

    @abstractmethod
    def _finish(self) -> None:
        """Write what ends the file and close it."""

    @abstractmethod
    def _release(self) -> None:
        """Close the file's handles without finishing it."""

    def close(self) -> Path:
        if self.frames == 0:
            self.abort()
            raise ValueError(f"no frames to write to {self.path}")
        self._finish()
        return move_into_place(self.tmp, self.path)

    def abort(self) -> None:
        self._release()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


class GifWriter(_AtomicFrameFile):
    """A looping GIF written one (H, W, 3) uint8 frame at a time (:meth:`add`), each with
    its own adaptive palette; nothing is held between frames."""

    def __init__(self, path: str | Path, fps: float = 10.0, scale: int = 1) -> None:
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        super().__init__(path)
        self.duration, self.scale = int(1000 / fps), scale
        self.file = open(self.tmp, "wb")

    def add(self, frame: np.ndarray) -> None:
        image = Image.fromarray(_upscale(np.asarray(frame)[None], self.scale)[0])
        image = image.convert("P", palette=Image.Palette.ADAPTIVE)
        if self.frames == 0:
            header, _ = GifImagePlugin.getheader(image, info={"loop": 0})
            self.file.writelines(header)
        chunks = GifImagePlugin.getdata(image, include_color_table=True, duration=self.duration)
        self.file.writelines(chunks)
        self.frames += 1

    def _finish(self) -> None:
        self.file.write(b";")  # GIF trailer
        self.file.close()

    def _release(self) -> None:
        self.file.close()


class Mp4Writer(_AtomicFrameFile):
    """H.264 MP4 (PyAV) written one (H, W, 3) uint8 frame at a time (:meth:`add`), padded
    to even sides."""

    def __init__(self, path: str | Path, fps: int = 10, scale: int = 1) -> None:
        import av

        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        super().__init__(path)
        self.av, self.fps, self.scale = av, int(fps), scale
        self.container = av.open(str(self.tmp), mode="w", format="mp4")
        self.stream = None

    def add(self, frame: np.ndarray) -> None:
        frame = _upscale(np.asarray(frame)[None], self.scale)[0]
        h, w = frame.shape[:2]
        ph, pw = h + h % 2, w + w % 2
        if (ph, pw) != (h, w):
            padded = np.zeros((ph, pw, 3), dtype=np.uint8)
            padded[:h, :w] = frame
            frame = padded
        if self.stream is None:
            self.stream = self.container.add_stream("libx264", rate=self.fps)
            self.stream.width, self.stream.height, self.stream.pix_fmt = pw, ph, "yuv420p"
            self.stream.options = {"crf": "18"}
        video_frame = self.av.VideoFrame.from_ndarray(frame, format="rgb24")
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)
        self.frames += 1

    def _finish(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()

    def _release(self) -> None:
        self.container.close()


def write_gif(
    path: str | Path, frames: Iterable[np.ndarray], fps: float = 10.0, scale: int = 1
) -> Path:
    """Write (H, W, 3) uint8 frames (an array (T, H, W, 3) or any iterable) as a looping
    GIF, encoding one frame at a time (:class:`GifWriter`), atomically."""
    with GifWriter(path, fps, scale) as writer:
        for frame in frames:
            writer.add(frame)
    return writer.path


def write_mp4(
    path: str | Path, frames: Iterable[np.ndarray], fps: int = 10, scale: int = 1
) -> Path:
    """Write (H, W, 3) uint8 frames (an array (T, H, W, 3) or any iterable) as H.264 MP4
    (:class:`Mp4Writer`), one frame at a time, atomically."""
    with Mp4Writer(path, fps, scale) as writer:
        for frame in frames:
            writer.add(frame)
    return writer.path


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


def _save_figure(fig: Any, path: str | Path) -> Path:
    """``fig`` as a PNG at ``path``, atomically."""

    def write(tmp: str) -> None:
        fig.savefig(tmp, format="png")

    return atomic_write(path, write)


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
    total = min(len(truth), context + len(pred))
    shown = [
        (t, truth[t], truth[t] if t < context else pred[t - context])
        for t in _pick_times(context, total, columns)  # only the shown frames are converted
    ]
    return _write_strip_frames(path, shown, context, title)


def _write_strip_frames(
    path: str | Path,
    shown: Sequence[tuple[int, np.ndarray, np.ndarray]],
    context: int,
    title: str | None,
) -> Path:
    """The strip of :func:`write_strip` from (t, truth (C, H, W), shown (C, H, W)) uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.3 * len(shown), 3.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(shown), squeeze=False)
    for j, (t, top, bottom) in enumerate(shown):
        axes[0, j].imshow(to_rgb_frames(np.asarray(top)[None])[0])
        axes[1, j].imshow(to_rgb_frames(np.asarray(bottom)[None])[0])
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
    return _save_figure(fig, path)


BASELINE_STYLES = {"empty frame": (":", "grey"), "repeat last frame": ("--", "tab:orange")}


def _panels(
    curves: Mapping[str, Sequence[Any]],
    baselines: Mapping[str, Mapping[str, Sequence[Any]]],
    channel_names: Sequence[str] | None,
) -> list[tuple[str, np.ndarray, dict[str, np.ndarray]]]:
    """(y label, model values (T,), {baseline: values (T,)}) per panel: one per curve, and
    one per channel for a curve of per-channel values (T, C)."""
    panels = []
    for name, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        base = {k: np.asarray(v, dtype=np.float64) for k, v in baselines.get(name, {}).items()}
        if values.ndim == 1:
            panels.append((name, values, base))
            continue
        for c in range(values.shape[1]):
            label = channel_names[c] if channel_names else f"channel {c}"
            panels.append((f"{name}, {label}", values[:, c], {k: v[:, c] for k, v in base.items()}))
    return panels


def plot_error_curves(
    path: str | Path,
    curves: Mapping[str, Sequence[Any]],
    title: str = "per-frame error against horizon",
    train_length: int | None = None,
    baselines: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    channel_names: Sequence[str] | None = None,
) -> Path:
    """PNG plot of per-frame curves (e.g. MSE, PSNR, SSIM) against the prediction horizon.

    A curve is per-frame numbers, or per-frame lists of one number per channel (physical
    fields: one panel per channel, named by ``channel_names`` or ``channel c``).
    ``baselines`` maps a curve's name to trivial predictors' curves of the same shape
    (``empty frame``, ``repeat last frame``), drawn dashed beside it with a legend.
    ``train_length`` draws a vertical line where generation leaves the training length.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("no curves to plot")
    panels = _panels(curves, baselines or {}, channel_names)
    fig = Figure(figsize=(4.0 * len(panels), 3.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, values, base) in zip(axes, panels, strict=True):
        frames = np.arange(1, len(values) + 1)
        ax.plot(frames, values, lw=1.2, label="model")
        for label, curve in base.items():
            style, color = BASELINE_STYLES.get(label, ("-.", "tab:green"))
            ax.plot(frames[: len(curve)], curve, ls=style, lw=1, color=color, label=label)
        ax.set_xlabel("frames after the context")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if train_length is not None and train_length < len(values):
            ax.axvline(train_length, color="grey", ls="--", lw=0.8, alpha=0.6,
                       label="end of the training length")  # fmt: skip
        if base or (train_length is not None and train_length < len(values)):
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save_figure(fig, path)


def _title(context: int, horizon: int, train_length: int | None) -> str:
    title = f"context {context}, {horizon} generated frames"
    return title + (f" (trained on {train_length})" if train_length else "")


class MediaWriter:
    """:func:`write_media` one generated frame at a time: the GIF and MP4 are encoded as the
    frames come, the strip keeps only the frames it shows, so memory does not grow with
    the horizon.

    Args:
        context_frames: (context, C, H, W) in [-1, 1].
        horizon: how many frames :meth:`add` will get (it picks the strip's columns).
    """

    def __init__(
        self,
        out: Path,
        context_frames: torch.Tensor,
        horizon: int,
        train_length: int | None = None,
        stem: str = "sample",
    ) -> None:
        self.out, self.stem, self.horizon = Path(out), stem, horizon
        self.context, self.train_length = context_frames.shape[0], train_length
        ctx8 = to_uint8(context_frames)
        scale = max(1, 128 // ctx8.shape[-1])
        self.out.mkdir(parents=True, exist_ok=True)
        self.gif = GifWriter(self.out / f"{stem}.gif", scale=scale)
        try:
            self.mp4 = Mp4Writer(self.out / f"{stem}.mp4", scale=scale)
        except BaseException:
            self.gif.abort()
            raise
        self.times = set(_pick_times(self.context, self.context + horizon, 10))
        self.shown = [(t, ctx8[t], ctx8[t]) for t in sorted(self.times) if t < self.context]
        try:
            for t in range(self.context):
                self._encode(side_by_side_frame(ctx8[t], ctx8[t], True))
        except BaseException:
            self.abort()
            raise
        self.count = 0

    def _encode(self, frame: np.ndarray) -> None:
        self.gif.add(frame)
        self.mp4.add(frame)

    def add(self, pred: torch.Tensor, truth: torch.Tensor | None = None) -> None:
        """The next generated frame (C, H, W) in [-1, 1] and its truth (black when None)."""
        if self.count >= self.horizon:
            raise ValueError(f"{self.out}: more than the {self.horizon} frames announced")
        p8 = to_uint8(pred)
        t8 = to_uint8(truth) if truth is not None else np.zeros_like(p8)
        self._encode(side_by_side_frame(t8, p8, False))
        t = self.context + self.count
        if t in self.times:
            self.shown.append((t, t8, p8))
        self.count += 1

    def close(
        self,
        curves: Mapping[str, Sequence[Any]],
        baselines: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
        channel_names: Sequence[str] | None = None,
    ) -> dict[str, Path]:
        """Finish the GIF and MP4, draw the strip and the per-frame ``curves`` (with their
        ``baselines``, see :func:`plot_error_curves`)."""
        title = _title(self.context, self.count, self.train_length)
        length = self.train_length
        return {
            "gif": self.gif.close(),
            "mp4": self.mp4.close(),
            "strip": _write_strip_frames(
                self.out / f"{self.stem}_strip.png", self.shown, self.context, title
            ),  # fmt: skip
            "error_plot": plot_error_curves(
                self.out / f"{self.stem}_error.png",
                curves,
                title=title,
                train_length=length - self.context if length and length > self.context else None,
                baselines=baselines,
                channel_names=channel_names,
            ),  # fmt: skip
        }

    def abort(self) -> None:
        """Remove the unfinished GIF and MP4."""
        self.gif.abort()
        self.mp4.abort()


def write_media(
    out: Path,
    truth: torch.Tensor,
    pred: torch.Tensor,
    context: int,
    curves: Mapping[str, Sequence[Any]],
    train_length: int | None = None,
    stem: str = "sample",
    baselines: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    channel_names: Sequence[str] | None = None,
) -> dict[str, Path]:
    """GIF + MP4 (truth | prediction), PNG strip and per-frame error plot of one video
    (:class:`MediaWriter` over frames held in memory).

    truth (context + H, C, H, W) and pred (H, C, H, W), both in [-1, 1]; truth frames past
    its end are drawn black.
    """
    writer = MediaWriter(out, truth[:context], pred.shape[0], train_length, stem)
    try:
        for k in range(pred.shape[0]):
            writer.add(pred[k], truth[context + k] if context + k < truth.shape[0] else None)
    except BaseException:
        writer.abort()
        raise
    return writer.close(curves, baselines, channel_names)
