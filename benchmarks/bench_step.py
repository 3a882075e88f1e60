"""The recurrent step beside its own convolutions: ConvS5Block.step and the published model's
generated frame (eval, no grad), the complex step against the real one and its compiled form.

S1: dim 64, P 32, 16x16, batch 2; S2: dim 256, P 128, 16x16, batch 2 (the paper's width);
S3: dim 64, P 32, 16x16, batch 1. At each shape it times, in alternating blocks (A, B, C,
A, B, C, ...) so that load from other processes hits them alike:

- ``complex``: ``ConvS5Block.step_ref``, the step in complex arithmetic (the code before the
  real step; the public ``step`` is timed too, the real step behind a complex state);
- ``real``: ``ConvS5Block.step_real`` on the real state layout, kernels passed in (what the
  generation loop runs);
- ``compiled``: ``torch.compile(step_real, fullgraph=True, dynamic=False)`` (inductor);
- ``convs``: the block's own four convolutions alone (its weights and biases), the floor of
  a step. ``X / convs`` (median of per-pair ratios) is the figure that transfers between
  machines; the target is <= 1.15 in fp32.

The published demo model (pretrained/moving_mnist/convs5_1digit_roll48_24): one generated
frame, i.e. one call of the loop's step, timed the same way: ``complex`` (encoder, each
block's ``step_ref``, decoder: the previous code's step), ``real`` (``VideoPredictor``'s
loop step), ``compiled``, and the convolutions of the whole frame alone. Target: a frame
in <= 0.6x the complex step's time. Compile times are reported (they count: a compiled loop
pays them once per shape and process).

With ``--compare old/src`` another checkout's code (e.g. the previous commit's ``src``,
``git archive <commit> src | tar -x -C old``) is imported into the same process and its
``ConvS5Block.step`` and ``VideoPredictor.step`` join the alternation as ``compare``.

    PYTHONPATH=src python benchmarks/bench_step.py --compare old/src
    PYTHONPATH=src python benchmarks/bench_step.py --no-compile   # eager only, fast

Writes benchmarks/results/convs5_block_step_real.json (``--out``).
"""

from __future__ import annotations

import os

# Before torch starts OpenMP, as in the other benchmarks (spinning threads hurt when shared).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SHAPES = {  # name: (dim, state_dim, size, batch, target_ms)
    "S1": (64, 32, 16, 2, 1.8),
    "S2": (256, 128, 16, 2, 8.0),
    "S3": (64, 32, 16, 1, 0.9),
}


def _import_as(src: str, alias: str):
    """Another checkout's ``convssm`` (its ``src`` directory) importable as ``alias``.

    Copies the package into a temporary directory with every ``convssm`` name (imports and
    custom-op namespaces) renamed, so that both versions live in this one process and can
    be timed in alternation: a load swing on the shared machine then hits both alike.
    """
    dst = Path(tempfile.mkdtemp(prefix="bench_step_")) / alias
    shutil.copytree(Path(src) / "convssm", dst, ignore=shutil.ignore_patterns("__pycache__"))
    for path in dst.rglob("*.py"):
        path.write_text(re.sub(r"\bconvssm\b", alias, path.read_text()))
    sys.path.insert(0, str(dst.parent))
    return importlib.import_module(f"{alias}.nn")


