"""No host syncs in the hot paths: the sequence models read tensor values (NaN/inf checks)
once per call at their entry point, never per layer or per step, and not at all with
``check_values=False``; ``torch.compile(fullgraph=True)`` captures them whole."""

from __future__ import annotations

import pytest
import torch

from convssm.nn import ConvS5Block, build_sequence_model

DIM, H, W = 4, 6, 6

OPTIONS = {
    "convs5": dict(state_dim=4, kernel_size=3, norm_groups=2),
    "convlstm": dict(kernel_size=3),
    "transformer": dict(height=H, width=W, embed_dim=16, heads=2, mlp_dim=32, window=4),
}


def _build(name: str, depth: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_sequence_model(name, DIM, depth=depth, **OPTIONS[name])


def _close(got, want, tol=1e-5):
    leaves = torch.utils._pytree.tree_leaves
    for g, w in zip(leaves(got), leaves(want), strict=True):
        if isinstance(g, torch.Tensor):
            torch.testing.assert_close(g, w, rtol=tol, atol=tol)
        else:
            assert g == w


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_value_reads_do_not_grow_with_depth(name, host_reads):
    counts = {}
    for depth in (2, 6):
        model = _build(name, depth)
        x = torch.randn(2, 3, DIM, H, W)
        with host_reads() as train:  # training: forward and backward
            y, _ = model(x)
            y.square().sum().backward()
        model.eval()
        with torch.no_grad():
            with host_reads() as forward:
                _, states = model(x)
            with host_reads() as step:
                model.step(x[:, 0], states)
            with host_reads() as unchecked:
                _, states = model(x, check_values=False)
                model.step(x[:, 0], states, check_values=False)
        counts[depth] = (train[0], forward[0], step[0], unchecked[0])
    assert counts[2] == counts[6], f"value reads per call by depth: {counts}"
    assert counts[2] == (1, 1, 1, 0), counts[2]  # one check per entry point, none when off


def test_a_block_step_reads_no_values_and_reuses_its_kernels(host_reads):
    block = ConvS5Block(4, 3, norm_groups=2).eval()
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        y0, s = block.step(x)
        with host_reads() as n:
            y1, s1 = block.step(x, s)
        assert n[0] == 0
        cached = block.ssm._step_kernels()
        assert all(a is b for a, b in zip(cached, block.ssm._step_kernels(), strict=True))
        # Any change of a parameter invalidates the cache: the step follows it.
        block.ssm.log_step.add_(0.5)
        y2, _ = block.step(x, s)
        assert not torch.allclose(y1, y2)
    with torch.no_grad():
        y2_fresh, _ = block.train().eval().step(x, s)  # (same parameters, same result)
    torch.testing.assert_close(y2, y2_fresh)
    block.train()  # training mode, or grad enabled: kernels are recomputed, gradients flow
    y, _ = block.step(x, s)
    y.sum().backward()
    assert block.ssm.b_re.grad is not None


@pytest.mark.parametrize("name", ["convs5", "convlstm"])
def test_fullgraph_compile_matches_eager(name):
    """Forward (training, with gradients) and step (eval) traced whole: no graph break.

    ``aot_eager`` runs dynamo and AOT autograd (fake tensors, the scan's registered fake
    and autograd formulas) without inductor's slow C++ code generation.
    """
    model = _build(name, depth=2)
    x = torch.randn(2, 5, DIM, H, W)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    y, states = compiled(x)
    y.square().sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    y_ref, states_ref = model(x)
    y_ref.square().sum().backward()
    _close((y, states), (y_ref, states_ref))
    _close(grads, [p.grad for p in model.parameters()])
    model.eval()
    step = torch.compile(model.step, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        _close(step(x[:, 0], states_ref), model.step(x[:, 0], states_ref))
