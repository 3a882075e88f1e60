"""Small pieces shared by every sequence model in ``convssm.nn``.

- :class:`ChannelLayerNorm`: LayerNorm over the channel axis of (N, C, H, W) maps,
  applied independently at every pixel (the reference's ``nn.LayerNorm`` on NHWC).
- :class:`TimeSharedDropout`: dropout whose mask is shared by all time steps.
- :func:`fold_time` / :func:`unfold_time`: (B, T, C, H, W) <-> (B*T, C, H, W), so every
  convolution sees all frames in one call.
- :func:`check_video` / :func:`check_frame`: input checks (rank, channels, dtype: no values
  are read, so no host sync) with messages that name the problem.
- :func:`run_layers`: thread input and per-layer states through a stack.
- :func:`checkpointed`: call a layer with activation checkpointing (recomputed in backward).
- :func:`detach_states`: cut the autograd graph of any sequence model's states.
- :func:`check_inputs_finite`: the NaN/inf check of a sequence model's entry point, one host sync.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from convssm._checks import check_all_finite, check_tensor, resolve_check_values

__all__ = [
    "ChannelLayerNorm",
    "TimeSharedDropout",
    "ResidualNorm",
    "fold_time",
    "unfold_time",
    "check_video",
    "check_frame",
    "run_layers",
    "check_inputs_finite",
    "checkpointed",
    "detach_states",
]


class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels at every pixel: (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), (self.channels,), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps}"


class TimeSharedDropout(nn.Module):
    """Dropout on (B, T, C, H, W) with one mask per sequence, shared by all T frames.

    In step mode (input (B, C, H, W)) dropout is only meaningful at evaluation, where it
    is the identity; a training-mode step with p > 0 is rejected, since a per-step mask
    would not match the parallel mode.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.dim() != 5:
            raise ValueError(
                "TimeSharedDropout in training mode needs (B, T, C, H, W) input; "
                "call .eval() before step-by-step generation"
            )
        b, _, c, h, w = x.shape
        keep = torch.empty(b, 1, c, h, w, device=x.device, dtype=x.dtype).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) -> (B*T, C, H, W)."""
    b, t = x.shape[:2]
    return x.reshape(b * t, *x.shape[2:])


def unfold_time(x: torch.Tensor, batch: int) -> torch.Tensor:
    """(B*T, C, H, W) -> (B, T, C, H, W)."""
    return x.reshape(batch, x.shape[0] // batch, *x.shape[1:])


def check_video(x: object, name: str, channels: int) -> torch.Tensor:
    """Check a real (B, T, C, H, W) sequence with ``channels`` channels (values unread)."""
    x = check_tensor(x, name, ndim=5, floating=True, finite=False)
    if x.shape[2] != channels:
        raise ValueError(
            f"{name} must have {channels} channels at dim 2 of (B, T, C, H, W), "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[1] == 0:
        raise ValueError(f"{name} has no time steps (shape {tuple(x.shape)})")
    return x


def check_frame(x: object, name: str, channels: int) -> torch.Tensor:
    """Check a real (B, C, H, W) frame with ``channels`` channels (values unread)."""
    x = check_tensor(x, name, ndim=4, floating=True, finite=False)
    if x.shape[1] != channels:
        raise ValueError(
            f"{name} must have {channels} channels at dim 1 of (B, C, H, W), "
            f"got shape {tuple(x.shape)}"
        )
    return x


def check_inputs_finite(
    check: bool | None, x: torch.Tensor, name: str, states: object = None
) -> None:
    """A sequence model's value check: NaN/inf in ``x`` and every tensor in ``states``.

    ``check`` is the entry point's ``check_values`` argument (None: the global switch,
    ``convssm.set_value_checks``). One host sync however deep the model; layers never call
    it, only the models' ``forward`` and ``step``.
    """
    if not resolve_check_values(check):
        return
    named = [(name, x)]
    stack = [("states", states)]
    while stack:
        label, s = stack.pop()
        if isinstance(s, torch.Tensor):
            named.append((label, s))
        elif isinstance(s, list | tuple):
            stack.extend((f"{label}[{k}]", v) for k, v in enumerate(s))
    check_all_finite(named)


class ResidualNorm(nn.Module):
    """The residual + LayerNorm wrapper around a sequence-mixing core
    (docs/design.md#the-block-around-the-recurrence).

    Post-norm (the reference's default): ``out = LN(u + dropout(core(u)))``.
    Pre-norm: ``out = u + dropout(core(LN(u)))``.

    Usage inside a block::

        v = self.residual.pre(u)            # LN(u) when pre-norm, else u
        y = core(v)
        out = self.residual.post(u, y)      # dropout, add, LN when post-norm

    Works on (B, T, C, H, W) and on single frames (B, C, H, W).
    """

    def __init__(self, dim: int, prenorm: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.prenorm = prenorm
        self.norm = ChannelLayerNorm(dim)
        self.dropout = TimeSharedDropout(dropout)

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            return unfold_time(self.norm(fold_time(x)), x.shape[0])
        return self.norm(x)

    def pre(self, u: torch.Tensor) -> torch.Tensor:
        return self._norm(u) if self.prenorm else u

    def post(self, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = u + self.dropout(y)
        return out if self.prenorm else self._norm(out)


def checkpointed(fn: Any, *args: Any, enabled: bool = True) -> Any:
    """``fn(*args)``, with activation checkpointing when ``enabled`` and autograd records:
    only the inputs are kept, and ``fn`` runs again during backward (with the RNG state
    of the first run, so dropout masks repeat). The gradients are those of the plain call.
    """
    if enabled and torch.is_grad_enabled():
        return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


def run_layers(
    layers: nn.ModuleList,
    x: torch.Tensor,
    states: list,
    *,
    step: bool = False,
    checkpoint: bool = False,
    group: Any = None,
) -> tuple[torch.Tensor, list]:
    """Thread ``x`` through a stack of layers, each with its own state.

    ``step=False`` calls ``layer(x, state)`` on (B, T, C, H, W); ``step=True`` calls
    ``layer.step(x, state)`` on one frame (B, C, H, W). ``checkpoint``: recompute each
    layer's forward during backward instead of keeping its activations (parallel mode).
    ``group``: a process group for context parallelism, passed as ``layer(x, state,
    group=group)`` (parallel mode only; None: not passed).
    Returns the output and the new state of every layer, in order.
    """
    if step and group is not None:
        raise ValueError("run_layers: a process group is for parallel mode, not step mode")
    new_states = []
    for layer, state in zip(layers, states, strict=True):
        if step:
            x, state = layer.step(x, state)
        else:
            fn = layer if group is None else functools.partial(layer, group=group)
            x, state = checkpointed(fn, x, state, enabled=checkpoint)
        new_states.append(state)
    return x, new_states


def detach_states(states: Any) -> Any:
    """``states`` with every tensor detached, any nesting of lists, tuples (named ones
    too) and dicts kept; other values (ints, None) unchanged."""
    if isinstance(states, torch.Tensor):
        return states.detach()
    if isinstance(states, tuple) and hasattr(states, "_fields"):
        return type(states)(*(detach_states(s) for s in states))
    if isinstance(states, (list, tuple)):
        return type(states)(detach_states(s) for s in states)
    if isinstance(states, dict):
        return {k: detach_states(v) for k, v in states.items()}
    return states
