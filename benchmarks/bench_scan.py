"""Benchmark convssm.ops.linear_scan against a naive autograd loop and torch's associative_scan.

Default problem: L = 300 steps, N = B*H*W = 2048 pixels, P = 128 complex64 state
channels, i.e. b of shape (300, 2048, 128) and a of shape (128,); a and b require grad, x0 is
None. Every timing is a median over repeats after one warm-up, all taken in the same run, the
methods interleaved round-robin so that changes in the machine's load hit them alike.

Two tables:
1. Full size: linear_scan (CPU path: channel blocks on worker threads), its per-step path
   (``blocked=False``: one loop over all channels, each op split by OpenMP; what CUDA runs),
   and the naive unbind loop (``linear_scan_ref``: ``x = a * x + b_k`` over ``b.unbind(0)``,
   which autograd handles in O(L)). Bytes moved by the forward: read b and write x,
   2 * L*N*P*8 bytes, the same as a copy of b, timed twice: ``dst.copy_(b)`` into memory
   already paged in (the target's reference) and ``b.clone()`` into fresh memory, which is
   what linear_scan (like any op returning a new tensor) writes to. On this VM first-touch
   page faults cost more than the copy itself (``THP_MEM_ALLOC_ENABLE=1`` in the environment
   makes torch allocate huge pages, which cuts that cost).
2. Reduced N (``--small-n``, default 256; L and P unchanged): the same three plus the methods
   that are too slow or too memory-hungry at full size on a shared 24 GiB machine:
   - the autograd trap ``x = a * x + b[k]`` (indexing b: backward is O(L^2); its fwd+bwd is
     timed once, without warm-up, since one call takes tens of seconds),
   - ``torch._higher_order_ops.associative_scan(..., combine_mode="generic")`` on the pair
     (a_k, b_k) with combine (a1, b1), (a2, b2) -> (a2 a1, a2 b1 + b2), once on complex tensors
     and once split into real and imaginary parts (eager; "pointwise" is CUDA only).
   The ratios in this table are measured side by side; the full-size figures it reports for
   associative_scan are extrapolations (x N / small_n) and labelled as such.

Run: PYTHONPATH=src python benchmarks/bench_scan.py [--out benchmarks/results/scan.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch._higher_order_ops.associative_scan import associative_scan

from convssm.ops import linear_scan, linear_scan_ref
from convssm.ops.scan_combine import combine_complex, combine_real_imag
from convssm.ops.scan_loop import scan_loop


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _trap_loop(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The autograd trap (docs/design.md#implementation-facts): b[k] in the loop makes backward
    O(L^2)."""
    x = torch.zeros_like(b[0])
    out = []
    for k in range(b.shape[0]):
        x = a * x + b[k]
        out.append(x)
    return torch.stack(out)


