"""step_conv2d (the step's convolutions, oneDNN where PyTorch's own choice is slow) equals its
reference F.conv2d, and its path rule is pinned: which shapes go to oneDNN, and that every
case outside the rule (float64, batch 2, one thread, 1x1, autograd, autocast, oneDNN
disabled) takes F.conv2d, by rule rather than by a caught error."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from convssm.ops import step_conv2d, step_conv2d_ref, step_conv_path
from convssm.ops.step_conv import MKLDNN_MIN_REDUCTION

needs_mkldnn = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN"
)


@contextlib.contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _conv_called(fn) -> set[str]:
    with torch.profiler.profile() as prof:
        fn()
    names = {e.name for e in prof.events()}
    return {n for n in ("aten::mkldnn_convolution", "aten::_slow_conv2d_forward") if n in names}


@needs_mkldnn
@pytest.mark.parametrize(
    ("c_in", "c_out", "k", "height", "width", "padding"),
    [
        (64, 64, 3, 16, 16, "same"),
        (48, 33, 3, 13, 7, "same"),
        (64, 17, 5, 9, 11, "same"),
        (64, 40, 3, 10, 6, 1),
        (50, 8, 3, 5, 5, (1, 1)),
        (72, 24, 3, 6, 9, 0),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_mkldnn_path_equals_the_reference(c_in, c_out, k, height, width, padding, bias):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, c_in, height, width, generator=g)
    w = torch.randn(c_out, c_in, k, k, generator=g) / (c_in * k * k) ** 0.5
    b = torch.randn(c_out, generator=g) if bias else None
    with _threads(2), torch.no_grad():
        assert step_conv_path(x, w) == "mkldnn"
        assert _conv_called(lambda: step_conv2d(x, w, b, padding)) == {"aten::mkldnn_convolution"}
        got, ref = step_conv2d(x, w, b, padding), step_conv2d_ref(x, w, b, padding)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


@needs_mkldnn
def test_non_contiguous_and_channels_last_inputs():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(32, 64, 3, 3, generator=g) / 24
    base = torch.randn(1, 64, 12, 20, generator=g)
    for x in (base[..., ::2], base.contiguous(memory_format=torch.channels_last)):
        with _threads(2), torch.no_grad():
            assert step_conv_path(x, w) == "mkldnn"
            torch.testing.assert_close(step_conv2d(x, w), F.conv2d(x, w, padding="same"))


def test_rule_keeps_pytorchs_choice_outside_its_cases():
    x, w = torch.randn(1, 64, 16, 16), torch.randn(64, 64, 3, 3)
    with _threads(2), torch.no_grad():
        if torch.backends.mkldnn.is_available():
            assert step_conv_path(x, w) == "mkldnn"
        cases = {
            "float64": (x.double(), w.double()),
            "batch 2": (torch.randn(2, 64, 16, 16), w),
            "1x1": (x, torch.randn(64, 64, 1, 1)),
            "even kernel": (x, torch.randn(64, 64, 4, 4)),
            "short reduction": (x[:, : MKLDNN_MIN_REDUCTION // 9 - 1], w[:, :47]),
        }
        for name, (xi, wi) in cases.items():
            assert step_conv_path(xi, wi) == "native", name
            torch.testing.assert_close(step_conv2d(xi, wi), F.conv2d(xi, wi, padding="same"))
        with torch.backends.mkldnn.flags(enabled=False):
            assert step_conv_path(x, w) == "native"
        with torch.autocast("cpu", torch.bfloat16):
            assert step_conv_path(x, w) == "native"
    with _threads(1), torch.no_grad():
        assert step_conv_path(x, w) == "native"
    with _threads(2), torch.enable_grad():
        assert step_conv_path(x.requires_grad_(), w) == "native"
        assert step_conv_path(x.detach(), w.requires_grad_()) == "native"


def test_native_path_is_exactly_f_conv2d():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 8, 7, 5, generator=g, dtype=torch.float64)
    w = torch.randn(6, 8, 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    assert torch.equal(step_conv2d(x, w, b), F.conv2d(x, w, b, padding="same"))


def test_compiled_takes_the_native_path_without_a_graph_break():
    """Under torch.compile the rule leaves the choice to Inductor (F.conv2d), and reading
    the thread count does not break the graph."""
    x, w = torch.randn(1, 64, 6, 6), torch.randn(8, 64, 3, 3) / 24
    with _threads(2), torch.no_grad():
        got = torch.compile(step_conv2d, fullgraph=True, dynamic=False)(x, w)
        torch.testing.assert_close(got, F.conv2d(x, w, padding="same"), rtol=1e-5, atol=1e-5)
