"""The sections of benchmarks/gpu_suite.py: each takes the suite (timing, rows) and its shapes."""

from __future__ import annotations

import functools
import importlib
import itertools
import math

import torch

from convssm._precision import autocast_context
from convssm.models import VideoPredictor
from convssm.nn import ConvS5, ConvS5Block
from convssm.ops import (
    linear_scan,
    linear_scan_ref,
    linear_scan_triton,
    scan_path,
    set_scan_path,
)
from convssm.ops.scan_combine import combine_real_imag
from convssm.train.objectives import video_prediction_loss

# The module (its name is shadowed by the function in convssm.ops): its configurations
# are swept.
_lst = importlib.import_module("convssm.ops.linear_scan_triton")


def _decay(shape, dtype, device, gen):
    modulus = torch.rand(shape, generator=gen, dtype=torch.float64) * 0.5 + 0.499
    phase = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
    return torch.polar(modulus, phase).to(dtype).to(device)


def _rel(x, y) -> float:
    return float((x - y).abs().max() / y.abs().max().clamp_min(1e-30))


# Relative error of a complex64 forward (|a| < 1) above which a Triton result is wrong.
SCAN_RTOL = 1e-4


# ----------------------------------------------------------------------------- 1. check
def check(s, shapes) -> None:
    """Triton against the loop (and the plain reference) on the device: values, gradients.

    When it fails in any way (a mismatch, an error, its time limit), every later section
    runs the scan's loop path (``set_scan_path("loop")``) and Triton's timings are skipped.
    """
    try:
        _check(s, shapes)
    except BaseException as exc:
        s.use_loop(f"{type(exc).__name__}: {exc}")
        set_scan_path("loop")
        raise
    s.triton_ok = True


def _check(s, shapes) -> None:
    worst = 0.0
    for dtype, tol in ((torch.complex64, 2e-5), (torch.complex128, 1e-12)):
        for length, with_x0, chunks in itertools.product(
            shapes["lengths"], (False, True), (None, 3)
        ):
            if chunks and length <= 128:
                continue  # 64-step chunks: three need more than 128 steps
            gen = torch.Generator().manual_seed(length)
            state = shapes["state"]
            b = torch.randn(length, *state, dtype=dtype, generator=gen).to(s.device)
            a = _decay((state[1], 1, 1), dtype, s.device, gen)  # broadcast like ConvS5
            x0 = torch.randn(*state, dtype=dtype, generator=gen).to(s.device)
            x0 = x0 if with_x0 else None
            w = torch.randn(b.shape, dtype=dtype, generator=gen).to(s.device)
            got = _values_and_grads(
                functools.partial(linear_scan_triton, time_chunks=chunks), a, b, x0, w
            )
            with scan_path("loop"):
                want = _values_and_grads(linear_scan, a, b, x0, w)
            errs = [_rel(g, r) for g, r in zip(got, want, strict=True)]
            worst = max(worst, max(errs) / tol)
            ok = all(e <= 10 * tol for e in errs)
            name = f"{str(dtype)[6:]} L={length} x0={with_x0} chunks={chunks or 'auto'}"
            name += " (x, ga, gb, gx0)"
            s.row(
                "check",
                name,
                "ok" if ok else "MISMATCH",
                note=" ".join(f"{e:.1e}" for e in errs),
            )
            if not ok:
                raise AssertionError(f"Triton scan disagrees with the loop: {name} {errs}")
    # The loop path on the device also agrees with the plain reference (a sanity anchor).
    b = torch.randn(5, 3, 4, dtype=torch.complex128, device=s.device)
    a = torch.full((4,), 0.9 + 0.1j, dtype=torch.complex128, device=s.device)
    s.row(
        "check",
        "loop vs linear_scan_ref (complex128)",
        _rel(linear_scan(a, b), linear_scan_ref(a, b)),
    )
    s.row("check", "worst error / tolerance", worst)


def _values_and_grads(fn, a, b, x0, w):
    leaves = [t.detach().clone().requires_grad_(True) for t in (a, b, x0) if t is not None]
    x = fn(*leaves) if x0 is not None else fn(*leaves, None)
    grads = torch.autograd.grad((w.conj() * x).real.sum(), leaves)
    return (x.detach(), *grads)


# ----------------------------------------------------------------------------- 2. scan
# The targets: forward / backward share of copy bandwidth, by channel count.
SCAN_TARGETS = {32_768: (0.50, 0.35), 262_144: (0.70, 0.50)}