def _block_time(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


PUBLISHED = "pretrained/moving_mnist/convs5_1digit_roll48_24"
RATIO_TARGET = 1.15  # step / its convolutions, fp32, S1-S3
FRAME_TARGET = 0.6  # the published model's frame, real (compiled or not) / complex


def _compile(fn, compile_s: dict, label: str):
    """``torch.compile(fn)`` (as the generation loop does it), timing the first call."""
    compiled = torch.compile(fn, fullgraph=True, dynamic=False)

    def first_call(*args):
        t0 = time.perf_counter()
        out = compiled(*args)
        compile_s[label] = time.perf_counter() - t0
        return out

    return compiled, first_call


def _block_convs(block, x, xr):
    """The block's four convolutions alone, with its own weights and biases."""
    a, b, w_b, w_c = block.ssm.real_step_kernels()
    c1, c2 = block.output.conv1, block.output.conv2

    def convs():
        F.conv2d(x, w_b, padding="same")
        F.conv2d(xr, w_c, padding="same")
        F.conv2d(x, c1.weight, c1.bias, padding=c1.padding)
        F.conv2d(x, c2.weight, c2.bias, padding=c2.padding)

    return convs


def _shape_callables(nn_mod, compare, dim, p, size, batch, bf16, compiled, compile_s, name):
    x = torch.randn(batch, dim, size, size)
    torch.manual_seed(0)
    block = nn_mod.ConvS5Block(dim, p).eval()
    _, state = block.step(x)
    real = block.ssm.to_real_state(state)
    kernels = block.ssm.real_step_kernels()
    fns = {
        "complex": lambda: block.step_ref(x, state),
        "real": lambda: block.step_real(x, real, kernels),
        "step": lambda: block.step(x, state),
    }
    if compiled:
        c, first = _compile(block.step_real, compile_s, name)
        first(x, real, kernels)
        fns["compiled"] = lambda: c(x, real, kernels)
    if compare is not None:
        old = compare.ConvS5Block(dim, p).eval()
        old.load_state_dict(block.state_dict())
        fns["compare"] = lambda: old.step(x, state)
    fns["convs"] = _block_convs(block, x, torch.randn(batch, 2 * p, size, size))
    if bf16:

        def bf16_step():
            with torch.autocast("cpu", torch.bfloat16):
                return block.step_real(x, real, kernels)

        fns["bf16 autocast"] = bf16_step
    return fns


def _recorded_convs(step) -> list:
    """The arguments of every ``F.conv2d`` one call of ``step`` makes (every convolution of
    a generated frame: the encoder's, the blocks', the decoder's), inputs replaced by fresh
    tensors of their shapes."""
    calls, original = [], F.conv2d

    def record(inp, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        calls.append((torch.randn_like(inp), weight, bias, stride, padding, dilation, groups))
        return original(inp, weight, bias, stride, padding, dilation, groups)

    F.conv2d = record  # nn.Conv2d and ConvS5SSM call torch.nn.functional.conv2d
    try:
        step()
    finally:
        F.conv2d = original
    return calls


def _model_callables(models_mod, compare, compiled, compile_s):
    model = models_mod.VideoPredictor.from_pretrained(PUBLISHED).eval()
    context = torch.rand(1, 10, 1, model.image_size, model.image_size) * 2 - 1
    y, states = model.sequence(model.encode(context), check_values=False)
    frame = model.decode(y[:, -1:])[:, 0]
    real = model.sequence.to_real_states(states)
    kernels = model.sequence.real_step_kernels()

    def complex_step():  # the previous code's VideoPredictor.step: complex blocks
        z = model.encode(frame[:, None])[:, 0]
        new = []
        for layer, s in zip(model.sequence.layers, states, strict=True):
            z, s = layer.step_ref(z, s)
            new.append(s)
        return model.decode(z[:, None])[:, 0], new

    fns = {
        "complex": complex_step,
        "real": lambda: model._step_real(frame, real, None, kernels),
        "step": lambda: model.step(frame, states),
    }
    if compiled:
        c, first = _compile(model._step_real, compile_s, "model")
        first(frame, real, None, kernels)
        fns["compiled"] = lambda: c(frame, real, None, kernels)
    if compare is not None:
        old = compare.VideoPredictor(**model.config.to_dict()).eval()
        old.load_state_dict(model.state_dict())
        fns["compare"] = lambda: old.step(frame, states)
    calls = _recorded_convs(fns["real"])

    def convs():
        for args in calls:
            F.conv2d(*args)

    fns["convs"] = convs
    return fns


def _alternate(fns: dict, seconds: float) -> dict:
    """ms per call of each callable, timed in alternating ~50 ms blocks: lists per label."""
    for fn in fns.values():  # warm up
        for _ in range(5):
            fn()
    n = {k: max(1, int(0.05 / max(_block_time(fn, 2), 1e-6))) for k, fn in fns.items()}
    times = {k: [] for k in fns}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times["convs"]) < 5:
        for k, fn in fns.items():
            times[k].append(1e3 * _block_time(fn, n[k]))
    return times


def _summarise(prefix: str, times: dict) -> dict:
    out = {}
    for k, ts in times.items():
        out[f"{prefix} {k}"] = statistics.median(ts)
    for base in ("convs", "complex"):
        for k, ts in times.items():
            if k != base:
                ratios = [t / b for t, b in zip(ts, times[base], strict=True)]
                out[f"{prefix} {k} / {base}"] = statistics.median(ratios)
    return out


def measure(nn_mod, models_mod, compare, seconds, compiled, shapes) -> tuple[dict, dict]:
    out, compile_s = {}, {}
    with torch.no_grad():
        for name in shapes:
            if name == "model":
                fns = _model_callables(models_mod, compare and compare[1], compiled, compile_s)
            else:
                dim, p, size, batch, _ = SHAPES[name]
                fns = _shape_callables(
                    nn_mod,
                    compare and compare[0],
                    dim,
                    p,
                    size,
                    batch,
                    name == "S2",
                    compiled,
                    compile_s,
                    name,
                )
            out.update(_summarise(name, _alternate(fns, seconds)))
            print(f"  {name} done, load {os.getloadavg()[0]:.1f}", flush=True)
    return out, compile_s


def op_counts(nn_mod) -> dict:
    """ATen ops per ``ConvS5Block`` step at S1 (top level, and all calls including nested
    ones): the per-step dispatch work, a count that the machine's load cannot blur."""
    dim, p, size, batch, _ = SHAPES["S1"]
    block = nn_mod.ConvS5Block(dim, p).eval()
    x = torch.randn(batch, dim, size, size)
    out = {}
    with torch.no_grad():
        _, state = block.step(x)
        real, kernels = block.ssm.to_real_state(state), block.ssm.real_step_kernels()
        for label, fn in {
            "complex": lambda: block.step_ref(x, state),
            "real": lambda: block.step_real(x, real, kernels),
        }.items():
            fn()
            with torch.profiler.profile() as prof:
                for _ in range(10):
                    fn()
            events = [e for e in prof.events() if e.name.startswith("aten::")]
            top = [
                e for e in events if not (e.cpu_parent and e.cpu_parent.name.startswith("aten::"))
            ]
            out[f"S1 {label} aten ops per step (top level / all)"] = (
                len(top) / 10,
                len(events) / 10,
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", help="another checkout's src directory, timed alongside")
    parser.add_argument("--seconds", type=float, default=6.0, help="per shape")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--shapes", default="S1,S2,S3,model", help="comma-separated subset")
    parser.add_argument("--out", default="benchmarks/results/convs5_block_step_real.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import convssm.models
    import convssm.nn

    compare = None
    if args.compare:
        nn_old = _import_as(args.compare, "convssm_compare")
        compare = (nn_old, importlib.import_module("convssm_compare.models"))
    shapes = args.shapes.split(",")
    load0 = os.getloadavg()
    t0 = time.time()
    res, compile_s = measure(
        convssm.nn, convssm.models, compare, args.seconds, not args.no_compile, shapes
    )
    counts = op_counts(convssm.nn)
    load1 = os.getloadavg()
    print(f"{'ms per call (median of alternating blocks); ratios: median per pair':70s}")
    for key, value in res.items():
        print(f"  {key:44s}{value:10.3f}")
    for key, value in compile_s.items():
        print(f"  compile + first call, {key:22s}{value:10.1f} s")
    for key, value in counts.items():
        print(f"  {key:60s}{value[0]:6.0f} / {value[1]:.0f}")
    verdicts = {}
    for name in shapes:
        for k in ("real", "compiled"):
            if name != "model" and f"{name} {k} / convs" in res:
                r = res[f"{name} {k} / convs"]
                verdicts[f"{name} {k} / convs <= {RATIO_TARGET}"] = r <= RATIO_TARGET
            if name == "model" and f"model {k} / complex" in res:
                r = res[f"model {k} / complex"]
                verdicts[f"model {k} / complex <= {FRAME_TARGET}"] = r <= FRAME_TARGET
    for key, ok in verdicts.items():
        print(f"  target {key}: {'met' if ok else 'missed'}")
    print(f"load average (1, 5, 15 min): before {load0}, after {load1}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "convs5_block_step",
        "command": " ".join(sys.argv),
        "shapes": SHAPES,
        "published_model": PUBLISHED,
        "threads": args.threads,
        "compare": args.compare,
        "results_ms_and_ratios": res,
        "compile_seconds": compile_s,
        "targets": verdicts,
        "op_counts": counts,
        "wall_seconds": time.time() - t0,
        "loadavg_before": load0,
        "loadavg_after": load1,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
