"""Context-parallel training (``train.sequence_parallel``): peak memory per rank, step time
and bytes exchanged, against sequence length, for 1, 2 and 4 ranks sharing one sequence.

Each point starts R fresh gloo processes on this machine (launched the way torchrun
launches them; R = 1 is a plain single process, no group). Every rank builds the paper-width
ConvS5 ``VideoPredictor`` (``configs/moving_mnist/convs5_300.yaml``: 8 layers, dim 256,
P 128, 64x64; ``--config`` for another), batch 1, AdamW, fp32, one torch thread, and runs
the real ``convssm.train.train_step`` (DDP over the ranks, ``train.sequence_parallel`` R):
first a warm-up step on R + 1 frames (allocates the AdamW state and DDP's buckets), then the
measured step on a random video of L frames, each rank on its part of the time axis.

Reported per point (the worst rank): peak RSS (``ru_maxrss``, the whole process: libraries,
weights, gradients, AdamW state, DDP buckets, activations), the RSS before the measured
step (so the peak's growth over it is the step's own memory), the peak of live tensor
memory during the step and the tensor memory before it (every tensor the process
allocated: weights, gradients, AdamW state, DDP buckets, activations; counted by the CPU
allocator as ``torch.profiler``'s memory profiling reports it, from before the model is
built: what a GPU's ``max_memory_allocated`` would read, without the libraries and the C
allocator's caching that RSS adds), the step's wall time, and
the bytes this rank sent: every ``torch.distributed.all_gather`` (the scans' carry
exchange: one per layer forward, one per layer backward) and point-to-point message
(``tbptt_chunk``: the states handed to the next rank) is counted by wrapping the call. They
are compared with one state, B·P·h·w complex numbers (8 bytes each in complex64), per
layer. DDP's gradient all-reduce (the parameters' bytes, the same for any L) is listed
apart.

On a 2-core CPU, 4 ranks share 2 cores: their step times include waiting for a core.
Per-rank memory is the number that transfers to GPUs; times here are CPU times.

Run (each point appends a row to the JSON at once; the table is printed at the end):
  PYTHONPATH=src python benchmarks/bench_context_parallel.py --lengths 40 80 --ranks 1 2 4
  PYTHONPATH=src python benchmarks/bench_context_parallel.py --lengths 4000 --ranks 2 \
      --chunk 50
  PYTHONPATH=src python benchmarks/bench_context_parallel.py --summarize
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "configs" / "moving_mnist" / "convs5_300.yaml"
OUT = ROOT / "benchmarks" / "results" / "context_parallel.json"


def _rss_gib() -> float:
    """Current resident set size of this process, GiB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


class _TensorMemory:
    """Live tensor bytes of this process over time, from the profiler's allocation events.

    Every CPU tensor allocation and free made while the profiler runs is reported with the
    allocator's running total of bytes it handed out (``total_allocated``); started before
    anything is built, that total is all live tensor memory. :meth:`window` reads it around
    one ``torch.profiler.record_function`` range.
    """

    def __init__(self) -> None:
        from torch.profiler import ProfilerActivity, profile

        self.profile = profile(activities=[ProfilerActivity.CPU], profile_memory=True)

    def __enter__(self) -> _TensorMemory:
        self.profile.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.profile.__exit__(*exc)

    def window(self, name: str) -> tuple[int, int]:
        """(bytes live just before the range ``name`` starts, the most live during it)."""
        from torch._C._profiler import _EventType

        nodes = list(self.profile.profiler.kineto_results.experimental_event_tree())
        allocations, ranges = [], []
        while nodes:
            node = nodes.pop()
            nodes.extend(node.children)
            if node.tag == _EventType.Allocation:
                allocations.append((node.start_time_ns, node.extra_fields.total_allocated))
            elif node.name == name:
                ranges.append((node.start_time_ns, node.end_time_ns))
        if len(ranges) != 1:
            raise RuntimeError(f"expected one profiler range {name!r}, found {len(ranges)}")
        (start, end), allocations = ranges[0], sorted(allocations)
        before = max([(t, b) for t, b in allocations if t < start], default=(0, 0))[1]
        during = [b for t, b in allocations if start <= t <= end]
        return before, max([before, *during])


