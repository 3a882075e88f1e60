"""Fixtures shared by every test directory."""

from __future__ import annotations

import contextlib

import pytest
import torch

# Every way a tensor's value reaches Python (each one a host sync on a GPU).
_READS = ("__bool__", "item", "__float__", "__int__", "__index__", "tolist", "numpy")


@pytest.fixture
def host_reads(monkeypatch):
    """``with host_reads() as n: ...`` counts tensor-to-Python conversions; ``n[0]`` after."""

    @contextlib.contextmanager
    def counting():
        count = [0]
        originals = {name: getattr(torch.Tensor, name) for name in _READS}

        def wrap(name):
            def counted(self, *args, **kwargs):
                count[0] += 1
                return originals[name](self, *args, **kwargs)

            return counted

        for name in _READS:
            monkeypatch.setattr(torch.Tensor, name, wrap(name))
        try:
            yield count
        finally:
            for name, fn in originals.items():
                monkeypatch.setattr(torch.Tensor, name, fn)

    return counting
