"""What Triton's compiler makes of each candidate configuration of the scan kernels, on CPU.

Every configuration in FORWARD_CONFIGS / BACKWARD_CONFIGS (float32 and float64), in its
fullest variant (x0; grad_a for the backward), is compiled ahead of time for sm_80 and
sm_90 (convssm.ops.scan_triton_aot: Triton's pipeline and the ptxas in the triton wheel,
no GPU) and read back: registers per thread and spill bytes (ptxas -v), shared memory per
program, the PTX's asynchronous copies (cp.async: the tile loads the pipeliner keeps in
flight), warp shuffles (the tile scan's neighbours) and shared-memory stores. With the
elements of a tile each thread holds (TILE * BLOCK / (32 * warps)) and the bytes of ``b``
in flight per program (STAGES - 1 tiles ahead of the one computed; the backward
loads a tile of x with each tile of g, twice that), these are the figures
that can be had without a GPU; how fast each runs is the GPU suite's to measure.

    PYTHONPATH=src python benchmarks/inspect_scan_kernels.py
    PYTHONPATH=src python benchmarks/inspect_scan_kernels.py --sweep --archs 90 \
        --out benchmarks/results/scan_kernels_ptx_sweep.json

``--sweep`` compiles a grid instead of the candidates (block 128/256/512, tile 4/8/16,
stages 2/3, warps 4/8; at most 32 tile elements per thread, at least one channel per
thread): the evidence the candidates were picked from.

Writes benchmarks/results/scan_kernels_ptx.json (``--out``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch

from convssm.ops.scan_triton_aot import compile_ahead, ptxas_report
from convssm.ops.scan_triton_kernels import (
    BACKWARD_CONFIGS,
    FORWARD_CONFIGS,
    ScanKernelConfig,
)

COLUMNS = ("direction", "dtype", "block", "tile", "stages", "warps", "elements_per_thread",
           "kib_in_flight", "arch", "registers", "spill_stores", "shared_bytes", "cp_async",
           "shuffles", "shared_stores")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="80,90", help="compute capabilities, comma-separated")
    parser.add_argument("--sweep", action="store_true", help="a grid, not the candidates")
    parser.add_argument("--out", default="benchmarks/results/scan_kernels_ptx.json")
    args = parser.parse_args()
    archs = [int(a) for a in args.archs.split(",")]
    rows = []
    print(" | ".join(COLUMNS))
    start = time.perf_counter()
    tables = (("forward", FORWARD_CONFIGS), ("backward", BACKWARD_CONFIGS))
    if args.sweep:
        grid = [
            ScanKernelConfig(block, tile, stages, warps)
            for block, tile, stages, warps in itertools.product(
                (128, 256, 512), (4, 8, 16), (2, 3), (4, 8)
            )
            if block >= 32 * warps and block * tile // (32 * warps) <= 32
        ]
        tables = tuple((d, {t: grid for t in (torch.float32, torch.float64)}) for d, _ in tables)
    for direction, table in tables:
        for dtype, configs in table.items():
            for config in configs:
                for arch in archs:
                    report = ptxas_report(compile_ahead(direction, dtype, config, arch=arch))
                    pair_bytes = 2 * torch.finfo(dtype).bits // 8
                    tile_bytes = config.tile * config.block * pair_bytes
                    row = dict(
                        direction=direction,
                        dtype=str(dtype).removeprefix("torch."),
                        block=config.block,
                        tile=config.tile,
                        stages=config.stages,
                        warps=config.warps,
                        elements_per_thread=config.tile * config.block // (32 * config.warps),
                        kib_in_flight=(config.stages - 1) * tile_bytes / 1024,
                        **report,
                    )
                    rows.append(row)
                    print(" | ".join(str(row[k]) for k in COLUMNS))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    record = {
        "triton": __import__("triton").__version__,
        "seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
    }
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(out)
    print(f"wrote {out} ({record['seconds']} s)")


if __name__ == "__main__":
    main()
