"""The non-HiPPO initialisation of the ablation: stable, orthonormal basis, reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convssm.nn import ConvS5SSM
from convssm.nn.hippo import hippo_diagonal_init, random_diagonal_init


def test_random_init_is_stable_orthonormal_and_not_hippo():
    lam, v = random_diagonal_init(16, torch.Generator().manual_seed(0))
    assert lam.shape == (16,) and v.shape == (32, 16)
    assert (lam.real < 0).all() and (lam.real >= -1).all()
    np.testing.assert_allclose(v.conj().T @ v, np.eye(16), atol=1e-12)
    hippo, _ = hippo_diagonal_init(16)
    assert not np.allclose(np.sort(lam.imag), np.sort(hippo.imag))
    again, _ = random_diagonal_init(16, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(lam, again)


def test_layer_option_and_its_errors():
    g = torch.Generator().manual_seed(1)
    layer = ConvS5SSM(4, 8, lambda_init="random", generator=g)
    y, x = layer(torch.randn(1, 5, 4, 6, 6))
    assert y.shape == (1, 5, 4, 6, 6) and torch.isfinite(y).all()
    with pytest.raises(ValueError, match="lambda_init must be 'hippo' or 'random'"):
        ConvS5SSM(4, 8, lambda_init="legs")
    with pytest.raises(ValueError, match="has no blocks"):
        ConvS5SSM(4, 8, blocks=2, lambda_init="random")
