"""VideoPredictor: per-frame encoder → any registered sequence model → per-frame decoder.

Pixel-space video prediction as in SPEC 3. Frames are in [−1, 1], shaped (B, T, C, H, W).

- ``forward(video, actions, states)``: teacher forcing; frames 0..T−2 in, frames 1..T−1
  predicted; loss = 0.5·MSE + 0.5·L1, both per-pixel means (the reference sums over width
  and channels before averaging; ours differs from it by that constant factor only).
  ``states`` continues from an earlier call: a long video run as overlapping pieces
  ``video[:, s : e + 1]`` (each piece starting at the last frame of the one before),
  carrying the returned states, gives the predictions of one call on the whole video.
- ``set_activation_checkpointing(True)``: each encoder/decoder residual block and each
  sequence-model layer keeps only its input and is recomputed during backward.
- ``generate(context, horizon)``: the context is encoded and run through the sequence model
  in parallel mode; then each predicted frame is fed back one step at a time. For ConvS5 the
  carried state has a fixed size, so memory does not grow with the horizon
  (``iter_generate`` yields frames one by one for horizons that do not fit in memory).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from convssm._checks import check_tensor
from convssm.models.autoencoder import FrameDecoder, FrameEncoder
from convssm.models.config import VideoPredictorConfig
from convssm.models.pretrained import PretrainedMixin
from convssm.nn import build_sequence_model
from convssm.nn.init import flax_conv_, flax_embedding_

__all__ = ["VideoPredictor", "VideoPredictorOutput", "prediction_loss"]


@dataclass
class VideoPredictorOutput:
    """predictions (B, T−1, C, H, W) for frames 1..T−1; loss a scalar tensor; states the
    sequence model's state after the last input frame (pass it to the next ``forward`` to
    continue the sequence)."""

    predictions: torch.Tensor
    loss: torch.Tensor
    states: Any = None


def prediction_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """0.5 · MSE + 0.5 · L1, per-pixel means."""
    return 0.5 * F.mse_loss(pred, target) + 0.5 * F.l1_loss(pred, target)


class VideoPredictor(PretrainedMixin, nn.Module):
    """Encoder, sequence model and decoder for pixel-space video prediction.

    Build it from its one description, ``VideoPredictor(config)`` with a
    :class:`VideoPredictorConfig`, or, as a convenience, from that config's fields as
    keywords: ``VideoPredictor(image_size=32, dim=64)``. ``model.config`` is the config
    (a copy of the one given), and ``save_pretrained`` stores it.
    """

    def __init__(self, config: VideoPredictorConfig | None = None, /, **fields: Any) -> None:
        super().__init__()
        if config is None:
            config = VideoPredictorConfig.from_dict(fields, "VideoPredictor arguments")
        elif fields:
            raise TypeError("give VideoPredictor a config or keyword fields, not both")
        elif not isinstance(config, VideoPredictorConfig):
            raise TypeError(f"config must be a VideoPredictorConfig, got {type(config).__name__}")
        self.config = config = copy.deepcopy(config)
        widths = config.encoder_widths
        self.downsample = config.downsample
        self.image_channels, self.image_size = config.image_channels, config.image_size
        self.latent_size = config.latent_size
        self.num_actions = config.num_actions
        groups, blocks = config.norm_groups, config.blocks_per_stage
        self.encoder = FrameEncoder(config.image_channels, widths, blocks, groups)
        # flax's default initialisers, as the reference's nn.Embed and 1×1 nn.Conv (SPEC 3)
        self.action_embed = (
            flax_embedding_(nn.Embedding(config.num_actions, config.action_embed_dim))
            if config.num_actions
            else None
        )
        extra = config.action_embed_dim if config.num_actions else 0
        self.proj_in = flax_conv_(nn.Conv2d(widths[-1] + extra, config.dim, 1))
        self.sequence = build_sequence_model(
            config.sequence_model,
            config.dim,
            grid=(self.latent_size, self.latent_size),
            **config.sequence_options,
        )
        self.proj_out = flax_conv_(nn.Conv2d(config.dim, widths[-1], 1))
        self.decoder = FrameDecoder(config.image_channels, widths, blocks, groups)

    # ------------------------------------------------------------------ checks
    def _check_video(self, video: object, name: str) -> torch.Tensor:
        video = check_tensor(video, name, ndim=5, floating=True)
        b, t, c, h, w = video.shape
        if c != self.image_channels:
            raise ValueError(
                f"{name} must have {self.image_channels} channels at dim 2 of (B, T, C, H, W), "
                f"got shape {tuple(video.shape)}"
            )
        if h % self.downsample or w % self.downsample:
            raise ValueError(f"{name} height and width must be divisible by {self.downsample}")
        if video.numel() and float(video.detach().abs().max()) > 1 + 1e-3:
            raise ValueError(f"{name} must be scaled to [-1, 1]; found values outside it")
        return video

    def _check_actions(self, actions: object, batch: int, length: int) -> torch.Tensor | None:
        if self.num_actions == 0:
            if actions is not None:
                raise ValueError("this model takes no actions (num_actions=0), got actions")
            return None
        if actions is None:
            raise ValueError(f"this model needs actions (num_actions={self.num_actions})")
        actions = check_tensor(actions, "actions", ndim=2, finite=False)
        if actions.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"actions must be an integer tensor, got {actions.dtype}")
        if actions.shape[0] != batch or actions.shape[1] < length:
            raise ValueError(
                f"actions must have shape (B={batch}, T>={length}), got {tuple(actions.shape)}"
            )
        if actions.numel() and (actions.min() < 0 or actions.max() >= self.num_actions):
            raise ValueError(f"actions must lie in [0, {self.num_actions})")
        return actions

    # ------------------------------------------------------------------ pieces
    def encode(self, frames: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C, H, W) frames and (B, T) actions -> (B, T, dim, h, w) latents."""
        b, t = frames.shape[:2]
        z = self.encoder(frames.reshape(b * t, *frames.shape[2:]))
        if self.action_embed is not None:
            a = self.action_embed(actions[:, :t].reshape(b * t))
            z = torch.cat([z, a[:, :, None, None].expand(-1, -1, *z.shape[-2:])], dim=1)
        z = self.proj_in(z)
        return z.reshape(b, t, *z.shape[1:])

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """(B, T, dim, h, w) sequence-model outputs -> (B, T, C, H, W) frames in [−1, 1]."""
        b, t = y.shape[:2]
        x = self.decoder(self.proj_out(y.reshape(b * t, *y.shape[2:])))
        return x.reshape(b, t, *x.shape[1:])

    # ------------------------------------------------------------------ modes
    def set_activation_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each encoder/decoder residual block and sequence-model layer during
        backward instead of keeping its activations (same gradients, less memory)."""
        if not hasattr(self.sequence, "activation_checkpointing"):
            raise ValueError(
                f"sequence model {self.config.sequence_model!r} does not support "
                "activation checkpointing (it has no activation_checkpointing attribute)"
            )
        for part in (self.encoder, self.decoder, self.sequence):
            part.activation_checkpointing = bool(enabled)

    def forward(
        self, video: torch.Tensor, actions: torch.Tensor | None = None, states: Any = None
    ) -> VideoPredictorOutput:
        """Teacher forcing on video (B, T, C, H, W), T ≥ 2; actions (B, T) or None;
        ``states`` the sequence model's state before frame 0 (None: a fresh start)."""
        video = self._check_video(video, "video")
        if video.shape[1] < 2:
            raise ValueError(
                f"video needs at least 2 frames for teacher forcing, got {video.shape[1]}"
            )
        actions = self._check_actions(actions, video.shape[0], video.shape[1] - 1)
        y, states = self.sequence(self.encode(video[:, :-1], actions), states)
        pred = self.decode(y)
        return VideoPredictorOutput(pred, prediction_loss(pred, video[:, 1:]), states)

    @torch.no_grad()
    def iter_generate(
        self, context: torch.Tensor, horizon: int, actions: torch.Tensor | None = None
    ) -> Iterator[torch.Tensor]:
        """Yield ``horizon`` predicted frames (B, C, H, W) after context (B, T_c, C, H, W).

        actions: (B, T_c + horizon − 1) or longer, the action accompanying each input frame.
        """
        context = self._check_video(context, "context")
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        t_c = context.shape[1]
        actions = self._check_actions(actions, context.shape[0], t_c + horizon - 1)
        y, states = self.sequence(self.encode(context, actions))
        frame = self.decode(y[:, -1:])
        yield frame[:, 0]
        for k in range(1, horizon):
            a = None if actions is None else actions[:, t_c + k - 1 : t_c + k]
            z = self.encode(frame, a)[:, 0]
            y_t, states = self.sequence.step(z, states)
            frame = self.decode(y_t[:, None])
            yield frame[:, 0]

    @torch.no_grad()
    def generate(
        self, context: torch.Tensor, horizon: int, actions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """context (B, T_c, C, H, W) -> the next ``horizon`` frames (B, horizon, C, H, W)."""
        return torch.stack(list(self.iter_generate(context, horizon, actions)), dim=1)
