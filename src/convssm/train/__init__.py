"""Training, evaluation and generation runs: configs, the loop, checkpoints, distributed set-up.

Main entry points: :func:`load_config` (YAML -> :class:`ExperimentConfig`),
:func:`train_and_evaluate` (the loop, one process or under torchrun) around
:class:`TrainState` and :func:`train_step`,
:func:`evaluate_checkpoint` (SPEC section 5) and :func:`generate_from_checkpoint`.
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
from convssm.train.inference import evaluate_checkpoint, generate_from_checkpoint, load_trained
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
    "evaluate_checkpoint",
    "generate_from_checkpoint",
    "load_checkpoint",
    "load_config",
    "load_trained",
    "save_checkpoint",
    "train_and_evaluate",
    "train_step",
]
