"""LatentVideoPredictor: next-frame prediction over the codes of a VQ tokenizer.

The reference's VQ-latent model (NVlabs/ConvSSM ``sequence_models/VQ/convS5.py``,
``dmlab_convs5`` config), written anew around any registered sequence model::

    codes (B, T, h, w) ──embed──> (B, T, E, h, w) ──ResNet encoder──> (B, T, C_enc, h, w)
       ⊕ action embedding of the NEXT frame's action, tiled over h×w
       ──projection to dim──> sequence model ──(back-projection)──> ResNet decoder
       ──> logits (B, T, codebook_size, h, w)

Frame t (with action t+1) predicts frame t+1. ``actions[:, t]`` is the action that led from
frame t−1 to frame t (TECO's convention), so ``actions[:, 0]`` is never used. Index
``num_actions`` of the action embedding is the "no action" token: the reference's
``action_mask_id`` (−1, which in JAX indexes the last of its ``action_dim + 1`` rows). It is
used when ``actions`` is None and for the samples whose actions are dropped.

- The projection is a 1×1 convolution (``grid_downsample`` 1, the ConvS5 configs) or a
  g×g stride-g convolution with a g×g transposed convolution back (``grid_downsample`` g;
  g = latent_size puts the sequence model on a 1×1 grid: the reference's ``dmlab_S5`` case,
  with ConvS5 at ``kernel_size: 1`` as S5).
- ``forward`` computes logits, no loss. The training objective
  (:func:`convssm.train.objectives.latent_prediction_loss`) is the cross-entropy against the
  next frame's codes with the config's ``label_smoothing``; the config holds its settings.
- ``action_dropout``: in training, each sample's actions are replaced by the "no action"
  token with this probability (one draw per sample), so one model serves both protocols.
- ``causal_masking``: for action-conditioned samples (actions given and not dropped), the
  encoded input of every frame with index ≥ ``mask_context`` is replaced by the constant
  ``frame_mask_value``: the model must predict those frames from the context and the
  actions alone (``output.conditioned`` says which samples were; the objective's loss is
  then the reference's two-part one). (The reference's sampler also masks the last context
  frame, which its training never does; we mask exactly what training masks, so generation
  equals the parallel mode.)
- ``forward(..., positions=)``: the decoder computes the logits of those predicted frames
  only (``output.logits`` covers only them); training's drop-loss
  (``drop_loss_rate`` r > 0, the reference's Minecraft and Habitat configs use 0.9) draws
  max(1, ⌊(1 − r)(T − 1)⌋) positions without replacement
  (:func:`convssm.train.objectives.drop_loss_positions`).
- ``generate`` conditions on the context in parallel mode and then samples one frame of
  codes at a time with the sequence model's recurrent step (O(1) per frame for ConvS5),
  each position an independent categorical draw at ``temperature``.

Initialisation: the encoder, decoder, projections and embeddings use flax's defaults
(:func:`convssm.models.latent_blocks.flax_default_init_`); the sequence model keeps its own.
The code embedding is learned here; the reference looks codes up in its frozen VQ-GAN
codebook (:meth:`LatentVideoPredictor.copy_code_embeddings` with ``freeze_code_embeddings``
does that).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from convssm._checks import check_codes, check_optional_actions, check_tensor
from convssm._progress import progress_iter
from convssm._typed import dataclass_from_dict
from convssm.models.autoencoder import FrameEncoder
from convssm.models.config import check_sequence_options
from convssm.models.latent_blocks import LogitsDecoder, flax_default_init_
from convssm.models.pretrained import PretrainedMixin
from convssm.models.video_predictor import compile_step_by_default, compiled_step
from convssm.nn import build_sequence_model

__all__ = ["LatentVideoPredictor", "LatentVideoPredictorConfig", "LatentVideoPredictorOutput"]


def _frame_offset(length: int, group: Any, like: torch.Tensor) -> int:
    """The index of this rank's first input frame: the sum of the input lengths of the
    ranks before it in ``group`` (one all-gather of an int)."""
    mine = torch.tensor([length], dtype=torch.int64, device=like.device)
    parts = [torch.empty_like(mine) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, mine, group=group)
    return int(sum(int(p) for p in parts[: dist.get_rank(group)]))


@dataclass
class LatentVideoPredictorConfig:
    """The arguments of :class:`LatentVideoPredictor` as one object (same names, same
    defaults; ``LatentVideoPredictor.from_config(cfg)`` builds it)."""

    codebook_size: int = 1024
    latent_size: int = 16
    dim: int = 512
    sequence_model: str = "convs5"
    sequence_options: dict[str, Any] = field(default_factory=dict)
    num_actions: int = 0
    action_embed_dim: int = 16
    code_embed_dim: int = 64
    encoder_widths: list[int] = field(default_factory=lambda: [256])
    encoder_blocks: int = 1
    decoder_widths: list[int] = field(default_factory=lambda: [512])
    decoder_blocks: int = 4
    norm_groups: int = 32
    grid_downsample: int = 1
    action_dropout: float = 0.0
    causal_masking: bool = False
    mask_context: int = 144
    frame_mask_value: float = -2.0
    label_smoothing: float = 0.01
    drop_loss_rate: float = 0.0
    freeze_code_embeddings: bool = False

    @classmethod
    def from_dict(cls, data: Any, where: str = "model") -> LatentVideoPredictorConfig:
        """Read a mapping (YAML/JSON); unknown keys and wrong types are errors naming
        ``where.key``; keys left out keep their defaults."""
        return dataclass_from_dict(cls, data, where)

    def __post_init__(self) -> None:
        # a misspelt option is named with the valid ones here, not as a TypeError in the layer
        self.sequence_options = dict(self.sequence_options or {})
        check_sequence_options(self.sequence_model, self.sequence_options)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dicts and lists (a deep copy)."""
        return copy.deepcopy(asdict(self))


