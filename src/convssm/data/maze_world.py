"""MazeWorld: procedural first-person maze videos with actions (a small DMLab stand-in).

Video ``i`` is a pure function of ``(seed, split, epoch, i)`` and the generator parameters:
its random numbers come from ``numpy.random.default_rng([seed, split_code, epoch, i,
MAZE_TAG])``, so the same seed gives the same videos whatever the number of workers,
processes or ranks, and whatever order the indices are visited in. Each video draws its own
maze (``maze_layout``), runs the patrolling agent in it (``maze_agent``) and ray-casts every
frame (``maze_render``). :func:`write_maze_folder` stores videos in TECO's DMLab layout
(``<root>/<split>/<index>.npz``) for ``VideoFolder``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch.utils.data import Dataset

from convssm.data.maze_agent import ACTIONS, Motion, Trajectory, run_policy
from convssm.data.maze_layout import MazeLayout, make_layout
from convssm.data.maze_render import render, texels_to_planes, texels_to_rgb

__all__ = ["MazeWorld", "MazeWorldParams", "MazeEpisode", "MAZE_GENERATOR_VERSION", "MAZE_SPLITS"]

# Bump when the way a video is drawn from (seed, split, epoch, index) changes.
MAZE_GENERATOR_VERSION = 1
MAZE_SPLITS = ("train", "test")
_SPLIT_CODE = {"train": 0, "test": 1}
_MAZE_TAG = 0x4D415A45  # "MAZE": keeps these streams apart from Moving-MNIST's


@dataclass(frozen=True)
class MazeWorldParams:
    """Generator parameters (everything besides the seed that determines a video).

    Attributes:
        num_frames, image_size: video length and frame side (square RGB frames).
        rooms: the maze has ``rooms x rooms`` rooms on a ``2 rooms + 1`` grid of cells.
        num_zones: regions with their own wall colour, wall pattern and floor.
        loop_fraction: share of inner walls knocked out after carving (loops).
        num_headings: headings per full turn (a turn action is ``360 / num_headings`` deg).
        move_step: cells per move action; radius: the agent's half-side (cells).
        num_waypoints, waypoint_radius: the patrolled route: the start plus others between
            ``waypoint_radius / 2`` and ``waypoint_radius`` cells of path away from it.
        random_action_prob: chance per frame of a burst of 1-4 copies of a random action.
        look_around_prob: chance of a full turn on the spot at each waypoint.
    """

    num_frames: int = 300
    image_size: int = 64
    rooms: int = 7
    num_zones: int = 8
    loop_fraction: float = 0.15
    num_headings: int = 24
    move_step: float = 0.25
    radius: float = 0.2
    num_waypoints: int = 3
    waypoint_radius: int = 10
    random_action_prob: float = 0.06
    look_around_prob: float = 0.35

    def __post_init__(self) -> None:
        for name in ("num_frames", "image_size", "rooms", "num_zones", "num_headings"):
            _check_int(name, getattr(self, name), 1)
        _check_int("num_waypoints", self.num_waypoints, 1)
        _check_int("waypoint_radius", self.waypoint_radius, 1)
        if self.image_size < 2:
            raise ValueError(f"image_size must be at least 2, got {self.image_size}")
        if self.rooms < 2:
            raise ValueError(f"rooms must be at least 2, got {self.rooms}")
        if self.num_headings % 4:
            raise ValueError(f"num_headings must be a multiple of 4, got {self.num_headings}")
        for name in ("loop_fraction", "random_action_prob", "look_around_prob"):
            value = getattr(self, name)
            if not isinstance(value, float | int) or isinstance(value, bool) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if not 0.0 < float(self.radius) < 0.5:
            raise ValueError(f"radius must be in (0, 0.5) cells, got {self.radius!r}")
        if not 0.0 < float(self.move_step) <= 0.5:
            raise ValueError(f"move_step must be in (0, 0.5] cells, got {self.move_step!r}")

    def to_dict(self) -> dict:
        return {k: (float(v) if isinstance(v, float) else int(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> MazeWorldParams:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown MazeWorld parameters: {sorted(unknown)}")
        return cls(**d)


def _check_int(name: str, value: object, low: int) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


@dataclass(frozen=True)
class MazeEpisode:
    """Everything behind one video: its maze and its camera path."""

    layout: MazeLayout
    trajectory: Trajectory


class MazeWorld(Dataset):
    """First-person videos of random textured mazes, with the agent's actions.

    Args:
        num_videos: dataset length.
        num_frames, image_size: video length (300) and frame side (64).
        seed: base seed; split: ``"train"`` or ``"test"`` (different random streams).
        **options: further :class:`MazeWorldParams` (``rooms``, ``num_headings``, ...).

    Items:
        dict with ``"video"`` (T, 3, H, W) float32 in [-1, 1] and ``"actions"`` (T,) int64
        in ``[0, 6)`` (``ACTIONS``); ``actions[t]`` is the action that led from frame
        ``t - 1`` to frame ``t`` (TECO's convention; ``actions[0]`` led to the first frame
        from a starting state that is not shown).
    """

    actions = ACTIONS
    num_actions = len(ACTIONS)

    def __init__(
        self,
        num_videos: int,
        *,
        num_frames: int = 300,
        image_size: int = 64,
        seed: int = 0,
        split: str = "train",
        **options,
    ) -> None:
        if not isinstance(num_videos, int) or isinstance(num_videos, bool) or num_videos < 1:
            raise ValueError(f"num_videos must be a positive int, got {num_videos!r}")
        if split not in MAZE_SPLITS:
            raise ValueError(f"split must be one of {MAZE_SPLITS}, got {split!r}")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.params = MazeWorldParams.from_dict(
            {"num_frames": num_frames, "image_size": image_size, **options}
        )
        self.num_videos = num_videos
        self.split = split
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.num_videos

    def set_epoch(self, epoch: int) -> None:
        """Draw a fresh set of videos for ``epoch`` (call before creating the iterator)."""
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self.epoch = epoch

    def _check_index(self, index: object) -> int:
        if not isinstance(index, int | np.integer) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not 0 <= index < self.num_videos:
            raise IndexError(f"index {index} out of range for {self.num_videos} videos")
        return int(index)

    def episode(self, index: int) -> MazeEpisode:
        """The maze and camera path of video ``index``."""
        index = self._check_index(index)
        p = self.params
        rng = np.random.default_rng(
            [self.seed, _SPLIT_CODE[self.split], self.epoch, index, _MAZE_TAG]
        )
        layout = make_layout(p.rooms, p.num_zones, p.loop_fraction, rng)
        motion = Motion(layout, p.num_headings, p.move_step, p.radius)
        trajectory = run_policy(
            motion,
            p.num_frames,
            rng,
            num_waypoints=p.num_waypoints,
            waypoint_radius=p.waypoint_radius,
            random_action_prob=p.random_action_prob,
            look_around_prob=p.look_around_prob,
        )
        return MazeEpisode(layout=layout, trajectory=trajectory)

    def texels(self, episode: MazeEpisode) -> np.ndarray:
        """(T, H, W) texture-atlas indices of an episode's frames."""
        return render(
            episode.layout,
            episode.trajectory.position,
            episode.trajectory.heading,
            num_headings=self.params.num_headings,
            image_size=self.params.image_size,
        )

    def video_uint8(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Video ``index`` as ((T, H, W, 3) uint8, (T,) int64 actions): TECO's npz arrays."""
        episode = self.episode(index)
        return texels_to_rgb(self.texels(episode)), episode.trajectory.actions

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        episode = self.episode(index)
        video = torch.from_numpy(texels_to_planes(self.texels(episode)))
        return {"video": video, "actions": torch.from_numpy(episode.trajectory.actions)}

    def __repr__(self) -> str:
        p = self.params
        return (
            f"MazeWorld(num_videos={self.num_videos}, split={self.split!r}, seed={self.seed}, "
            f"frames={p.num_frames}, size={p.image_size}, rooms={p.rooms}x{p.rooms})"
        )
