"""VectorQuantizer: nearest-code lookup with a straight-through gradient (VQ-VAE / VQ-GAN).

For encoder outputs z (N, D, h, w) and a codebook e (K, D)::

    k(p)  = argmin_j ‖z(p) − e_j‖²                 codes (N, h, w) int64
    z_q   = e_k                                      quantized (N, D, h, w)
    out   = z + (z_q − z).detach()                   straight-through: ∂out/∂z = I

Two ways to learn the codebook (``update``):

- ``"loss"``: the codebook is a parameter; codebook_loss = ‖sg(z) − z_q‖² moves codes
  towards the encoder outputs, commitment_loss = β · ‖z − sg(z_q)‖² keeps the encoder near
  its codes (β = ``commitment_weight``, 0.25 in VQ-VAE and VQ-GAN); both are means.
- ``"ema"``: the codebook is a buffer updated in training mode as exponential moving
  averages of the assigned encoder outputs (van den Oord et al. 2017, appendix; decay
  ``ema_decay``, Laplace smoothing ``ema_eps``); codebook_loss is 0 and only the
  commitment loss is returned. Under DDP the statistics are those of each process
  (DDP broadcasts rank 0's buffers before every forward). Dead codes are restarted
  (Jukebox's rule): after each update, every code whose moving-average count is below
  ``dead_code_threshold`` (assignments per step; 0 turns it off) is moved onto a randomly
  drawn encoder output of the batch, with count = threshold. At the start every count is 0,
  so the first step places the whole codebook on encoder outputs (a data-dependent
  initialisation) instead of leaving it at the tiny uniform init, where one code would take
  every position.

``perplexity`` = exp(entropy of the batch's code histogram): K when every code is used
equally, 1 when one code takes all positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VectorQuantizer", "QuantizerOutput"]


@dataclass
class QuantizerOutput:
    """quantized (N, D, h, w) with the straight-through gradient; codes (N, h, w) int64;
    scalar codebook_loss, commitment_loss and perplexity (no gradient)."""

    quantized: torch.Tensor
    codes: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    perplexity: torch.Tensor


class VectorQuantizer(nn.Module):
    """K codes of dimension D; see the module docstring.

    Args:
        codebook_size: K.
        embed_dim: D.
        update: ``"loss"`` or ``"ema"``.
        commitment_weight: β.
        ema_decay, ema_eps, dead_code_threshold: of the ``"ema"`` update.
    """

    def __init__(
        self,
        codebook_size: int,
        embed_dim: int,
        update: str = "loss",
        commitment_weight: float = 0.25,
        ema_decay: float = 0.99,
        ema_eps: float = 1e-5,
        dead_code_threshold: float = 1.0,
    ) -> None:
        super().__init__()
        if update not in ("loss", "ema"):
            raise ValueError(f"codebook update must be 'loss' or 'ema', got {update!r}")
        if not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay}")
        self.codebook_size, self.embed_dim, self.update = codebook_size, embed_dim, update
        self.commitment_weight, self.ema_decay, self.ema_eps = commitment_weight, ema_decay, ema_eps
        if dead_code_threshold < 0:
            raise ValueError(f"dead_code_threshold must be >= 0, got {dead_code_threshold}")
        self.dead_code_threshold = dead_code_threshold
        init = torch.empty(codebook_size, embed_dim).uniform_(-1 / codebook_size, 1 / codebook_size)
        if update == "loss":
            self.codebook = nn.Parameter(init)
        else:
            self.register_buffer("codebook", init)
            self.register_buffer("ema_count", torch.zeros(codebook_size))
            self.register_buffer("ema_sum", init.clone())

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (N, h, w) int64 -> the code vectors (N, D, h, w)."""
        return F.embedding(codes, self.codebook).permute(0, 3, 1, 2)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, D, h, w) -> the index of the nearest code at every position (N, h, w)."""
        # distances in float32 at least (bf16 under autocast would misplace near ties)
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.embed_dim)
        dtype = torch.promote_types(flat.dtype, torch.float32)
        flat, book = flat.to(dtype), self.codebook.to(dtype)
        dist = (
            flat.pow(2).sum(1, keepdim=True)
            - 2 * flat @ book.t()
            + book.pow(2).sum(1)[None]
        )  # fmt: skip
        return dist.argmin(1).reshape(z.shape[0], *z.shape[2:])

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        codes = self.nearest(z)
        if self.update == "ema" and self.training:
            self._ema_update(z.detach(), codes)
        z_q = self.lookup(codes).to(z.dtype)
        commitment = self.commitment_weight * F.mse_loss(z, z_q.detach())
        if self.update == "loss":
            codebook_loss = F.mse_loss(z_q, z.detach())
        else:
            codebook_loss = z.new_zeros(())
        quantized = z + (z_q - z).detach()
        with torch.no_grad():
            hist = torch.bincount(codes.reshape(-1), minlength=self.codebook_size).float()
            p = hist / hist.sum().clamp_min(1)
            perplexity = torch.exp(-(p * torch.log(p + 1e-10)).sum())
        return QuantizerOutput(quantized, codes, codebook_loss, commitment, perplexity)

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, codes: torch.Tensor) -> None:
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.embed_dim).to(self.ema_sum.dtype)
        onehot = F.one_hot(codes.reshape(-1), self.codebook_size).to(flat.dtype)
        d = self.ema_decay
        self.ema_count.mul_(d).add_(onehot.sum(0), alpha=1 - d)
        self.ema_sum.mul_(d).add_(onehot.t() @ flat, alpha=1 - d)
        n = self.ema_count.sum()
        count = (self.ema_count + self.ema_eps) / (n + self.codebook_size * self.ema_eps) * n
        self.codebook.copy_(self.ema_sum / count[:, None])
        if self.dead_code_threshold > 0:  # no host sync: a masked replacement
            dead = (self.ema_count < self.dead_code_threshold)[:, None]
            pick = torch.randint(0, flat.shape[0], (self.codebook_size,), device=flat.device)
            fresh = flat[pick]
            t = self.dead_code_threshold
            self.codebook.copy_(torch.where(dead, fresh, self.codebook))
            self.ema_sum.copy_(torch.where(dead, fresh * t, self.ema_sum))
            self.ema_count.copy_(torch.where(dead[:, 0], t, self.ema_count))

    def extra_repr(self) -> str:
        return f"{self.codebook_size}, {self.embed_dim}, update={self.update!r}"
