"""``train_step(state, batch) -> metrics``: one optimizer update of a :class:`TrainState`.

The step: re-seed torch from ``(seed, step, data-parallel rank)``; split this rank's batch
into ``train.grad_accum`` micro-batches; for each, compute the loss (:func:`sequence_loss`, the
one place the training objective lives) under autocast and backpropagate it — in
``train.tbptt_chunk`` pieces carrying the model's state when set — (DDP all-reduces the
gradients in the last backward only); then unscale, clip, step the optimizer and the
schedule. Under ``train.sequence_parallel`` each rank trains on its part of the time axis
(:mod:`convssm.train.sequence_parallel`: which frames, the state its first piece starts
from, and why its loss carries a factor N). It never reads a value back to the host: the
returned loss is a device tensor, and the loop reads it at its log interval.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
from torch import nn

from convssm._checks import value_checks
from convssm._precision import autocast_context
from convssm.nn import detach_states
from convssm.train.config import model_kind
from convssm.train.distributed import unwrap_model
from convssm.train.factory import split_item
from convssm.train.objectives import (
    delay_frames_only,
    drop_loss_positions,
    latent_prediction_loss,
    state_magnitude,
    video_prediction_loss,
)
from convssm.train.sequence_parallel import rank_pieces, states_before
from convssm.train.state import TrainState

__all__ = [
    "train_step",
    "sequence_loss",
    "step_seed",
    "recall_frame_weights",
    "rollout_start_step",
]


def step_seed(seed: int, step: int, rank: int) -> int:
    """The torch seed for ``step`` on ``rank`` (independent of how the run was split up)."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] >> 1)


def sequence_loss(
    model: nn.Module,
    video: torch.Tensor,
    actions: torch.Tensor | None,
    states: Any = None,
    *,
    kind: str = "video_predictor",
    rollout_context: int | None = None,
    detach_feedback: bool = False,
    pixel_loss: str = "mse_l1",
    frame_weights: torch.Tensor | None = None,
    sequence_group: Any = None,
) -> tuple[torch.Tensor, Any]:
    """The training loss of one micro-batch (or one piece of it): the model's ``forward``
    computes predictions (through ``model``, the DDP wrapper in a multi-process run) and an
    objective of :mod:`convssm.train.objectives` scores them, by the model ``kind``:

    - ``"video_predictor"``: frames 1..T−1 predicted — teacher forcing, or with
      ``rollout_context`` C the frames after the first C predictions generated from the
      model's own output (multi-step) — scored by :func:`video_prediction_loss` with
      ``pixel_loss`` (``"mse_l1"`` or ``"mse"``) and ``frame_weights`` (B, T−1) (None: every
      predicted frame weighs the same).
    - ``"latent_video_predictor"``: the same on codes, teacher forcing, scored by
      :func:`latent_prediction_loss` with the model config's label smoothing and causal
      masking; in training the config's ``drop_loss_rate`` draws the positions decoded and
      scored (:func:`drop_loss_positions`).
    - ``"vq_tokenizer"``: the :class:`~convssm.train.tokenizer_loss.TokenizerTraining`
      module's VQ-GAN loss.
    - ``"teco"``: TECO's own loss on codes (``model(codes, actions).loss``: reconstruction,
      prior, codebook and commitment terms; its drop-loss and action dropout in training).

    video (B, T, C, H, W) in [-1, 1] (or a normalised-field model's physical units), or
    codes (B, T, h, w); actions (B, T) or None; states: a VideoPredictor's sequence-model
    state before frame 0 (None: a fresh start; only a VideoPredictor takes one);
    sequence_group: a VideoPredictor's context-parallel group (``video`` is then this
    rank's piece of the sequence, the loss this piece's mean). Returns (scalar loss, the
    state after the last input frame — None for models that carry none).
    """
    if kind in ("vq_tokenizer", "teco"):
        return model(video, actions).loss, None
    if kind == "latent_video_predictor":
        config = getattr(model, "module", model).config  # the bare model's, under DDP
        positions = None
        if model.training:
            positions = drop_loss_positions(video.shape[1] - 1, config.drop_loss_rate, video.device)
        out = model(video, actions, positions=positions)
        return latent_prediction_loss(out, video, config), None
    kwargs: dict[str, Any] = {}
    if states is not None:
        kwargs["states"] = states
    if rollout_context is not None:
        kwargs.update(rollout_context=rollout_context, detach_feedback=detach_feedback)
    if sequence_group is not None:
        kwargs["sequence_group"] = sequence_group
    out = model(video, actions, **kwargs)
    return video_prediction_loss(out, pixel_loss, frame_weights), out.states