class _Bytes:
    """Counts what this rank sends through all_gather and point-to-point messages."""

    def __init__(self, dist) -> None:
        self.gather_calls = self.gather_bytes = self.p2p_bytes = 0
        gather, batch = dist.all_gather, dist.batch_isend_irecv

        def counted_gather(parts, tensor, *args, **kw):
            self.gather_calls += 1
            self.gather_bytes += tensor.numel() * tensor.element_size()
            return gather(parts, tensor, *args, **kw)

        def counted_batch(ops):
            for op in ops:
                if op.op is dist.isend:
                    self.p2p_bytes += op.tensor.numel() * op.tensor.element_size()
            return batch(ops)

        dist.all_gather, dist.batch_isend_irecv = counted_gather, counted_batch


def child(length: int, chunk: int | None, config: Path, out: Path) -> None:
    import dataclasses

    import torch
    import torch.distributed as dist

    from convssm.train import train_step
    from convssm.train.config import load_config
    from convssm.train.distributed import init_distributed, split_sequence_groups
    from convssm.train.factory import build_model
    from convssm.train.state import create_train_state

    torch.set_num_threads(1)
    memory = _TensorMemory().__enter__()  # before any tensor of the run exists
    ctx = init_distributed("cpu")
    ranks = ctx.world_size
    cfg = load_config(
        config,
        [
            "train.batch_size=1",
            "train.precision=fp32",
            "train.device=cpu",
            f"train.sequence_parallel={ranks}",
            f"data.seq_len={length}",
        ],
    )
    ctx = split_sequence_groups(ctx, ranks)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    state = create_train_state(cfg, model, 1, False, ctx)
    g = torch.Generator().manual_seed(0)
    frame = (cfg.model.image_channels, cfg.model.image_size, cfg.model.image_size)
    train_step(state, torch.rand(1, ranks + 1, *frame, generator=g) * 2 - 1)  # warm-up
    train = dataclasses.replace(cfg.train, tbptt_chunk=chunk)
    state.config = dataclasses.replace(cfg, train=train)
    video = torch.rand(1, length, *frame, generator=g) * 2 - 1
    counter = _Bytes(dist) if ranks > 1 else None
    before = _rss_gib()
    if ranks > 1:
        dist.barrier()
    t0 = time.perf_counter()
    with torch.profiler.record_function("measured_step"):
        loss = float(train_step(state, video)["loss"])
    seconds = time.perf_counter() - t0
    memory.__exit__(None, None, None)
    tensor_before, tensor_peak = memory.window("measured_step")
    with torch.no_grad():  # one layer's state: B·P·h·w complex numbers
        states = model.sequence_states(video[:, :2])
    row = {
        "rank": ctx.rank,
        "peak_rss_gib": _peak_gib(),
        "rss_before_step_gib": before,
        "tensor_peak_gib": tensor_peak / 2**30,
        "tensor_before_step_gib": tensor_before / 2**30,
        "step_s": seconds,
        "loss": loss,
        "layers": len(states),
        "state_elements": states[0].numel(),
        "state_bytes": states[0].numel() * states[0].element_size(),
        "param_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "gather_calls": counter.gather_calls if counter else 0,
        "gather_bytes_sent": counter.gather_bytes if counter else 0,
        "p2p_bytes_sent": counter.p2p_bytes if counter else 0,
    }
    out.write_text(json.dumps(row))
    if ranks > 1:
        dist.barrier()
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(length: int, ranks: int, chunk: int | None, config: Path) -> dict:
    """One point: ``ranks`` processes on one ``length``-frame sequence."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for rank in range(ranks):
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
            if ranks > 1:
                env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(ranks),
                           MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
            args = [sys.executable, __file__, "_child", str(length), str(chunk), str(config)]
            procs.append(subprocess.Popen([*args, f"{tmp}/rank{rank}.json"], env=env,
                                          stderr=subprocess.PIPE, text=True))  # fmt: skip
        errors = [p.communicate()[1] for p in procs]
        if any(p.returncode for p in procs):
            error = "\n".join(errors)[-3000:]
            return {"length": length, "ranks": ranks, "tbptt_chunk": chunk, "error": error}
        rows = [json.loads(Path(f"{tmp}/rank{r}.json").read_text()) for r in range(ranks)]
    worst = max(rows, key=lambda r: r["peak_rss_gib"])
    return {
        "config": config.name,
        "length": length,
        "ranks": ranks,
        "tbptt_chunk": chunk,
        "peak_rss_gib": worst["peak_rss_gib"],
        "rss_before_step_gib": worst["rss_before_step_gib"],
        "peak_rss_gib_per_rank": [r["peak_rss_gib"] for r in rows],
        "tensor_peak_gib": max(r["tensor_peak_gib"] for r in rows),
        "tensor_before_step_gib": max(r["tensor_before_step_gib"] for r in rows),
        "tensor_peak_gib_per_rank": [r["tensor_peak_gib"] for r in rows],
        "step_s": max(r["step_s"] for r in rows),
        "loss": rows[0]["loss"] if ranks == 1 else None,
        "layers": rows[0]["layers"],
        "state_bytes": rows[0]["state_bytes"],
        "param_bytes": rows[0]["param_bytes"],
        "gather_calls": rows[0]["gather_calls"],
        "gather_bytes_sent": [r["gather_bytes_sent"] for r in rows],
        "p2p_bytes_sent": [r["p2p_bytes_sent"] for r in rows],
        "load_1min": os.getloadavg()[0],
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _append(path: Path, row: dict) -> None:
    rows = json.loads(path.read_text())["rows"] if path.is_file() else []
    rows.append(row)
    payload = {"machine": platform.processor() or platform.machine(), "rows": rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def table(rows: list[dict]) -> str:
    """Markdown: per-rank peak against one process's at the same length and chunking."""
    single = {(r["length"], r["tbptt_chunk"]): r for r in rows if r["ranks"] == 1}
    lines = [
        "| L | chunk | ranks | peak RSS GiB | × 1 process | growth GiB | × 1 process "
        "| tensor peak GiB | × 1 process | step s | sent per layer per step | ÷ state |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["length"], str(r["tbptt_chunk"]), r["ranks"])):
        if "error" in r:
            lines.append(f"| {r['length']} | | {r['ranks']} | error | | | | | | | | |")
            continue
        one = single.get((r["length"], r["tbptt_chunk"]))
        growth = r["peak_rss_gib"] - r["rss_before_step_gib"]
        ratio = f"{r['peak_rss_gib'] / one['peak_rss_gib']:.2f}" if one else "–"
        one_growth = one and one["peak_rss_gib"] - one["rss_before_step_gib"]
        gratio = f"{growth / one_growth:.2f}" if one else "–"
        tensor = r.get("tensor_peak_gib")  # rows measured before it was recorded lack it
        one_tensor = one and one.get("tensor_peak_gib")
        tratio = f"{tensor / one_tensor:.2f}" if tensor and one_tensor else "–"
        tensor_shown = f"{tensor:.2f}" if tensor else "–"
        sent = max(r["gather_bytes_sent"]) + max(r["p2p_bytes_sent"])
        per_layer = sent / r["layers"]
        chunk = r["tbptt_chunk"] or "–"
        lines.append(
            f"| {r['length']} | {chunk} | {r['ranks']} | {r['peak_rss_gib']:.2f} | {ratio} "
            f"| {growth:.2f} | {gratio} | {tensor_shown} | {tratio} | {r['step_s']:.1f} "
            f"| {per_layer / 2**10:.0f} KiB "
            f"| {per_layer / r['state_bytes']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        length, chunk, config, out = argv[1:5]
        child(int(length), None if chunk == "None" else int(chunk), Path(config), Path(out))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[40, 80])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--chunk", type=int, default=None, help="train.tbptt_chunk (default: none)")
    p.add_argument("--config", type=Path, default=PAPER)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--summarize", action="store_true", help="print the table of --out only")
    args = p.parse_args(argv)
    if not args.summarize and not args.config.is_file():
        p.error(f"--config {args.config} is not a file")
    if not args.summarize:
        for length in args.lengths:
            for ranks in args.ranks:
                row = measure(length, ranks, args.chunk, args.config)
                _append(args.out, row)
                shown = row.get("error") or (
                    f"peak {row['peak_rss_gib']:.2f} GiB RSS, "
                    f"{row['tensor_peak_gib']:.2f} GiB of tensors"
                )
                print(f"L={length} ranks={ranks}: {shown}", file=sys.stderr, flush=True)
    print(table(json.loads(args.out.read_text())["rows"]))


if __name__ == "__main__":
    main()
