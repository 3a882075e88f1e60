"""Reading single video files in TECO's formats: npz (``video``, ``actions``) and mp4.

Every function raises ``ValueError`` (or ``TypeError`` for a wrong dtype) with the file's
path in the message when a file is missing, corrupt, truncated or wrongly shaped.

- npz: ``video`` (T, H, W, C) uint8 with C in {1, 3}; optional ``actions`` (T,) integer.
- mp4: decoded with PyAV to RGB (T, H, W, 3) uint8; an optional npz of the same stem next
  to it holds ``actions`` (T,) integer.

:func:`read_video` reads one whole video for ``convssm generate --input``: the same npz and
mp4 readers, with a more lenient npz layout ((T, H, W), (T, H, W, C) or (T, C, H, W)).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

__all__ = [
    "VideoFileInfo",
    "probe_video_file",
    "read_video_file",
    "read_video",
    "actions_path_for",
    "VIDEO_SUFFIXES",
]

VIDEO_SUFFIXES = (".npz", ".mp4", ".mov", ".avi", ".mkv", ".webm")

_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, av.FFmpegError)
# what a readable video file is, for the messages about one that is not
EXPECTED_FILE = (
    "expected an npz archive (numpy.savez) holding 'video', (T, H, W, 3) or (T, H, W, 1) "
    "uint8, and optionally 'actions', (T,) integers; or an mp4 file that ffmpeg decodes"
)


@dataclass(frozen=True)
class VideoFileInfo:
    """What probing a file found, without decoding its frames.

    Attributes:
        path: the video file (npz or mp4).
        kind: ``"npz"`` or ``"mp4"``.
        num_frames: T.
        actions_path: file holding ``actions`` (the npz itself, or the mp4's sibling npz),
            or ``None`` when the video has no actions.
        frame_shape: (C, H, W) of its frames as read (an mp4 decodes to 3 channels).
    """

    path: Path
    kind: str
    num_frames: int
    actions_path: Path | None
    frame_shape: tuple[int, int, int] | None = None


def actions_path_for(mp4: Path) -> Path:
    """The npz that may hold an mp4's actions: same directory, same stem."""
    return mp4.with_suffix(".npz")


def _npy_header(zf: zipfile.ZipFile, key: str, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    name = key + ".npy"
    if name not in zf.namelist():
        raise ValueError(
            f"{path} has no array {key!r} (arrays: {_array_names(zf)}); {EXPECTED_FILE}"
        )
    with zf.open(name) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    return tuple(shape), np.dtype(dtype)


def _array_names(zf: zipfile.ZipFile) -> list[str]:
    return [n.removesuffix(".npy") for n in zf.namelist()]


def _check_video_header(shape, dtype, path: Path) -> int:
    if dtype != np.uint8:
        raise TypeError(f"{path}: 'video' must be uint8, got {dtype}")
    if len(shape) != 4 or shape[3] not in (1, 3):
        raise ValueError(f"{path}: 'video' must have shape (T, H, W, 1 or 3), got {shape}")
    return int(shape[0])


def _check_actions_header(shape, dtype, num_frames: int, path: Path) -> None:
    if not np.issubdtype(dtype, np.integer):
        raise TypeError(f"{path}: 'actions' must be an integer array, got {dtype}")
    if len(shape) != 1 or shape[0] != num_frames:
        raise ValueError(
            f"{path}: 'actions' must have shape ({num_frames},) to match the video's "
            f"{num_frames} frames, got {shape}"
        )


def _probe_actions(npz: Path, num_frames: int) -> None:
    with zipfile.ZipFile(npz) as zf:
        shape, dtype = _npy_header(zf, "actions", npz)
    _check_actions_header(shape, dtype, num_frames, npz)


def _mp4_frame_count(path: Path) -> tuple[int, tuple[int, int, int]]:
    """(frames, (3, H, W)) of an mp4's first video stream."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        shape = (3, int(stream.codec_context.height), int(stream.codec_context.width))
        if stream.frames > 0:
            return int(stream.frames), shape
        return sum(1 for packet in container.demux(stream) if packet.size), shape


def probe_video_file(path: str | Path) -> VideoFileInfo:
    """Check a file's headers (and its actions file, if any) and count its frames."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"video file not found: {path}")
    kind = path.suffix.lower().lstrip(".")
    try:
        if kind == "npz":
            with zipfile.ZipFile(path) as zf:
                shape, dtype = _npy_header(zf, "video", path)
                num_frames = _check_video_header(shape, dtype, path)
                has_actions = "actions.npy" in zf.namelist()
            frame = (int(shape[3]), int(shape[1]), int(shape[2]))
            if has_actions:
                _probe_actions(path, num_frames)
            return VideoFileInfo(path, "npz", num_frames, path if has_actions else None, frame)
        if kind == "mp4":
            num_frames, frame = _mp4_frame_count(path)
            if num_frames < 1:
                raise ValueError(f"{path} holds no video frames")
            sibling = actions_path_for(path)
            if sibling.exists():
                _probe_actions(sibling, num_frames)
                return VideoFileInfo(path, "mp4", num_frames, sibling, frame)
            return VideoFileInfo(path, "mp4", num_frames, None, frame)
    except TypeError:
        raise
    except _ERRORS as err:
        own = isinstance(err, ValueError) and not isinstance(err, av.FFmpegError)
        if own and str(path) in str(err):
            raise  # already names the file and the problem
        raise ValueError(f"unreadable video file {path}: {err}; {EXPECTED_FILE}") from err
    raise ValueError(f"{path}: unsupported video file type {path.suffix!r} (npz or mp4)")


def _decode_mp4(path: Path, stop: int) -> np.ndarray:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= stop:
                break
    if not frames:
        raise ValueError(f"{path} decoded to no frames")
    return np.stack(frames)


def read_video_file(
    info: VideoFileInfo, start: int, length: int, *, with_actions: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read frames ``[start, start + length)`` of a probed file.

    Returns:
        video (length, H, W, C) uint8 and actions (length,) int64 or ``None``.
    """
    path = info.path
    stop = start + length
    if start < 0 or stop > info.num_frames:
        raise ValueError(f"{path}: window [{start}, {stop}) outside its {info.num_frames} frames")
    try:
        if info.kind == "npz":
            with np.load(path, allow_pickle=False) as data:
                video = data["video"]
                actions = data["actions"] if with_actions else None
            _check_video_header(video.shape, video.dtype, path)
        else:
            video = _decode_mp4(path, stop)
            actions = None
            if with_actions:
                with np.load(info.actions_path, allow_pickle=False) as data:
                    actions = data["actions"]
    except TypeError:
        raise
    except _ERRORS as err:
        raise ValueError(f"unreadable video file {path}: {err}") from err
    if video.shape[0] < stop:
        raise ValueError(
            f"{path}: expected {info.num_frames} frames, could read only {video.shape[0]}"
        )
    if actions is not None:
        _check_actions_header(actions.shape, actions.dtype, info.num_frames, info.actions_path)
        actions = actions[start:stop].astype(np.int64)
    return video[start:stop], actions


def read_video(path: str | Path) -> np.ndarray:
    """A whole video file -> (T, C, H, W) uint8 with C in {1, 3}.

    npz: its ``video`` array, (T, H, W), (T, H, W, C) or (T, C, H, W) uint8; mp4 (and the
    other containers PyAV reads: mov, avi, mkv, webm): all frames as RGB.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"input video {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"input {str(path)!r}: expected one of {', '.join(VIDEO_SUFFIXES)}")
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                if "video" not in data.files:
                    raise ValueError(f"{str(path)!r} has no 'video' array (has {data.files})")
                video = np.asarray(data["video"])
        else:
            video = _decode_mp4(path, stop=2**62)
    except _ERRORS as err:
        if isinstance(err, ValueError) and str(path) in str(err):
            raise
        raise ValueError(f"unreadable video {str(path)!r}: {err}") from None
    if video.dtype != np.uint8:
        raise TypeError(f"{str(path)!r}: video must be uint8, got {video.dtype}")
    if video.ndim == 3:
        video = video[:, None]
    elif video.ndim == 4 and video.shape[-1] in (1, 3) and video.shape[1] not in (1, 3):
        video = np.moveaxis(video, -1, 1)
    if video.ndim != 4 or video.shape[1] not in (1, 3):
        raise ValueError(f"{str(path)!r}: cannot read a video of shape {video.shape}")
    return np.ascontiguousarray(video)
