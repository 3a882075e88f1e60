"""Models built from ``convssm.nn`` layers: pixel-space video prediction."""

from convssm.models.autoencoder import FrameDecoder, FrameEncoder, ResidualBlock
from convssm.models.config import VideoPredictorConfig
from convssm.models.pretrained import PretrainedMixin
from convssm.models.video_predictor import VideoPredictor, VideoPredictorOutput, prediction_loss

__all__ = [
    "FrameDecoder",
    "FrameEncoder",
    "PretrainedMixin",
    "ResidualBlock",
    "VideoPredictor",
    "VideoPredictorConfig",
    "VideoPredictorOutput",
    "prediction_loss",
]
