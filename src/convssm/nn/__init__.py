"""Layers: the ConvS5 SSM and block, and the baselines, all on (B, T, C, H, W)."""

from convssm.nn.common import detach_states
from convssm.nn.convlstm import ConvLSTM, ConvLSTMBlock
from convssm.nn.convs5 import ConvS5, ConvS5Block
from convssm.nn.convs5_ssm import ConvS5SSM
from convssm.nn.frame_transformer import FrameTransformer
from convssm.nn.registry import build_sequence_model, register_sequence_model, sequence_model_names

__all__ = [
    "ConvLSTM",
    "ConvLSTMBlock",
    "ConvS5",
    "ConvS5Block",
    "ConvS5SSM",
    "FrameTransformer",
    "build_sequence_model",
    "detach_states",
    "register_sequence_model",
    "sequence_model_names",
]
