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
- ``convs``: the block's own four convolutions alone (its weights and biases) as the step
  runs them (``convssm.ops.step_conv2d``: oneDNN where PyTorch's own batch-1 path is slow),
  the floor of a step. ``X / convs`` (median of per-pair ratios) is the figure that
  transfers between machines; the target is <= 1.15 in fp32. ``convs F.conv2d``: the same
  convolutions through plain ``F.conv2d`` (PyTorch's choice of path, the previous code's);
- ``bf16``: ``step_real`` under ``torch.autocast("cpu", torch.bfloat16)``.

The published demo model (pretrained/moving_mnist/convs5_1digit_roll48_24): one generated
frame, i.e. one call of the loop's step, timed the same way: ``complex`` (encoder, each
block's ``step_ref``, decoder: the previous code's step), ``real`` (``VideoPredictor``'s
loop step), ``compiled``, ``bf16``, and the convolutions of the whole frame alone (as the
step runs them, and through ``F.conv2d``). Target: a frame in <= 0.6x the time before the
real step (the ``compare`` code of that time, or the in-process ``complex`` step). Compile
times are reported (they count: a compiled loop pays them once per shape and process).

With ``--compare old/src`` another checkout's code (e.g. the previous commit's ``src``,
``git archive <commit> src | tar -x -C old``) is imported into the same process and its
``ConvS5Block.step`` and ``VideoPredictor.step`` join the alternation as ``compare``;
``--compare`` may be given twice (``compare``, ``compare2``: e.g. the code before the real
step and the code before this change).

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

from convssm.ops import step_conv2d  # noqa: E402

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


def _block_convs(block, x, xr, conv):
    """The block's four convolutions alone, with its own weights and biases, through
    ``conv`` (``step_conv2d``, the step's path, or ``F.conv2d``)."""
    a, b, w_b, w_c = block.ssm.real_step_kernels()
    c1, c2 = block.output.conv1, block.output.conv2

    def convs():
        conv(x, w_b, None, "same")
        conv(xr, w_c, None, "same")
        conv(x, c1.weight, c1.bias, c1.padding)
        conv(x, c2.weight, c2.bias, c2.padding)

    return convs


def _f_conv2d(x, weight, bias, padding):
    return F.conv2d(x, weight, bias, padding=padding)


def _shape_callables(nn_mod, compare, dim, p, size, batch, compiled, compile_s, name):
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
    for label, mod in compare.items():
        old = mod.ConvS5Block(dim, p).eval()
        old.load_state_dict(block.state_dict())
        fns[label] = lambda old=old: old.step(x, state)
    xr = torch.randn(batch, 2 * p, size, size)
    fns["convs"] = _block_convs(block, x, xr, step_conv2d)
    fns["convs F.conv2d"] = _block_convs(block, x, xr, _f_conv2d)

    def bf16_step():
        with torch.autocast("cpu", torch.bfloat16):
            return block.step_real(x, real, kernels)

    fns["bf16"] = bf16_step
    return fns


