"""TECO's posterior: the encoder of a pair of frames' code embeddings and the small,
normalised codebook its output is quantized with.

:class:`PosteriorEncoder` is TECO's ``ResNetEncoder`` followed by its ``Dense`` to the
posterior width (a 1×1 convolution here)::

    (N, C_in, h, w) ─ conv3×3 → widths[0], 1 residual block
      ─ per further width: avgpool 2×, ``blocks`` residual blocks ─ 1×1 conv → out_dim
    -> (N, out_dim, h / 2^(S−1), w / 2^(S−1))

:class:`PosteriorCodebook` is TECO's ``Codebook``: codes live on the unit sphere of a
``proj_dim``-wide space; an input z (N, D, h, w) is projected (no bias), normalised and
matched to the nearest code by cosine similarity; the straight-through result is projected
back to D::

    p = normalise(W_in z),  k = argmax_j ⟨p, e_j⟩,  e = normalise(codebook)
    out = W_out (p + sg(e_k − p))
    codebook term   = mean ½‖sg(p) − e_k‖²
    commitment term = β · mean ½‖p − sg(e_k)‖²      (β = 0.25)

(½‖·‖² is optax's ``l2_loss``, what the reference uses.) Initialisation as the reference:
codebook N(0, 0.02²), projections and convolutions lecun-normal, biases zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from convssm.models.autoencoder import ResidualBlock
from convssm.models.latent_blocks import flax_default_init_

__all__ = ["PosteriorEncoder", "PosteriorCodebook", "CodebookOutput"]


class PosteriorEncoder(nn.Module):
    """TECO's ResNetEncoder and Dense (see the module docstring).

    Args:
        in_channels: input channels (two frames' code embeddings).
        widths: the stages' widths (the reference's ``depths``), finest first.
        blocks: residual blocks in every stage after the first (the first has one).
        out_dim: output channels (the reference's ``embedding_dim``).
        norm_groups: GroupNorm groups.
    """

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        blocks: int,
        out_dim: int,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if not widths or any(w < 1 for w in widths) or blocks < 1:
            raise ValueError(f"encoder widths {widths} and blocks {blocks} must be positive")
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, widths[0], 3, padding=1),
            ResidualBlock(widths[0], widths[0], norm_groups),
        ]
        prev = widths[0]
        for width in widths[1:]:
            layers.append(nn.AvgPool2d(2))
            for _ in range(blocks):
                layers.append(ResidualBlock(prev, width, norm_groups))
                prev = width
        layers.append(nn.Conv2d(prev, out_dim, 1))
        self.net = flax_default_init_(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class CodebookOutput:
    """embeddings (N, D, h, w), straight-through; codes (N, h, w) int64; codebook_terms and
    commitment_terms (N,), each item's mean (their mean over N is the batch's loss);
    perplexity: exp(entropy of the batch's code histogram), no gradient."""

    embeddings: torch.Tensor
    codes: torch.Tensor
    codebook_terms: torch.Tensor
    commitment_terms: torch.Tensor
    perplexity: torch.Tensor


def _normalise(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x / x.norm(dim=dim, keepdim=True).clamp(min=1e-6)


class PosteriorCodebook(nn.Module):
    """``num_codes`` codes on the unit sphere of R^proj_dim, read and written at width
    ``dim`` (see the module docstring); ``commitment_weight`` is β."""

    def __init__(
        self, num_codes: int, dim: int, proj_dim: int = 32, commitment_weight: float = 0.25
    ) -> None:
        super().__init__()
        self.num_codes, self.commitment_weight = num_codes, commitment_weight
        self.codebook = nn.Parameter(torch.randn(num_codes, proj_dim) * 0.02)
        self.proj_in = nn.Linear(dim, proj_dim, bias=False)
        self.proj_out = nn.Linear(proj_dim, dim, bias=False)
        flax_default_init_(self.proj_in)
        flax_default_init_(self.proj_out)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (N, h, w) -> embeddings (N, dim, h, w), as :meth:`forward` gives them."""
        e = _normalise(self.codebook, -1)[codes]
        return self.proj_out(e).permute(0, 3, 1, 2)

    def forward(self, z: torch.Tensor) -> CodebookOutput:
        """Quantize z (N, dim, h, w)."""
        p = _normalise(self.proj_in(z.permute(0, 2, 3, 1)), -1)  # (N, h, w, proj_dim)
        e = _normalise(self.codebook, -1).to(p.dtype)
        codes = (p @ e.T).argmax(-1)
        q = e[codes]
        codebook = 0.5 * (p.detach() - q).pow(2).flatten(1).mean(1)
        commitment = self.commitment_weight * 0.5 * (p - q.detach()).pow(2).flatten(1).mean(1)
        out = self.proj_out(p + (q - p).detach()).permute(0, 3, 1, 2)
        with torch.no_grad():
            hist = torch.bincount(codes.flatten(), minlength=self.num_codes).float()
            hist = hist / hist.sum().clamp(min=1)
            perplexity = torch.exp(-(hist * torch.log(hist + 1e-10)).sum())
        return CodebookOutput(out, codes, codebook, commitment, perplexity)
