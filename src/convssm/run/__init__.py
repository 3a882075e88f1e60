"""Running trained models: load them, evaluate them (docs/design.md#evaluation-protocol,
streaming; TECO's protocol), generate videos, encode frames to codes, the demo.

Main entry points: :func:`load_trained` (a checkpoint, a run's workdir or a published model
folder), :func:`evaluate_checkpoint` (``convssm evaluate``), :func:`generate_from_checkpoint`
(``convssm generate``), :func:`encode_folder` (``convssm data encode``),
:func:`evaluate_teco` with the :class:`PredictorGenerator` / :class:`LatentGenerator`
adapters, and :func:`run_demo` (``convssm demo``). This package reads training's configs and
checkpoints (:mod:`convssm.train`); training never imports it.
"""

from convssm.run.demo import run_demo
from convssm.run.encode import encode_folder
from convssm.run.eval_stream import StreamingEvaluator, VideoArrayWriter
from convssm.run.evaluation import write_eval_outputs
from convssm.run.generators import LatentGenerator, PredictorGenerator
from convssm.run.inference import (
    TrainedModel,
    evaluate_checkpoint,
    generate_from_checkpoint,
    load_trained,
)
from convssm.run.teco_eval import TecoResult, VideoGenerator, evaluate_teco
from convssm.run.teco_run import evaluate_teco_checkpoint

__all__ = [
    "LatentGenerator",
    "PredictorGenerator",
    "StreamingEvaluator",
    "TecoResult",
    "TrainedModel",
    "VideoArrayWriter",
    "VideoGenerator",
    "encode_folder",
    "evaluate_checkpoint",
    "evaluate_teco",
    "evaluate_teco_checkpoint",
    "generate_from_checkpoint",
    "load_trained",
    "run_demo",
    "write_eval_outputs",
]