def rollout_start_step(rollout_start: int | float, steps: int) -> int:
    """The first step trained with the rollout loss (``train.rollout_start``): a float is a
    fraction of ``steps`` (``int(fraction * steps)``), an int the step itself."""
    if isinstance(rollout_start, float):
        return int(rollout_start * steps)
    return rollout_start


def recall_frame_weights(recall: torch.Tensor, share: float) -> torch.Tensor:
    """Per-predicted-frame loss weights (B, T−1) that sum to one per video: ``share`` spread
    evenly over the recall frames, ``1 − share`` over the others.

    recall: (B, T) or (T,) bool, True on the recall frames of the *input* video (frame 0
    is never predicted, so its flag is dropped)."""
    mask = recall[..., 1:].to(torch.float32)
    if mask.ndim == 1:
        mask = mask[None]
    n_recall = mask.sum(-1, keepdim=True)
    n_other = mask.shape[-1] - n_recall
    if bool((n_recall == 0).any()):
        raise ValueError("recall_loss_share is set but a video has no recall frame to weigh")
    other = torch.where(n_other > 0, (1.0 - share) / n_other.clamp(min=1), 0.0)
    return torch.where(mask > 0, share / n_recall, other)


def _with_delay_frames_only(
    video: torch.Tensor,
    actions: torch.Tensor | None,
    recall: torch.Tensor,
    weights: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``train.distractor_penalty``'s batch: the micro-batch (B videos) followed by the same
    videos with only their delay frames (:func:`delay_frames_only`), run as one batch of 2B
    so a DDP model sees one forward. The frame weights score the first half exactly as the
    micro-batch alone is scored (the mean over 2B videos, hence the factor 2) and give the
    second half no pixel loss: it is there for its states only."""
    b, frames = video.shape[0], video.shape[1] - 1
    if weights is None:  # equal weights: the unweighted loss
        dtype = torch.promote_types(video.dtype, torch.float32)
        weights = torch.full((b, frames), 1.0 / frames, dtype=dtype, device=video.device)
    weights = torch.cat([2.0 * weights.to(video.device), torch.zeros_like(weights)])
    both = torch.cat([video, delay_frames_only(video, recall.to(video.device))])
    return both, (None if actions is None else torch.cat([actions, actions])), weights


def _chunks(frames: int, chunk: int | None) -> list[tuple[int, int]]:
    """[start, stop) ranges of predicted frames, ``chunk`` at a time (None: all at once)."""
    step = chunk or frames
    return [(s, min(s + step, frames)) for s in range(0, frames, step)]


def _plan_pieces(
    state: TrainState, video: torch.Tensor, actions: torch.Tensor | None
) -> tuple[list[tuple[Any, Any]], int, Any, Any]:
    """(pieces, predicted frames, sequence group, state before the first piece) of one
    micro-batch on this rank: the whole micro-batch as one piece ``(None, None)``, the
    ``tbptt_chunk`` pieces, or under context parallelism this rank's share of them."""
    tc, ctx = state.config.train, state.ctx
    frames = video.shape[1] - 1
    if ctx.sequence_parallel > 1:
        pieces = rank_pieces(frames, tc.tbptt_chunk, ctx.sequence_parallel, ctx.sequence_rank)
        if tc.tbptt_chunk is None:
            return pieces, frames, ctx.sequence_group, None
        with autocast_context(ctx.device, tc.precision):
            model = unwrap_model(state.ddp_model)
            carry = states_before(model, video, actions, pieces, ctx, tc.tbptt_chunk)
        return pieces, frames, None, carry
    if tc.tbptt_chunk is None:  # the whole micro-batch at once (any model kind, any shape)
        return [(None, None)], 1, None, None
    return _chunks(frames, tc.tbptt_chunk), frames, None, None


def _backward_micro_batch(
    state: TrainState,
    video: torch.Tensor,
    actions: torch.Tensor | None,
    sync: bool,
    recall: torch.Tensor | None = None,
) -> torch.Tensor:
    """Forward and backward of one micro-batch, chunk by chunk; returns its loss, detached.

    The sequence runs in ``train.tbptt_chunk`` pieces (one piece when null), each piece's
    loss weighted by its share of the predicted frames (so the pieces add up to the loss
    of the whole sequence) and backpropagated at once; the states are carried to the
    next piece detached, so memory is that of one piece. ``sync``: let DDP all-reduce the
    gradients in the last backward (the others accumulate locally). Under context
    parallelism this rank runs its share of the pieces (:func:`rank_pieces`), each loss
    scaled by the ranks per sequence, the whole part with the sequence group or, chunked,
    from the state the ranks before end with (:func:`states_before`).
    """
    tc, ctx = state.config.train, state.ctx
    pieces, frames, group, carry = _plan_pieces(state, video, actions)
    parallel = ctx.sequence_parallel
    kind = model_kind(state.config.model)
    # the recall frames carry a fixed share of the loss (whole sequences only: no pieces)
    share = tc.recall_loss_share
    weights = None if share is None else recall_frame_weights(recall, share)
    total = torch.zeros((), device=ctx.device)
    rollout = tc.rollout_context  # teacher forcing before train.rollout_start
    if state.step < rollout_start_step(tc.rollout_start, tc.steps):
        rollout = None
    for k, (start, stop) in enumerate(pieces):
        piece_weights = weights
        if start is None:
            piece, acts, share = video, actions, 1.0
        else:
            piece = video[:, start : stop + 1]
            acts = actions[:, start : stop + 1] if actions is not None else None
            share = (stop - start) / frames * parallel
        if tc.distractor_penalty is not None:  # whole sequences only (the config says so)
            piece, acts, piece_weights = _with_delay_frames_only(piece, acts, recall, weights)
        accumulate = ctx.is_distributed and not (sync and k == len(pieces) - 1)
        with state.ddp_model.no_sync() if accumulate else contextlib.nullcontext():
            with autocast_context(ctx.device, tc.precision):
                loss, carry = sequence_loss(
                    state.ddp_model,
                    piece,
                    acts,
                    carry,
                    kind=kind,
                    rollout_context=rollout,
                    detach_feedback=tc.detach_feedback,
                    pixel_loss=tc.pixel_loss,
                    frame_weights=piece_weights,
                    sequence_group=group,
                )
                if tc.distractor_penalty is not None:
                    b = video.shape[0]
                    delay_states = [s[b:] for s in carry]
                    carry = [s[:b] for s in carry]
                    loss = loss + tc.distractor_penalty * state_magnitude(
                        delay_states, tc.penalty_norm
                    )
                if tc.state_penalty is not None and k == len(pieces) - 1:
                    loss = loss + tc.state_penalty * state_magnitude(carry, tc.penalty_norm)
                loss = loss * share / tc.grad_accum
            state.scaler.scale(loss).backward()
        carry = detach_states(carry)
        total += loss.detach().float()
    return total


def train_step(state: TrainState, batch: Any) -> dict[str, Any]:
    """One optimizer update on this rank's ``batch``; advances ``state.step`` by one.

    Args:
        batch: a collated batch (B_local, T, C, H, W), or a dict/tuple with ``video`` and
            ``actions``; B_local = train.batch_size / data-parallel replicas (world size
            / train.sequence_parallel), split into
            ``train.grad_accum`` equal micro-batches.
    Returns:
        ``loss``: this rank's mean loss over the batch, a detached device tensor (reading
        it is a host sync; the loop does that only at log intervals); ``lr``: the learning
        rate this update used.
    """
    tc, ctx = state.config.train, state.ctx
    video, actions = split_item(batch)
    recall = batch.get("recall") if isinstance(batch, dict) else None
    for key in ("recall_loss_share", "distractor_penalty"):
        if getattr(tc, key) is not None and recall is None:
            raise ValueError(f"train.{key} is set but the batch has no 'recall' mask")
    if video.shape[0] % tc.grad_accum:
        raise ValueError(
            f"batch of {video.shape[0]} videos cannot be split into "
            f"train.grad_accum={tc.grad_accum} micro-batches"
        )
    if state.objective is not None:  # the tokenizer's adversarial loss starts at a step
        state.objective.step = state.step
    state.ddp_model.train()
    # the ranks sharing a sequence draw alike (a dropout mask shared over time is one mask)
    torch.manual_seed(step_seed(tc.seed, state.step, ctx.data_rank))
    videos = video.chunk(tc.grad_accum)
    action_parts = actions.chunk(tc.grad_accum) if actions is not None else [None] * len(videos)
    recall_parts = recall.chunk(tc.grad_accum) if recall is not None else [None] * len(videos)
    total = torch.zeros((), device=ctx.device)
    with value_checks(False):  # no host sync per step: the loop reads the loss at log intervals
        for micro, (v, a, r) in enumerate(zip(videos, action_parts, recall_parts, strict=True)):
            v = v.to(ctx.device, non_blocking=True)
            a = a.to(ctx.device, non_blocking=True) if a is not None else None
            last = micro == tc.grad_accum - 1
            total += _backward_micro_batch(state, v, a, sync=last, recall=r)
    lr = state.optimizer.param_groups[0]["lr"]
    state.scaler.unscale_(state.optimizer)
    if state.config.optim.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), state.config.optim.grad_clip)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.optimizer.zero_grad(set_to_none=True)
    state.scheduler.step()
    state.step += 1
    return {"loss": total, "lr": lr}
