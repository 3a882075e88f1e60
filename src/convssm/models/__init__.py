"""Models built from ``convssm.nn`` layers: pixel-space and VQ-latent video prediction,
and the VQ frame tokenizer; the one registry of model kinds (:mod:`convssm.models.registry`)
and save/load of model folders."""

from convssm.models.autoencoder import FrameDecoder, FrameEncoder, ResidualBlock
from convssm.models.config import VideoPredictorConfig
from convssm.models.discriminator import PatchDiscriminator
from convssm.models.latent_blocks import LogitsDecoder, flax_default_init_
from convssm.models.latent_video_predictor import (
    LatentVideoPredictor,
    LatentVideoPredictorConfig,
    LatentVideoPredictorOutput,
)
from convssm.models.pretrained import PretrainedMixin, push_folder_to_hub
from convssm.models.registry import (
    MODEL_KINDS,
    ModelKind,
    build_model,
    kind_of,
    model_kind,
    read_config_json,
    write_config_json,
)
from convssm.models.vector_quantizer import QuantizerOutput, VectorQuantizer
from convssm.models.video_predictor import VideoPredictor, VideoPredictorOutput
from convssm.models.vq_tokenizer import VQTokenizer, VQTokenizerConfig, VQTokenizerOutput

__all__ = [
    "MODEL_KINDS",
    "ModelKind",
    "build_model",
    "kind_of",
    "model_kind",
    "read_config_json",
    "write_config_json",
    "FrameDecoder",
    "FrameEncoder",
    "LatentVideoPredictor",
    "LatentVideoPredictorConfig",
    "LatentVideoPredictorOutput",
    "LogitsDecoder",
    "PatchDiscriminator",
    "PretrainedMixin",
    "QuantizerOutput",
    "ResidualBlock",
    "VQTokenizer",
    "VQTokenizerConfig",
    "VQTokenizerOutput",
    "VectorQuantizer",
    "VideoPredictor",
    "VideoPredictorConfig",
    "VideoPredictorOutput",
    "flax_default_init_",
    "push_folder_to_hub",
]
