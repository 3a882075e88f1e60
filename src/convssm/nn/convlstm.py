"""ConvLSTM baseline (docs/design.md#baselines), with the same interface as ``ConvS5``.

One layer computes, for frames u_1..u_T of shape (B, C, H, W) with C = ``dim``::

    [i, f, o, g] = W * concat(u_k, h_{k-1}) + b        (one conv, 4*C output channels)
    c_k = sigmoid(f) * c_{k-1} + sigmoid(i) * tanh(g)
    h_k = sigmoid(o) * tanh(c_k)

(no peepholes), wrapped in :class:`~convssm.nn.common.ResidualNorm`:
``out = LN(u + dropout(h))`` (post-norm, default) or ``u + dropout(h(LN(u)))`` (pre-norm).

Fast path: a convolution over a channel concatenation is the sum of one convolution
over each part, so the gate convolution is split into an input-side convolution
(``W_u * u + b``) that runs once over ALL frames with time folded into batch, and a
hidden-side convolution (``W_h * h``, no bias) that is the only convolution left inside
the loop over time. :func:`convlstm_reference` runs the textbook single convolution over
the concatenation, step by step, with the same weights; the tests pin the two together.

States: one ``(h, c)`` pair per layer, each (B, C, H, W); ``None`` means zeros.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convssm.nn.common import (
    ResidualNorm,
    check_frame,
    check_inputs_finite,
    check_video,
    fold_time,
    run_layers,
    unfold_time,
)
from convssm.nn.init import he_normal_
from convssm.nn.registry import refuse_sequence_group, register_sequence_model

__all__ = ["ConvLSTMCell", "ConvLSTMBlock", "ConvLSTM", "convlstm_reference"]

LSTMState = tuple[torch.Tensor, torch.Tensor]


class ConvLSTMCell(nn.Module):
    """The ConvLSTM recurrence for ``dim`` channels, gate order (i, f, o, g).

    ``input_conv`` holds the input half of the gate kernel (and the bias), ``hidden_conv``
    the hidden half. Both are JAX's He-normal (truncated normal, std √(2 / fan_in)) with the
    fan-in of the full concatenated kernel (2 * dim * k * k), as the reference's one kernel
    over concat(u, h) is. The reference has no gate bias; ours starts at zero.
    """

    def __init__(self, dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        self.dim = dim
        self.kernel_size = kernel_size
        pad = kernel_size // 2
        self.input_conv = nn.Conv2d(dim, 4 * dim, kernel_size, padding=pad, bias=True)
        self.hidden_conv = nn.Conv2d(dim, 4 * dim, kernel_size, padding=pad, bias=False)
        fan = 2 * dim * kernel_size * kernel_size
        he_normal_(self.input_conv.weight, fan)
        he_normal_(self.hidden_conv.weight, fan)
        with torch.no_grad():
            self.input_conv.bias.zero_()

    def concat_weight(self) -> torch.Tensor:
        """The equivalent single kernel over concat(u, h): (4*dim, 2*dim, k, k)."""
        return torch.cat([self.input_conv.weight, self.hidden_conv.weight], dim=1)

    def input_gates(self, u: torch.Tensor) -> torch.Tensor:
        """Input-side gate pre-activations, any number of frames: (N, C, H, W) -> (N, 4C, H, W)."""
        return self.input_conv(u)

    def recur(self, gx: torch.Tensor, state: LSTMState) -> LSTMState:
        """One step from input-side pre-activations gx (B, 4C, H, W) and (h, c): returns (h, c)."""
        h, c = state
        gates = gx + self.hidden_conv(h)
        c_dim = self.dim
        sig = torch.sigmoid(gates[:, : 3 * c_dim])
        i, f, o = sig.chunk(3, dim=1)
        g = torch.tanh(gates[:, 3 * c_dim :])
        c = torch.addcmul(f * c, i, g)
        h = o * torch.tanh(c)
        return h, c

    def forward(self, u: torch.Tensor, state: LSTMState) -> LSTMState:
        """One step from a frame u (B, C, H, W): returns the new (h, c)."""
        return self.recur(self.input_gates(u), state)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, kernel_size={self.kernel_size}"


def convlstm_reference(cell: ConvLSTMCell, u: torch.Tensor, state: LSTMState) -> torch.Tensor:
    """Plain ConvLSTM: one conv over concat(u_k, h_{k-1}) per step, same weights as ``cell``.

    u: (B, T, C, H, W); state: (h, c) each (B, C, H, W). Returns h for every step, (B, T, C, H, W).
    """
    weight = cell.concat_weight()
    bias = cell.input_conv.bias
    pad = cell.kernel_size // 2
    h, c = state
    out = []
    for t in range(u.shape[1]):
        gates = F.conv2d(torch.cat([u[:, t], h], dim=1), weight, bias, padding=pad)
        i, f, o, g = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        out.append(h)
    return torch.stack(out, dim=1)


class ConvLSTMBlock(nn.Module):
    """One ConvLSTM layer inside the residual + LayerNorm wrapper: (B, T, C, H, W) -> same."""

    def __init__(
        self, dim: int, kernel_size: int = 3, prenorm: bool = False, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.dim = dim
        self.cell = ConvLSTMCell(dim, kernel_size)
        self.residual = ResidualNorm(dim, prenorm=prenorm, dropout=dropout)

    def forward(self, u: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        """u: (B, T, C, H, W), state (h, c) -> (out (B, T, C, H, W), last (h, c))."""
        batch = u.shape[0]
        v = self.residual.pre(u)
        gx = unfold_time(self.cell.input_gates(fold_time(v)), batch)
        hs = []
        for gx_t in gx.unbind(1):
            state = self.cell.recur(gx_t, state)
            hs.append(state[0])
        return self.residual.post(u, torch.stack(hs, dim=1)), state

    def step(self, u_t: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        """u_t: (B, C, H, W), state (h, c) -> (out (B, C, H, W), new (h, c))."""
        state = self.cell(self.residual.pre(u_t), state)
        return self.residual.post(u_t, state[0]), state


@register_sequence_model("convlstm")
class ConvLSTM(nn.Module):
    """A stack of ``depth`` ConvLSTM layers of width ``dim`` on (B, T, dim, H, W).

    Interface shared by all sequence models: ``forward(x, states=None) -> (y, states)``,
    ``step(x_t, states) -> (y_t, states)``, ``init_state(batch, height, width)``;
    ``states`` is a list with one (h, c) pair per layer (``None`` = zeros).
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        kernel_size: int = 3,
        prenorm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.dim = dim
        self.depth = depth
        self.layers = nn.ModuleList(
            ConvLSTMBlock(dim, kernel_size, prenorm=prenorm, dropout=dropout) for _ in range(depth)
        )
        self.activation_checkpointing = False  # recompute each layer in backward

    def init_state(self, batch: int, height: int, width: int) -> list[LSTMState]:
        """Zero (h, c) for every layer, each (batch, dim, height, width)."""
        p = self.layers[0].cell.input_conv.weight
        shape = (batch, self.dim, height, width)
        return [(p.new_zeros(shape), p.new_zeros(shape)) for _ in range(self.depth)]

    def _check_dtype(self, x: torch.Tensor, name: str) -> None:
        want = self.layers[0].cell.input_conv.weight.dtype
        if x.dtype != want:
            raise TypeError(f"{name} has dtype {x.dtype} but the model's parameters are {want}")

    def _check_states(
        self, states: list[LSTMState | None] | None, like: torch.Tensor
    ) -> list[LSTMState]:
        b, _, h, w = like.shape
        if states is None:
            return self.init_state(b, h, w)
        if not isinstance(states, (list, tuple)) or len(states) != self.depth:
            raise ValueError(
                f"states must be a list of {self.depth} (h, c) pairs (one per layer) or None"
            )
        out = []
        zeros = None
        for k, s in enumerate(states):
            if s is None:
                zeros = zeros or self.init_state(b, h, w)
                out.append(zeros[k])
                continue
            if not isinstance(s, (list, tuple)) or len(s) != 2:
                raise ValueError(f"states[{k}] must be an (h, c) pair, got {type(s).__name__}")
            for name, t in zip(("h", "c"), s, strict=True):
                t = check_frame(t, f"states[{k}].{name}", self.dim)
                if t.dtype != like.dtype:
                    raise TypeError(
                        f"states[{k}].{name} has dtype {t.dtype}, the input has {like.dtype}"
                    )
                if tuple(t.shape) != tuple(like.shape):
                    raise ValueError(
                        f"states[{k}].{name} must have shape {tuple(like.shape)}, "
                        f"got {tuple(t.shape)}"
                    )
            out.append((s[0], s[1]))
        return out

    def forward(
        self,
        x: torch.Tensor,
        states: list[LSTMState | None] | None = None,
        *,
        check_values: bool | None = None,
        sequence_group: object = None,
    ) -> tuple[torch.Tensor, list[LSTMState]]:
        """x: (B, T, dim, H, W) -> (y (B, T, dim, H, W), last (h, c) of every layer).

        ``check_values``: NaN/inf check of x and states (one host sync; None: the global
        switch ``convssm.set_value_checks``). The layers below read no values.
        ``sequence_group``: refused (ValueError unless None): see ``convssm.nn.registry``.
        """
        refuse_sequence_group(
            "convlstm",
            sequence_group,
            "ConvLSTM is nonlinear in time (a chunk's starting state needs the chunks before it)",
        )
        x = check_video(x, "x", self.dim)
        self._check_dtype(x, "x")
        check_inputs_finite(check_values, x, "x", states)
        states = self._check_states(states, x[:, 0])
        return run_layers(self.layers, x, states, checkpoint=self.activation_checkpointing)

    def step(
        self,
        x_t: torch.Tensor,
        states: list[LSTMState | None] | None,
        *,
        check_values: bool | None = None,
    ) -> tuple[torch.Tensor, list[LSTMState]]:
        """x_t: (B, dim, H, W) -> (y_t (B, dim, H, W), new (h, c) of every layer)."""
        x_t = check_frame(x_t, "x_t", self.dim)
        self._check_dtype(x_t, "x_t")
        check_inputs_finite(check_values, x_t, "x_t", states)
        states = self._check_states(states, x_t)
        return run_layers(self.layers, x_t, states, step=True)
