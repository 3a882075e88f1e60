"""VQTokenizer: a VQ-GAN-style frame tokenizer (Esser et al. 2021, "taming transformers").

Per frame, for ``channel_mult`` (m_0, …, m_{S−1}) and ``channels`` c::

    encoder: conv3×3 → c; for each level i: num_res_blocks × ResBlock(c·m_i), then (except
             at the last level) a stride-2 conv3×3; middle: ResBlock, [attention], ResBlock;
             GN → SiLU → conv3×3 → 1×1 conv to embed_dim
             (N, C, H, W) -> (N, embed_dim, H/2^(S−1), W/2^(S−1))
    quantizer: nearest of codebook_size codes, straight-through (vector_quantizer.py)
    decoder: 1×1 conv → conv3×3 → c·m_{S−1}; middle as above; for each level reversed:
             (num_res_blocks + 1) × ResBlock, then (except at the first level) a nearest 2×
             upsample and conv3×3; GN → SiLU → conv3×3 to C
             (N, embed_dim, h, w) -> (N, C, H, W)

ResBlock: ``shortcut(x) + conv(drop(SiLU(GN(conv(SiLU(GN(x)))))))``, 1×1 shortcut when the
width changes; attention: single-head self-attention over the h·w positions with a residual.

On videos (B, T, C, H, W) in [−1, 1]: ``encode`` -> codes (B, T, h, w) int64, ``decode``
-> frames (B, T, C, H, W) clamped to [−1, 1]. ``forward(video)`` returns the unclamped
reconstruction, the codes and the quantizer's losses; the training losses that need other
networks (perceptual LPIPS, the patch discriminator) are added by ``convssm.train``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from convssm._checks import check_tensor
from convssm._typed import dataclass_from_dict
from convssm.models.pretrained import PretrainedMixin
from convssm.models.vector_quantizer import VectorQuantizer

__all__ = ["VQTokenizer", "VQTokenizerConfig", "VQTokenizerOutput"]


@dataclass
class VQTokenizerConfig:
    """Everything that defines a :class:`VQTokenizer` (stored in its ``config.json``).

    Attributes:
        image_channels: C of the frames.
        image_size: H = W of the frames.
        channels: c, the width of the first level.
        channel_mult: per level, the width's multiple of ``channels``; each level after the
            first halves H and W.
        num_res_blocks: residual blocks per level.
        attention: self-attention in the middle of the encoder and the decoder.
        norm_groups: GroupNorm groups.
        dropout: dropout inside the residual blocks.
        embed_dim: channels of a code vector.
        codebook_size: number of codes.
        codebook_update: ``loss`` (codebook loss) or ``ema`` (exponential moving averages).
        commitment_weight: weight of the commitment loss.
        ema_decay: decay of the ``ema`` update.
        dead_code_threshold: assignments per step below which a code is restarted (``ema``;
            0: never).
    """

    image_channels: int = 3
    image_size: int = 64
    channels: int = 128
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 2])
    num_res_blocks: int = 2
    attention: bool = True
    norm_groups: int = 32
    dropout: float = 0.0
    embed_dim: int = 64
    codebook_size: int = 1024
    codebook_update: Literal["loss", "ema"] = "loss"
    commitment_weight: float = 0.25
    ema_decay: float = 0.99
    dead_code_threshold: float = 1.0

    def __post_init__(self) -> None:
        self.channel_mult = [int(m) for m in self.channel_mult]
        for name in ("image_channels", "image_size", "channels", "num_res_blocks", "norm_groups",
                     "embed_dim", "codebook_size"):  # fmt: skip
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"VQTokenizerConfig.{name} must be a positive int, got {v!r}")
        if not self.channel_mult or any(m < 1 for m in self.channel_mult):
            raise ValueError(f"channel_mult must be positive ints, got {self.channel_mult}")
        down = 2 ** (len(self.channel_mult) - 1)
        if self.image_size % down:
            raise ValueError(
                f"image_size {self.image_size} must be divisible by {down} "
                f"(the encoder halves it {len(self.channel_mult) - 1} times)"
            )
        bad = [m for m in self.channel_mult if (self.channels * m) % self.norm_groups]
        if bad:
            raise ValueError(
                f"channels × channel_mult ({[self.channels * m for m in bad]}) must be "
                f"divisible by norm_groups ({self.norm_groups})"
            )
        if self.codebook_update not in ("loss", "ema"):
            raise ValueError(f"codebook_update must be 'loss' or 'ema', got {self.codebook_update}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** (len(self.channel_mult) - 1)

    @classmethod
    def from_dict(cls, data: Any, where: str = "model") -> VQTokenizerConfig:
        """Read a mapping (YAML/JSON); unknown keys and wrong types are errors naming
        ``where.key``; keys left out keep their defaults."""
        return dataclass_from_dict(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dicts and lists (a deep copy)."""
        return copy.deepcopy(dataclasses.asdict(self))