def _recorded_convs(step) -> list:
    """Every convolution one call of ``step`` makes (the encoder's, the blocks', the
    decoder's) as (function, arguments), inputs replaced by fresh tensors of their shapes:
    ``F.conv2d`` (nn.Conv2d and PyTorch's path) and ``torch.mkldnn_convolution`` (the
    oneDNN path of ``convssm.ops.step_conv2d``)."""
    calls, conv2d, mkldnn = [], F.conv2d, torch.mkldnn_convolution

    def record_conv2d(inp, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        args = (inp, weight, bias, stride, padding, dilation, groups)
        calls.append((conv2d, (torch.randn_like(inp), *args[1:])))
        return conv2d(*args)

    def record_mkldnn(inp, weight, bias, padding, stride, dilation, groups):
        args = (inp, weight, bias, padding, stride, dilation, groups)
        calls.append((mkldnn, (torch.randn_like(inp), *args[1:])))
        return mkldnn(*args)

    F.conv2d, torch.mkldnn_convolution = record_conv2d, record_mkldnn
    try:
        step()
    finally:
        F.conv2d, torch.mkldnn_convolution = conv2d, mkldnn
    return calls


def _as_f_conv2d(fn, args):
    """A recorded convolution as the same ``F.conv2d`` call (PyTorch's own path)."""
    if fn is F.conv2d:
        return args
    inp, weight, bias, padding, stride, dilation, groups = args
    return inp, weight, bias, stride, padding, dilation, groups


def _published_after_context(models_mod):
    """The published model (eval) after 10 random context frames: (model, its last predicted
    frame (1, C, H, W), the complex states, the real step states, the real step kernels)."""
    model = models_mod.VideoPredictor.from_pretrained(PUBLISHED).eval()
    context = torch.rand(1, 10, 1, model.image_size, model.image_size) * 2 - 1
    y, states = model.sequence(model.encode(context), check_values=False)
    frame = model.decode(y[:, -1:])[:, 0]
    real = model.sequence.to_real_states(states)
    return model, frame, states, real, model.sequence.real_step_kernels()


def _config_for(mod, config) -> dict:
    """``config`` as the arguments an older checkout's ``VideoPredictor`` takes: the keys it
    does not know are dropped when they hold this checkout's default (the model is the same
    without them), and refused otherwise."""
    import dataclasses

    known = {f.name for f in dataclasses.fields(mod.VideoPredictorConfig)}
    defaults = {f.name: f.default for f in dataclasses.fields(type(config))}
    fields = config.to_dict()
    unknown = {k: v for k, v in fields.items() if k not in known}
    changed = sorted(k for k, v in unknown.items() if v != defaults.get(k))
    if changed:
        raise ValueError(f"the compared checkout has no {changed}: it cannot build this model")
    return {k: v for k, v in fields.items() if k in known}


def _model_callables(models_mod, compare, compiled, compile_s):
    model, frame, states, real, kernels = _published_after_context(models_mod)

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
    for label, mod in compare.items():
        old = mod.VideoPredictor(**_config_for(mod, model.config)).eval()
        old.load_state_dict(model.state_dict())
        fns[label] = lambda old=old: old.step(frame, states)
    calls = _recorded_convs(fns["real"])
    plain = [_as_f_conv2d(fn, args) for fn, args in calls]

    def convs():
        for fn, args in calls:
            fn(*args)

    def convs_f():
        for args in plain:
            F.conv2d(*args)

    fns["convs"] = convs
    fns["convs F.conv2d"] = convs_f

    def bf16_step():
        with torch.autocast("cpu", torch.bfloat16):
            return model._step_real(frame, real, None, kernels)

    fns["bf16"] = bf16_step
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
    for base in ("convs", "complex", "compare"):
        if base not in times:
            continue
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
                models = {k: v[1] for k, v in compare.items()}
                fns = _model_callables(models_mod, models, compiled, compile_s)
            else:
                dim, p, size, batch, _ = SHAPES[name]
                layers = {k: v[0] for k, v in compare.items()}
                fns = _shape_callables(
                    nn_mod, layers, dim, p, size, batch, compiled, compile_s, name
                )
            out.update(_summarise(name, _alternate(fns, seconds)))
            print(f"  {name} done, load {os.getloadavg()[0]:.1f}", flush=True)
    return out, compile_s


def bf16_drift(models_mod, data_mod, frames: int) -> dict:
    """The published model's generation in bf16 (``generate(precision="bf16")``) against
    fp32 from one Moving-MNIST eval context (its 24 frames, 1 digit of 14 px, 32x32), over
    ``frames`` generated frames: the largest and mean absolute difference (frames in
    [-1, 1]) by frame, the PSNR of the bf16 frames against the fp32 ones, and the wall time
    of each generation (one run each, not alternated)."""
    model = models_mod.VideoPredictor.from_pretrained(PUBLISHED).eval()
    data = data_mod.MovingMNIST(
        1, num_frames=24, image_size=32, num_digits=1, digit_size=14, split="eval"
    )
    context = data[0][None]
    out, gens = {}, {}
    for precision in ("fp32", "bf16"):
        t0 = time.perf_counter()
        gens[precision] = model.generate(context, frames, compile_step=False, precision=precision)
        out[f"{precision} generation of {frames} frames (s)"] = time.perf_counter() - t0
    diff = (gens["bf16"] - gens["fp32"]).abs()[0, :, 0]  # (frames, H, W)
    per_frame_max = diff.flatten(1).amax(1)
    mse = (diff**2).flatten(1).mean(1)
    psnr = 10 * torch.log10(4.0 / mse.clamp_min(1e-20))  # peak-to-peak range 2
    for k in (1, 10, 100, frames):
        if k <= frames:
            out[f"max |bf16 - fp32| at frame {k}"] = per_frame_max[k - 1].item()
            out[f"PSNR bf16 vs fp32 at frame {k} (dB)"] = psnr[k - 1].item()
    out["max |bf16 - fp32| over all frames"] = per_frame_max.max().item()
    out["mean |bf16 - fp32| over all frames"] = diff.mean().item()
    out["median PSNR bf16 vs fp32 (dB)"] = psnr.median().item()
    for db in (40, 20):
        below = (psnr < db).nonzero()
        out[f"first frame with PSNR < {db} dB"] = below[0, 0].item() + 1 if len(below) else 0
    out["min PSNR bf16 vs fp32 (dB)"] = psnr.min().item()
    return out


def profile_model(models_mod, frames: int = 50) -> str:
    """``torch.profiler``'s table (top ops by self CPU time) of ``frames`` generated frames
    of the published model (the loop's real step, eager, batch 1): where a frame's time goes."""
    model, frame, states, real, kernels = _published_after_context(models_mod)
    for _ in range(10):
        model._step_real(frame, real, None, kernels)
    with torch.profiler.profile() as prof:
        for _ in range(frames):
            model._step_real(frame, real, None, kernels)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20)


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


