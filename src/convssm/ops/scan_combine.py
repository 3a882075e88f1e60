"""The associative operator of the diagonal linear recurrence, for associative scans.

``x_k = a_k ⊙ x_{k−1} + b_k`` composes: applying ``(a1, b1)`` then ``(a2, b2)`` is the one
step ``(a2·a1, a2·b1 + b2)``. torch's ``associative_scan`` takes that operator; the
benchmarks compare it with :func:`convssm.ops.linear_scan`. Two forms: on complex tensors,
and on real and imaginary parts (what ``combine_mode="pointwise"`` on CUDA and
``torch.compile`` need: complex tensors there give wrong gradients).
"""

from __future__ import annotations

import torch

__all__ = ["combine_complex", "combine_real_imag"]

Pair = tuple[torch.Tensor, torch.Tensor]
Parts = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def combine_complex(left: Pair, right: Pair) -> Pair:
    """``(a1, b1) ∘ (a2, b2) = (a2·a1, a2·b1 + b2)`` on complex tensors."""
    a1, b1 = left
    a2, b2 = right
    return a2 * a1, a2 * b1 + b2


def combine_real_imag(left: Parts, right: Parts) -> Parts:
    """:func:`combine_complex` on ``(Re a, Im a, Re b, Im b)``."""
    a1r, a1i, b1r, b1i = left
    a2r, a2i, b2r, b2i = right
    return (
        a2r * a1r - a2i * a1i,
        a2r * a1i + a2i * a1r,
        a2r * b1r - a2i * b1i + b2r,
        a2r * b1i + a2i * b1r + b2i,
    )
