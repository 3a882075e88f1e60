"""VideoPredictor: per-frame encoder → any registered sequence model → per-frame decoder.

The design: docs/design.md#video-predictor.

Pixel-space video prediction as designed. Frames are in [−1, 1], shaped (B, T, C, H, W) —
or, for a model whose config holds ``normalization`` statistics, physical fields in their own
units: its :class:`~convssm.models.normalizer.Normalizer` maps inputs onto the working range
on the way in and predictions back to physical units on the way out; the output also carries
the predictions and targets in the working range, where the training objectives
(:mod:`convssm.train.objectives`) score them, so every channel weighs the same whatever its
units.

- ``forward(video, actions, states)``: teacher forcing; frames 0..T−2 in, frames 1..T−1
  predicted (or, with ``rollout_context``, predicted from the model's own frames fed back).
  It computes predictions, no loss.
  ``states`` continues from an earlier call: a long video run as overlapping pieces
  ``video[:, s : e + 1]`` (each piece starting at the last frame of the one before),
  carrying the returned states, gives the predictions of one call on the whole video.
- ``set_activation_checkpointing(True)``: each encoder/decoder residual block and each
  sequence-model layer keeps only its input and is recomputed during backward.
- ``generate(context, horizon)``: the context is encoded and run through the sequence model
  in parallel mode; then each predicted frame is fed back one step at a time. For ConvS5 the
  carried state has a fixed size, so memory does not grow with the horizon
  (``iter_generate`` yields frames one by one for horizons that do not fit in memory).

Value checks (NaN/inf and the [−1, 1] range of the frames, the range of the actions) read
tensor values, a host sync that stalls a GPU: they run once per call of ``forward`` and of
``generate`` (on the context, never per generated frame), take one sync whatever the
depth, and are switched by ``check_values`` (None: ``convssm.set_value_checks``). The
sequence model inside is called with ``check_values=False``.
"""

from __future__ import annotations

import copy
import functools
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from convssm._checks import check_finite, check_tensor, resolve_check_values
from convssm._precision import autocast_context
from convssm._progress import progress_iter
from convssm.models.autoencoder import FrameDecoder, FrameEncoder
from convssm.models.config import VideoPredictorConfig
from convssm.models.normalizer import Normalizer
from convssm.models.pretrained import PretrainedMixin
from convssm.nn import build_sequence_model
from convssm.nn.init import flax_conv_, flax_embedding_

__all__ = [
    "VideoPredictor",
    "VideoPredictorOutput",
    "compile_step_by_default",
    "compiled_step",
]


_COMPILED_STEPS: dict[Callable, Callable] = {}


def compiled_step(fn: Callable) -> Callable:
    """``torch.compile(fn, fullgraph=True, dynamic=False)``, made once per function and
    process and shared by every model (a model's method is passed unbound, the model as its
    first argument): Dynamo then compiles once per shape and reuses the graph, and nothing
    compiled is stored on a model, so copying or pickling it is unaffected."""
    if fn not in _COMPILED_STEPS:
        _COMPILED_STEPS[fn] = torch.compile(fn, fullgraph=True, dynamic=False)
    return _COMPILED_STEPS[fn]


def compile_step_by_default(device: torch.device | str) -> bool:
    """What ``compile_step=None`` means in generation: whether the per-frame step is
    compiled on ``device``. Off everywhere until a benchmark shows it pays on that device,
    compile time included (docs/benchmarks.md, "Recurrent step"): on CPU it does not.
    """
    del device  # no device has been measured to gain yet
    return False