@dataclass
class LatentVideoPredictorOutput:
    """logits (B, T−1, K, h, w) for frames 1..T−1 (or, for ``forward(..., positions=)``, for
    the frames ``positions + 1`` only: (B, n, K, h, w)); conditioned (B,) bool, the samples
    whose actions were given and not dropped (what causal masking masked)."""

    logits: torch.Tensor
    conditioned: torch.Tensor
    positions: torch.Tensor | None = None


class LatentVideoPredictor(PretrainedMixin, nn.Module):
    """Predicts the next frame's codes from the codes so far (see the module docstring).

    Args:
        codebook_size: K, the tokenizer's number of codes.
        latent_size: h = w of the code grid.
        dim: channels the sequence model works at (the reference's ``d_model``).
        sequence_model: a registered name: ``"convs5"``, ``"convlstm"``, ``"transformer"``.
        sequence_options: the sequence model's own options; ``height`` and ``width``, for
            models that take them, default to its grid size.
        num_actions: size of the action vocabulary; 0 for none.
        action_embed_dim: channels of the action embedding.
        code_embed_dim: channels of the code embedding.
        encoder_widths, encoder_blocks: the ResNet encoder's widths and blocks per stage.
        decoder_widths, decoder_blocks: the ResNet decoder's (reference: [512], 4).
        norm_groups: GroupNorm groups in encoder and decoder.
        grid_downsample: g of the projection (1: 1×1 convolution).
        action_dropout: probability of dropping a sample's actions in training.
        causal_masking, mask_context, frame_mask_value: see the module docstring
            (reference: on for DMLab, 144, −2).
        label_smoothing: of the training objective's cross-entropy (reference 0.01).
        drop_loss_rate: fraction of positions the training objective leaves out.
        freeze_code_embeddings: keep the code embedding fixed (after
            :meth:`copy_code_embeddings`).
    """

    def __init__(
        self,
        codebook_size: int,
        latent_size: int,
        *,
        dim: int = 512,
        sequence_model: str = "convs5",
        sequence_options: dict[str, Any] | None = None,
        num_actions: int = 0,
        action_embed_dim: int = 16,
        code_embed_dim: int = 64,
        encoder_widths: Sequence[int] = (256,),
        encoder_blocks: int = 1,
        decoder_widths: Sequence[int] = (512,),
        decoder_blocks: int = 4,
        norm_groups: int = 32,
        grid_downsample: int = 1,
        action_dropout: float = 0.0,
        causal_masking: bool = False,
        mask_context: int = 144,
        frame_mask_value: float = -2.0,
        label_smoothing: float = 0.01,
        drop_loss_rate: float = 0.0,
        freeze_code_embeddings: bool = False,
    ) -> None:
        super().__init__()
        enc_w, dec_w = [int(w) for w in encoder_widths], [int(w) for w in decoder_widths]
        _check_args(
            codebook_size, latent_size, dim, num_actions, enc_w, dec_w, grid_downsample,
            action_dropout, mask_context, label_smoothing, drop_loss_rate,
        )  # fmt: skip
        if causal_masking and drop_loss_rate > 0:
            raise ValueError("causal_masking and drop_loss_rate > 0 cannot be combined")
        self.codebook_size, self.latent_size, self.dim = codebook_size, latent_size, dim
        self.num_actions = num_actions
        self.grid = latent_size // 2 ** (len(enc_w) - 1) // grid_downsample
        self.config = LatentVideoPredictorConfig(
            codebook_size=codebook_size,
            latent_size=latent_size,
            dim=dim,
            sequence_model=sequence_model,
            sequence_options=dict(sequence_options or {}),
            num_actions=num_actions,
            action_embed_dim=action_embed_dim,
            code_embed_dim=code_embed_dim,
            encoder_widths=enc_w,
            encoder_blocks=encoder_blocks,
            decoder_widths=dec_w,
            decoder_blocks=decoder_blocks,
            norm_groups=norm_groups,
            grid_downsample=grid_downsample,
            action_dropout=action_dropout,
            causal_masking=causal_masking,
            mask_context=mask_context,
            frame_mask_value=frame_mask_value,
            label_smoothing=label_smoothing,
            drop_loss_rate=drop_loss_rate,
            freeze_code_embeddings=freeze_code_embeddings,
        )
        self.code_embed = nn.Embedding(codebook_size, code_embed_dim)
        self.encoder = FrameEncoder(code_embed_dim, enc_w, encoder_blocks, norm_groups)
        self.action_embed = nn.Embedding(num_actions + 1, action_embed_dim) if num_actions else None
        in_ch = enc_w[-1] + (action_embed_dim if num_actions else 0)
        g = grid_downsample
        if g == 1:
            self.proj_in, self.proj_out = nn.Conv2d(in_ch, dim, 1), nn.Identity()
        else:
            self.proj_in = nn.Conv2d(in_ch, dim, g, stride=g, bias=False)
            self.proj_out = nn.ConvTranspose2d(dim, dim, g, stride=g, bias=False)
        self.decoder = LogitsDecoder(dim, dec_w, decoder_blocks, codebook_size, norm_groups)
        for part in (self.code_embed, self.encoder, self.proj_in, self.proj_out, self.decoder):
            flax_default_init_(part)
        if self.action_embed is not None:
            flax_default_init_(self.action_embed)
        self.code_embed.weight.requires_grad_(not freeze_code_embeddings)
        self.sequence = build_sequence_model(
            sequence_model, dim, grid=(self.grid, self.grid), **(sequence_options or {})
        )

    config_class = LatentVideoPredictorConfig

    @classmethod
    def from_config(cls, config: LatentVideoPredictorConfig) -> LatentVideoPredictor:
        """Build the model a :class:`LatentVideoPredictorConfig` describes."""
        if not isinstance(config, cls.config_class):
            raise TypeError(f"config must be a LatentVideoPredictorConfig, got {type(config)}")
        return cls(**asdict(config))

    # ------------------------------------------------------------------ checks
    def _check_codes(self, codes: object, name: str) -> torch.Tensor:
        return check_codes(codes, name, self.latent_size, self.codebook_size)

    def _check_actions(self, actions: object, batch: int, length: int) -> torch.Tensor | None:
        """None, or (B, ≥ length) integer actions in [0, num_actions) cut to ``length``."""
        return check_optional_actions(actions, self.num_actions, batch, length)

    # ------------------------------------------------------------------ pieces
    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T, h, w) codes -> (B, T, C_enc, h', w') encoder features."""
        b, t = codes.shape[:2]
        x = self.code_embed(codes.reshape(b * t, *codes.shape[2:])).permute(0, 3, 1, 2)
        z = self.encoder(x)
        return z.reshape(b, t, *z.shape[1:])

    def _sequence_inputs(
        self, feats: torch.Tensor, next_actions: torch.Tensor | None
    ) -> torch.Tensor:
        """feats (B, T, C_enc, h', w') and the actions of the frames they predict (B, T)."""
        b, t = feats.shape[:2]
        z = feats.reshape(b * t, *feats.shape[2:])
        if self.action_embed is not None:
            if next_actions is None:
                next_actions = torch.full((b, t), self.num_actions, device=z.device)
            a = self.action_embed(next_actions.reshape(b * t)).to(z.dtype)
            z = torch.cat([z, a[:, :, None, None].expand(-1, -1, *z.shape[-2:])], dim=1)
        z = self.proj_in(z)
        return z.reshape(b, t, *z.shape[1:])

    def logits_of(self, y: torch.Tensor) -> torch.Tensor:
        """(B, T, dim, grid, grid) sequence outputs -> (B, T, K, h, w) logits."""
        b, t = y.shape[:2]
        x = self.decoder(self.proj_out(y.reshape(b * t, *y.shape[2:])))
        return x.reshape(b, t, *x.shape[1:])

    def _mask_frames(
        self, feats: torch.Tensor, conditioned: torch.Tensor, first_index: int = 0
    ) -> torch.Tensor:
        """Replace the inputs of frames with index ≥ mask_context by frame_mask_value for the
        ``conditioned`` samples; feats (B, T, C, h, w) holds frames first_index, ... ."""
        m = self.config.mask_context - first_index
        if not self.config.causal_masking or feats.shape[1] <= m:
            return feats
        m = max(m, 0)
        fill = torch.full_like(feats[:, m:], self.config.frame_mask_value)
        tail = torch.where(conditioned[:, None, None, None, None], fill, feats[:, m:])
        return torch.cat([feats[:, :m], tail], dim=1)

    def copy_code_embeddings(self, codebook: torch.Tensor) -> None:
        """Copy a tokenizer's codebook (K, code_embed_dim) into the code embedding."""
        codebook = check_tensor(codebook, "codebook", ndim=2, floating=True)
        if tuple(codebook.shape) != tuple(self.code_embed.weight.shape):
            raise ValueError(
                f"codebook must have shape {tuple(self.code_embed.weight.shape)} "
                f"(codebook_size, code_embed_dim), got {tuple(codebook.shape)}"
            )
        with torch.no_grad():
            self.code_embed.weight.copy_(codebook)

    # ------------------------------------------------------------------ training
    def forward(
        self,
        codes: torch.Tensor,
        actions: torch.Tensor | None = None,
        *,
        positions: torch.Tensor | None = None,
        sequence_group: Any = None,
    ) -> LatentVideoPredictorOutput:
        """Teacher forcing on codes (B, T, h, w), T ≥ 2; actions (B, T) or None.

        ``positions``: a 1-D integer tensor of predicted-frame indices in [0, T − 1) (sorted;
        frame ``p + 1`` for each p): decode only those (None: all T − 1).

        ``sequence_group``: a torch.distributed process group for context parallelism (the
        sequence model must support it: ConvS5). Each rank passes its piece
        ``codes[:, s : e + 1]`` (and ``actions[:, s : e + 1]``), the pieces in group rank
        order, each starting at the last frame of the one before; its logits are those of
        frames s+1..e, that slice of a single process's output (``positions`` index this
        rank's predicted frames). The frame offset s for ``causal_masking`` is found with
        one all-gather of the piece lengths. The loss across ranks is the user's to
        combine; parameter gradients are per-rank parts to sum over the group. With
        ``action_dropout`` in training, the dropped samples are drawn per rank: the ranks
        must share their RNG state for them to agree.
        """
        codes = self._check_codes(codes, "codes")
        b, t = codes.shape[:2]
        if t < 2:
            raise ValueError(f"codes need at least 2 frames for teacher forcing, got {t}")
        actions = self._check_actions(actions, b, t)
        if positions is not None:
            positions = check_tensor(positions, "positions", ndim=1, finite=False)
            if positions.dtype not in (torch.int32, torch.int64):
                raise TypeError(f"positions must be an integer tensor, got {positions.dtype}")
        conditioned = torch.full((b,), actions is not None, device=codes.device)
        p = self.config.action_dropout
        if actions is not None and self.training and p > 0:
            conditioned = torch.rand(b, device=codes.device) >= p
            actions = torch.where(conditioned[:, None], actions, self.num_actions)
        first_index = 0 if sequence_group is None else _frame_offset(t - 1, sequence_group, codes)
        feats = self._mask_frames(self.embed_codes(codes), conditioned, first_index)
        nxt = None if actions is None else actions[:, 1:]
        group = {} if sequence_group is None else {"sequence_group": sequence_group}
        y, _ = self.sequence(self._sequence_inputs(feats[:, :-1], nxt), **group)
        if positions is not None:
            y = y[:, positions]
        return LatentVideoPredictorOutput(self.logits_of(y), conditioned, positions)

    # ------------------------------------------------------------------ generation
    def condition(
        self, context: torch.Tensor, actions: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Any]:
        """Run the context (B, T_c, h, w) in parallel mode.

        actions: (B, ≥ T_c + 1) or None. Returns the logits (B, K, h, w) of frame T_c and
        the sequence model's states after the context.
        """
        context = self._check_codes(context, "context")
        b, t_c = context.shape[:2]
        if t_c < 1:
            raise ValueError("context needs at least one frame")
        actions = self._check_actions(actions, b, t_c + 1)
        conditioned = torch.full((b,), actions is not None, device=context.device)
        feats = self._mask_frames(self.embed_codes(context), conditioned)
        nxt = None if actions is None else actions[:, 1:]
        y, states = self.sequence(self._sequence_inputs(feats, nxt))
        return self.logits_of(y[:, -1:])[:, 0], states

    def step(
        self,
        codes_t: torch.Tensor,
        index: int,
        states: Any,
        next_action: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Any]:
        """One recurrent step: frame ``index``'s codes (B, h, w) and the action of frame
        index + 1 (B,) or None -> logits (B, K, h, w) of frame index + 1, new states."""
        codes_t = check_tensor(codes_t, "codes_t", ndim=3, finite=False)
        codes_t = self._check_codes(codes_t[:, None], "codes_t")
        b = codes_t.shape[0]
        if next_action is not None:
            next_action = self._check_actions(next_action[:, None], b, 1)
        conditioned = torch.full((b,), next_action is not None, device=codes_t.device)
        feats = self._mask_frames(self.embed_codes(codes_t), conditioned, index)
        z = self._sequence_inputs(feats, next_action)[:, 0]
        y, states = self.sequence.step(z, states)
        return self.logits_of(y[:, None])[:, 0], states

    def _loop_step(
        self,
        codes_t: torch.Tensor,
        masked: bool,
        states: Any,
        next_action: torch.Tensor | None,
        kernels: Any,
    ) -> tuple[torch.Tensor, Any]:
        """:meth:`step` for the generation loop, whose entry point checked the context and
        actions once: no checks (no host syncs), the sequence model's real step where it has
        one (``kernels``: its ``real_step_kernels()``; None: its plain ``step``), and
        ``masked`` (whether the frame's index is ≥ ``mask_context``) instead of the index, so
        that a compiled loop sees two cases, not one per frame."""
        b = codes_t.shape[0]
        conditioned = torch.full((b,), next_action is not None, device=codes_t.device)
        first_index = self.config.mask_context if masked else 0
        feats = self._mask_frames(self.embed_codes(codes_t[:, None]), conditioned, first_index)
        z = self._sequence_inputs(feats, next_action)[:, 0]
        if kernels is None:
            y, states = self.sequence.step(z, states, check_values=False)
        else:
            y, states = self.sequence.step_real(z, states, kernels)
        return self.logits_of(y[:, None])[:, 0], states

    @torch.no_grad()
    def iter_generate(
        self,
        context: torch.Tensor,
        horizon: int,
        actions: torch.Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        *,
        compile_step: bool | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yield ``horizon`` sampled frames of codes (B, h, w) after context (B, T_c, h, w).

        actions: (B, ≥ T_c + horizon), the action of every frame (``actions[:, t]`` led to
        frame t), or None to generate without actions. temperature 0 takes the most likely
        code at every position. ``compile_step``: run each frame's step (not the sampling)
        under ``torch.compile``, compiled once per shape and reused; None decides by the
        device (:func:`~convssm.models.video_predictor.compile_step_by_default`). The
        context and actions are checked once; the loop reads no values.
        """
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        context = self._check_codes(context, "context")
        t_c = context.shape[1]
        if actions is not None:
            actions = self._check_actions(actions, context.shape[0], t_c + horizon)
        logits, states = self.condition(context, None if actions is None else actions[:, : t_c + 1])
        real = hasattr(self.sequence, "step_real")
        if real:
            states = self.sequence.to_real_states(states)
        step = self._loop_step
        if compile_step is None:
            compile_step = compile_step_by_default(context.device)
        if compile_step:
            step = functools.partial(compiled_step(LatentVideoPredictor._loop_step), self)
        for k in range(horizon):
            codes = _sample(logits, temperature, generator)
            yield codes
            if k + 1 < horizon:
                a = None if actions is None else actions[:, t_c + k + 1]
                masked = t_c + k >= self.config.mask_context
                # the kernels: cached while the parameters are unchanged, a compiled step's inputs
                kernels = self.sequence.real_step_kernels() if real else None
                logits, states = step(codes, masked, states, a, kernels)

    @torch.no_grad()
    def generate(
        self,
        context: torch.Tensor,
        horizon: int,
        actions: torch.Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        *,
        compile_step: bool | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """context (B, T_c, h, w) -> the next ``horizon`` frames of codes (B, horizon, h, w);
        ``compile_step`` as in :meth:`iter_generate`. ``progress``: show how many frames are
        done on stderr (a bar on a terminal, a plain line every tenth otherwise)."""
        frames = self.iter_generate(
            context, horizon, actions, temperature, generator, compile_step=compile_step
        )
        if progress:
            frames = progress_iter(frames, total=horizon, desc="generate", unit="frame")
        return torch.stack(list(frames), dim=1)


def _sample(
    logits: torch.Tensor, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """(B, K, h, w) logits -> (B, h, w) int64: an independent categorical draw per position."""
    if temperature == 0:
        return logits.argmax(dim=1)
    b, k, h, w = logits.shape
    probs = torch.softmax(logits.float().permute(0, 2, 3, 1).reshape(-1, k) / temperature, -1)
    return torch.multinomial(probs, 1, generator=generator).reshape(b, h, w)


def _check_args(
    codebook_size, latent_size, dim, num_actions, enc_w, dec_w, g, p, mask_context, ls, r
) -> None:
    for name, v in [("codebook_size", codebook_size), ("latent_size", latent_size), ("dim", dim)]:
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if num_actions < 0:
        raise ValueError(f"num_actions must be >= 0, got {num_actions}")
    if len(enc_w) != len(dec_w):
        raise ValueError(
            f"encoder_widths {enc_w} and decoder_widths {dec_w} must have the same length "
            "(the decoder upsamples as often as the encoder downsamples)"
        )
    down = 2 ** (len(enc_w) - 1)
    if not isinstance(g, int) or g < 1 or latent_size % (down * g):
        raise ValueError(
            f"latent_size {latent_size} must be divisible by {down} (encoder) times "
            f"grid_downsample {g}"
        )
    if not 0.0 <= p < 1.0:
        raise ValueError(f"action_dropout must be in [0, 1), got {p}")
    if mask_context < 1:
        raise ValueError(f"mask_context must be positive, got {mask_context}")
    if not 0.0 <= ls < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {ls}")
    if not 0.0 <= r < 1.0:
        raise ValueError(f"drop_loss_rate must be in [0, 1), got {r}")
