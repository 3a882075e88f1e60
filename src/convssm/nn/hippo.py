"""HiPPO-LegS initialisation of the diagonal state matrix (docs/design.md#initialisation).

The LegS matrix A is not normal, but S = A + p pᵀ is: S = −½·I + (skew-symmetric).
Diagonalising S gives eigenvalues −½ + iμ and a unitary eigenbasis V. Eigenvalues come in
conjugate pairs; ConvS5 keeps one of each pair (the output is 2·Re(...)), so a HiPPO matrix
of size N yields N/2 state channels.

Everything here is computed once, in float64 numpy, at construction time.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

__all__ = ["hippo_legs", "hippo_legs_normal", "hippo_diagonal_init"]


def hippo_legs(n: int) -> np.ndarray:
    """The HiPPO-LegS matrix A (n, n): −sqrt((2i+1)(2k+1)) below, −(i+1) on the diagonal."""
    if n < 1:
        raise ValueError(f"HiPPO size must be positive, got {n}")
    q = np.sqrt(2 * np.arange(n, dtype=np.float64) + 1)
    a = -np.tril(np.outer(q, q), k=-1) - np.diag(np.arange(n, dtype=np.float64) + 1)
    return a


def hippo_legs_normal(n: int) -> np.ndarray:
    """S = A + p pᵀ with p_i = sqrt(i + ½): the normal part of HiPPO-LegS (n, n)."""
    p = np.sqrt(np.arange(n, dtype=np.float64) + 0.5)
    return hippo_legs(n) + np.outer(p, p)


@lru_cache(maxsize=16)
def _half_spectrum(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (n/2,) and eigenvectors (n, n/2) of S, one of each conjugate pair.

    Cached (a model builds the same spectrum for every layer); callers must not modify it.
    """
    s = hippo_legs_normal(n)
    diag = np.diag(s).copy()
    skew = s - np.diag(diag)
    # -i·skew is Hermitian: eigh gives real μ (ascending) and unitary V with skew V = iμ V.
    mu, v = np.linalg.eigh(-1j * skew)
    lam = diag.mean() + 1j * mu
    # Ascending μ: the first half holds one eigenvalue of each pair (μ < 0), as in S5.
    half = n // 2
    lam, v = lam[:half].copy(), v[:, :half].copy()
    lam.setflags(write=False)
    v.setflags(write=False)
    return lam, v


def hippo_diagonal_init(state_dim: int, blocks: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Λ (P,) complex and the block-diagonal eigenbasis V (2P, P) complex for P = state_dim.

    Builds HiPPO-LegS of size 2P/blocks, keeps its half spectrum, tiles Λ ``blocks`` times
    and places V ``blocks`` times on the diagonal. V's columns are orthonormal, so
    V⁻¹ = Vᴴ on its range.
    """
    if state_dim < 1 or blocks < 1:
        raise ValueError(f"state_dim and blocks must be positive, got {state_dim}, {blocks}")
    if state_dim % blocks:
        raise ValueError(f"state_dim ({state_dim}) must be divisible by blocks ({blocks})")
    block_p = state_dim // blocks
    lam, v = _half_spectrum(2 * block_p)
    lam_all = np.tile(lam, blocks)
    v_all = np.zeros((2 * state_dim, state_dim), dtype=np.complex128)
    for i in range(blocks):
        v_all[2 * block_p * i : 2 * block_p * (i + 1), block_p * i : block_p * (i + 1)] = v
    return lam_all, v_all


def random_diagonal_init(
    state_dim: int, generator: torch.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A non-HiPPO Λ (P,) and V (2P, P), for the initialisation ablation.

    Re Λ uniform in [−1, 0) (stable, the same range of decay rates as HiPPO's −½ under the
    same timescales), Im Λ normal with the standard deviation of HiPPO-LegS's imaginary
    parts at this size, and V a random matrix with orthonormal columns (the Q of a complex
    Gaussian's QR), so V⁻¹ = Vᴴ on its range as for HiPPO. Nothing of HiPPO's structure is
    kept: what the ablation removes.
    """
    if state_dim < 1:
        raise ValueError(f"state_dim must be positive, got {state_dim}")
    hippo_im = _half_spectrum(2 * state_dim)[0].imag

    def draw(*shape: int) -> np.ndarray:
        return torch.rand(*shape, dtype=torch.float64, generator=generator).numpy()

    def normal(*shape: int) -> np.ndarray:
        return torch.randn(*shape, dtype=torch.float64, generator=generator).numpy()

    lam = -(1.0 - draw(state_dim)) + 1j * normal(state_dim) * hippo_im.std()
    q, _ = np.linalg.qr(normal(2 * state_dim, state_dim) + 1j * normal(2 * state_dim, state_dim))
    return lam, q
