"""Layers: the ConvS5 SSM and block, and the baselines, all on (B, T, C, H, W)."""

from convssm.nn.common import (
    ChannelLayerNorm,
    ResidualNorm,
    TimeSharedDropout,
    checkpointed,
    detach_states,
)
from convssm.nn.convlstm import ConvLSTM, ConvLSTMBlock, ConvLSTMCell
from convssm.nn.convs5 import ConvS5, ConvS5Block
from convssm.nn.convs5_ssm import ConvS5SSM
from convssm.nn.frame_transformer import FrameTransformer, FrameWindow, KVCache
from convssm.nn.registry import build_sequence_model, register_sequence_model, sequence_model_names

__all__ = [
    "ChannelLayerNorm",
    "ConvLSTM",
    "ConvLSTMBlock",
    "ConvLSTMCell",
    "ConvS5",
    "ConvS5Block",
    "ConvS5SSM",
    "FrameTransformer",
    "FrameWindow",
    "KVCache",
    "ResidualNorm",
    "TimeSharedDropout",
    "build_sequence_model",
    "checkpointed",
    "detach_states",
    "register_sequence_model",
    "sequence_model_names",
]
