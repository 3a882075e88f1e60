"""ConvS5Block (one layer, docs/design.md#the-block-around-the-recurrence) and ConvS5 (a stack
of them, one state per layer).

One block, post-norm (the reference's default)::

    y   = ConvS5SSM(u, x0)
    h   = GroupNorm → GELU → conv k_D → GroupNorm → GELU → conv k_D   (on y)
    y   = GELU(y + h)
    out = LayerNorm_channels(u + Dropout(y))        # one dropout mask for all time steps

Pre-norm: ``out = u + Dropout(block(LayerNorm(u)))``.

``output="s5"`` replaces the resnet output block by S5's (the reference's ``S5SSM``, used by
its ``teco_S5``; meant for 1×1 kernels)::

    y   = GELU(y + D ⊙ v)            v: the SSM's input (u, or LayerNorm(u) when pre-norm)
    y   = y ⊙ sigmoid(W y + b)       W: a 1×1 convolution (S5's "half GLU")

As in the reference's flax code: GELU is flax's default ``nn.gelu``, the tanh approximation
(``activation="gelu_exact"`` gives torch's erf form), GroupNorm eps is 1e-6, and the output
block's convolutions are lecun-normal with zero biases (:mod:`convssm.nn.init`).
"""

from __future__ import annotations

from typing import Any

import torch
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
from convssm.nn.convs5_ssm import ConvS5SSM
from convssm.nn.init import FLAX_NORM_EPS, flax_conv_
from convssm.nn.registry import register_sequence_model
from convssm.ops.step_conv import step_conv2d

__all__ = [
    "ConvS5Block",
    "ConvS5",
    "ResNetOutput",
    "S5Output",
    "OUTPUTS",
    "ACTIVATIONS",
    "make_activation",
]

ACTIVATIONS = {
    "gelu": lambda: nn.GELU(approximate="tanh"),  # flax's nn.gelu default: the reference's
    "gelu_exact": nn.GELU,  # torch's default, the erf form
    "relu": nn.ReLU,
    "swish": nn.SiLU,
    "elu": nn.ELU,
}
"""The reference's ``layer_activation`` choices; "gelu" means flax's (tanh-approximated)."""


