"""Context parallelism for the diagonal linear recurrence: the time axis split over ranks.

``linear_scan(a, b, x0, group=group)`` lands here. Each rank of ``group`` holds a
contiguous chunk of time of ``b`` (ranks in group order; chunks may differ in length, none
may be empty) and gets back its chunk of the whole-sequence scan x_t = a ⊙ x_{t-1} + b_t.

Algorithm (L_r: the length of rank r's chunk; y: a rank's scan of its own chunk):

1. Each rank scans its chunk with the ordinary local scan, from ``x0`` on rank 0 and from
   zero elsewhere; its summary is its last local state y_r[-1] and a^{L_r}.
2. One ``all_gather`` of the summaries; every rank then does the prefix combine
   h_0 = 0, h_{r+1} = a^{L_r} ⊙ h_r + y_r[-1], so h_r is the whole-sequence state just
   before rank r's chunk (rank 0's y already starts from x0).
3. Each rank adds a^{k+1} ⊙ h_r to its local state at local step k.

Why one ``all_gather`` and a combine on every rank: a chain of send/recv (rank r waits for
rank r-1's carry) costs a latency per rank and leaves every later rank idle; a tree scan
costs log2(R) rounds. One all_gather is one round, its bytes are one state (plus a^{L}
and a flag) per rank, and the redundant combine is R elementwise steps on one state,
cheap next to the local scan of L_r steps.

Backward: the gradient of a linear scan is the reverse scan with conj(a), so the carry
runs the other way: rank r's summary gets gradient from the carries of every later rank.
Its autograd function gathers the carries' gradients with one ``all_gather`` and each rank
does the suffix combine G_{R-1} = g_{R-1}, G_q = g_q + conj(a^{L_q}) ⊙ G_{q+1}. The local
scan, a's powers and the final sum are ordinary differentiable ops.

Gradient convention: ``b``'s gradient on each rank is its chunk of the whole-sequence
gradient; the gradients of ``a`` and ``x0`` are per-rank parts whose sum over the group is
the whole-sequence gradient (``x0``'s is zero on ranks other than the first, where it is
not used), so all-reduce them (as data-parallel training does for parameters). Backward
has a collective: every rank must call it, with ``a``, ``b`` and ``x0`` requiring grad
alike on every rank.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

from convssm.ops.scan_contract import check_scan_inputs

__all__ = ["context_parallel_scan"]


def _all_gather(packet: torch.Tensor, group) -> torch.Tensor:
    """(R, n) from every rank's complex (n,) packet, in group rank order."""
    real = torch.view_as_real(packet.contiguous())
    parts = [torch.empty_like(real) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, real, group=group)
    return torch.view_as_complex(torch.stack(parts))


def _refuse_empty(flags: torch.Tensor) -> None:
    empty = [r for r, f in enumerate(flags.real.tolist()) if f == 0]
    if empty:
        raise ValueError(
            f"linear_scan with a group: rank(s) {empty} of the group hold a chunk of length 0; "
            "every rank needs at least one time step"
        )


class _Carry(torch.autograd.Function):
    """h_r, the whole-sequence state before this rank's chunk, from every rank's summary."""

    @staticmethod
    def forward(ctx, last, a_len, group):
        state, a_shape = last.shape, a_len.shape
        n = last.numel()
        packet = torch.cat([last.reshape(-1), a_len.reshape(-1), last.new_ones(1)])
        gathered = _all_gather(packet, group)
        _refuse_empty(gathered[:, -1])
        rank = dist.get_rank(group)
        lasts = gathered[:, :n].reshape(-1, *state)
        a_lens = gathered[:, n:-1].reshape(-1, *a_shape)
        h = torch.zeros_like(last)
        carries = [h]  # h_0 .. h_rank
        for q in range(rank):
            h = a_lens[q] * h + lasts[q]
            carries.append(h)
        ctx.group, ctx.rank, ctx.a_shape = group, rank, a_shape
        ctx.save_for_backward(a_lens, carries[rank])
        return h

    @staticmethod
    def backward(ctx, g):
        a_lens, h_rank = ctx.saved_tensors
        gs = _all_gather(g.reshape(-1), ctx.group).reshape(-1, *g.shape)
        # G_{rank+1}: gradient of the carry after this rank's chunk, through later carries.
        big_g = torch.zeros_like(g)
        for q in range(len(gs) - 1, ctx.rank, -1):
            big_g = gs[q] + a_lens[q].conj() * big_g
        grad_a_len = (h_rank.conj() * big_g).sum_to_size(ctx.a_shape)
        return big_g, grad_a_len, None


def context_parallel_scan(
    a: torch.Tensor,
    b: torch.Tensor,
    x0: torch.Tensor | None,
    group,
    local_scan: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
) -> torch.Tensor:
    """This rank's chunk of the whole-sequence scan; see the module docstring.

    ``local_scan(a, b, x0)`` is the single-process scan (``linear_scan`` without a group).
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("linear_scan with a group needs torch.distributed initialised")
    if isinstance(b, torch.Tensor) and b.dim() >= 1 and b.shape[0] == 0:
        # Join the collective so that every rank raises, instead of the others hanging.
        check_scan_inputs(a, b.new_empty((1, *b.shape[1:])), x0)
        packet = torch.zeros(b.shape[1:].numel() + a.numel() + 1, dtype=b.dtype, device=b.device)
        _refuse_empty(_all_gather(packet, group)[:, -1])
    check_scan_inputs(a, b, x0)
    first = dist.get_rank(group) == 0
    y = local_scan(a, b, x0 if first else None)
    length, state = b.shape[0], b.shape[1:]
    # a^1 .. a^L by the same scan (exact repeated products, a's gradient by the scan's rule).
    powers = local_scan(a, a.new_zeros((length, *a.shape)), torch.ones_like(a))
    h = _Carry.apply(y[-1], powers[-1], group)
    # powers is (L, *a.shape); a broadcasts to the state from the right, so pad after L.
    powers = powers.reshape(length, *([1] * (len(state) - a.dim())), *a.shape)
    return y + powers * h