def scan(s, shapes) -> None:
    """Per width: a copy, every candidate configuration of the Triton forward and backward
    (each checked against the loop before it is timed), the configuration the launcher
    chooses, then the loop and torch's associative_scan; forward+backward at the widest."""
    length = shapes["length"]
    for m in shapes["widths"]:
        widest = s.attempt("scan", f"M={m}", lambda m=m: _scan_width(s, length, m))
    # The widest width's inputs and copy time serve the rows below (made again only when
    # its rows failed before returning them).
    a, b, copy = widest or _scan_inputs(s, length, shapes["widths"][-1])
    m = b.shape[1]

    def forward_rows(label, fn, repeats=10):
        t = s.time(fn, repeats=repeats)
        s.row("scan", f"M={m} {label} forward", 1e3 * t, "ms", f"{copy / t:.0%} of copy")
        return t

    with scan_path("loop"):
        s.attempt(
            "scan",
            "loop",
            lambda: forward_rows(
                "loop (per-step kernels)", lambda: linear_scan(a, b, check_values=False), 3
            ),
        )
    s.attempt("scan", "associative_scan", lambda: _assoc_rows(s, a, b, forward_rows))
    ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    g = torch.randn_like(b)

    def fwd_bwd():
        x = linear_scan(ar, br, check_values=False)
        torch.autograd.grad(x, (ar, br), g)

    for path in ("triton", "loop") if s.triton_ok is not False else ("loop",):

        def timed(path=path):
            with scan_path(path):
                t = s.time(fwd_bwd, repeats=5 if path == "triton" else 2)
            s.row("scan", f"M={m} {path} forward+backward", 1e3 * t, "ms", f"{copy / t:.0%}")

        s.attempt("scan", f"{path} forward+backward", timed)


def _config_name(config) -> str:
    return f"block {config.block} tile {config.tile} stages {config.stages} warps {config.warps}"


def _scan_inputs(s, length: int, m: int):
    """a (m,), b (length, m) complex64 on the device, and the time of one copy of b."""
    gen = torch.Generator().manual_seed(m)
    b = torch.randn(length, m, dtype=torch.complex64, generator=gen).to(s.device)
    a = _decay((m,), torch.complex64, s.device, gen)
    return a, b, s.time(lambda: torch.empty_like(b).copy_(b), repeats=10)


def _scan_width(s, length: int, m: int):
    """One width's rows; returns its (a, b, copy time) for the rows after it."""
    a, b, copy = _scan_inputs(s, length, m)
    size = b.numel() * b.element_size()
    tag = f"M={m}"
    s.row("scan", f"{tag} copy of b (L={length}, complex64)", 1e3 * copy, "ms",
          f"{2 * size / 1e9 / copy:.0f} GB/s")  # fmt: skip
    if s.triton_ok is False:
        s.row("scan", "triton", "skipped", note="Triton failed the check section")
        return a, b, copy
    # What the kernels must reproduce: the loop's x, and its gradients for g.
    ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    g = torch.randn_like(b)
    with scan_path("loop"):
        x = linear_scan(ar, br, check_values=False)
        want_ga, want_gb = torch.autograd.grad(x, (ar, br), g)
    x = x.detach()
    pairs = [torch.view_as_real(t).contiguous() for t in (a, b, x, g)]
    del ar, br
    forward_target, backward_target = SCAN_TARGETS.get(m, (None, None))

    def forward():
        return torch.view_as_complex(torch.ops.convssm.scan_triton(pairs[0], pairs[1], None))

    def backward():
        gx, ga = torch.ops.convssm.scan_triton_backward(pairs[0], pairs[2], None, pairs[3], True)
        return torch.view_as_complex(gx), torch.view_as_complex(ga)

    def errors(direction):
        if direction == "forward":
            return [_rel(forward(), x)]
        gx, ga = backward()
        return [_rel(gx, want_gb), _rel(ga, want_ga)]

    # Bytes each direction must move: forward reads b and writes x; backward reads g and
    # x[t-1] and writes gx. Shares are of the copy's rate (2 * size bytes in `copy` s).
    moved = {"forward": 2 * size, "backward": 3 * size}
    targets = {"forward": forward_target, "backward": backward_target}
    for direction, fn in (("forward", forward), ("backward", backward)):
        configs = (_lst.FORWARD_CONFIGS if direction == "forward" else _lst.BACKWARD_CONFIGS)[
            torch.float32
        ]
        for config in [*configs, None]:  # None: the launcher's own (tuned) choice
            label = f"{tag} triton {direction} " + (
                "as chosen" if config is None else _config_name(config)
            )

            def timed(config=config, label=label, direction=direction, fn=fn):
                with _lst.kernel_config(**({direction: config} if config else {})):
                    errs = errors(direction)
                    if not max(errs) <= SCAN_RTOL:
                        s.row("scan", label, "MISMATCH", note=f"rel err {max(errs):.1e}")
                        return
                    t = s.time(fn, repeats=10)
                share = moved[direction] / t / (2 * size / copy)
                target = targets[direction]
                note = f"{share:.0%} of copy bandwidth" + (
                    f" (target >= {target:.0%})" if target and config is None else ""
                )
                s.row("scan", label, 1e3 * t, "ms", note)

            s.attempt("scan", label, timed)
    return a, b, copy


