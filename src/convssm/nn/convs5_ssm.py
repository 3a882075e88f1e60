"""ConvS5SSM: the linear core of ConvS5 (docs/design.md#the-convs5-layer). The recurrence lives
here.

For every pixel and state channel independently::

    x_k = Λ̄ ⊙ x_{k-1} + (B̄ * u_k)        x: (B, P, H, W) complex
    y_k = 2 · Re(C̃ * x_k)                 y: (B, U, H, W) real

``*`` is torch's ``conv2d`` (cross-correlation) with "same" padding. Λ is diagonal and shared
by all pixels; B̄ and C̃ are complex k×k kernels. Only one eigenvalue of each conjugate pair
is kept, hence the factor 2·Re.

Complex convolutions run as real ones: B̄ * u is one real convolution with 2P output
channels [Re B̄; Im B̄], and 2·Re(C̃ * x) is one real convolution over [Re x; Im x] with the
kernel [2·Re C̃, −2·Im C̃]. Convolutions see all frames in one call (time folded into batch);
the recurrence runs in complex64 (complex128 for float64 modules), also under autocast.

The recurrent step runs in real arithmetic (``step_real``): the state as real channel halves
[Re x; Im x] (B, 2P, H, W), the layout the C convolution reads, updated as
``x ← [Re B̄u; Im B̄u] + a ⊙ x + b ⊙ swap(x)`` with a = [Re Λ̄; Re Λ̄], b = [−Im Λ̄; Im Λ̄] and
swap([r; i]) = [i; r], which a compiler fuses into one loop (Inductor generates no code for
complex tensors). ``step`` keeps the complex state of its contract, converting at the
boundary; ``step_ref`` is the same step in complex arithmetic, the reference.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from convssm._checks import check_shape, check_tensor
from convssm.nn.common import check_frame, check_video
from convssm.nn.hippo import hippo_diagonal_init, random_diagonal_init
from convssm.ops import linear_scan
from convssm.ops.step_conv import step_conv2d

__all__ = ["ConvS5SSM"]

_COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def _he_normal(rows: int, cols: int, fan_in: int, generator: torch.Generator | None) -> np.ndarray:
    """JAX's ``he_normal``: truncated normal (±2σ) with variance 2 / fan_in, float64."""
    return _truncated(rows, cols, 2.0 / fan_in, generator)


def _truncated(
    rows: int, cols: int, variance: float, generator: torch.Generator | None
) -> np.ndarray:
    """JAX's ``variance_scaling(..., "truncated_normal")``: a normal truncated to ±2σ,
    rescaled to ``variance``, float64."""
    std = math.sqrt(variance) / 0.87962566103423978  # std of N(0,1) truncated to [-2, 2]
    t = torch.empty(rows, cols, dtype=torch.float64)
    if generator is None:
        nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std)
    else:
        nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std, generator=generator)
    return t.numpy()