@dataclass
class VQTokenizerOutput:
    """reconstruction (B, T, C, H, W) unclamped; codes (B, T, h, w); the quantizer's losses
    (scalars: they need the latents before quantisation, which only forward sees) and its
    code perplexity. The training loss is ``convssm.train.tokenizer_loss.TokenizerLoss``."""

    reconstruction: torch.Tensor
    codes: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    perplexity: torch.Tensor


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.GroupNorm(groups, c_in, eps=1e-6),
            nn.SiLU(),
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.GroupNorm(groups, c_out, eps=1e-6),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.shortcut = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.branch(x)


class _Attention(nn.Module):
    """Single-head self-attention over the positions of (N, C, h, w), with a residual."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).transpose(-1, -2).unbind(1)
        y = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.out(y.transpose(-1, -2).reshape(n, c, h, w))


def _middle(c: int, cfg: VQTokenizerConfig) -> list[nn.Module]:
    g, d = cfg.norm_groups, cfg.dropout
    attn = [_Attention(c, g)] if cfg.attention else []
    return [_ResBlock(c, c, g, d), *attn, _ResBlock(c, c, g, d)]


def _out(c: int, out_channels: int, groups: int) -> list[nn.Module]:
    return [nn.GroupNorm(groups, c, eps=1e-6), nn.SiLU(), nn.Conv2d(c, out_channels, 3, padding=1)]


class _Downsample(nn.Module):
    """Stride-2 conv3×3 with taming's asymmetric padding (right and bottom)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


def _encoder(cfg: VQTokenizerConfig) -> nn.Sequential:
    g, d = cfg.norm_groups, cfg.dropout
    layers: list[nn.Module] = [nn.Conv2d(cfg.image_channels, cfg.channels, 3, padding=1)]
    prev = cfg.channels
    for i, m in enumerate(cfg.channel_mult):
        for _ in range(cfg.num_res_blocks):
            layers.append(_ResBlock(prev, cfg.channels * m, g, d))
            prev = cfg.channels * m
        if i < len(cfg.channel_mult) - 1:
            layers.append(_Downsample(prev))
    layers += _middle(prev, cfg) + _out(prev, cfg.embed_dim, g)
    return nn.Sequential(*layers)


def _decoder(cfg: VQTokenizerConfig) -> nn.Sequential:
    g, d = cfg.norm_groups, cfg.dropout
    prev = cfg.channels * cfg.channel_mult[-1]
    layers: list[nn.Module] = [nn.Conv2d(cfg.embed_dim, prev, 3, padding=1)]
    layers += _middle(prev, cfg)
    for i, m in reversed(list(enumerate(cfg.channel_mult))):
        for _ in range(cfg.num_res_blocks + 1):
            layers.append(_ResBlock(prev, cfg.channels * m, g, d))
            prev = cfg.channels * m
        if i > 0:
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(prev, prev, 3, padding=1),
            ]
    layers += _out(prev, cfg.image_channels, g)
    return nn.Sequential(*layers)


