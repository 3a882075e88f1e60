"""The pieces of a causal pre-LN transformer over tokens, with sliding-window attention.

Used by :class:`~convssm.nn.frame_transformer.FrameTransformer` (one token per frame) and,
with ``causal=False`` (every token sees every other), by the MaskGit prior
(:class:`convssm.models.maskgit.MaskGit`, one token per grid position).
Attention is torch's ``scaled_dot_product_attention``; :func:`window_mask` is the mask
for queries that follow cached keys and may look at most ``window - 1`` tokens back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from convssm.nn.init import FLAX_NORM_EPS, flax_linear_

__all__ = ["TransformerLayer", "sinusoidal_positions", "window_mask"]


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """The fixed sin/cos table (length, dim): sin on even, cos on odd channels, base 10000."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table.float()


def window_mask(
    queries: int, keys: int, window: int, device: torch.device, group: int = 1
) -> torch.Tensor | None:
    """Boolean (queries, keys) mask for sliding-window causal attention, or None if all allowed.

    Keys are the ``keys - queries`` cached tokens followed by the queries themselves;
    query j is key ``keys - queries + j``. Tokens come in frames of ``group`` (token i is of
    frame i // group): a query sees every key of its own frame and of the ``window - 1``
    frames before it (``group`` 1: one token per frame).
    """
    past = keys - queries
    if queries == group and past % group == 0 and keys <= window * group:
        return None
    qpos = (torch.arange(queries, device=device)[:, None] + past) // group
    kpos = torch.arange(keys, device=device)[None, :] // group
    return (kpos <= qpos) & (kpos > qpos - window)


class TransformerLayer(nn.Module):
    """Pre-LN block on tokens (B, T, E): z + attn(LN(z)), then z + MLP(LN(z)).

    Initialised as TECO's flax transformer (the reference's): attention projections normal
    with std 1/√E, MLP lecun-normal, all biases zero, LayerNorm eps 1e-6. ``causal=False``:
    bidirectional attention (no past keys, no window).
    """

    def __init__(
        self, embed_dim: int, heads: int, mlp_dim: int, dropout: float, *, causal: bool = True
    ) -> None:
        super().__init__()
        self.heads, self.causal = heads, causal
        self.norm1 = nn.LayerNorm(embed_dim, eps=FLAX_NORM_EPS)
        self.qkv = flax_linear_(nn.Linear(embed_dim, 3 * embed_dim), truncated=False)
        self.proj = flax_linear_(nn.Linear(embed_dim, embed_dim), truncated=False)
        self.norm2 = nn.LayerNorm(embed_dim, eps=FLAX_NORM_EPS)
        self.mlp = nn.Sequential(
            flax_linear_(nn.Linear(embed_dim, mlp_dim)),
            nn.GELU(),
            flax_linear_(nn.Linear(mlp_dim, embed_dim)),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        z: torch.Tensor,
        past_k: torch.Tensor | None,
        past_v: torch.Tensor | None,
        window: int,
        group: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, T, E) with optional past keys/values (B, heads, S, E/heads); the tokens
        come in frames of ``group`` (:func:`window_mask`).

        Returns the new z and the keys/values of past + current frames (B, heads, S+T, .).
        """
        b, t, e = z.shape
        qkv = self.qkv(self.norm1(z)).view(b, t, 3, self.heads, e // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        if past_k is not None and past_k.shape[2] > 0:
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
        if not self.causal:
            a = F.scaled_dot_product_attention(q, k, v)
        elif group == 1 and k.shape[2] == t and t <= window:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            mask = window_mask(t, k.shape[2], window, z.device, group)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        a = a.transpose(1, 2).reshape(b, t, e)
        z = z + self.dropout(self.proj(a))
        z = z + self.dropout(self.mlp(self.norm2(z)))
        return z, k, v
