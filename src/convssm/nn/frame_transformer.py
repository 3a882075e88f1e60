"""Transformer-over-frames baseline (docs/design.md#baselines), with the same interface as
``ConvS5``.

Each (dim, H, W) frame becomes ONE token: a Conv2d with kernel = stride = (H, W) maps it
to ``embed_dim``; a causal pre-LN transformer (``scaled_dot_product_attention``) runs over
the frame tokens; a final LayerNorm and a ConvTranspose2d with kernel = stride = (H, W)
map every token back to a (dim, H, W) frame. ``tokens="pixel"`` makes every pixel a token
instead (1×1 convolutions in and out; the H·W tokens of a frame see each other and every
token of the frames in the window before it, positions count tokens: TECO's temporal
transformer on a grid). ``head="teco"``: the ConvTranspose2d, GELU,
then a LayerNorm over the channels of every output pixel: TECO's Dense, GELU, LayerNorm
head, which it is exactly for a 1×1 frame with dim = embed_dim). Positions (sinusoidal or
learned) are the ABSOLUTE frame index since the start of the sequence (the state
remembers it), added to the tokens.

Attention window. A query at frame t attends to frames t - window + 1 .. t in every layer
(sliding-window causal attention). Three ways to run the same weights:

- ``forward(x, states)`` — parallel over a sequence (training, conditioning), continuing
  from a state of either kind below (None: an empty state of the default kind).
- KV cache (``cache=True``, the default): the state is a list with one
  :class:`KVCache` per layer holding the keys and values of the last ``window - 1`` frames
  and the number of frames seen. Per frame, O(window) attention work.
- No cache (``cache=False``, or ``step_nocache``; the paper's sampling protocol): the state
  is a :class:`FrameWindow`, the last ``window - 1`` input frames and the position of the
  first. Each new frame re-runs the whole transformer (embedding included) over the up to
  ``window`` frames and keeps the last output, as the reference does (only that last
  token goes through the output transposed convolution). ``forward`` with such
  a state computes every output that way too (one causal run while everything fits in
  the window, one re-run per frame after that).

How the modes agree (tested in float64 to 1e-10): parallel and KV cache agree at every
length, beyond the window too. No cache agrees with both while at most ``window`` frames
have been seen, and at every length when ``depth == 1``. Beyond the window with
``depth > 1`` it cannot: stacked sliding-window layers see depth * (window - 1) frames back
(through the keys of earlier frames, computed when those frames were current), while a
re-run from ``window`` input frames only sees ``window - 1``. That is the reference's
protocol; the Moving-MNIST evaluations (100 + 1200 frames at most) stay inside its
1500-frame window, where all three agree.

The token convolution and the transposed convolution are computed as one matmul each
(:meth:`FrameTransformer.embed_frames`, :meth:`FrameTransformer.unembed_tokens`; ~20x
faster on CPU than the convolution calls, which the tests pin them to).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from convssm.nn.causal_transformer import TransformerLayer, sinusoidal_positions
from convssm.nn.common import (
    ChannelLayerNorm,
    check_frame,
    check_inputs_finite,
    check_video,
    checkpointed,
    fold_time,
)
from convssm.nn.init import FLAX_NORM_EPS, flax_conv_
from convssm.nn.registry import refuse_sequence_group, register_sequence_model

__all__ = ["FrameTransformer", "KVCache", "FrameWindow", "HEADS", "TOKENS"]

TOKENS = ("frame", "pixel")
"""What a token is: a whole frame, or one pixel of it."""

HEADS = ("norm", "teco")
"""How tokens become frames: LayerNorm then the linear map ("norm"), or the linear map,
GELU, LayerNorm over each pixel's channels ("teco", TECO's head)."""


class KVCache(NamedTuple):
    """One layer's cache: keys and values (B, heads, S·n, head_dim) of the last S frames,
    S <= window - 1, n tokens each, and ``length``, the number of frames seen so far."""

    keys: torch.Tensor
    values: torch.Tensor
    length: int


class FrameWindow(NamedTuple):
    """No-cache state: the last S <= window - 1 input frames (B, S, dim, H, W) and the
    absolute position of frames[:, 0] (so ``start + S`` frames have been seen)."""

    frames: torch.Tensor
    start: int


@register_sequence_model("transformer", takes_grid=True)
class FrameTransformer(nn.Module):
    """Causal transformer over frame tokens on (B, T, dim, H, W); see the module docstring.

    Args:
        dim: channels of input and output frames.
        height, width: the frame size (the token convolution covers the whole frame, or
            one pixel with ``tokens="pixel"``).
        embed_dim: token width; must be divisible by ``heads``.
        depth: number of transformer layers.
        heads: attention heads.
        mlp_dim: hidden width of each layer's MLP.
        window: frames a query may attend to, itself included (reference: 1500).
        positions: "sinusoidal" (fixed) or "learned" absolute token positions.
        max_len: the number of frames a state may reach (positions: max_len · n tokens).
        dropout: on the attention and MLP residual branches.
        cache: which state ``step``/``init_state`` use by default: KV cache (True) or the
            paper's no-cache sliding window of input frames (False).
        head: one of :data:`HEADS`: "norm" (final LayerNorm, then the transposed
            convolution) or "teco" (the transposed convolution, GELU, LayerNorm over each
            output pixel's channels: TECO's temporal transformer's head).
        tokens: one of :data:`TOKENS`: "frame" (one token per frame) or "pixel" (n = H·W
            tokens per frame, block-causal over frames).
    """

    def __init__(
        self,
        dim: int,
        height: int,
        width: int,
        embed_dim: int,
        depth: int,
        heads: int,
        mlp_dim: int,
        window: int = 1500,
        positions: str = "sinusoidal",
        max_len: int = 2048,
        dropout: float = 0.0,
        cache: bool = True,
        head: str = "norm",
        tokens: str = "frame",
    ) -> None:
        super().__init__()
        for name, value in [
            ("dim", dim),
            ("height", height),
            ("width", width),
            ("embed_dim", embed_dim),
            ("depth", depth),
            ("heads", heads),
            ("mlp_dim", mlp_dim),
            ("window", window),
            ("max_len", max_len),
        ]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if embed_dim % heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by heads ({heads})")
        if positions not in ("sinusoidal", "learned"):
            raise ValueError(f"positions must be 'sinusoidal' or 'learned', got {positions!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if tokens not in TOKENS:
            raise ValueError(f"tokens must be one of {TOKENS}, got {tokens!r}")
        self.dim, self.height, self.width = dim, height, width
        self.embed_dim, self.depth, self.heads = embed_dim, depth, heads
        self.window, self.max_len, self.positions = window, max_len, positions
        self.cache, self.head, self.tokens = cache, head, tokens
        self.n = height * width if tokens == "pixel" else 1  # tokens per frame
        kernel = (height, width) if tokens == "frame" else (1, 1)
        # lecun-normal, zero bias, LayerNorm eps 1e-6: the reference's flax defaults
        self.embed = flax_conv_(nn.Conv2d(dim, embed_dim, kernel, stride=kernel))
        if positions == "learned":
            self.pos = nn.Parameter(torch.randn(max_len * self.n, embed_dim) * 0.02)
        else:
            table = sinusoidal_positions(max_len * self.n, embed_dim)
            self.register_buffer("pos", table, persistent=False)
        self.layers = nn.ModuleList(
            TransformerLayer(embed_dim, heads, mlp_dim, dropout) for _ in range(depth)
        )
        if head == "teco":  # GELU as flax's nn.gelu (tanh), LayerNorm eps as flax's
            self.final_act: nn.Module = nn.GELU(approximate="tanh")
            self.final_norm: nn.Module = ChannelLayerNorm(dim, eps=FLAX_NORM_EPS)
        else:
            self.final_act = nn.Identity()
            self.final_norm = nn.LayerNorm(embed_dim, eps=FLAX_NORM_EPS)
        self.activation_checkpointing = False  # recompute each layer in backward
        self.unembed = flax_conv_(nn.ConvTranspose2d(embed_dim, dim, kernel, stride=kernel))

    # ----- pieces -------------------------------------------------------------------------

    def _check_input(self, x: torch.Tensor, name: str, ndim: int) -> torch.Tensor:
        x = (check_video if ndim == 5 else check_frame)(x, name, self.dim)
        if tuple(x.shape[-2:]) != (self.height, self.width):
            raise ValueError(
                f"{name} frames must be {self.height}x{self.width} (this model's token "
                f"convolution covers the whole frame), got shape {tuple(x.shape)}"
            )
        want = self.embed.weight.dtype
        if x.dtype != want:
            raise TypeError(f"{name} has dtype {x.dtype} but the model's parameters are {want}")
        return x

    def _tokens(self, x: torch.Tensor, first: int) -> torch.Tensor:
        """Frames (B, T, dim, H, W) at frames first.. -> tokens (B, T·n, E) with positions."""
        b, t = x.shape[:2]
        if first + t > self.max_len:
            raise ValueError(
                f"sequence reaches frame {first + t} but max_len is {self.max_len}; "
                "build the model with a larger max_len"
            )
        if self.tokens == "pixel":  # the 1×1 token convolution as one matmul per pixel
            w = self.embed.weight.view(self.embed_dim, self.dim)
            tok = F.linear(fold_time(x).flatten(2).transpose(1, 2), w, self.embed.bias)
        else:
            tok = self.embed_frames(fold_time(x))
        tok = tok.reshape(b, t * self.n, self.embed_dim)
        return tok + self.pos[first * self.n : (first + t) * self.n].to(tok.dtype)

    def _frames(self, z: torch.Tensor) -> torch.Tensor:
        """Tokens (B, T·n, E) -> frames (B, T, dim, H, W): final LayerNorm, then the deconv;
        with ``head="teco"`` the deconv, GELU, then the LayerNorm over channels."""
        b, t = z.shape[0], z.shape[1] // self.n
        if self.head != "teco":
            z = self.final_norm(z)
        if self.tokens == "pixel":  # the 1×1 transposed convolution per pixel
            w = self.unembed.weight.view(self.embed_dim, self.dim)
            y = (z @ w + self.unembed.bias).view(b * t, self.height, self.width, self.dim)
            y = y.permute(0, 3, 1, 2)
        else:
            y = self.unembed_tokens(z.reshape(b * t, self.embed_dim))
        if self.head == "teco":
            y = self.final_norm(self.final_act(y))
        return y.reshape(b, t, self.dim, self.height, self.width)

    def embed_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, dim, H, W) -> (N, E): ``self.embed`` (kernel = stride = frame) as one matmul
        (``tokens="frame"``).

        A convolution whose kernel covers the whole frame is a linear map of the flattened
        frame; as a matmul it is ~20x faster on CPU (forward + backward) than the
        convolution call, which stays the reference (``self.embed(frames)``).
        """
        w = self.embed.weight
        flat = frames.reshape(frames.shape[0], -1)
        return F.linear(flat, w.reshape(w.shape[0], -1), self.embed.bias)

    def unembed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, E) -> (N, dim, H, W): ``self.unembed`` (transposed conv) as one matmul
        (``tokens="frame"``)."""
        w = self.unembed.weight  # (E, dim, H, W)
        y = tokens @ w.reshape(w.shape[0], -1)
        y = y.view(tokens.shape[0], self.dim, self.height, self.width)
        return y + self.unembed.bias[:, None, None]

    def _run(
        self, x: torch.Tensor, first: int, past: list[KVCache] | None, outputs_from: int = 0
    ) -> tuple[torch.Tensor, list[KVCache]]:
        """Frames x (B, T, ...) at positions first..first+T-1, after ``past`` keys/values.

        Returns the output frames of x[:, outputs_from:] (the no-cache re-runs decode only
        the frames they return) and the updated caches.
        """
        z = self._tokens(x, first)
        length = first + x.shape[1]
        new = []
        for k, layer in enumerate(self.layers):
            pk, pv = (past[k].keys, past[k].values) if past is not None else (None, None)
            z, keys, values = checkpointed(
                layer, z, pk, pv, self.window, self.n, enabled=self.activation_checkpointing
            )
            keep = (self.window - 1) * self.n  # the last window - 1 frames
            cut = max(keys.shape[2] - keep, 0)
            new.append(KVCache(keys[:, :, cut:], values[:, :, cut:], length))
        return self._frames(z[:, outputs_from * self.n :]), new

    # ----- states -------------------------------------------------------------------------

    def init_state(self, batch: int, height: int, width: int) -> list[KVCache] | FrameWindow:
        """An empty state of the default kind (``cache``): KV caches or a frame window."""
        return (
            self.init_cache(batch, height, width)
            if self.cache
            else self.init_window(batch, height, width)
        )

    def _check_size(self, height: int, width: int) -> None:
        if (height, width) != (self.height, self.width):
            raise ValueError(
                f"this model works on {self.height}x{self.width} frames, got {height}x{width}"
            )

    def init_cache(self, batch: int, height: int, width: int) -> list[KVCache]:
        """Empty KV caches, one per layer: keys/values (batch, heads, 0, embed_dim/heads)."""
        self._check_size(height, width)
        w = self.embed.weight
        empty = w.new_zeros(batch, self.heads, 0, self.embed_dim // self.heads)
        return [KVCache(empty, empty, 0) for _ in range(self.depth)]

    def init_window(self, batch: int, height: int, width: int) -> FrameWindow:
        """An empty no-cache state: (batch, 0, dim, height, width) frames starting at 0."""
        self._check_size(height, width)
        w = self.embed.weight
        return FrameWindow(w.new_zeros(batch, 0, self.dim, height, width), 0)

    def _check_cache(self, states: object, batch: int) -> list[KVCache]:
        if not isinstance(states, (list, tuple)) or len(states) != self.depth:
            raise ValueError(f"states must be a list of {self.depth} KVCache entries or None")
        out = []
        for k, c in enumerate(states):
            if c is None:
                c = self.init_cache(batch, self.height, self.width)[k]
            if not isinstance(c, KVCache):
                raise TypeError(f"states[{k}] must be a KVCache, got {type(c).__name__}")
            want = (batch, self.heads, None, self.embed_dim // self.heads)
            for name, t in (("keys", c.keys), ("values", c.values)):
                if t.dim() != 4 or any(
                    w is not None and w != s for w, s in zip(want, t.shape, strict=True)
                ):
                    raise ValueError(
                        f"states[{k}].{name} must have shape (B={batch}, heads={self.heads}, "
                        f"S, {self.embed_dim // self.heads}), got {tuple(t.shape)}"
                    )
            if (
                c.keys.shape[2] % self.n
                or c.keys.shape[2] > min(c.length, self.window - 1) * self.n
            ):
                raise ValueError(
                    f"states[{k}] holds {c.keys.shape[2]} tokens ({self.n} a frame) but has "
                    f"seen {c.length} frames with window {self.window}"
                )
            if out and c.length != out[0].length:
                raise ValueError("the layers' KV caches disagree on the number of frames seen")
            out.append(c)
        return out

    def _check_window(self, state: FrameWindow, batch: int) -> FrameWindow:
        frames = state.frames
        if not isinstance(frames, torch.Tensor):
            raise TypeError(f"FrameWindow.frames must be a tensor, got {type(frames).__name__}")
        if (
            frames.dim() != 5
            or frames.shape[0] != batch
            or (tuple(frames.shape[2:]) != (self.dim, self.height, self.width))
        ):
            raise ValueError(
                f"FrameWindow.frames must be (B={batch}, S, {self.dim}, {self.height}, "
                f"{self.width}), got {tuple(frames.shape)}"
            )
        if frames.shape[1] > self.window - 1 or state.start < 0:
            raise ValueError(
                f"FrameWindow holds {frames.shape[1]} frames from {state.start}; at most "
                f"window - 1 = {self.window - 1} frames from a position >= 0 are allowed"
            )
        return state

    # ----- the interface ------------------------------------------------------------------

    def forward(
        self,
        x: torch.Tensor,
        states: list[KVCache] | FrameWindow | None = None,
        *,
        check_values: bool | None = None,
        sequence_group: object = None,
    ) -> tuple[torch.Tensor, list[KVCache] | FrameWindow]:
        """x: (B, T, dim, H, W) -> (y (B, T, dim, H, W), the state after x).

        ``states``: None (an empty state of the default kind, ``cache``), a list of
        :class:`KVCache` (continue with cached keys/values), or a :class:`FrameWindow`
        (no cache: every output re-run from its last <= ``window`` input frames).
        ``check_values``: NaN/inf check of x (one host sync; None: the global switch
        ``convssm.set_value_checks``). The states are not read: a KV cache or frame window
        grows with the history, and checking it every frame would cost O(window).
        ``sequence_group``: refused (ValueError unless None): see ``convssm.nn.registry``.
        """
        refuse_sequence_group(
            "transformer",
            sequence_group,
            "attention across ranks' chunks would need ring attention, which is not implemented",
        )
        x = self._check_input(x, "x", 5)
        check_inputs_finite(check_values, x, "x")
        b = x.shape[0]
        if states is None:
            states = self.init_state(b, self.height, self.width)
        if isinstance(states, FrameWindow):
            return self._forward_nocache(x, self._check_window(states, b))
        cache = self._check_cache(states, b)
        return self._run(x, cache[0].length, cache)

    def _forward_nocache(
        self, x: torch.Tensor, state: FrameWindow
    ) -> tuple[torch.Tensor, FrameWindow]:
        """Each output from a re-run over its last <= window input frames (the paper's way)."""
        frames, start = state.frames, state.start
        if frames.shape[1] + x.shape[1] <= self.window:
            # One causal run covers it: the output at j sees exactly the frames a re-run
            # ending at j would see.
            full = torch.cat([frames, x], dim=1)
            y, _ = self._run(full, start, None, outputs_from=frames.shape[1])
            return y, self._next_window(full, start)
        ys = []
        for x_t in x.unbind(1):
            full = torch.cat([frames, x_t[:, None]], dim=1)
            y, _ = self._run(full, start, None, outputs_from=full.shape[1] - 1)
            ys.append(y[:, 0])
            frames, start = self._next_window(full, start)
        return torch.stack(ys, dim=1), FrameWindow(frames, start)

    def _next_window(self, frames: torch.Tensor, start: int) -> FrameWindow:
        keep = min(self.window - 1, frames.shape[1])
        n = frames.shape[1]
        return FrameWindow(frames[:, n - keep :], start + n - keep)

    def step(
        self,
        x_t: torch.Tensor,
        states: list[KVCache] | FrameWindow | None,
        *,
        check_values: bool | None = None,
    ) -> tuple[torch.Tensor, list[KVCache] | FrameWindow]:
        """x_t: (B, dim, H, W) -> (y_t (B, dim, H, W), new state), with either state kind."""
        x_t = self._check_input(x_t, "x_t", 4)
        check_inputs_finite(check_values, x_t, "x_t")
        if states is None:
            states = self.init_state(x_t.shape[0], self.height, self.width)
        y, states = self.forward(x_t[:, None], states, check_values=False)
        return y[:, 0], states

    def step_cached(
        self, x_t: torch.Tensor, cache: list[KVCache] | None, *, check_values: bool | None = None
    ) -> tuple[torch.Tensor, list[KVCache]]:
        """One frame with a KV cache (None = empty): O(window) work per frame."""
        if cache is None:
            cache = self.init_cache(x_t.shape[0], self.height, self.width)
        return self.step(x_t, cache, check_values=check_values)

    def step_nocache(
        self, x_t: torch.Tensor, history: FrameWindow | None, *, check_values: bool | None = None
    ) -> tuple[torch.Tensor, FrameWindow]:
        """One frame by re-running the window of past input frames (None = empty)."""
        if history is None:
            history = self.init_window(x_t.shape[0], self.height, self.width)
        return self.step(x_t, history, check_values=check_values)
