"""Every variant of the Triton scan kernels compiled for real GPUs, ahead of time, on CPU.

The interpreter tests (TRITON_INTERPRET=1) run the kernels' Python semantics; they never
meet Triton's GPU compiler, so a change that interprets correctly but does not compile for
a GPU (a type the lowering refuses, a layout ptxas rejects) would first fail on a device.
Here Triton's own pipeline (Python AST -> TTIR -> TTGIR -> LLVM IR -> PTX -> cubin, the
last step by the ptxas that ships inside the triton wheel) runs for sm_80 (A100) and sm_90
(H100/H200) on every kernel variant the launchers produce: the variants are recorded from
the launchers themselves (complex64 and complex128; one pass and three chunked passes;
with and without x0 and grad_a), with the constexprs, num_warps and 16-byte pointer
alignment a launch has. Then every candidate configuration of either direction is compiled
for sm_90 and read through ``ptxas -v``: none may spill registers to local memory. No GPU
and no CUDA driver are needed.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from scan_inputs import needs_triton

pytestmark = needs_triton

launcher = importlib.import_module("convssm.ops.linear_scan_triton")
kernels = importlib.import_module("convssm.ops.scan_triton_kernels")
aot = importlib.import_module("convssm.ops.scan_triton_aot")

ARCHS = (80, 90)


def _launches(monkeypatch) -> list[tuple[str, tuple, dict]]:
    """(kernel name, args, launch options) of every launch the two custom ops make."""
    launches = []

    class Recorder:
        def __init__(self, name):
            self.name = name

        def __getitem__(self, grid):
            return lambda *args, **options: launches.append((self.name, args, options))

    with monkeypatch.context() as m:
        m.setattr(launcher, "scan_kernels", lambda: (Recorder("fwd"), Recorder("bwd")))
        for dtype in (torch.float32, torch.float64):
            a, x0 = torch.zeros(300, 2, dtype=dtype), torch.zeros(300, 2, dtype=dtype)
            b = torch.zeros(300, 300, 2, dtype=dtype)
            for chunks in (1, 3):
                for x0_arg in (x0, None):
                    launcher._scan_op(a, b, x0_arg, chunks)
                    for need_a in (True, False):
                        launcher._scan_backward_op(a, b, x0_arg, b, need_a, chunks)
    return launches


def _source(fn, args):
    """Triton's ASTSource for one recorded launch: its constexprs, dtype and the pointer
    alignment that launching fn(*args) on a GPU would specialise on."""
    named = dict(zip(fn.arg_names, args, strict=True))
    constexprs = {n: named[n] for i, n in enumerate(fn.arg_names) if i in fn.constexprs}
    tensors = {n: a for n, a in named.items() if isinstance(a, torch.Tensor)}
    assert all(n.endswith("_ptr") for n in tensors), sorted(tensors)
    (dtype,) = {t.dtype for t in tensors.values()}
    for n, a in named.items():
        if n not in constexprs and n not in tensors:
            assert isinstance(a, int) and not isinstance(a, bool), (n, a)
    unaligned = {n for n, t in tensors.items() if t.data_ptr() % 16}
    return aot.kernel_source(fn, constexprs, dtype, unaligned)


@pytest.fixture
def compiler(monkeypatch, tmp_path):
    from triton import knobs

    try:
        ptxas = knobs.nvidia.ptxas.path
    except RuntimeError as exc:
        pytest.skip(f"triton's bundled ptxas is missing, so no PTX or cubin can be made: {exc}")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # the GPU-compiled kernels
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))  # compile, do not reuse a cache
    return ptxas


def test_every_kernel_variant_compiles_for_sm80_and_sm90(monkeypatch, compiler):
    fns = dict(zip(("fwd", "bwd"), kernels.scan_kernels(), strict=True))
    variants = {}
    for name, args, options in _launches(monkeypatch):
        fn = fns[name]
        flags = tuple(a for i, a in enumerate(args) if i in fn.constexprs)
        dtype = str(args[0].dtype)
        variants.setdefault((name, dtype, flags), (args, options))
    # forward: one pass (x0 or not; the carry pass is one pass with x0), the chunks' ends,
    # the final chunked pass; backward: one pass (x0 x grad_a; the carry pass is one without
    # either), the chunks' first gradients, the final chunked pass (x0 x grad_a); per dtype
    assert len(variants) == 2 * (4 + 9), sorted(variants)
    for (name, _, _), (args, options) in variants.items():
        source = _source(fns[name], args)
        for arch in ARCHS:
            kernel = aot.compile_source(source, arch, options["num_warps"])
            assert f".target sm_{arch}" in kernel.asm["ptx"]
            assert len(kernel.asm["cubin"]) > 0


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_every_candidate_configuration_compiles_without_spills(compiler, direction):
    """The configurations a GPU autotunes between, each in the variant with the most live
    registers (x0 and grad_a), for sm_90: ptxas -v must report no spill stores."""
    table = kernels.FORWARD_CONFIGS if direction == "forward" else kernels.BACKWARD_CONFIGS
    for dtype, configs in table.items():
        for config in configs:
            report = aot.ptxas_report(aot.compile_ahead(direction, dtype, config, arch=90))
            assert report["arch"] == "sm_90a" and report["registers"] <= 255
            assert report["spill_stores"] == 0, (direction, dtype, config, report)
            assert report["cp_async"] > 0, "the tile loads are not pipelined"
