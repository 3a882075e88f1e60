"""linear_scan with a process group (context parallelism) equals the whole-sequence scan.

Gloo processes spawned inside the test, each holding a chunk of time of uneven length; the
values and the gradients (b per chunk, a and x0 summed over the group) are compared with the
single-process scan.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from gloo import gloo_group

from convssm.ops import linear_scan, set_scan_path, triton_available

SHAPE = (2, 3, 2, 2)  # (B, P, H, W)


def _problem(length: int, dtype: torch.dtype, seed: int = 0):
    """a (P, 1, 1) with |a| < 1, b (L, B, P, H, W), x0 (P, H, W), upstream gradient w."""
    gen = torch.Generator().manual_seed(seed)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    modulus = torch.rand(3, 1, 1, generator=gen, dtype=real) * 0.5 + 0.45
    a = torch.polar(modulus, torch.rand(3, 1, 1, generator=gen, dtype=real) * 6)
    b = torch.randn(length, *SHAPE, generator=gen, dtype=dtype)
    x0 = torch.randn(3, 2, 2, generator=gen, dtype=dtype)
    w = torch.randn(length, *SHAPE, generator=gen, dtype=dtype)
    return a, b, x0, w


def _whole(a, b, x0, w):
    """Values and gradients (a, b, x0) of the single-process scan."""
    leaves = [t.clone().requires_grad_(True) for t in (a, b, x0)]
    x = linear_scan(*leaves[:1], leaves[1], leaves[2])
    grads = torch.autograd.grad((w.conj() * x).real.sum(), leaves)
    return x.detach(), grads


def _worker(rank, world, lengths, init_file, out_file, path="auto"):
    if path == "triton":  # the fused kernels in Triton's interpreter, on CPU tensors
        os.environ["TRITON_INTERPRET"] = "1"
    set_scan_path(path)
    with gloo_group(rank, world, init_file):
        out = {}
        start = sum(lengths[:rank])
        chunk = slice(start, start + lengths[rank])
        for dtype in (torch.complex128, torch.complex64):
            a, b, x0, w = _problem(sum(lengths), dtype)
            a, b, x0 = (t.clone().requires_grad_(True) for t in (a, b[chunk], x0))
            x = linear_scan(a, b, x0, group=dist.group.WORLD)
            (w[chunk].conj() * x).real.sum().backward()
            grad_x0 = x0.grad if x0.grad is not None else torch.zeros_like(x0)
            grad_a = a.grad.clone()
            dist.all_reduce(grad_a)
            dist.all_reduce(grad_x0)
            out[dtype] = (x.detach(), b.grad, grad_a, grad_x0)
        # A chunk of length 0 on the last rank: every rank raises (none hangs).
        a, b, x0, _ = _problem(2 * world, torch.complex128)
        mine = b[:0] if rank == world - 1 else b[2 * rank : 2 * rank + 2]
        try:
            linear_scan(a, mine, x0, group=dist.group.WORLD)
        except ValueError as exc:
            out["empty"] = str(exc)
        torch.save(out, f"{out_file}.{rank}")


@pytest.mark.parametrize(
    ("lengths", "path"),
    [([4, 3], "auto"), ([5, 1, 7], "auto"), ([4, 3], "triton")],
    ids=["world2", "world3", "world2-triton"],
)
def test_context_parallel_equals_whole_sequence(tmp_path, lengths, path):
    """Each rank's local scan by the loop ("auto" on CPU) or by the Triton kernels."""
    if path == "triton" and not triton_available():
        pytest.skip("triton is not installed: its kernels are untested")
    world = len(lengths)
    mp.spawn(
        _worker,
        args=(world, lengths, str(tmp_path / "init"), str(tmp_path / "out"), path),
        nprocs=world,
        join=True,
    )
    results = [torch.load(tmp_path / f"out.{r}") for r in range(world)]
    for dtype, tol in ((torch.complex128, 1e-12), (torch.complex64, 1e-5)):
        a, b, x0, w = _problem(sum(lengths), dtype)
        x, (ga, gb, gx0) = _whole(a, b, x0, w)
        xs = torch.cat([res[dtype][0] for res in results])
        gbs = torch.cat([res[dtype][1] for res in results])
        torch.testing.assert_close(xs, x, rtol=tol, atol=tol)
        torch.testing.assert_close(gbs, gb, rtol=tol, atol=tol)
        for res in results:  # all-reduced: the same on every rank
            torch.testing.assert_close(res[dtype][2], ga, rtol=tol, atol=tol)
            torch.testing.assert_close(res[dtype][3], gx0, rtol=tol, atol=tol)
    for res in results:
        assert f"rank(s) [{world - 1}]" in res["empty"] and "length 0" in res["empty"]


def test_per_rank_restart_is_caught():
    """Each rank scanning from zero (no carry) is far from the whole scan: the test above
    would see it."""
    lengths = [5, 1, 7]
    a, b, x0, _ = _problem(sum(lengths), torch.complex128)
    whole = linear_scan(a, b, x0)
    chunks = b.split(lengths)
    restarted = torch.cat([linear_scan(a, c, x0 if r == 0 else None) for r, c in enumerate(chunks)])
    assert (restarted - whole).abs().max() > 0.1


def test_empty_chunk_without_a_group_is_still_refused():
    a, b, x0, _ = _problem(3, torch.complex128)
    with pytest.raises(ValueError, match="L = 0"):
        linear_scan(a, b[:0], x0)
