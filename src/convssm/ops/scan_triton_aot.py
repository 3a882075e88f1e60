"""The Triton scan kernels compiled for a GPU without one: ``compile_ahead``, ``ptxas_report``.

Triton's own pipeline (AST -> TTIR -> TTGIR -> LLVM IR -> PTX -> cubin, the last step by the
ptxas inside the triton wheel) runs on CPU for any target architecture. The tests use it to
prove every kernel variant compiles for sm_80 and sm_90 and that no candidate configuration
spills registers; ``benchmarks/inspect_scan_kernels.py`` uses it to tabulate what the
compiler made of each (registers, spills, shared memory, asynchronous copies in flight,
shuffles). Needs triton with its bundled ptxas (the ``triton`` extra); no CUDA driver.
"""

from __future__ import annotations

import re
import subprocess

import torch

from convssm.ops.scan_triton_kernels import ScanKernelConfig, scan_kernels

__all__ = [
    "FULL_VARIANT",
    "kernel_source",
    "compile_source",
    "compile_ahead",
    "ptxas_report",
]

# Per direction, the variant with the most live state: x0 and one chunk, writing x
# (forward); x0, no carry, grad_a, writing gx (backward). In the kernels' constexpr order.
FULL_VARIANT = {
    "forward": dict(HAS_X0=True, X0_PER_CHUNK=False, WRITE_X=True, WRITE_END=False),
    "backward": dict(HAS_X0=True, HAS_CARRY=False, NEED_A=True, WRITE_GX=True, WRITE_FIRST=False),
}
_POINTER = {torch.float32: "*fp32", torch.float64: "*fp64"}


def kernel_source(fn, constexprs: dict, dtype: torch.dtype, unaligned=frozenset()):
    """Triton's ASTSource for launching kernel ``fn`` (a JITFunction of scan_kernels) with
    these constexpr values by name, pointers to ``dtype``, 16-byte aligned except those named
    in ``unaligned`` (the divisibility a launch specialises on), and its other arguments
    (L, M, CHUNK) as i32: never specialised on their value, within int32 by check_channels."""
    from triton.compiler import ASTSource

    signature, consts, attrs = {}, {}, {}
    for i, name in enumerate(fn.arg_names):
        if name in constexprs:
            signature[name], consts[(i,)] = "constexpr", constexprs[name]
        elif name.endswith("_ptr"):
            signature[name] = _POINTER[dtype]
            if name not in unaligned:
                attrs[(i,)] = [["tt.divisibility", 16]]
        else:
            signature[name] = "i32"
    return ASTSource(fn, signature, consts, attrs)


def compile_source(source, arch: int, warps: int):
    """Compile an ASTSource for ``sm_{arch}`` with ``warps`` warps: Triton's CompiledKernel
    (its ``asm["ptx"]``, ``asm["cubin"]``, ``metadata``)."""
    import triton
    from triton.backends.compiler import GPUTarget

    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options={"num_warps": warps})


def compile_ahead(
    direction: str,
    dtype: torch.dtype,
    config: ScanKernelConfig,
    arch: int = 90,
    flags: dict | None = None,
):
    """Compile one kernel (``direction`` "forward" / "backward", float ``dtype``) for
    ``sm_{arch}`` with ``config`` and the constexpr ``flags`` (default FULL_VARIANT), as a
    launch with 16-byte aligned pointers would (:func:`compile_source`'s result)."""
    fn = scan_kernels()[direction == "backward"]
    consts = dict(FULL_VARIANT[direction] if flags is None else flags)
    consts.update(BLOCK=config.block, TILE=config.tile, STAGES=config.stages)
    return compile_source(kernel_source(fn, consts, dtype), arch, config.warps)


def ptxas_report(kernel) -> dict:
    """What ptxas -v says of a compiled kernel's PTX (registers per thread, spill stores and
    loads in bytes), with counts read from the PTX itself: asynchronous global->shared copies
    (cp.async, the pipelined loads), warp shuffles (the tile scan's neighbours), shared
    memory stores, plain global loads, and Triton's shared memory per program."""
    from triton import knobs

    ptx = kernel.asm["ptx"]
    arch = re.search(r"\.target (sm_\w+)", ptx).group(1)  # sm_90a for Hopper
    out = subprocess.run(
        [knobs.nvidia.ptxas.path, f"-arch={arch}", "-v", "-", "-o", "/dev/null"],
        input=ptx,
        capture_output=True,
        text=True,
        check=True,
    )
    text = out.stdout + out.stderr

    def number(pattern):
        found = re.search(pattern, text)
        if found is None:
            raise RuntimeError(f"ptxas -v output has no {pattern!r}: {text}")
        return int(found.group(1))

    return {
        "arch": arch,
        "registers": number(r"Used (\d+) registers"),
        "spill_stores": number(r"(\d+) bytes spill stores"),
        "spill_loads": number(r"(\d+) bytes spill loads"),
        "cp_async": len(re.findall(r"cp\.async\.c", ptx)),
        "shuffles": ptx.count("shfl.sync"),
        "shared_stores": ptx.count("st.shared"),
        "global_loads": len(re.findall(r"ld\.global", ptx)),
        "shared_bytes": kernel.metadata.shared,
    }
