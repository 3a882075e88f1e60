"""One command for a CUDA machine: check the Triton scan, then time what the paper claims.

Sections, in order. The run survives its sections: each one's exceptions are caught and
recorded; a section that would start past ``--budget-s`` is skipped with a note, and one
that runs past its time limit (the budget left, at most 3x its estimate) is stopped by
``SectionTimeout``, a ``BaseException`` that no ``except Exception`` in a section can
swallow; a lasting device error ("CUDA error: ...", ``torch.AcceleratorError``) ends its
section and marks the remaining ones skipped; if the ``check`` section fails, every later
section runs the scan's loop path and Triton's timing rows are skipped. The table prints
as it goes and the JSON is rewritten after every section, before any cleanup that can raise
(``empty_cache`` after a lasting CUDA error raises again), so a killed run still leaves its
results.

1. ``check``: ``linear_scan_triton`` against the loop path on the device, values and
   gradients of a, b, x0, complex64 and complex128, several lengths, broadcast a, in one
   pass and (past 128 steps) forced into three chunks of time.
2. ``scan``: at 32 768 and 262 144 channels (P 128 at 16x16, batch 1 and 8), L = 512:
   the Triton forward and backward in every candidate configuration and as the launcher
   chooses (tuned, chunked in time where it chunks), each checked against the loop before
   its timing counts, as a share of a device-to-device copy's bandwidth (the forward moves
   b and x, the backward g, x and gx). Targets: forward >= 70 % / backward >= 50 % at
   262 144, >= 50 % / 35 % at 32 768. Then the loop, torch's
   ``associative_scan(combine_mode="pointwise")`` on real/imaginary parts (forward only:
   it has no autograd) and forward+backward through ``linear_scan`` at the wider width.
3. ``block``: a paper-width ConvS5Block (dim 256, P 128, 16x16) forward+backward, fp32 and
   bf16 autocast.
4. ``train``: one training step (forward, backward, AdamW) of VideoPredictor at the paper's
   Moving-MNIST widths (8 layers, dim 256; ConvS5 P 128; ConvLSTM width 256), 64x64
   frames, L = 300, batch 1. Target: ConvS5 >= 3x faster than ConvLSTM.
5. ``generation``: per generated frame at 800 frames: ConvS5 (eager, and replaying a CUDA
   graph of the step), the paper's Transformer (embed 1024, 16 heads, MLP 4096, 8 layers)
   with a KV cache and without (the paper's protocol: re-run the window for every frame).
   Target: ConvS5 >= 400x faster per frame than the no-cache Transformer.
6. ``compile``: ``torch.compile(fullgraph=True)`` of a small ConvS5 (inductor) through the
   scan's custom op, forward and backward, against eager.

Run on the GPU machine from the repository root (benchmarks/gpu_suite.sh installs only
when torch does not import, and kills the run at the budget plus 50 s):

    python benchmarks/gpu_suite.py --out "$OUT"      # at most --budget-s (420 s) of sections
    python benchmarks/gpu_suite.py --device cpu --tiny --out runs/suite   # every code path
                                       # but the CUDA-only ones, at tiny shapes, on CPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

MODEL = dict(image=64, widths=(64, 128, 256), dim=256, state=128, depth=8, groups=32)
TINY_MODEL = dict(image=16, widths=(8, 16), dim=32, state=16, depth=2, groups=4)
FULL = dict(
    check=dict(lengths=(1, 7, 300), state=(2, 16, 8, 8)),
    scan=dict(length=512, widths=(32_768, 262_144)),  # B 1 and 8 of P 128 at 16 x 16
    block=dict(batch=4, length=100, dim=256, state=128, size=16),
    train=dict(MODEL, length=300, batch=1),
    generation=dict(
        context=100,
        frames=800,
        model=MODEL,
        tf_steps=5,
        tf=dict(embed_dim=1024, heads=16, mlp_dim=4096),
    ),
    compile=dict(dim=64, state=32, depth=2, size=16, length=16, batch=2),
)
TINY = dict(
    check=dict(lengths=(1, 7, 130), state=(2, 4, 3, 3)),
    scan=dict(length=20, widths=(600,)),
    block=dict(batch=1, length=4, dim=32, state=16, size=8),
    train=dict(TINY_MODEL, length=6, batch=1),
    generation=dict(
        context=3,
        frames=6,
        model=TINY_MODEL,
        tf_steps=2,
        tf=dict(embed_dim=32, heads=2, mlp_dim=64),
    ),
    compile=dict(dim=8, state=4, depth=2, size=6, length=4, batch=1),
)
ESTIMATE_S = dict(check=20, scan=100, block=25, train=100, generation=80, compile=80)
# Messages of errors after which the device is unusable for the rest of the process (an
# illegal address or a device-side assert poisons the CUDA context); out of memory is not.
FATAL_MARKERS = (
    "CUDA error",
    "CUDA driver error",
    "illegal memory access",
    "device-side assert",
    "unspecified launch failure",
    "CUBLAS_STATUS_EXECUTION_FAILED",
    "cudaErrorLaunchFailure",
)


class SectionTimeout(BaseException):
    """A section ran past its time limit. A BaseException, so that the ``except Exception``
    that keeps one failed measurement from ending a section cannot swallow it."""


def is_fatal_device_error(exc: BaseException, torch) -> bool:
    """Whether exc leaves the device unusable (the remaining sections are then skipped)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return False
    accelerator_error = getattr(torch, "AcceleratorError", None)  # torch >= 2.8
    if accelerator_error is not None and isinstance(exc, accelerator_error):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in FATAL_MARKERS)


