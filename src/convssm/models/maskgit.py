"""MaskGit: a bidirectional transformer prior over one frame's grid of codes, conditioned on
a feature map of the same grid (TECO's dynamics prior; MaskGIT, Chang et al. 2022)::

    tokens (N, h, w) in [0, V]  (V is the mask token) ─ embedding (token_dim) ─┐
    cond (N, C, h, w) ───────────────────────────────────────────────────────── concat
      ─ Linear → width, + a learned bias per row and per column (concatenated)
      ─ depth × bidirectional pre-LN transformer layer
      ─ Linear, GELU, LayerNorm ─ Linear → token_dim, GELU, LayerNorm
      ─ · the token embedding's rows 0..V−1 (tied) + bias ─> logits (N, V, h, w)

Training (:meth:`MaskGit.forward`): every grid draws its own mask ratio r = γ(u),
u ~ U(0, 1), with the schedule γ (``cosine``: cos(π/2 · u), MaskGIT's and TECO's;
``linear``: 1 − u), and max(1, ⌊r · L⌋) of its L = h·w positions, chosen uniformly, become
the mask token; the loss is the cross-entropy at the masked positions (``token_loss``).
Draws come from torch's global generator (training seeds it per step).

Sampling, two ways, both from one ``torch.Generator``:

- :meth:`MaskGit.decode` (MaskGIT's iterative decoding): start fully masked; at iteration
  i of S sample a code at every masked position, then re-mask the least confident of those
  draws (confidence: the probability of the drawn code) so that exactly
  :func:`masked_counts`\\ (L, S)[i] = ⌊L · γ((i + 1) / S)⌋ positions stay masked (at least
  one fewer than before; none after the last iteration). MaskGIT's added Gumbel noise on
  the confidences is left out.
- :meth:`MaskGit.draft_and_revise` (TECO's): a draft pass of ``draft_steps`` iterations,
  each re-sampling one chunk of a random partition of the L positions with everything
  else as context, then ``revise_rounds`` passes of ``revise_steps`` iterations over new
  random partitions: every code is redrawn with the other codes of the draft in view.

Initialisation as TECO's flax code: token embedding and position biases N(0, 0.02²), the
head's first Linear N(0, 0.02²), the other Linears lecun-normal, biases zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from convssm.nn.causal_transformer import TransformerLayer
from convssm.nn.init import FLAX_NORM_EPS, flax_linear_

__all__ = ["MaskGit", "MaskGitOutput", "mask_ratio", "masked_counts"]

SCHEDULES = ("cosine", "linear")


def mask_ratio(u: torch.Tensor | float, schedule: str = "cosine") -> torch.Tensor | float:
    """γ(u): the share of positions masked at progress u ∈ [0, 1] (1 at u = 0, 0 at u = 1)."""
    if schedule == "cosine":
        return torch.cos(math.pi / 2 * u) if torch.is_tensor(u) else math.cos(math.pi / 2 * u)
    if schedule == "linear":
        return 1 - u
    raise ValueError(f"mask_schedule must be one of {SCHEDULES}, got {schedule!r}")


def masked_counts(length: int, steps: int, schedule: str = "cosine") -> list[int]:
    """How many of ``length`` positions :meth:`MaskGit.decode` leaves masked after each of
    its ``steps`` iterations: ⌊length · γ((i + 1) / steps)⌋, at least one fewer than after
    the iteration before (while any are left), 0 after the last."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    out, left = [], length
    for i in range(steps):
        n = 0 if i == steps - 1 else int(math.floor(length * mask_ratio((i + 1) / steps, schedule)))
        left = max(0, min(n, left - 1))
        out.append(left)
    return out


@dataclass
class MaskGitOutput:
    """logits (N, V, h, w); mask (N, h, w) bool, the positions that were masked;
    token_loss (N, h, w), the cross-entropy at the masked positions and 0 elsewhere."""

    logits: torch.Tensor
    mask: torch.Tensor
    token_loss: torch.Tensor