@dataclass
class VideoPredictorOutput:
    """predictions (B, T−1, C, H, W) for frames 1..T−1 (in the input's units); states the
    sequence model's state after the last input frame (pass it to the next ``forward`` to
    continue the sequence); working_predictions and working_targets the predictions and the
    true frames 1..T−1 in the model's working range (the same as ``predictions`` and the
    input frames for a model without a normaliser), what a training objective scores."""

    predictions: torch.Tensor
    states: Any
    working_predictions: torch.Tensor
    working_targets: torch.Tensor


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
        elif not isinstance(config, self.config_class):
            raise TypeError(f"config must be a VideoPredictorConfig, got {type(config).__name__}")
        self.config = config = copy.deepcopy(config)
        widths = config.encoder_widths
        self.downsample = config.downsample
        self.image_channels, self.image_size = config.image_channels, config.image_size
        self.latent_size = config.latent_size
        self.num_actions = config.num_actions
        self.normalizer = Normalizer(config.normalization, config.image_channels)
        groups, blocks = config.norm_groups, config.blocks_per_stage
        self.encoder = FrameEncoder(config.image_channels, widths, blocks, groups)
        # flax's default initialisers, as the reference's nn.Embed and 1×1 nn.Conv
        # (docs/design.md#video-predictor)
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
    @property
    def dtype(self) -> torch.dtype:
        """The parameters' dtype: floating inputs of any precision are cast to it."""
        return self.proj_in.weight.dtype

    def _check_video(self, video: object, name: str, check_values: bool | None) -> torch.Tensor:
        """Check a (B, T, C, H, W) floating video, cast it to the model's dtype and map it
        onto the working range (the identity for a model without normalisation). With
        ``check_values``: finite, and in [−1, 1] without a normaliser (one host sync).

        The dtype rule: float16, bfloat16, float32 and float64 inputs are all accepted and
        cast to :attr:`dtype` (outputs are in that dtype); integer and complex inputs are
        refused naming their dtype. Under ``torch.autocast`` the convolutions then run in
        the autocast dtype as usual.
        """
        video = check_tensor(video, name, ndim=5, floating=True, finite=False)
        b, t, c, h, w = video.shape
        if c != self.image_channels:
            raise ValueError(
                f"{name} must have {self.image_channels} channels at dim 2 of (B, T, C, H, W), "
                f"got shape {tuple(video.shape)}"
            )
        if (h, w) != (self.image_size, self.image_size):  # as the CLI refuses them
            size = self.image_size
            raise ValueError(
                f"{name} frames are {h}x{w}, but this model takes {size}x{size} frames "
                f"(config.image_size={size}); resize them first, e.g. "
                f"torch.nn.functional.interpolate({name}.flatten(0, 1), size=({size}, {size}), "
                f"mode='bilinear').unflatten(0, {name}.shape[:2])"
            )
        if video.numel() and resolve_check_values(check_values):
            if self.normalizer.enabled:  # physical units: any range, but finite
                check_finite(video, name)
            elif not bool((video.detach().abs() <= 1 + 1e-3).all()):
                # NaN fails the comparison too: one sync answers both questions.
                check_finite(video, name)
                raise ValueError(f"{name} must be scaled to [-1, 1]; found values outside it")
        if video.dtype != self.dtype:
            video = video.to(self.dtype)
        if self.normalizer.enabled:
            return self.normalizer.normalize(video)
        return video

    def _check_actions(
        self, actions: object, batch: int, length: int, check_values: bool | None
    ) -> torch.Tensor | None:
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
        if actions.numel() and resolve_check_values(check_values):
            if not bool(((actions >= 0) & (actions < self.num_actions)).all()):
                raise ValueError(f"actions must lie in [0, {self.num_actions})")
        return actions

    # ------------------------------------------------------------------ pieces
    def encode(self, frames: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C, H, W) frames and (B, T) actions -> (B, T, dim, h, w) latents.

        ``actions[:, i]`` is embedded with ``frames[:, i]``: the action taken after that
        frame (callers shift TECO-convention actions by one, as ``forward`` does)."""
        b, t = frames.shape[:2]
        flat = frames.reshape(b * t, *frames.shape[2:])
        if self.config.blank_offset:  # a blank frame's encoding, then its projection, is zero
            # Encoded in the same batch as the frames: a convolution's rounding can depend on
            # the batch size (oneDNN picks kernels by shape), and a separate batch of one
            # left ~5e-7 on blank frames, which slow modes integrate and GroupNorm amplifies.
            z = self.encoder(torch.cat([flat, torch.full_like(flat[:1], -1.0)]))
            z = z[:-1] - z[-1:]
        else:
            z = self.encoder(flat)
        if self.action_embed is not None:
            a = self.action_embed(actions[:, :t].reshape(b * t))
            z = torch.cat([z, a[:, :, None, None].expand(-1, -1, *z.shape[-2:])], dim=1)
        z = self.proj_in(z)
        if self.config.blank_offset:
            z = z - self.proj_in.bias[:, None, None]
        if self.config.rectify_latents:
            z = torch.relu(z)
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
        self,
        video: torch.Tensor,
        actions: torch.Tensor | None = None,
        states: Any = None,
        *,
        rollout_context: int | None = None,
        detach_feedback: bool = False,
        check_values: bool | None = None,
        sequence_group: Any = None,
    ) -> VideoPredictorOutput:
        """Predict frames 1..T−1 of video (B, T, C, H, W), T ≥ 2; actions (B, T) or None.

        Actions follow TECO's convention (and its data sets'): ``actions[:, t]`` is the
        action that led to frame t, so frame t + 1 is predicted from frames ≤ t and actions
        ≤ t + 1; ``actions[:, 0]`` is not used.

        Teacher forcing by default: every frame is predicted from the true frames before it.
        With ``rollout_context = C`` (1 ≤ C ≤ T − 1), only frames 1..C are: the rest are
        predicted free-running, exactly as :meth:`iter_generate` does it, each from the
        model's own previous prediction fed back through :meth:`step` — the predictions a
        multi-step training objective scores, differentiable through the fed-back frames
        unless ``detach_feedback``. ``rollout_context = T − 1`` is teacher forcing.

        ``states``: the sequence model's state before frame 0 (None: a fresh start), e.g. the
        ``states`` of the output of a call on the frames before (chunked training).

        ``check_values``: check that the video is finite (and in [−1, 1] without a
        normaliser) and the actions in range (host syncs; None: the global switch
        ``convssm.set_value_checks``).

        ``sequence_group``: a torch.distributed process group for context parallelism
        (teacher forcing only; the sequence model must support it: ConvS5). Each rank passes
        its piece of the video the way chunked training does, ``video[:, s : e + 1]`` with
        the pieces in group rank order, each starting at the last frame of the one before
        (so each rank's input frames s..e−1 are disjoint and adjacent), and its
        ``actions[:, s : e + 1]``; its output is the predictions of frames s+1..e, equal to
        that slice of a single process's output on the whole video, and the targets
        ``video[:, s + 1 : e + 1]``. A loss over the whole video is the user's to combine
        across ranks (e.g. a sum of per-rank sums; parameter gradients are per-rank parts
        to sum over the group). ``states``: the state before the whole video, read on
        rank 0 only; the returned states are the whole-video states at the end of each
        rank's input frames — the final ones on the last rank (not broadcast).
        """
        if sequence_group is not None and rollout_context is not None:
            raise ValueError(
                "rollout_context cannot be combined with sequence_group: the free-running "
                "frames are fed back one step at a time, which does not split over ranks"
            )
        video = self._check_video(video, "video", check_values)
        length = video.shape[1]
        if length < 2:
            raise ValueError(f"video needs at least 2 frames for teacher forcing, got {length}")
        actions = self._check_actions(actions, video.shape[0], length, check_values)
        context = length - 1 if rollout_context is None else rollout_context
        if not isinstance(context, int) or isinstance(context, bool):
            raise TypeError(f"rollout_context must be an int, got {type(context).__name__}")
        if not 1 <= context <= length - 1:
            raise ValueError(
                f"rollout_context must be in [1, T−1] = [1, {length - 1}], got {context}"
            )
        # actions[:, t] led to frame t: input frame t goes in with actions[:, t + 1]
        next_actions = None if actions is None else actions[:, 1:]
        group = {} if sequence_group is None else {"sequence_group": sequence_group}
        y, states = self.sequence(
            self.encode(video[:, :context], next_actions), states, check_values=False, **group
        )
        predictions = [self.decode(y)]
        frame = predictions[0][:, -1]  # fed back in the working range
        for k in range(context, length - 1):
            fed = frame.detach() if detach_feedback else frame
            frame, states = self.step(fed, states, None if actions is None else actions[:, k + 1])
            predictions.append(frame[:, None])
        pred = torch.cat(predictions, dim=1)  # in the working range, where losses score it
        return VideoPredictorOutput(self.normalizer.denormalize(pred), states, pred, video[:, 1:])

    def sequence_states(
        self,
        video: torch.Tensor,
        actions: torch.Tensor | None = None,
        states: Any = None,
        *,
        sequence_group: Any = None,
        chunk: int | None = None,
    ) -> Any:
        """The sequence model's states after the input frames of video (B, T, C, H, W) —
        frames 0..T−2, the ones :meth:`forward` feeds it — without decoding: the ``states``
        of ``forward(video, actions, states, sequence_group=...)`` (teacher forcing) for
        the cost of the encoder and the sequence model. ``chunk``: encode that many frames
        at a time (None: all at once; the encoder is per frame, so only memory changes).
        Differentiable; wrap it in ``torch.no_grad`` when only the states are wanted.
        """
        video = self._check_video(video, "video", False)
        if video.shape[1] < 2:
            raise ValueError(f"video needs at least 2 frames, got {video.shape[1]}")
        actions = self._check_actions(actions, video.shape[0], video.shape[1], False)
        frames = video[:, :-1]
        nxt = None if actions is None else actions[:, 1:]
        step = chunk or frames.shape[1]
        feats = torch.cat(
            [
                self.encode(frames[:, s : s + step], None if nxt is None else nxt[:, s : s + step])
                for s in range(0, frames.shape[1], step)
            ],
            dim=1,
        )
        group = {} if sequence_group is None else {"sequence_group": sequence_group}
        return self.sequence(feats, states, check_values=False, **group)[1]

    @torch.no_grad()
    def iter_generate(
        self,
        context: torch.Tensor,
        horizon: int,
        actions: torch.Tensor | None = None,
        *,
        context_chunk: int | None = None,
        check_values: bool | None = None,
        compile_step: bool | None = None,
        precision: str = "fp32",
    ) -> Iterator[torch.Tensor]:
        """Yield ``horizon`` predicted frames (B, C, H, W) after context (B, T_c, C, H, W).

        actions: (B, T_c + horizon) or longer, ``actions[:, t]`` the action that led to frame
        t (TECO's convention; ``actions[:, 0]`` is not used).
        ``context_chunk``: run the context through the model that many frames at a time,
        carrying the states (None: all at once). The same predictions; the memory of one
        chunk instead of the whole context for a model whose state has a fixed size.
        ``check_values`` as in :meth:`forward`, on the context and actions only.
        ``compile_step``: run each generated frame's step under ``torch.compile`` (compiled
        once per shape in a process, then reused by later calls and other models:
        :func:`compiled_step`); None decides by the device (:func:`compile_step_by_default`).

        ``precision``: ``fp32`` (default), ``bf16``, ``fp16`` or ``auto`` (lower precision on
        CUDA, fp32 on CPU): the context pass and every frame's step run under that
        ``torch.autocast`` (entered per step, never across a ``yield``); frames are yielded
        and fed back in the model's dtype, and the recurrence runs in complex64/float32
        either way. On the 2-core CPU of docs/benchmarks.md (avx512_bf16, no AMX) bf16 was
        slower than fp32 at every measured width, so it is off unless asked for.

        Each frame runs the sequence model's real-arithmetic step where it has one
        (``step_real``: ConvS5 keeps its state as real channel halves inside the loop), the
        same predictions as :meth:`step`; no host syncs per frame.
        """
        context = self._check_video(context, "context", check_values)
        if isinstance(horizon, bool):
            raise TypeError(f"horizon must be an int, got {horizon!r}")
        try:
            horizon = operator.index(horizon)
        except TypeError:
            raise TypeError(
                f"horizon must be an int (a number of frames), got {horizon!r}"
            ) from None
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        t_c = context.shape[1]
        if context_chunk is not None and (
            isinstance(context_chunk, bool)
            or not isinstance(context_chunk, int)
            or context_chunk < 1
        ):
            raise ValueError(f"context_chunk must be a positive int or None, got {context_chunk!r}")
        actions = self._check_actions(actions, context.shape[0], t_c + horizon, check_values)
        next_actions = None if actions is None else actions[:, 1:]
        autocast_context(context.device, precision)  # rejects an unknown precision here
        dtype = self.dtype
        states, chunk = None, context_chunk or t_c
        with autocast_context(context.device, precision):
            for s in range(0, t_c, chunk):
                acts = None if next_actions is None else next_actions[:, s : s + chunk]
                z = self.encode(context[:, s : s + chunk], acts)
                y, states = self.sequence(z, states, check_values=False)
            frame = self.decode(y[:, -1:])[:, 0].to(dtype)  # fed back in the working range
        yield self.normalizer.denormalize(frame)
        if horizon == 1:
            return
        real = hasattr(self.sequence, "step_real")
        step, states = self._generation_step(states, compile_step, context.device)
        for k in range(1, horizon):
            a = None if actions is None else actions[:, t_c + k]
            with autocast_context(context.device, precision):
                if real:  # cached while the parameters are unchanged; a compiled step's inputs
                    frame, states = step(frame, states, a, self.sequence.real_step_kernels())
                else:
                    frame, states = step(frame, states, a)
            frame = frame.to(dtype)
            yield self.normalizer.denormalize(frame)

    def _generation_step(self, states: Any, compile_step: bool | None, device: torch.device):
        """(step, states) for the generation loop: the sequence model's real step when it has
        one (:meth:`_step_real`, its states converted), else :meth:`step`; compiled when
        ``compile_step`` (None: :func:`compile_step_by_default`)."""
        if hasattr(self.sequence, "step_real"):
            step = self._step_real
            states = self.sequence.to_real_states(states)
        else:
            step = self.step
        if compile_step is None:
            compile_step = compile_step_by_default(device)
        if compile_step:
            step = functools.partial(compiled_step(getattr(type(self), step.__name__)), self)
        return step, states

    def _step_real(
        self, frame: torch.Tensor, states: Any, action: torch.Tensor | None, kernels: Any
    ) -> tuple[torch.Tensor, Any]:
        """:meth:`step` on the sequence model's real states (``step_real``), for the
        generation loop: the same frame, states in the real layout."""
        z = self.encode(frame[:, None], None if action is None else action[:, None])[:, 0]
        y_t, states = self.sequence.step_real(z, states, kernels)
        return self.decode(y_t[:, None])[:, 0], states

    def step(
        self, frame: torch.Tensor, states: Any, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Any]:
        """One generation step: the latest frame t (B, C, H, W) (and the action (B,) taken
        after it, ``actions[:, t + 1]`` in TECO's convention) with the sequence model's
        states -> the predicted frame t + 1 (B, C, H, W) and the new states.

        Frames are in the model's working range (as the model feeds them back: [−1, 1], or
        normalised units for a model with a normaliser). The per-frame unit of
        :meth:`iter_generate` and of multi-step training (a unit to ``torch.compile`` or
        capture in a CUDA graph): shape checks only, no value checks, no host syncs.
        """
        z = self.encode(frame[:, None], None if action is None else action[:, None])[:, 0]
        y_t, states = self.sequence.step(z, states, check_values=False)
        return self.decode(y_t[:, None])[:, 0], states

    @torch.no_grad()
    def generate(
        self,
        context: torch.Tensor,
        horizon: int,
        actions: torch.Tensor | None = None,
        *,
        context_chunk: int | None = None,
        check_values: bool | None = None,
        compile_step: bool | None = None,
        precision: str = "fp32",
        progress: bool = False,
    ) -> torch.Tensor:
        """context (B, T_c, C, H, W) -> the next ``horizon`` frames (B, horizon, C, H, W);
        ``context_chunk``, ``compile_step`` and ``precision`` as in :meth:`iter_generate`.
        ``progress``: show how many frames are done on stderr (a bar on a terminal, a plain
        line every tenth otherwise)."""
        frames = self.iter_generate(
            context,
            horizon,
            actions,
            context_chunk=context_chunk,
            check_values=check_values,
            compile_step=compile_step,
            precision=precision,
        )
        if progress:
            frames = progress_iter(frames, total=horizon, desc="generate", unit="frame")
        return torch.stack(list(frames), dim=1)
