"""Context parallelism in training (``train.sequence_parallel`` N): which predicted frames
each rank of a sequence group trains on, and the state its first piece starts from.

The N ranks of a sequence group read the same batch (the same data-parallel shard) and
each takes a contiguous part of its time axis, in group rank order. One step of the group
equals one process's step on the whole sequence:

- Whole sequences (``train.tbptt_chunk`` null): the T − 1 predicted frames are split into
  N contiguous parts as evenly as they go (the first (T − 1) mod N parts one frame
  longer). Rank s runs ``forward`` on its piece ``video[:, a_s : b_s + 1]`` with the
  sequence group; the scans pass each layer's state across the rank boundaries, forward
  and backward (:func:`convssm.ops.linear_scan` with ``group``), so values and gradients
  are those of the whole sequence.
- Chunked (``train.tbptt_chunk`` c): one process's step runs the pieces [0, c), [c, 2c), …
  each from the state the one before ended with, detached: the forward is exact, the
  gradient is cut at each piece's start. The ranks deal out those same pieces, whole and in
  order (the first n mod N ranks one piece more), so a rank boundary is a piece boundary
  and the gradient is cut at exactly the same places. Rank s's first piece starts from
  the whole sequence's state after the frames of the ranks before it
  (:func:`states_before`): a pass without autograd of the encoder and the sequence model
  over each rank's part, with the group (the scans exchange one state per layer per rank
  boundary), then one point-to-point message of those end states from each rank to the
  next. So the carried state crosses ranks once, into the first piece; afterwards each
  rank runs its pieces on its own, carrying its state, with no collective but DDP's
  gradient all-reduce. The price: one more forward of the encoder and the sequence model
  per step (no decoder, no graph kept; its memory is a few activations of one layer over
  the rank's part, far less than a piece's graph per frame).

The loss of a piece of k predicted frames is its per-pixel mean times k / (T − 1) (the
parts add up to the whole sequence's mean, as chunks do in one process) times N: DDP
averages gradients over all W = D·N ranks, and the factor N turns that into the sum over a
sequence group averaged over the D data-parallel replicas. The step's reported loss has the
same factor, so its mean over the world is the replicas' mean whole-sequence loss.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from convssm.train.distributed import DistributedContext

__all__ = ["rank_pieces", "states_before", "pass_states_on"]


def _split(count: int, parts: int) -> list[tuple[int, int]]:
    """[start, stop) of ``parts`` contiguous runs over ``count`` items, the first
    ``count mod parts`` one longer."""
    size, extra = divmod(count, parts)
    bounds = [0]
    for p in range(parts):
        bounds.append(bounds[-1] + size + (p < extra))
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def rank_pieces(frames: int, chunk: int | None, parts: int, rank: int) -> list[tuple[int, int]]:
    """The [start, stop) ranges of predicted frames that ``rank`` of ``parts`` trains on,
    one range per backward pass: its part of ``frames`` (``chunk`` None) or its share of
    the ``chunk``-frame pieces of one process's chunked step (see the module docstring)."""
    if chunk is None:
        if frames < parts:
            raise ValueError(
                f"train.sequence_parallel={parts}: a sequence of {frames} predicted frames "
                "cannot give every rank a frame"
            )
        return [_split(frames, parts)[rank]]
    pieces = [(s, min(s + chunk, frames)) for s in range(0, frames, chunk)]
    if len(pieces) < parts:
        raise ValueError(
            f"train.sequence_parallel={parts}: a sequence of {frames} predicted frames has "
            f"only {len(pieces)} train.tbptt_chunk={chunk} pieces, fewer than the ranks"
        )
    first, stop = _split(len(pieces), parts)[rank]
    return pieces[first:stop]


def _flat(states: list[torch.Tensor]) -> torch.Tensor:
    """One real tensor of every layer's state (complex states as their real pairs)."""
    parts = [torch.view_as_real(s) if s.is_complex() else s for s in states]
    return torch.cat([p.reshape(-1) for p in parts])


def _unflat(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    out, at = [], 0
    for s in like:
        n = s.numel() * (2 if s.is_complex() else 1)
        piece = flat[at : at + n]
        at += n
        if s.is_complex():
            piece = torch.view_as_complex(piece.reshape(*s.shape, 2))
        out.append(piece.reshape(s.shape))
    return out


def pass_states_on(states: list[torch.Tensor], group: Any) -> list[torch.Tensor] | None:
    """Send ``states`` to the next rank of ``group`` and receive the previous rank's: what
    this rank gets (None on the group's first rank). One message per rank boundary."""
    rank, size = dist.get_rank(group), dist.get_world_size(group)
    flat = _flat(states)
    got = torch.empty_like(flat)
    ops = []
    if rank + 1 < size:
        ops.append(dist.P2POp(dist.isend, flat, dist.get_global_rank(group, rank + 1), group))
    if rank > 0:
        ops.append(dist.P2POp(dist.irecv, got, dist.get_global_rank(group, rank - 1), group))
    for work in dist.batch_isend_irecv(ops) if ops else []:
        work.wait()
    return _unflat(got, states) if rank > 0 else None


@torch.no_grad()
def states_before(
    model: nn.Module,
    video: torch.Tensor,
    actions: torch.Tensor | None,
    pieces: list[tuple[int, int]],
    ctx: DistributedContext,
    chunk: int | None = None,
) -> Any:
    """The whole sequence's states just before this rank's first piece (None on the group's
    first rank: a fresh start), for ``video`` (B, T, C, H, W) of the micro-batch and this
    rank's ``pieces`` (:func:`rank_pieces`); ``model`` the bare VideoPredictor.

    Every rank of the group must call it (the scans and the message are collective).
    ``chunk``: frames encoded at a time."""
    first, last = pieces[0][0], pieces[-1][1]
    part = video[:, first : last + 1]
    acts = None if actions is None else actions[:, first : last + 1]
    ends = model.sequence_states(part, acts, sequence_group=ctx.sequence_group, chunk=chunk)
    return pass_states_on(list(ends), ctx.sequence_group)
