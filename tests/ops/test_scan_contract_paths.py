"""Every input the scan's contract (scan_contract.check_scan_inputs) accepts, on both paths.

No input the loop path takes may be refused, or computed differently, by the Triton path:
each case below runs linear_scan_ref (the plain reference), the loop path and the Triton
kernels (on CPU tensors in Triton's interpreter, TRITON_INTERPRET=1 set per test), and
compares values and the gradients of every input. The cases walk the contract: both
dtypes, L = 1 and odd lengths, x0 given or not, a and x0 broadcast from every kind of
shape, strided and stride-0 b, conjugate views of a, b and x0, a 0-d state, and gradients
reaching the inputs through conjugate views.
"""

from __future__ import annotations

import importlib
import math

import pytest
import torch
from scan_inputs import decay as _decay
from scan_inputs import needs_triton

from convssm.ops import (
    linear_scan,
    linear_scan_ref,
    linear_scan_triton,
    scan_path,
)

pytestmark = needs_triton

C64, C128 = torch.complex64, torch.complex128
RTOL = {C64: 2e-5, C128: 1e-12}


@pytest.fixture(autouse=True)
def _interpret(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def _randn(shape, dtype, gen):
    return torch.randn(shape, dtype=dtype, generator=gen)


# Each case: (id, dtype, L, state shape, a shape, x0 shape or None, how b, a, x0 are viewed).
# Views: "conj" passes t.conj() of a leaf (a conjugate view); "T" builds b as the transpose
# of a contiguous tensor; "expand" builds b as a stride-0 expansion over its last dimension.
CASES = [
    ("c64-L1-no-x0", C64, 1, (3, 5), (5,), None, {}),
    ("c128-L1-x0", C128, 1, (3, 5), (5,), (3, 5), {}),
    ("c64-odd-L-full-a", C64, 7, (2, 3), (2, 3), (2, 3), {}),
    ("c128-odd-L-scalar-a", C128, 13, (4,), (), (4,), {}),
    ("c64-a-of-ones-x0-broadcast", C64, 5, (2, 3, 4), (1, 1, 4), (3, 1), {}),
    ("c64-0d-state", C64, 6, (), (), (), {}),
    ("c128-convs5-layout", C128, 3, (2, 3, 2, 2), (3, 1, 1), (2, 3, 2, 2), {}),
    ("c64-strided-b", C64, 5, (4, 3), (3,), (4, 3), {"b": "T"}),
    ("c64-stride0-b", C64, 4, (2, 6), (6,), None, {"b": "expand"}),
    ("c64-conj-b", C64, 5, (3, 4), (4,), (3, 4), {"b": "conj"}),
    ("c64-conj-a", C64, 5, (3, 4), (4,), None, {"a": "conj"}),
    ("c128-conj-x0", C128, 4, (3, 4), (4,), (3, 4), {"x0": "conj"}),
    ("c128-conj-all-strided", C128, 3, (4, 3), (3,), (3,), {"a": "conj", "b": "T+conj"}),
    # More channels than one program's block of 256: two programs, the last one masked.
    ("c64-two-blocks", C64, 3, (300,), (300,), (300,), {"b": "conj"}),
]


def _inputs(dtype, length, state, a_shape, x0_shape, views, gen):
    """Leaves (the tensors gradients are taken for) and the views passed to the scan."""
    a = _decay(a_shape, dtype, gen)
    x0 = None if x0_shape is None else _randn(x0_shape, dtype, gen)
    if views.get("b", "").startswith("T"):
        b = _randn((length, *state[::-1]), dtype, gen)  # transposed below: strided
    elif views.get("b") == "expand":
        b = _randn((length, *state[:-1], 1), dtype, gen)  # expanded below: stride 0
    else:
        b = _randn((length, *state), dtype, gen)
    leaves = {"a": a, "b": b, "x0": x0}
    leaves = {k: v.requires_grad_(True) for k, v in leaves.items() if v is not None}

    def passed():
        out = {}
        for name, t in leaves.items():
            how = views.get(name, "")
            if how.startswith("T"):
                t = t.transpose(1, 2) if t.dim() == 3 else t.transpose(0, 1)
                assert not t.is_contiguous()
            if how == "expand":
                t = t.expand(length, *state)
            if how.endswith("conj"):
                t = t.conj()
                assert t.is_conj()
            out[name] = t
        return out["a"], out["b"], out.get("x0")

    return leaves, passed


def _values_and_grads(fn, leaves, passed, w):
    a, b, x0 = passed()
    x = fn(a, b, x0)
    grads = torch.autograd.grad((w.conj() * x).real.sum(), list(leaves.values()))
    return x.detach(), grads


def _close(x, y, rtol, what):
    scale = y.abs().max().clamp_min(1e-30)
    err = float((x - y).abs().max() / scale)
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:.3g}"


def _loop(a, b, x0):
    with scan_path("loop"):
        return linear_scan(a, b, x0)


@pytest.mark.parametrize(
    "dtype, length, state, a_shape, x0_shape, views",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_triton_accepts_and_matches_every_input_the_loop_accepts(
    dtype, length, state, a_shape, x0_shape, views
):
    gen = torch.Generator().manual_seed(len(state) * 100 + length)
    leaves, passed = _inputs(dtype, length, state, a_shape, x0_shape, views, gen)
    w = _randn((length, *state), dtype, gen)
    x_ref, g_ref = _values_and_grads(linear_scan_ref, leaves, passed, w)
    for name, fn in (("loop", _loop), ("triton", linear_scan_triton)):
        x, grads = _values_and_grads(fn, leaves, passed, w)
        assert x.shape == x_ref.shape and x.dtype == dtype, name
        _close(x, x_ref, RTOL[dtype], f"{name} x")
        for leaf, got, want in zip(leaves, grads, g_ref, strict=True):
            assert got.shape == want.shape, f"{name} grad {leaf}"
            _close(got, want, 10 * RTOL[dtype], f"{name} grad {leaf}")


def test_channels_beyond_32_bit_indexing_are_refused_by_triton_and_looped_by_auto(monkeypatch):
    """Meta tensors: shapes without memory, so a billion channels cost nothing here."""
    lst = importlib.import_module("convssm.ops.linear_scan_triton")
    dispatch = importlib.import_module("convssm.ops.linear_scan")
    a = torch.empty(1, dtype=C64, device="meta")
    fits = torch.empty(1, lst.MAX_CHANNELS, dtype=C64, device="meta")
    lst.check_channels(fits.shape[1])  # the largest width passes
    big = torch.empty(1, 2, (lst.MAX_CHANNELS + 2) // 2, dtype=C64, device="meta")
    with pytest.raises(ValueError, match=r"channels \(prod\(b.shape\[1:\]\)\).*32 bits"):
        linear_scan_triton(a, big)
    pairs = torch.empty(1, math.prod(big.shape[1:]), 2, device="meta")
    with pytest.raises(ValueError, match="32 bits"):  # the op itself (its fake, on meta)
        torch.ops.convssm.scan_triton(pairs[0], pairs, None)
    # "auto" on a device Triton would serve takes the loop for such widths, without checking.
    monkeypatch.setattr(dispatch, "_triton_device", lambda device: True)
    monkeypatch.setattr(dispatch, "_triton_proven", lambda device: pytest.fail("checked"))
    assert dispatch._resolve_path(big.device, math.prod(big.shape[1:])) == "loop"