class MaskGit(nn.Module):
    """The prior over a (height × width) grid of ``vocab_size`` codes (module docstring).

    Args:
        vocab_size: V, the number of codes (index V is the mask token).
        height, width: the grid.
        cond_dim: channels of the conditioning map.
        embed_dim: the transformer's width. depth: its layers. heads: attention heads.
        mlp_dim: the width of its MLPs. token_dim: the width of the token embedding.
        dropout: dropout in the transformer layers. mask_schedule: ``cosine`` or ``linear``.
    """

    def __init__(
        self,
        vocab_size: int,
        height: int,
        width: int,
        cond_dim: int,
        *,
        embed_dim: int = 512,
        depth: int = 8,
        heads: int = 8,
        mlp_dim: int = 2048,
        token_dim: int = 256,
        dropout: float = 0.0,
        mask_schedule: str = "cosine",
    ) -> None:
        super().__init__()
        mask_ratio(0.0, mask_schedule)  # a clear error for an unknown schedule
        if embed_dim % heads:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by heads {heads}")
        self.vocab_size, self.height, self.width = vocab_size, height, width
        self.mask_schedule = mask_schedule
        self.token_embed = nn.Parameter(torch.randn(vocab_size + 1, token_dim) * 0.02)
        self.proj_in = flax_linear_(nn.Linear(token_dim + cond_dim, embed_dim))
        self.row_bias = nn.Parameter(torch.randn(height, (embed_dim + 1) // 2) * 0.02)
        self.col_bias = nn.Parameter(torch.randn(width, embed_dim // 2) * 0.02)
        self.layers = nn.ModuleList(
            TransformerLayer(embed_dim, heads, mlp_dim, dropout, causal=False) for _ in range(depth)
        )
        self.head = nn.Sequential(
            flax_linear_(nn.Linear(embed_dim, embed_dim)),
            nn.GELU(),
            nn.LayerNorm(embed_dim, eps=FLAX_NORM_EPS),
            nn.Linear(embed_dim, token_dim),
            nn.GELU(),
            nn.LayerNorm(token_dim, eps=FLAX_NORM_EPS),
        )
        nn.init.normal_(self.head[3].weight, std=0.02)
        nn.init.zeros_(self.head[3].bias)
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))

    @property
    def mask_id(self) -> int:
        """The mask token's index (V)."""
        return self.vocab_size

    def _positions(self) -> torch.Tensor:
        h, w = self.height, self.width
        rows = self.row_bias[:, None].expand(h, w, -1)
        cols = self.col_bias[None].expand(h, w, -1)
        return torch.cat([rows, cols], dim=-1).reshape(h * w, -1)

    def logits(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """tokens (N, h, w) in [0, V], cond (N, C, h, w) -> logits (N, V, h, w)."""
        n, h, w = tokens.shape
        x = self.token_embed[tokens.reshape(n, h * w)]
        c = cond.flatten(2).transpose(1, 2).to(x.dtype)
        z = self.proj_in(torch.cat([x, c], dim=-1)) + self._positions().to(x.dtype)
        for layer in self.layers:
            z = layer(z, None, None, h * w)[0]
        logits = self.head(z) @ self.token_embed[: self.vocab_size].T + self.out_bias
        return logits.transpose(1, 2).reshape(n, self.vocab_size, h, w)

    def random_mask(self, n: int, device: torch.device | str | None = None) -> torch.Tensor:
        """(n, h, w) bool: per grid max(1, ⌊γ(u) · L⌋) positions, u ~ U(0, 1), at random."""
        length = self.height * self.width
        ratio = mask_ratio(torch.rand(n, device=device, dtype=torch.float64), self.mask_schedule)
        count = (ratio * length).floor().clamp(min=1)
        rank = torch.rand(n, length, device=device).argsort(1).argsort(1)
        return (rank < count[:, None]).reshape(n, self.height, self.width)

    def forward(
        self, tokens: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor | None = None
    ) -> MaskGitOutput:
        """The masked-token objective on tokens (N, h, w) in [0, V) given cond (N, C, h, w);
        ``mask`` (N, h, w) bool, or None to draw one (:meth:`random_mask`)."""
        if mask is None:
            mask = self.random_mask(tokens.shape[0], tokens.device)
        logits = self.logits(torch.where(mask, self.mask_id, tokens), cond)
        ce = F.cross_entropy(logits.float(), tokens, reduction="none")
        return MaskGitOutput(logits, mask, ce * mask)

    def _draw(
        self, logits: torch.Tensor, temperature: float, generator: torch.Generator | None
    ) -> torch.Tensor:
        """(N, V, h, w) -> (N, h, w): a categorical draw per position (argmax at 0)."""
        if temperature == 0:
            return logits.argmax(1)
        n, v, h, w = logits.shape
        probs = torch.softmax(logits.float().permute(0, 2, 3, 1).reshape(-1, v) / temperature, -1)
        return torch.multinomial(probs, 1, generator=generator).reshape(n, h, w)

    @torch.no_grad()
    def decode(
        self,
        cond: torch.Tensor,
        steps: int = 8,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """MaskGIT's iterative decoding with confidence-based re-masking: cond (N, C, h, w)
        -> codes (N, h, w)."""
        n = cond.shape[0]
        tokens = torch.full((n, self.height, self.width), self.mask_id, device=cond.device)
        for left in masked_counts(self.height * self.width, steps, self.mask_schedule):
            masked = tokens == self.mask_id
            logits = self.logits(tokens, cond)
            draw = self._draw(logits, temperature, generator)
            conf = torch.log_softmax(logits.float(), 1).gather(1, draw[:, None])[:, 0]
            conf = conf.masked_fill(~masked, math.inf).reshape(n, -1)
            order = conf.argsort(dim=1, stable=True)  # the least confident masked positions first
            keep_masked = torch.zeros_like(masked.reshape(n, -1))
            keep_masked.scatter_(1, order[:, :left], True)
            fixed = masked & ~keep_masked.reshape(masked.shape)
            tokens = torch.where(fixed, draw, tokens)
        return tokens

    @torch.no_grad()
    def draft_and_revise(
        self,
        cond: torch.Tensor,
        draft_steps: int = 8,
        revise_steps: int = 8,
        revise_rounds: int = 2,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """TECO's draft-and-revise sampling: cond (N, C, h, w) -> codes (N, h, w)."""
        if draft_steps < 1 or revise_steps < 1 or revise_rounds < 0:
            raise ValueError(
                "draft_steps and revise_steps must be >= 1 and revise_rounds >= 0, got "
                f"{draft_steps}, {revise_steps}, {revise_rounds}"
            )
        n, length = cond.shape[0], self.height * self.width
        tokens = torch.full((n, length), self.mask_id, device=cond.device)
        device = generator.device if generator is not None else cond.device
        for steps in [draft_steps] + [revise_steps] * revise_rounds:
            order = torch.randperm(length, generator=generator, device=device).to(cond.device)
            for chunk in order.tensor_split(steps):
                tokens[:, chunk] = self.mask_id
                grid = tokens.reshape(n, self.height, self.width)
                draw = self._draw(self.logits(grid, cond), temperature, generator)
                tokens[:, chunk] = draw.reshape(n, length)[:, chunk]
        return tokens.reshape(n, self.height, self.width)
