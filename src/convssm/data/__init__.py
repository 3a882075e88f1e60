"""Data: long-horizon Moving-MNIST, its fixed evaluation sets, delayed recall, MazeWorld,
TECO's video folders, cached tokenizer codes, your own arrays (``.npy``, ``.h5``, ``.zarr``),
per-channel statistics, and the one reader per format.

This level imports only ``convssm.ops`` and the shared helpers (never nn, models or train).
"""

from convssm.data.array_dataset import ArrayDataset
from convssm.data.arrays import (
    ARRAY_FORMATS,
    array_format,
    channel_labels,
    open_array,
    read_array,
    write_array,
)
from convssm.data.code_folder import CodeFolder, read_codes_manifest
from convssm.data.delayed_recall import DelayedRecall
from convssm.data.digits import load_digits, load_idx_images, split_indices
from convssm.data.eval_set import (
    MnistTestSeq,
    MovingMNISTEvalSet,
    load_eval_set,
    write_eval_set,
)
from convssm.data.maze_agent import ACTIONS as MAZE_ACTIONS
from convssm.data.maze_agent import revisits
from convssm.data.maze_folder import maze_manifest_path, write_maze_folder
from convssm.data.maze_world import MAZE_GENERATOR_VERSION, MazeWorld, MazeWorldParams
from convssm.data.moving_mnist import GENERATOR_VERSION, MovingMNIST, MovingMNISTParams
from convssm.data.stats import ChannelStats, StatsAccumulator, channel_stats_ref
from convssm.data.trajectories import trajectory, trajectory_ref
from convssm.data.video_files import read_video
from convssm.data.video_folder import VideoFolder

__all__ = [
    "ARRAY_FORMATS",
    "ArrayDataset",
    "array_format",
    "channel_labels",
    "ChannelStats",
    "CodeFolder",
    "DelayedRecall",
    "GENERATOR_VERSION",
    "MAZE_ACTIONS",
    "MAZE_GENERATOR_VERSION",
    "MazeWorld",
    "MazeWorldParams",
    "MnistTestSeq",
    "MovingMNIST",
    "MovingMNISTEvalSet",
    "MovingMNISTParams",
    "StatsAccumulator",
    "VideoFolder",
    "channel_stats_ref",
    "load_digits",
    "load_eval_set",
    "load_idx_images",
    "maze_manifest_path",
    "open_array",
    "read_array",
    "read_codes_manifest",
    "read_video",
    "revisits",
    "split_indices",
    "trajectory",
    "trajectory_ref",
    "write_array",
    "write_eval_set",
    "write_maze_folder",
]
