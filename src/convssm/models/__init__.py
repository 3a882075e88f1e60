"""Models built from ``convssm.nn`` layers: pixel-space and VQ-latent video prediction
(the latent predictor and TECO with its MaskGit prior), the VQ frame tokenizer; the one
registry of model kinds (:mod:`convssm.models.registry`) and save/load of model folders."""

from convssm.models.config import VideoPredictorConfig
from convssm.models.latent_video_predictor import (
    LatentVideoPredictor,
    LatentVideoPredictorConfig,
    LatentVideoPredictorOutput,
)
from convssm.models.maskgit import MaskGit, MaskGitOutput
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
from convssm.models.teco import TECO, TECOOutput
from convssm.models.teco_config import TECOConfig
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
    "LatentVideoPredictor",
    "LatentVideoPredictorConfig",
    "LatentVideoPredictorOutput",
    "MaskGit",
    "MaskGitOutput",
    "PretrainedMixin",
    "TECO",
    "TECOConfig",
    "TECOOutput",
    "VQTokenizer",
    "VQTokenizerConfig",
    "VQTokenizerOutput",
    "VideoPredictor",
    "VideoPredictorConfig",
    "VideoPredictorOutput",
    "push_folder_to_hub",
]