def _assoc_complex(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return associative_scan(combine_complex, (a.expand_as(b), b), 0, combine_mode="generic")[1]


def _assoc_real_imag(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ar, ai = a.real.expand(b.shape), a.imag.expand(b.shape)
    _, _, xr, xi = associative_scan(
        combine_real_imag, (ar, ai, b.real, b.imag), 0, combine_mode="generic"
    )
    return torch.complex(xr, xi)


def _per_step_all_channels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """linear_scan's other-device path on CPU: one loop, each op over all channels (OpenMP)."""
    return scan_loop(a, b, None, False)


METHODS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "linear_scan": linear_scan,
    "linear_scan per-step path (blocked=False)": _per_step_all_channels,
    "naive loop (unbind, = linear_scan_ref)": linear_scan_ref,
    "naive loop (b[k] trap)": _trap_loop,
    "associative_scan generic (complex)": _assoc_complex,
    "associative_scan generic (real/imag split)": _assoc_real_imag,
}


# Methods whose fwd+bwd is timed once (no warm-up, no median): tens of seconds each.
SINGLE_SHOT_BACKWARD = {"naive loop (b[k] trap)"}


def _inputs(length: int, n: int, p: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(length, n, p, dtype=torch.complex64, generator=g)
    modulus = 0.5 + 0.499 * torch.rand(p, generator=g)
    phase = torch.rand(p, generator=g) * 2 * torch.pi
    a = torch.polar(modulus, phase)
    gout = torch.randn(length, n, p, dtype=torch.complex64, generator=g)
    return a, b, gout


def _run_size(length, n, p, methods, repeats, label) -> dict:
    """Time copy and every method's fwd and fwd+bwd, interleaved round-robin over repeats.

    Interleaving spreads changes in the machine's load evenly over the methods compared.
    """
    a, b, gout = _inputs(length, n, p)
    nbytes = 2 * b.numel() * b.element_size()
    ref = linear_scan_ref(a, b)
    a_, b_ = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    dst = torch.empty_like(b)
    cases: dict[tuple[str, str], Callable[[], object]] = {
        ("copy", "copy"): lambda: dst.copy_(b),  # into a destination already paged in
        ("copy", "clone"): lambda: b.clone(),  # into fresh memory, as any new output is
    }
    errors = {}
    for name in methods:
        fn = METHODS[name]
        with torch.no_grad():
            errors[name] = ((fn(a, b) - ref).abs().max() / ref.abs().max()).item()

        def fwd_bwd(fn=fn):
            a_.grad = b_.grad = None
            fn(a_, b_).backward(gout)

        cases[(name, "forward")] = lambda fn=fn: fn(a_, b_)
        if name not in SINGLE_SHOT_BACKWARD:
            cases[(name, "forward_backward")] = fwd_bwd
    del ref
    times: dict[tuple[str, str], list[float]] = {key: [] for key in cases}
    for key, fn in cases.items():
        print(f"  [{label}] warm-up {key[0]} {key[1]}", flush=True)
        fn()
    for r in range(repeats):
        print(f"  [{label}] repeat {r + 1}/{repeats}", flush=True)
        for key, fn in cases.items():
            times[key].append(_timed(fn))
    for name in methods:  # O(L^2) backward: timed once, without warm-up
        if name in SINGLE_SHOT_BACKWARD:
            print(f"  [{label}] single shot {name} forward_backward", flush=True)
            a_.grad = b_.grad = None
            times[(name, "forward_backward")] = [_timed(lambda fn=METHODS[name]: fwd_bwd(fn))]
    copy_s = statistics.median(times[("copy", "copy")])
    clone_s = statistics.median(times[("copy", "clone")])
    res = {"L": length, "N": n, "P": p, "copy_s": copy_s, "copy_GBps": nbytes / copy_s / 1e9}
    res.update(clone_s=clone_s, clone_GBps=nbytes / clone_s / 1e9)
    res["forward_bytes"] = nbytes
    res["methods"] = {}
    for name in methods:
        fwd = statistics.median(times[(name, "forward")])
        fb = times[(name, "forward_backward")]
        res["methods"][name] = {
            "forward_s": fwd,
            "forward_backward_s": statistics.median(fb),
            "forward_backward_repeats": len(fb),
            "max_rel_err_vs_ref": errors[name],
            "forward_GBps": nbytes / fwd / 1e9,
            "forward_frac_of_copy": copy_s / fwd,
            "forward_frac_of_clone": clone_s / fwd,
        }
    return res


def _print_table(res: dict, title: str) -> None:
    ls = res["methods"]["linear_scan"]
    print(f"\n{title}: L={res['L']} N={res['N']} P={res['P']} complex64")
    print(
        f"copy of b's size: dst.copy_(b) {res['copy_s'] * 1e3:.1f} ms "
        f"({res['copy_GBps']:.1f} GB/s); b.clone() {res['clone_s'] * 1e3:.1f} ms "
        f"({res['clone_GBps']:.1f} GB/s)"
    )
    head = f"| {'method':44s} | fwd ms | fwd+bwd ms | fwd x | f+b x | fwd GB/s | rel err |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for name, r in res["methods"].items():
        print(
            f"| {name:44s} | {r['forward_s'] * 1e3:6.1f} | {r['forward_backward_s'] * 1e3:10.1f} "
            f"| {r['forward_s'] / ls['forward_s']:5.1f} "
            f"| {r['forward_backward_s'] / ls['forward_backward_s']:5.1f} "
            f"| {r['forward_GBps']:8.1f} | {r['max_rel_err_vs_ref']:.1e} |"
        )
    print("(x = time relative to linear_scan in the same table)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--L", type=int, default=300)
    ap.add_argument("--N", type=int, default=2048, help="B*H*W")
    ap.add_argument("--P", type=int, default=128)
    ap.add_argument("--small-n", type=int, default=256, help="N for the slow methods' table")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--small-repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/scan.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    fast = [
        "linear_scan",
        "linear_scan per-step path (blocked=False)",
        "naive loop (unbind, = linear_scan_ref)",
    ]
    full = _run_size(args.L, args.N, args.P, fast, args.repeats, "full")
    small = _run_size(args.L, args.small_n, args.P, list(METHODS), args.small_repeats, "small")
    _print_table(full, "Full size")
    _print_table(small, f"Reduced N = {args.small_n} (all methods side by side)")

    ls_full, ls_small = full["methods"]["linear_scan"], small["methods"]["linear_scan"]
    scale = args.N / args.small_n
    summary = {}
    for name in (
        "associative_scan generic (complex)",
        "associative_scan generic (real/imag split)",
    ):
        r = small["methods"][name]
        summary[name] = {
            "forward_speedup_measured_at_small_n": r["forward_s"] / ls_small["forward_s"],
            "forward_backward_speedup_measured_at_small_n": r["forward_backward_s"]
            / ls_small["forward_backward_s"],
            "EXTRAPOLATED_full_size_forward_s": r["forward_s"] * scale,
            "EXTRAPOLATED_full_size_forward_backward_s": r["forward_backward_s"] * scale,
        }
    best_assoc = min(
        min(
            v["forward_speedup_measured_at_small_n"],
            v["forward_backward_speedup_measured_at_small_n"],
        )
        for v in summary.values()
    )
    summary["targets"] = {
        "min_speedup_vs_associative_scan": best_assoc,
        "speedup_target_4x_met": best_assoc >= 4.0,
        "forward_frac_of_copy_bandwidth_full": ls_full["forward_frac_of_copy"],
        "bandwidth_target_30pct_met": ls_full["forward_frac_of_copy"] >= 0.30,
        "forward_frac_of_clone_bandwidth_full": ls_full["forward_frac_of_clone"],
    }
    print("\nassociative_scan at full size, EXTRAPOLATED (x N/small_n, not measured):")
    for name, v in summary.items():
        if name != "targets":
            print(
                f"  {name}: fwd ~{v['EXTRAPOLATED_full_size_forward_s']:.2f} s, "
                f"fwd+bwd ~{v['EXTRAPOLATED_full_size_forward_backward_s']:.2f} s"
            )
    t = summary["targets"]
    print(
        f"targets: linear_scan >= 4x faster than associative_scan: {t['speedup_target_4x_met']} "
        f"(min ratio {t['min_speedup_vs_associative_scan']:.1f}x); forward >= 30% of copy "
        f"bandwidth: {t['bandwidth_target_30pct_met']} "
        f"({100 * t['forward_frac_of_copy_bandwidth_full']:.0f}% of dst.copy_, "
        f"{100 * t['forward_frac_of_clone_bandwidth_full']:.0f}% of b.clone())"
    )

    record = {
        "benchmark": "linear_scan",
        "torch": torch.__version__,
        "threads": args.threads,
        "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE"),
        "machine": platform.processor() or platform.machine(),
        "repeats": {"full": args.repeats, "small": args.small_repeats},
        "loadavg_1_5_15_before": load_before,
        "loadavg_1_5_15_after": os.getloadavg(),
        "full": full,
        "small": small,
        "summary": summary,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"load average (1, 5, 15 min) before {load_before}, after {os.getloadavg()}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