def _cpu_bf16() -> dict:
    """Whether this CPU has native bf16 (its flags, Linux) and what oneDNN reports."""
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "onednn_bf16_supported": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        help="another checkout's src directory, timed alongside (at most twice)",
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="per shape")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--shapes", default="S1,S2,S3,model", help="comma-separated subset")
    parser.add_argument(
        "--profile-model",
        action="store_true",
        help="only print the profiler's table of 50 frames of the published model",
    )
    parser.add_argument(
        "--bf16-frames",
        type=int,
        default=0,
        help="also generate this many frames of the published model in bf16 and fp32 and "
        "report their difference (0: skip)",
    )
    parser.add_argument("--out", default="benchmarks/results/convs5_block_step_real.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import convssm.models
    import convssm.nn

    if args.profile_model:
        with torch.no_grad():
            print(profile_model(convssm.models))
        print(f"threads {args.threads}, load average {os.getloadavg()}")
        return

    compare = {}
    for i, src in enumerate(args.compare):
        label = "compare" if i == 0 else f"compare{i + 1}"
        alias = f"convssm_{label}"
        compare[label] = (_import_as(src, alias), importlib.import_module(f"{alias}.models"))
    shapes = args.shapes.split(",")
    load0 = os.getloadavg()
    t0 = time.time()
    res, compile_s = measure(
        convssm.nn, convssm.models, compare, args.seconds, not args.no_compile, shapes
    )
    counts = op_counts(convssm.nn)
    drift = {}
    if args.bf16_frames:
        import convssm.data

        with torch.no_grad():
            drift = bf16_drift(convssm.models, convssm.data, args.bf16_frames)
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
            for base in ("complex", "compare"):
                if name == "model" and f"model {k} / {base}" in res:
                    r = res[f"model {k} / {base}"]
                    verdicts[f"model {k} / {base} <= {FRAME_TARGET}"] = r <= FRAME_TARGET
    for key, value in drift.items():
        print(f"  {key:60s}{value:10.4g}")
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
        "bf16_against_fp32": drift,
        "cpu_bf16": _cpu_bf16(),
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