def make_activation(name: str) -> nn.Module:
    """The activation module called ``name`` in :data:`ACTIVATIONS`."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class ResNetOutput(nn.Module):
    """The "resnet" output block on frames: (N, U, H, W) -> (N, U, H, W).

    ``GELU(y + conv(GELU(GN(conv(GELU(GN(y)))))))``, GroupNorm eps 1e-6, lecun-normal
    convolutions with zero biases (the reference's flax ``ResnetBlock``).
    """

    def __init__(
        self, dim: int, kernel_size: int = 3, norm_groups: int = 32, activation: str = "gelu"
    ) -> None:
        super().__init__()
        if dim % norm_groups:
            raise ValueError(
                f"dim ({dim}) must be divisible by norm_groups ({norm_groups}) for GroupNorm; "
                "pass norm_groups that divides dim"
            )
        self.norm1 = nn.GroupNorm(norm_groups, dim, eps=FLAX_NORM_EPS)
        self.conv1 = flax_conv_(nn.Conv2d(dim, dim, kernel_size, padding="same"))
        self.norm2 = nn.GroupNorm(norm_groups, dim, eps=FLAX_NORM_EPS)
        self.conv2 = flax_conv_(nn.Conv2d(dim, dim, kernel_size, padding="same"))
        self.act = make_activation(activation)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(y)))
        h = self.conv2(self.act(self.norm2(h)))
        return self.act(y + h)

    def step(self, y: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for the frames of one step, its convolutions through
        ``convssm.ops.step_conv2d`` (the path chosen per shape); the generation loop's."""
        c1, c2 = self.conv1, self.conv2
        h = step_conv2d(self.act(self.norm1(y)), c1.weight, c1.bias, c1.padding)
        h = step_conv2d(self.act(self.norm2(h)), c2.weight, c2.bias, c2.padding)
        return self.act(y + h)


class S5Output(nn.Module):
    """S5's output on frames: (y, v) (N, U, H, W) each -> (N, U, H, W).

    ``g = GELU(y + D ⊙ v)``, then ``g ⊙ sigmoid(W g + b)`` with W a 1×1 convolution: the
    feedthrough D (one weight per channel, N(0, 1) as the reference draws it) and the half
    GLU (lecun-normal, zero bias: flax's ``Dense``) of the reference's ``S5SSM``.
    """

    def __init__(self, dim: int, activation: str = "gelu") -> None:
        super().__init__()
        self.feedthrough = nn.Parameter(torch.randn(dim))
        self.gate = flax_conv_(nn.Conv2d(dim, dim, 1))
        self.act = make_activation(activation)

    def forward(self, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        g = self.act(y + self.feedthrough[:, None, None].to(y.dtype) * v)
        return g * torch.sigmoid(self.gate(g))


OUTPUTS = ("resnet", "s5")
"""The output blocks of :class:`ConvS5Block`: the reference ConvS5's and S5's."""


class ConvS5Block(nn.Module):
    """One ConvS5 layer: SSM, output block, dropout, residual, LayerNorm.

    Args:
        dim: U, channels in and out.
        state_dim: P, complex state channels.
        kernel_size: k_B = k_C of the SSM.
        output_kernel_size: k_D of the output block's convolutions.
        norm_groups: GroupNorm groups in the resnet output block (dim must be divisible).
        activation: of the output block, one of :data:`ACTIVATIONS`; the default "gelu" is
            the reference's (flax's tanh approximation), "gelu_exact" torch's erf form.
        output: the output block, one of :data:`OUTPUTS`: "resnet" (:class:`ResNetOutput`,
            the reference ConvS5's ``C_D_config: resnet``) or "s5" (:class:`S5Output`, S5's
            feedthrough and half GLU; ``output_kernel_size`` and ``norm_groups`` unused).
        prenorm: pre-norm instead of the default post-norm.
        dropout: dropout probability, one mask shared by all time steps.
        **ssm_options: passed to :class:`ConvS5SSM` (blocks, clip_eigs, discretization, ...).

    Shapes: forward x (B, T, U, H, W), state (B, P, H, W) -> (B, T, U, H, W), state;
    step x_t (B, U, H, W).
    """

    options_passed_to = ConvS5SSM  # **ssm_options (convssm.nn.registry)

    def __init__(
        self,
        dim: int,
        state_dim: int,
        kernel_size: int = 3,
        *,
        output_kernel_size: int = 3,
        norm_groups: int = 32,
        activation: str = "gelu",
        output: str = "resnet",
        prenorm: bool = False,
        dropout: float = 0.0,
        **ssm_options,
    ) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.dim = dim
        self.ssm = ConvS5SSM(dim, state_dim, kernel_size, **ssm_options)
        if output == "s5":
            self.output: nn.Module = S5Output(dim, activation)
        else:
            self.output = ResNetOutput(dim, output_kernel_size, norm_groups, activation)
        self.residual = ResidualNorm(dim, prenorm=prenorm, dropout=dropout)

    def init_state(self, batch: int, height: int, width: int) -> torch.Tensor:
        return self.ssm.init_state(batch, height, width)

    def forward(
        self, x: torch.Tensor, state: torch.Tensor | None = None, *, group: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``group``: context parallelism, passed to the SSM (``ConvS5SSM.forward``); the
        norm, dropout and output block are per frame."""
        v = self.residual.pre(x)
        y, state = self.ssm(v, state, group=group)
        y = unfold_time(self._output(fold_time(y), fold_time(v), False), x.shape[0])
        return self.residual.post(x, y), state

    def _output(self, y: torch.Tensor, v: torch.Tensor, step: bool) -> torch.Tensor:
        """The output block on the SSM's output y and input v (N, U, H, W); ``step``: the
        resnet block's per-step convolutions (:meth:`ResNetOutput.step`)."""
        if isinstance(self.output, S5Output):
            return self.output(y, v)
        return self.output.step(y) if step else self.output(y)

    def step(
        self, x_t: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.residual.pre(x_t)
        y, state = self.ssm.step(v, state)
        return self.residual.post(x_t, self._output(y, v, True)), state

    def step_ref(
        self, x_t: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`step` with the SSM's complex reference step (``ConvS5SSM.step_ref``)."""
        v = self.residual.pre(x_t)
        y, state = self.ssm.step_ref(v, state)
        return self.residual.post(x_t, self._output(y, v, False)), state

    def step_real(
        self, x_t: torch.Tensor, state: torch.Tensor, kernels: tuple | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`step` on the real state layout (``ConvS5SSM.step_real``), no checks."""
        v = self.residual.pre(x_t)
        y, state = self.ssm.step_real(v, state, kernels)
        return self.residual.post(x_t, self._output(y, v, True)), state


@register_sequence_model("convs5", splits_time=True)
class ConvS5(nn.Module):
    """A stack of :class:`ConvS5Block`, each with its own state.

    Args:
        dim: channels of input and output (and of every layer).
        state_dim: P of every layer.
        depth: number of layers.
        kernel_size: SSM kernel size k_B = k_C.
        **block_options: passed to every :class:`ConvS5Block`.

    Shapes:
        forward: x (B, T, dim, H, W), states list of (B, P, H, W) complex or None
                 -> y (B, T, dim, H, W), states (the last state of every layer)
        step:    x_t (B, dim, H, W), states -> y_t (B, dim, H, W), states
    """

    options_passed_to = ConvS5Block  # **block_options (convssm.nn.registry)

    def __init__(
        self, dim: int, state_dim: int = 128, depth: int = 8, kernel_size: int = 3, **block_options
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.dim, self.state_dim, self.depth = dim, state_dim, depth
        self.layers = nn.ModuleList(
            ConvS5Block(dim, state_dim, kernel_size, **block_options) for _ in range(depth)
        )
        self.activation_checkpointing = False  # recompute each layer in backward

    def init_state(self, batch: int, height: int, width: int) -> list[torch.Tensor]:
        return [layer.init_state(batch, height, width) for layer in self.layers]

    def _check_states(self, states: object) -> list:
        if states is None:
            return [None] * self.depth
        if not isinstance(states, list | tuple) or len(states) != self.depth:
            got = len(states) if isinstance(states, list | tuple) else type(states).__name__
            raise ValueError(f"states must be a list of {self.depth} layer states, got {got}")
        return list(states)

    def forward(
        self,
        x: torch.Tensor,
        states: list[torch.Tensor] | None = None,
        *,
        check_values: bool | None = None,
        sequence_group: Any = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``check_values``: NaN/inf check of x and states (one host sync; None: the global
        switch ``convssm.set_value_checks``). The layers below read no values.

        ``sequence_group``: a torch.distributed process group for context parallelism. Each
        rank passes its contiguous chunk of time as x (ranks in group order, every chunk at
        least one frame long, the same batch and frame size everywhere) and gets back its
        chunk of the whole-sequence output, exact in values and gradients: each layer's
        scan passes the group to ``linear_scan``; everything else is per frame. ``states``
        is the state before the whole sequence, read on the group's rank 0 only. The
        returned states are, on each rank, the whole-sequence states at the end of that
        rank's chunk: on the last rank the final states of the whole sequence (they are not
        broadcast; a rank that needs them broadcasts them from the last rank). Parameter
        gradients are per-rank parts: sum them over the group (as data-parallel training's
        all-reduce does). Dropout masks are drawn per rank, so the outputs equal one
        process's only with equal RNG states on every rank (or no dropout).
        """
        check_video(x, "x", self.dim)
        states = self._check_states(states)
        check_inputs_finite(check_values, x, "x", states)
        return run_layers(
            self.layers, x, states, checkpoint=self.activation_checkpointing, group=sequence_group
        )

    def step(
        self,
        x_t: torch.Tensor,
        states: list[torch.Tensor] | None = None,
        *,
        check_values: bool | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One frame; ``check_values`` as in :meth:`forward`."""
        check_frame(x_t, "x_t", self.dim)
        states = self._check_states(states)
        check_inputs_finite(check_values, x_t, "x_t", states)
        return run_layers(self.layers, x_t, states, step=True)

    # The real step, for generation loops: the states as real (B, 2P, H, W) tensors and the
    # discretised kernels fetched once per loop, so that a compiled loop takes them as inputs.
    def to_real_states(self, states: list[torch.Tensor]) -> list[torch.Tensor]:
        """Complex states (as :meth:`step` takes them) -> the real layout of :meth:`step_real`."""
        return [layer.ssm.to_real_state(s) for layer, s in zip(self.layers, states, strict=True)]

    def from_real_states(self, states: list[torch.Tensor]) -> list[torch.Tensor]:
        """The inverse of :meth:`to_real_states`."""
        return [layer.ssm.from_real_state(s) for layer, s in zip(self.layers, states, strict=True)]

    def real_step_kernels(self) -> list[tuple[torch.Tensor, ...]]:
        """Every layer's ``ConvS5SSM.real_step_kernels()`` (cached while parameters are
        unchanged), for :meth:`step_real`."""
        return [layer.ssm.real_step_kernels() for layer in self.layers]

    def step_real(
        self,
        x_t: torch.Tensor,
        states: list[torch.Tensor],
        kernels: list[tuple[torch.Tensor, ...]],
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One frame on real states (:meth:`to_real_states`) with :meth:`real_step_kernels`;
        equal to :meth:`step`. No checks: for loops whose entry point checked once."""
        new_states = []
        for layer, state, k in zip(self.layers, states, kernels, strict=True):
            x_t, state = layer.step_real(x_t, state, k)
            new_states.append(state)
        return x_t, new_states