class VQTokenizer(PretrainedMixin, nn.Module):
    """Frames <-> a grid of discrete codes; see the module docstring.

    Build it from a :class:`VQTokenizerConfig` or from its fields as keywords:
    ``VQTokenizer(VQTokenizerConfig(codebook_size=512))`` or ``VQTokenizer(codebook_size=512)``.
    """

    config_class = VQTokenizerConfig

    def __init__(self, config: VQTokenizerConfig | None = None, **fields: Any) -> None:
        super().__init__()
        if config is not None and not isinstance(config, self.config_class):
            raise TypeError(f"config must be a VQTokenizerConfig, got {type(config).__name__}")
        names = {f.name for f in dataclasses.fields(VQTokenizerConfig)}
        unknown = sorted(set(fields) - names)
        if unknown:
            raise TypeError(f"unknown VQTokenizer option(s) {unknown}; valid: {sorted(names)}")
        cfg = dataclasses.replace(copy.deepcopy(config) or VQTokenizerConfig(), **fields)
        self.config = cfg
        self.image_channels, self.image_size = cfg.image_channels, cfg.image_size
        self.latent_size, self.codebook_size = cfg.latent_size, cfg.codebook_size
        self.downsample = cfg.image_size // cfg.latent_size
        self.encoder = _encoder(cfg)
        self.quantizer = VectorQuantizer(
            cfg.codebook_size,
            cfg.embed_dim,
            cfg.codebook_update,
            cfg.commitment_weight,
            cfg.ema_decay,
            dead_code_threshold=cfg.dead_code_threshold,
        )
        self.decoder = _decoder(cfg)

    @property
    def codebook(self) -> torch.Tensor:
        """(codebook_size, embed_dim) code vectors."""
        return self.quantizer.codebook

    # ------------------------------------------------------------------ checks
    def _check_video(self, video: object, name: str) -> torch.Tensor:
        video = check_tensor(video, name, ndim=5, floating=True)
        b, t, c, h, w = video.shape
        if b * t == 0:
            raise ValueError(f"{name} holds no frames (shape {tuple(video.shape)})")
        if c != self.image_channels:
            raise ValueError(
                f"{name} must have {self.image_channels} channels at dim 2 of (B, T, C, H, W), "
                f"got shape {tuple(video.shape)}"
            )
        if h % self.downsample or w % self.downsample:
            raise ValueError(f"{name} height and width must be divisible by {self.downsample}")
        return video

    def _check_codes(self, codes: object) -> torch.Tensor:
        codes = check_tensor(
            codes, "codes", ndim=4, dtypes=(torch.int64, torch.int32), finite=False
        )
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ValueError(f"codes must lie in [0, {self.codebook_size})")
        return codes.long()

    # ------------------------------------------------------------------ frames
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> continuous encoder outputs (N, embed_dim, h, w)."""
        return self.encoder(frames)

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """(N, embed_dim, h, w) quantized vectors -> frames (N, C, H, W), unclamped."""
        return self.decoder(z)

    # ------------------------------------------------------------------ videos
    def forward(self, video: torch.Tensor) -> VQTokenizerOutput:
        """video (B, T, C, H, W) in [−1, 1] -> reconstruction, codes and the VQ losses."""
        video = self._check_video(video, "video")
        b, t = video.shape[:2]
        q = self.quantizer(self.encode_frames(video.reshape(b * t, *video.shape[2:])))
        recon = self.decode_latents(q.quantized)
        recon = recon.reshape(b, t, *recon.shape[1:])
        codes = q.codes.reshape(b, t, *q.codes.shape[1:])
        return VQTokenizerOutput(recon, codes, q.codebook_loss, q.commitment_loss, q.perplexity)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor, batch_frames: int = 64) -> torch.Tensor:
        """frames (B, T, C, H, W) in [−1, 1] -> codes (B, T, h, w) int64, ``batch_frames``
        frames per encoder call."""
        frames = self._check_video(frames, "frames")
        b, t = frames.shape[:2]
        flat = frames.reshape(b * t, *frames.shape[2:])
        codes = [self.quantizer.nearest(self.encode_frames(x)) for x in _chunks(flat, batch_frames)]
        out = torch.cat(codes)
        return out.reshape(b, t, *out.shape[1:])

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, batch_frames: int = 64) -> torch.Tensor:
        """codes (B, T, h, w) -> frames (B, T, C, H, W) in [−1, 1]."""
        codes = self._check_codes(codes)
        b, t = codes.shape[:2]
        flat = codes.reshape(b * t, *codes.shape[2:])
        frames = [
            self.decode_latents(self.quantizer.lookup(c).to(self.codebook.dtype)).clamp(-1, 1)
            for c in _chunks(flat, batch_frames)
        ]
        out = torch.cat(frames)
        return out.reshape(b, t, *out.shape[1:])


def _chunks(x: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    if size < 1:
        raise ValueError(f"batch_frames must be positive, got {size}")
    for i in range(0, x.shape[0], size):
        yield x[i : i + size]
