"""Every variant of the Triton scan kernels compiled for real GPUs, ahead of time, on CPU.

The interpreter tests (TRITON_INTERPRET=1) run the kernels' Python semantics; they never
meet Triton's GPU compiler, so a change that interprets correctly but does not compile for
a GPU (a type the lowering refuses, a layout ptxas rejects) would first fail on a device.
Here Triton's own pipeline (Python AST -> TTIR -> TTGIR -> LLVM IR -> PTX -> cubin, the
last step by the ptxas that ships inside the triton wheel) runs for sm_80 (A100) and sm_90
(H100/H200) on every kernel variant the launchers produce: the variants are recorded from
the launchers themselves (complex64 and complex128, with and without x0, with and without
grad_a), with the same constexprs, num_warps and 16-byte pointer alignment a launch has.
No GPU and no CUDA driver are needed.
"""

from __future__ import annotations

import importlib

import pytest
import torch

from convssm.ops import triton_available

pytestmark = pytest.mark.skipif(
    not triton_available(),
    reason="triton is not installed (pip install 'convssm[triton]'); its kernels are untested",
)

kernels = importlib.import_module("convssm.ops.linear_scan_triton")

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
        m.setattr(kernels, "_kernels", lambda: (Recorder("fwd"), Recorder("bwd")))
        for dtype in (torch.float32, torch.float64):
            a, x0 = torch.zeros(300, 2, dtype=dtype), torch.zeros(300, 2, dtype=dtype)
            b = torch.zeros(3, 300, 2, dtype=dtype)
            for x0_arg in (x0, None):
                kernels._scan_op(a, b, x0_arg)
                for need_a in (True, False):
                    kernels._scan_backward_op(a, b, x0_arg, b, need_a)
    return launches


def _source(fn, args):
    """Triton's ASTSource for one launch: the signature, constexprs and pointer alignment
    that launching fn(*args) on a GPU would compile (ints as i32: L and M are never
    specialised on their value, and check_channels keeps M within int32)."""
    from triton.compiler import ASTSource

    signature, constexprs, attrs = {}, {}, {}
    for i, (name, arg) in enumerate(zip(fn.arg_names, args, strict=True)):
        if i in fn.constexprs:
            signature[name] = "constexpr"
            constexprs[(i,)] = arg
        elif isinstance(arg, torch.Tensor):
            assert arg.data_ptr() % 16 == 0
            signature[name] = {torch.float32: "*fp32", torch.float64: "*fp64"}[arg.dtype]
            attrs[(i,)] = [["tt.divisibility", 16]]
        else:
            assert isinstance(arg, int) and not isinstance(arg, bool), (name, arg)
            signature[name] = "i32"
    return ASTSource(fn, signature, constexprs, attrs)


def test_every_kernel_variant_compiles_for_sm80_and_sm90(monkeypatch, tmp_path):
    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget

    try:
        knobs.nvidia.ptxas.path  # noqa: B018 - raises when the wheel has no ptxas
    except RuntimeError as exc:
        pytest.skip(f"triton's bundled ptxas is missing, so no PTX or cubin can be made: {exc}")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # the GPU-compiled kernels
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))  # compile, do not reuse a cache
    fwd, bwd = kernels._kernels()
    launches = _launches(monkeypatch)
    assert len(launches) == 2 * (2 + 4)  # dtypes x (forward: x0 or not; backward: x grad_a)
    compiled = set()
    for name, args, options in launches:
        fn = {"fwd": fwd, "bwd": bwd}[name]
        source = _source(fn, args)
        for arch in ARCHS:
            kernel = triton.compile(source, target=GPUTarget("cuda", arch, 32), options=options)
            assert f".target sm_{arch}" in kernel.asm["ptx"]
            assert len(kernel.asm["cubin"]) > 0
            assert kernel.metadata.num_warps == kernels.NUM_WARPS
            compiled.add((name, str(source.signature), str(source.constants), arch))
    assert len(compiled) == len(launches) * len(ARCHS)  # every variant distinct
