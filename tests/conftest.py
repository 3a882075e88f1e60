"""Fixtures shared by every test directory."""

from __future__ import annotations

import contextlib

import huggingface_hub.constants
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


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty Hugging Face Hub cache (returned), used as the default one, with the hub
    offline (``HF_HUB_OFFLINE=1``): nothing is fetched, in this process or a child. Fill it
    with ``hub_cache.add_to_hub_cache``."""
    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    # huggingface_hub reads both variables once, when it is imported
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache
