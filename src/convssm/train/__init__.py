"""Training: configs, the loop, train_step/TrainState, checkpoints, distributed set-up.

Main entry points: :func:`load_config` (YAML -> :class:`ExperimentConfig`),
:func:`train_and_evaluate` (the loop, one process or under torchrun) around
:class:`TrainState` and :func:`train_step`. Running a trained model (evaluation,
generation) is :mod:`convssm.run`.
"""

from convssm.train.checkpoint import load_checkpoint, save_checkpoint
from convssm.train.config import (
    DataConfig,
    EvalConfig,
    ExperimentConfig,
    OptimConfig,
    TrainConfig,
    config_from_dict,
    load_config,
)
from convssm.train.loop import TrainResult, train_and_evaluate
from convssm.train.state import TrainState
from convssm.train.step import train_step

__all__ = [
    "DataConfig",
    "EvalConfig",
    "ExperimentConfig",
    "OptimConfig",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "config_from_dict",
    "load_checkpoint",
    "load_config",
    "save_checkpoint",
    "train_and_evaluate",
    "train_step",
]