class ConvS5SSM(nn.Module):
    """The ConvS5 state space layer.

    Args:
        dim: U, channels of input and output.
        state_dim: P, complex state channels (the reference's ``ssm_size / 2``).
        kernel_size: k for both B and C (the reference uses 3); or give ``kernel_size_b`` /
            ``kernel_size_c`` separately.
        blocks: HiPPO blocks (docs/design.md#initialisation); state_dim must be divisible by it.
        dt_min, dt_max: range of the log-uniform timescale initialisation.
        clip_eigs: clamp Re Λ ≤ −1e−4 in the forward pass so |Λ̄| < 1.
        discretization: ``"zoh"`` (the reference's) or ``"bilinear"``.
        projection_init: how B and C are drawn before the eigenbasis is applied:
            ``"convs5"`` (the reference ConvS5's: he-normal, C real) or ``"s5"`` (the
            reference S5's: lecun-normal with fan-in 2P, C complex, real and imaginary parts
            drawn alike).
        lambda_init: ``"hippo"`` (HiPPO-LegS, the reference's; see ``blocks``), ``"random"``
            (:func:`~convssm.nn.hippo.random_diagonal_init`, the initialisation ablation) or
            ``"real"``: HiPPO's decay rates (Re Λ = −½, trained) with Im Λ held at 0, a buffer
            that is not trained, so the state decays without rotating and what it holds
            after d frames differs from what it holds after d' frames only in amplitude.
            ``"real_log"``: no rotation either, and Re Λ held (a buffer) at P values evenly
            log-spaced over [−½, −10⁻⁴], so the state's timescales 1/(|Re Λ| Δ) reach from
            tens to millions of frames while the input gain (about Δ) stays that of Δ: slow
            modes that still hear their input. Only Δ (log-parameterised) moves the
            timescales in training; a directly trained Re Λ of 10⁻⁴ would be blown away by
            the first optimiser steps.
        generator: optional torch.Generator for a reproducible initialisation.

    Shapes:
        forward: u (B, T, U, H, W) real, state (B, P, H, W) complex or None
                 -> y (B, T, U, H, W), last state (B, P, H, W)
        step:    u_t (B, U, H, W), state (B, P, H, W) or None -> y_t (B, U, H, W), state
        step_real: u_t (B, U, H, W), state (B, 2P, H, W) real -> y_t, state (generation loops)
    """

    def __init__(
        self,
        dim: int,
        state_dim: int,
        kernel_size: int = 3,
        *,
        kernel_size_b: int | None = None,
        kernel_size_c: int | None = None,
        blocks: int = 1,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        clip_eigs: bool = False,
        discretization: str = "zoh",
        lambda_init: str = "hippo",
        projection_init: str = "convs5",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if dim < 1 or state_dim < 1:
            raise ValueError(f"dim and state_dim must be positive, got {dim}, {state_dim}")
        if discretization not in ("zoh", "bilinear"):
            raise ValueError(f"discretization must be 'zoh' or 'bilinear', got {discretization!r}")
        if projection_init not in ("convs5", "s5"):
            raise ValueError(f"projection_init must be 'convs5' or 's5', got {projection_init!r}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        kb = kernel_size if kernel_size_b is None else kernel_size_b
        kc = kernel_size if kernel_size_c is None else kernel_size_c
        if kb < 1 or kc < 1:
            raise ValueError(f"kernel sizes must be positive, got {kb}, {kc}")
        self.dim, self.state_dim = dim, state_dim
        self.kernel_size_b, self.kernel_size_c = kb, kc
        self.blocks, self.clip_eigs, self.discretization = blocks, clip_eigs, discretization

        if lambda_init in ("hippo", "real", "real_log"):
            lam, v = hippo_diagonal_init(state_dim, blocks)  # (P,), (2P, P)
        elif lambda_init == "random":
            if blocks != 1:
                raise ValueError("lambda_init='random' has no blocks; leave blocks at 1")
            lam, v = random_diagonal_init(state_dim, generator)
        else:
            raise ValueError(
                f"lambda_init must be 'hippo', 'random', 'real' or 'real_log', got {lambda_init!r}"
            )
        if projection_init == "s5":  # S5: lecun-normal, fan-in 2P for B and both parts of C
            var = 1.0 / (2 * state_dim)
            b_real = _truncated(2 * state_dim, dim * kb * kb, var, generator)
            c_real = _truncated(dim * kc * kc, 2 * state_dim, var, generator)
            c_real = c_real + 1j * _truncated(dim * kc * kc, 2 * state_dim, var, generator)
        else:
            b_real = _he_normal(2 * state_dim, dim * kb * kb, dim * kb * kb, generator)
            c_real = _he_normal(dim * kc * kc, 2 * state_dim, 2 * state_dim * kc * kc, generator)
        b_tilde = (v.conj().T @ b_real).reshape(state_dim, dim, kb, kb)  # V⁻¹ B
        c_tilde = (c_real @ v).reshape(dim, kc, kc, state_dim).transpose(0, 3, 1, 2)  # C V

        def param(x: np.ndarray) -> nn.Parameter:
            return nn.Parameter(torch.tensor(np.ascontiguousarray(x), dtype=torch.float32))

        if lambda_init == "real_log":  # held decay rates, saved with the weights
            rates = np.geomspace(0.5, 1e-4, state_dim) if state_dim > 1 else np.array([0.5])
            self.register_buffer("lambda_re", torch.tensor(-rates, dtype=torch.float32))
        else:
            self.lambda_re = param(lam.real)
        if lambda_init in ("real", "real_log"):  # no rotation: Im Λ is a fixed zero, saved
            self.register_buffer("lambda_im", torch.zeros(state_dim))
        else:
            self.lambda_im = param(lam.imag)
        self.b_re, self.b_im = param(b_tilde.real), param(b_tilde.imag)
        self.c_re, self.c_im = param(c_tilde.real), param(c_tilde.imag)
        u = torch.rand(state_dim, dtype=torch.float64, generator=generator)
        log_dt = math.log(dt_min) + u * (math.log(dt_max) - math.log(dt_min))
        self.log_step = nn.Parameter(log_dt.float())

    # ------------------------------------------------------------------ parameters
    def continuous_lambda(self) -> torch.Tensor:
        """Λ (P,) complex, with Re Λ clamped to ≤ −1e−4 when ``clip_eigs``."""
        re = self.lambda_re.clamp(max=-1e-4) if self.clip_eigs else self.lambda_re
        return torch.complex(re, self.lambda_im)

    def discretize(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Λ̄ (P,), B̄ (P, U, k_B, k_B), C̃ (U, P, k_C, k_C)), complex.

        ZOH: Λ̄ = exp(ΛΔ), B̄ = (Λ̄ − 1)/Λ · B̃. Bilinear: Λ̄ = (1 + ΛΔ/2)/(1 − ΛΔ/2),
        B̄ = Δ/(1 − ΛΔ/2) · B̃.
        """
        lam = self.continuous_lambda()
        step = torch.exp(self.log_step).to(lam.dtype)
        b_tilde = torch.complex(self.b_re, self.b_im)
        if self.discretization == "zoh":
            lam_bar = torch.exp(lam * step)
            gain = (lam_bar - 1) / lam
        else:
            inv = 1 / (1 - lam * step / 2)
            lam_bar = inv * (1 + lam * step / 2)
            gain = inv * step
        b_bar = gain[:, None, None, None] * b_tilde
        return lam_bar, b_bar, torch.complex(self.c_re, self.c_im)

    def _real_kernels(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Λ̄ (P,), the real B kernel (2P, U, k, k) and the real C kernel (U, 2P, k, k)."""
        lam_bar, b_bar, c_tilde = self.discretize()
        w_b = torch.cat([b_bar.real, b_bar.imag], dim=0)
        w_c = torch.cat([2 * c_tilde.real, -2 * c_tilde.imag], dim=1)
        return lam_bar, w_b, w_c

    def _parameter_key(self) -> tuple:
        """Changes whenever a parameter is modified in place (its version counter), replaced
        or moved (its storage), or the discretisation options change."""
        tensors = [*self.parameters(recurse=False), *self.buffers(recurse=False)]
        return (self.clip_eigs, self.discretization) + tuple(
            (p.data_ptr(), p._version, p.dtype, p.device) for p in tensors
        )

    def _step_kernels(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Λ̄ (P, 1, 1), B and C kernels for ``step_ref``, reused while the parameters are
        unchanged (see :meth:`real_step_kernels`)."""
        return self._cached_kernels()[:3]

    def real_step_kernels(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The kernels of :meth:`step_real`: ``a = [Re Λ̄; Re Λ̄]`` and ``b = [−Im Λ̄; Im Λ̄]``
        (2P, 1, 1) real, the real B kernel (2P, U, k, k) and the real C kernel (U, 2P, k, k).

        Reused while the parameters are unchanged: discretising costs about 15 small ops per
        frame, a large share of one step at small widths. The cache is used only when nothing
        needs their gradient (eval mode, grad disabled, not compiling); otherwise the kernels
        are recomputed, as in ``forward``. A compiled generation loop takes them as inputs.
        """
        return self._cached_kernels()[3:]

    def _cached_kernels(self) -> tuple[torch.Tensor, ...]:
        if self.training or torch.is_grad_enabled() or torch.compiler.is_compiling():
            return self._step_kernel_set()
        key = self._parameter_key()
        cache = self.__dict__.get("_step_cache")
        if cache is None or cache[0] != key:
            cache = (key, self._step_kernel_set())
            self.__dict__["_step_cache"] = cache  # a plain attribute: not state, not a buffer
        return cache[1]

    def _step_kernel_set(self) -> tuple[torch.Tensor, ...]:
        """(Λ̄ (P, 1, 1) complex, w_b, w_c, a, b, w_b, w_c): both steps' kernels."""
        lam_bar, w_b, w_c = self._real_kernels()
        lam = lam_bar[:, None, None]
        a = torch.cat([lam.real, lam.real], dim=0)
        b = torch.cat([-lam.imag, lam.imag], dim=0)
        return lam, w_b, w_c, a, b, w_b, w_c

    # ------------------------------------------------------------------ checks
    def _complex_dtype(self) -> torch.dtype:
        return _COMPLEX_OF[self.lambda_re.dtype]

    def _check_input_dtype(self, u: torch.Tensor, name: str) -> None:
        if u.dtype != self.lambda_re.dtype and not torch.is_autocast_enabled(u.device.type):
            raise TypeError(
                f"{name} has dtype {u.dtype} but the layer's parameters are "
                f"{self.lambda_re.dtype}; convert one of them"
            )

    def _check_state(self, state: object, batch: int, height: int, width: int) -> torch.Tensor:
        state = check_tensor(state, "state", ndim=4, complex_=True, finite=False)
        check_shape(state, "state", (batch, self.state_dim, height, width))
        if state.dtype != self._complex_dtype():
            raise TypeError(f"state must have dtype {self._complex_dtype()}, got {state.dtype}")
        return state

    def init_state(self, batch: int, height: int, width: int) -> torch.Tensor:
        """Zero state (B, P, H, W) in the layer's complex dtype and device."""
        return torch.zeros(
            batch,
            self.state_dim,
            height,
            width,
            dtype=self._complex_dtype(),
            device=self.lambda_re.device,
        )

    # ------------------------------------------------------------------ modes
    def forward(
        self, u: torch.Tensor, state: torch.Tensor | None = None, *, group: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Parallel mode: u (B, T, U, H, W), state (B, P, H, W) -> y (B, T, U, H, W), x_T.

        ``group``: a torch.distributed process group (context parallelism, see
        ``linear_scan``): u is this rank's contiguous chunk of time, y this rank's chunk of
        the whole-sequence output, x_T the whole-sequence state at the end of this rank's
        chunk; ``state`` is the state before the whole sequence and is read on the group's
        rank 0 only. The only layer that mixes time; the convolutions are per frame."""
        u = check_video(u, "u", self.dim)
        self._check_input_dtype(u, "u")
        batch, length, _, height, width = u.shape
        if state is not None:
            state = self._check_state(state, batch, height, width)
        lam_bar, w_b, w_c = self._real_kernels()
        real = self.lambda_re.dtype
        p = self.state_dim
        # Time-major fold, so the convolution output is already laid out (T, B, 2P, H, W).
        u_tm = u.transpose(0, 1).reshape(length * batch, self.dim, height, width)
        bu = F.conv2d(u_tm, w_b.to(u_tm.dtype), padding="same")
        bu = bu.view(length, batch, 2 * p, height, width).to(real)
        bu = torch.complex(bu[:, :, :p], bu[:, :, p:])  # (T, B, P, H, W)
        x = linear_scan(lam_bar[:, None, None], bu, state, check_values=False, group=group)
        # [Re x; Im x] as 2P channel planes: one permuted copy (faster than cat of strided views).
        xr = torch.view_as_real(x).permute(0, 1, 5, 2, 3, 4)
        xr = xr.reshape(length * batch, 2 * p, height, width)
        y = F.conv2d(xr.to(u_tm.dtype), w_c.to(u_tm.dtype), padding="same")
        y = y.view(length, batch, self.dim, height, width).transpose(0, 1)
        return y, x[-1]

    def step(
        self, u_t: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Recurrent mode, one frame: u_t (B, U, H, W), state (B, P, H, W) complex -> y_t,
        new state (complex). Runs :meth:`step_real`, converting the state at the boundary;
        :meth:`step_ref` is the same step in complex arithmetic."""
        u_t, state = self._step_inputs(u_t, state)
        y, x = self.step_real(u_t, self.to_real_state(state))
        return y, self.from_real_state(x)

    def _step_inputs(self, u_t: object, state: object) -> tuple[torch.Tensor, torch.Tensor]:
        """``step``'s checked frame (B, U, H, W) and complex state (zeros when None)."""
        u_t = check_frame(u_t, "u_t", self.dim)
        self._check_input_dtype(u_t, "u_t")
        batch, _, height, width = u_t.shape
        if state is None:
            return u_t, self.init_state(batch, height, width)
        return u_t, self._check_state(state, batch, height, width)

    def step_real(
        self,
        u_t: torch.Tensor,
        state: torch.Tensor,
        kernels: tuple[torch.Tensor, ...] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The step in real arithmetic, for generation loops: u_t (B, U, H, W), state
        (B, 2P, H, W) real ``[Re x; Im x]`` (:meth:`to_real_state`) -> y_t, new real state.

        ``x = [Re B̄u; Im B̄u] + a ⊙ x + b ⊙ swap(x)`` with ``swap([r; i]) = [i; r]``: one
        fused update once compiled (Inductor generates no code for complex tensors), and
        the state is already the channel layout the C convolution reads. ``kernels``:
        :meth:`real_step_kernels` (None: fetched here). No checks: the caller's. Its two
        convolutions run through ``convssm.ops.step_conv2d`` (oneDNN where PyTorch's own
        choice is slow for the shape: batch 1, several threads).
        """
        a, b, w_b, w_c = self.real_step_kernels() if kernels is None else kernels
        real = a.dtype
        bu = step_conv2d(u_t, w_b.to(u_t.dtype)).to(real)
        x = torch.addcmul(torch.addcmul(bu, a, state), b, state.roll(self.state_dim, 1))
        y = step_conv2d(x.to(u_t.dtype), w_c.to(u_t.dtype))
        return y, x

    def to_real_state(self, state: torch.Tensor) -> torch.Tensor:
        """Complex (B, P, H, W) -> real (B, 2P, H, W) ``[Re x; Im x]`` (a copy)."""
        return torch.cat([state.real, state.imag], dim=1)

    def from_real_state(self, state: torch.Tensor) -> torch.Tensor:
        """Real (B, 2P, H, W) ``[Re x; Im x]`` -> complex (B, P, H, W) (a copy)."""
        p = self.state_dim
        return torch.complex(state[:, :p], state[:, p:])

    def step_ref(
        self, u_t: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference of :meth:`step`: the same recurrence in complex arithmetic."""
        u_t, state = self._step_inputs(u_t, state)
        lam_bar, w_b, w_c = self._step_kernels()
        p = self.state_dim
        bu = F.conv2d(u_t, w_b.to(u_t.dtype), padding="same").to(self.lambda_re.dtype)
        x = torch.addcmul(torch.complex(bu[:, :p], bu[:, p:]), lam_bar, state)
        xr = torch.cat([x.real, x.imag], dim=1).to(u_t.dtype)
        y = F.conv2d(xr, w_c.to(u_t.dtype), padding="same")
        return y, x

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, state_dim={self.state_dim}, kernel_size_b={self.kernel_size_b}, "
            f"kernel_size_c={self.kernel_size_c}, blocks={self.blocks}, "
            f"clip_eigs={self.clip_eigs}, discretization={self.discretization!r}"
        )
