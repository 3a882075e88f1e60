"""MaskGit on its own: the masked-token objective, MaskGIT's decoding schedule and TECO's
draft-and-revise, with a prior that puts all its mass on one grid."""

from __future__ import annotations

import math

import pytest
import torch

from convssm.models import MaskGit
from convssm.models.maskgit import mask_ratio, masked_counts


def _prior(vocab=6, h=3, w=4, cond=5):
    torch.manual_seed(0)
    return MaskGit(vocab, h, w, cond, embed_dim=8, depth=1, heads=2, mlp_dim=16, token_dim=4)


def _certain(prior: MaskGit, target: torch.Tensor, calls: list[torch.Tensor]):
    """A prior with all its mass on ``target`` (h, w); records every input it sees."""

    def logits(tokens, cond):
        calls.append(tokens.clone())
        one_hot = torch.nn.functional.one_hot(target, prior.vocab_size).permute(2, 0, 1)
        return (1e4 * one_hot.float())[None].expand(tokens.shape[0], -1, -1, -1)

    prior.logits = logits
    return prior


def test_masked_counts_follow_the_cosine_schedule():
    length, steps = 64, 8
    want = [math.floor(length * math.cos(math.pi / 2 * (i + 1) / steps)) for i in range(steps)]
    assert masked_counts(length, steps) == [*want[:-1], 0]
    assert masked_counts(4, 8) == [3, 2, 1, 0, 0, 0, 0, 0]  # at least one fixed per iteration
    assert masked_counts(10, 4, "linear") == [7, 5, 2, 0]
    assert mask_ratio(0.0) == 1.0 and abs(mask_ratio(1.0)) < 1e-12
    with pytest.raises(ValueError, match="mask_schedule"):
        mask_ratio(0.5, "exp")


def test_decode_fixes_the_scheduled_number_of_tokens_and_recovers_a_certain_grid():
    prior = _prior()
    target = torch.randint(0, 6, (3, 4), generator=torch.Generator().manual_seed(1))
    calls: list[torch.Tensor] = []
    _certain(prior, target, calls)
    out = prior.decode(torch.zeros(2, 5, 3, 4), steps=5, generator=torch.Generator())
    assert torch.equal(out, target.expand(2, -1, -1))
    still_masked = [int((c[0] == prior.mask_id).sum()) for c in calls[1:]] + [0]
    assert still_masked == masked_counts(12, 5)
    assert int((calls[0] == prior.mask_id).sum()) == 2 * 12  # starts fully masked


def test_draft_and_revise_resamples_chunks_and_recovers_a_certain_grid():
    prior = _prior()
    target = torch.randint(0, 6, (3, 4), generator=torch.Generator().manual_seed(2))
    calls: list[torch.Tensor] = []
    _certain(prior, target, calls)
    gen = torch.Generator().manual_seed(0)
    out = prior.draft_and_revise(torch.zeros(1, 5, 3, 4), 4, 3, 2, generator=gen)
    assert torch.equal(out[0], target)
    assert len(calls) == 4 + 3 * 2
    masked = [int((c == prior.mask_id).sum()) for c in calls]
    assert masked[:4] == [12, 9, 6, 3]  # the draft: each chunk of 3 fixed in turn
    assert masked[4:] == [4, 4, 4, 4, 4, 4]  # revisions re-mask one chunk of 12 / 3 at a time


def test_the_masked_token_loss_counts_masked_positions_only():
    prior = _prior()
    tokens = torch.randint(0, 6, (64, 3, 4))
    cond = torch.randn(64, 5, 3, 4)
    out = prior(tokens, cond)
    counts = out.mask.sum((1, 2))
    assert counts.min() >= 1 and counts.max() <= 12
    assert counts.float().mean() > 4  # E[cos(πu/2)] = 2/π of the positions
    assert torch.all(out.token_loss[~out.mask] == 0) and torch.all(out.token_loss[out.mask] > 0)
    out.token_loss.sum().backward()
    assert prior.token_embed.grad is not None and prior.proj_in.weight.grad.abs().sum() > 0
    mask = torch.zeros(64, 3, 4, dtype=torch.bool)
    mask[:, 0, 0] = True
    assert torch.equal(prior(tokens, cond, mask).mask, mask)


def test_the_prior_reads_its_condition_and_sampling_is_reproducible():
    prior = _prior().eval()
    tokens = torch.full((2, 3, 4), prior.mask_id)
    cond = torch.randn(2, 5, 3, 4)
    assert not torch.allclose(prior.logits(tokens, cond), prior.logits(tokens, cond + 1))
    a = prior.draft_and_revise(cond, generator=torch.Generator().manual_seed(3))
    b = prior.draft_and_revise(cond, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() < 6
    c = prior.decode(cond, generator=torch.Generator().manual_seed(3))
    assert torch.equal(c, prior.decode(cond, generator=torch.Generator().manual_seed(3)))