def _assoc_rows(s, a, b, forward_rows) -> None:
    from torch._higher_order_ops.associative_scan import associative_scan

    mode = "pointwise" if s.cuda else "generic"  # pointwise is CUDA only
    ar, ai = a.real.expand(b.shape).contiguous(), a.imag.expand(b.shape).contiguous()
    br, bi = b.real.contiguous(), b.imag.contiguous()

    def run():
        return associative_scan(combine_real_imag, (ar, ai, br, bi), 0, combine_mode=mode)

    fn = torch.compile(run, fullgraph=True) if s.cuda else run
    out = fn()  # compiles once (not timed)
    err = _rel(torch.complex(out[2], out[3]), linear_scan(a, b))
    forward_rows(f"associative_scan {mode} (re/im parts), rel err {err:.1e}", fn, repeats=5)


# ----------------------------------------------------------------------------- 3. block
def block(s, shapes) -> None:
    d, p, size = shapes["dim"], shapes["state"], shapes["size"]
    layer = ConvS5Block(d, p, norm_groups=min(32, d)).to(s.device)
    x = torch.randn(shapes["batch"], shapes["length"], d, size, size, device=s.device)
    x.requires_grad_(True)
    frames = shapes["batch"] * shapes["length"]

    def step():
        y, _ = layer(x)
        y.square().mean().backward()

    for label, dtype in (("fp32", None), ("bf16 autocast", torch.bfloat16)):

        def timed(dtype=dtype, label=label):
            if dtype is None:
                t = s.time(step, repeats=5)
            else:
                with autocast_context(s.device, "bf16"):
                    t = s.time(step, repeats=5)
            s.row(
                "block",
                f"ConvS5Block fwd+bwd {label} ({frames} frames, dim {d}, P {p})",
                1e3 * t,
                "ms",
                f"{1e6 * t / frames:.1f} us/frame",
            )

        s.attempt("block", label, timed)


# ----------------------------------------------------------------------------- 4. train
def _predictor(shapes, kind: str, **extra) -> VideoPredictor:
    options = dict(depth=shapes["depth"])
    if kind == "convs5":
        options.update(state_dim=shapes["state"], norm_groups=shapes["groups"])
    options.update(extra)
    torch.manual_seed(0)
    return VideoPredictor(
        image_size=shapes["image"],
        encoder_widths=shapes["widths"],
        norm_groups=shapes["groups"],
        dim=shapes["dim"],
        sequence_model=kind,
        sequence_options=options,
    )


def train(s, shapes) -> None:
    video = torch.rand(shapes["batch"], shapes["length"], 1, shapes["image"], shapes["image"])
    video = (video * 2 - 1).to(s.device)
    times = {}
    for kind in ("convs5", "convlstm"):

        def timed(kind=kind):
            model = _predictor(shapes, kind).to(s.device).train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95))

            def step():
                opt.zero_grad(set_to_none=True)
                video_prediction_loss(model(video, check_values=False)).backward()
                opt.step()

            t = s.time(step, repeats=3)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            peak = torch.cuda.max_memory_allocated(s.device) / 2**30 if s.cuda else float("nan")
            s.row(
                "train",
                f"{kind} training step, L={shapes['length']}, batch "
                f"{shapes['batch']}, {params:.1f} M params",
                1e3 * t,
                "ms",
                f"peak {peak:.1f} GiB",
            )
            times[kind] = t
            if s.cuda:
                torch.cuda.reset_peak_memory_stats(s.device)

        s.attempt("train", kind, timed)
    if len(times) == 2:
        s.row(
            "train",
            "ConvLSTM / ConvS5 step time",
            times["convlstm"] / times["convs5"],
            "x",
            "target >= 3",
        )