class Suite:
    """Runs sections under a time budget, prints rows as they come, writes JSON."""

    def __init__(self, args, torch):
        self.args, self.torch = args, torch
        self.device = torch.device(args.device)
        self.cuda = self.device.type == "cuda"
        self.t0 = time.perf_counter()
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.record = {"env": self._env(), "budget_s": args.budget_s, "sections": {}}
        self.rows: list[dict] = []
        self.fatal: str | None = None  # the first lasting device error, once there is one
        # The Triton scan's standing: None (not checked yet), True (the check section passed),
        # False (it failed: later sections run the loop path, Triton's timings are skipped).
        self.triton_ok: bool | None = None

    def _env(self) -> dict:
        torch = self.torch
        try:
            import triton

            triton_version = triton.__version__
        except ImportError:
            triton_version = None
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            commit = None
        env = {
            "torch": torch.__version__,
            "triton": triton_version,
            "python": sys.version.split()[0],
            "device": self.args.device,
            "tiny": self.args.tiny,
            "commit": commit,
            "machine": platform.node(),
            "TRITON_INTERPRET": os.environ.get("TRITON_INTERPRET"),
        }
        if self.cuda:
            env["gpu"] = torch.cuda.get_device_name(self.device)
            env["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
            env["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
        return env

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def time(self, fn, repeats: int = 5, warmup: int = 1) -> float:
        """Median seconds per call of fn() (synchronised before and after each call)."""
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            self.sync()
            t0 = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    def row(self, section: str, name: str, value, unit: str = "", note: str = "") -> None:
        self.rows.append(dict(section=section, name=name, value=value, unit=unit, note=note))
        self.record["sections"].setdefault(section, {}).setdefault("rows", []).append(self.rows[-1])
        shown = f"{value:12.4g}" if isinstance(value, float) else f"{value!s:>12}"
        print(f"  {section:10s} {name:52s} {shown} {unit:8s} {note}", flush=True)

    def attempt(self, section: str, name: str, fn) -> object:
        """One measurement inside a section: its failure is a row, not the section's end.

        Except a lasting device error (re-raised: the section ends, the suite stops) and
        ``SectionTimeout`` (a BaseException: not caught here).
        """
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - recorded and reported, the section goes on
            self.row(section, name, "error", note=f"{type(exc).__name__}: {str(exc)[:200]}")
            self.record["sections"][section].setdefault("errors", []).append(
                {"name": name, "traceback": traceback.format_exc()}
            )
            if is_fatal_device_error(exc, self.torch):
                raise
            result = None
        self._free()  # may raise after a lasting device error: then the section ends
        return result

    def _free(self) -> None:
        if self.cuda:
            self.torch.cuda.empty_cache()

    def use_loop(self, why: str) -> None:
        """After a failed Triton check: later sections run the loop path, recorded once."""
        if self.triton_ok is False:
            return
        self.triton_ok = False
        self.record["scan_path"] = {"path": "loop", "why": why[:500]}
        print(f"  Triton failed its check ({why[:200]}); later sections use the loop", flush=True)

    def run(self, name: str, fn) -> None:
        entry = self.record["sections"].setdefault(name, {})
        if self.fatal is not None:
            entry.update(status="skipped", note=f"not run after a fatal device error: {self.fatal}")
            print(f"[{name}] skipped: {entry['note']}", flush=True)
            self.write()
            return
        left = self.args.budget_s - self.elapsed()
        estimate = ESTIMATE_S.get(name, 60)
        if left < estimate * (0.2 if self.args.tiny else 1.0):
            entry.update(
                status="skipped",
                note=f"budget: {left:.0f} s left of "
                f"{self.args.budget_s:.0f}, section needs ~{estimate} s",
            )
            print(f"[{name}] skipped: {entry['note']}", flush=True)
            self.write()
            return
        limit = max(1, int(min(left, 3 * estimate)))
        print(f"[{name}] ({self.elapsed():.0f} s elapsed, limit {limit} s)", flush=True)
        t0 = time.perf_counter()
        # A hard stop for a section that hangs in Python (a hang inside one CUDA call is
        # left to the outer `timeout` of gpu_suite.sh).
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(limit)
        try:
            fn(self)
            entry["status"] = "ok"
        except SectionTimeout as exc:
            entry.update(status="timeout", error=f"{exc} ({limit} s)")
            print(f"[{name}] TIMEOUT after {limit} s", flush=True)
        except Exception as exc:  # noqa: BLE001 - recorded and reported, the suite goes on
            entry.update(
                status="error",
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
            )
            print(f"[{name}] ERROR {type(exc).__name__}: {exc}", flush=True)
            print(traceback.format_exc(), flush=True)
            if is_fatal_device_error(exc, self.torch):
                self.fatal = f"{name}: {type(exc).__name__}: {str(exc)[:300]}"
                entry["fatal"] = True
        finally:
            signal.alarm(0)
            entry["seconds"] = time.perf_counter() - t0
            self.write()  # first: the cleanup below raises again after a lasting CUDA error
        try:
            self._free()
        except Exception as exc:  # noqa: BLE001 - recorded; the device may be lost
            entry["cleanup_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            if is_fatal_device_error(exc, self.torch) and self.fatal is None:
                self.fatal = f"{name} (cleanup): {type(exc).__name__}: {str(exc)[:300]}"
            self.write()

    def write(self) -> None:
        self.record["elapsed_s"] = self.elapsed()
        path = self.out / "gpu_suite.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.record, indent=2, default=str) + "\n")
        os.replace(tmp, path)


def _on_alarm(signum, frame):
    raise SectionTimeout("section ran past its time limit")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for gpu_suite.json")
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (a smoke run)")
    parser.add_argument("--sections", default="check,scan,block,train,generation,compile")
    args = parser.parse_args()
    if args.device == "cpu":
        # Triton kernels on CPU tensors run only in its interpreter; set before the import.
        os.environ.setdefault("TRITON_INTERPRET", "1")
    import torch
    from gpu_sections import SECTIONS  # the section bodies, beside this file

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu --tiny for a smoke run", flush=True)
        return 2
    names = args.sections.split(",")
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        print(f"unknown sections {unknown}; known: {', '.join(SECTIONS)}", flush=True)
        return 2
    torch.manual_seed(0)
    suite = Suite(args, torch)
    print(json.dumps(suite.record["env"]), flush=True)
    estimates = ", ".join(f"{n} ~{ESTIMATE_S[n]} s" for n in names)
    print(
        f"budget {args.budget_s:.0f} s ({args.budget_s / 60:.1f} min) for: {estimates} "
        f"(~{sum(ESTIMATE_S[n] for n in names)} s)",
        flush=True,
    )
    shapes = TINY if args.tiny else FULL
    for name in names:
        suite.run(name, lambda s, name=name: SECTIONS[name](s, shapes[name]))
    suite.write()
    failed = [
        k for k, v in suite.record["sections"].items() if v.get("status") in ("error", "timeout")
    ]
    print(
        f"done in {suite.elapsed():.0f} s; wrote {suite.out / 'gpu_suite.json'}"
        + (f"; sections with errors: {failed}" if failed else ""),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