# ----------------------------------------------------------------------------- 5. generation
@torch.no_grad()
def generation(s, shapes) -> None:
    model_shapes = shapes["model"]
    n_ctx, n_gen = shapes["context"], shapes["frames"]
    img = model_shapes["image"]
    context = (torch.rand(1, n_ctx, 1, img, img) * 2 - 1).to(s.device)
    per_frame = {}

    def convs5():
        model = _predictor(model_shapes, "convs5").to(s.device).eval()
        _, states = model.sequence(model.encode(context), check_values=False)
        frame = context[:, -1]

        def eager(n=n_gen):
            f, st = frame, states
            for _ in range(n):
                f, st = model.step(f, st)

        eager(3)  # warm up
        t = s.time(eager, repeats=1, warmup=0) / n_gen
        per_frame["convs5 eager"] = t
        s.row("generation", f"ConvS5 per frame (eager, {n_gen} frames)", 1e3 * t, "ms")
        if s.cuda:
            t = s.time(_graphed_loop(model, frame, states, n_gen), repeats=1, warmup=0) / n_gen
            per_frame["convs5 CUDA graph"] = t
            s.row("generation", f"ConvS5 per frame (CUDA graph, {n_gen} frames)", 1e3 * t, "ms")

    s.attempt("generation", "convs5", convs5)

    def transformer():
        # window 1500 (the reference's) covers every frame here; max_len 2048.
        model = _predictor(model_shapes, "transformer", **shapes["tf"]).to(s.device).eval()
        # History of n_ctx + n_gen frames (the frames already there at the timed steps).
        hist = (torch.rand(1, n_ctx + n_gen, 1, img, img) * 2 - 1).to(s.device)
        z = model.encode(hist)
        seq = model.sequence
        frame = hist[:, -1]
        for label, state in (
            ("KV cache", seq(z, check_values=False)[1]),
            ("no cache", seq(z, seq.init_window(1, seq.height, seq.width), check_values=False)[1]),
        ):

            def one(state=state):
                model.step(frame, state)

            t = s.time(one, repeats=shapes["tf_steps"], warmup=1)
            per_frame[f"transformer {label}"] = t
            s.row(
                "generation",
                f"Transformer per frame at frame {n_ctx + n_gen} ({label})",
                1e3 * t,
                "ms",
            )

    s.attempt("generation", "transformer", transformer)
    fastest = min((v for k, v in per_frame.items() if k.startswith("convs5")), default=None)
    if fastest and "transformer no cache" in per_frame:
        s.row(
            "generation",
            "Transformer (no cache) / ConvS5 per frame",
            per_frame["transformer no cache"] / fastest,
            "x",
            "target >= 400",
        )
    if fastest and "transformer KV cache" in per_frame:
        s.row(
            "generation",
            "Transformer (KV cache) / ConvS5 per frame",
            per_frame["transformer KV cache"] / fastest,
            "x",
        )


def _graphed_loop(model, frame, states, n: int):
    """A CUDA graph of VideoPredictor.step, replayed n times (state copied back each time)."""
    static_frame, static_states = frame.clone(), [t.clone() for t in states]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # warm up (and fill the SSMs' kernel caches) outside the graph
            model.step(static_frame, static_states)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out_frame, out_states = model.step(static_frame, static_states)

    def loop():
        for _ in range(n):
            graph.replay()
            static_frame.copy_(out_frame)
            for dst, src in zip(static_states, out_states, strict=True):
                dst.copy_(src)

    loop()  # check that it runs before it is timed
    return loop


# ----------------------------------------------------------------------------- 6. compile
def compile_(s, shapes) -> None:
    torch.manual_seed(0)
    model = ConvS5(
        shapes["dim"], shapes["state"], depth=shapes["depth"], norm_groups=min(32, shapes["dim"])
    ).to(s.device)
    x = torch.randn(
        shapes["batch"],
        shapes["length"],
        shapes["dim"],
        shapes["size"],
        shapes["size"],
        device=s.device,
    )
    backend = "aot_eager" if s.args.tiny and not s.cuda else "inductor"
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    y, _ = compiled(x)
    y.square().mean().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    y_ref, _ = model(x)
    y_ref.square().mean().backward()
    err = _rel(y.detach(), y_ref.detach())
    gerr = max(_rel(g, p.grad) for g, p in zip(grads, model.parameters(), strict=True))
    s.row("compile", f"ConvS5 fullgraph ({backend}) forward rel err", err)
    s.row("compile", f"ConvS5 fullgraph ({backend}) max grad rel err", gerr)
    t_eager = s.time(lambda: model(x)[0].square().mean().backward(), repeats=5)
    t_comp = s.time(lambda: compiled(x)[0].square().mean().backward(), repeats=5)
    s.row("compile", "eager / compiled fwd+bwd time", t_eager / t_comp, "x")


SECTIONS = {
    "check": check,
    "scan": scan,
    "block": block,
    "train": train,
    "generation": generation,
    "compile": compile_,
}
