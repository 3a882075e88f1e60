"""Peak memory (RSS) of a training step against sequence length, and of evaluation against
the number of videos.

Every measurement runs in a fresh child process and reports its peak resident set size
(``ru_maxrss``), so runs do not see each other's allocations.

- ``train``: one paper-width ConvS5 ``VideoPredictor`` step (``configs/moving_mnist/
  convs5_300.yaml``: 8 layers, dim 256, P 128, 64x64, ~22 M parameters; ``--config`` for
  another, e.g. ``convs5_600.yaml``), batch 1 (one micro-batch of ``train.grad_accum``), AdamW,
  fp32, through ``convssm.train.train_step`` — plain, chunked (``train.tbptt_chunk``) and/or
  with ``train.activation_checkpointing``. A 3-frame warm-up step first (AdamW state,
  thread pools), then the measured step on random frames in [-1, 1] of length L.
- ``eval``: ``convssm.run.evaluate_checkpoint`` (streaming) on the reference protocol
  (64x64 Moving-MNIST, context 100, horizons 400/800/1200 = 1 300 frames per video,
  batch 8) for N videos, with the in-memory reference path (``generate_videos`` +
  ``evaluate_predictions``) for comparison. The model is an untrained ConvS5 at 64x64
  (``--eval-model tiny`` or ``small``; generating 1 300-frame videos at paper width takes
  hours on a 2-core CPU); the model's own memory does not depend on N. Metrics: PSNR, SSIM and MSE
  (``--metrics psnr ssim lpips`` adds LPIPS; I3D/FVD over 1 300 frames is hours here).

Each finished measurement is appended to the JSON file at once (a long series survives an
interruption); the table is printed at the end (or with ``--summarize``).

Run:
  PYTHONPATH=src python benchmarks/bench_memory.py train --lengths 50 100 200
  PYTHONPATH=src python benchmarks/bench_memory.py train --lengths 200 500 --chunk 50
  PYTHONPATH=src python benchmarks/bench_memory.py train --lengths 200 --checkpointing
  PYTHONPATH=src python benchmarks/bench_memory.py train --lengths 600 --chunk 100 \
      --config configs/moving_mnist/convs5_600.yaml
  PYTHONPATH=src python benchmarks/bench_memory.py eval --videos 32 128
  PYTHONPATH=src python benchmarks/bench_memory.py eval --videos 32 --in-memory
  PYTHONPATH=src python benchmarks/bench_memory.py --summarize
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "configs" / "moving_mnist" / "convs5_300.yaml"
OUT = ROOT / "benchmarks" / "results" / "memory.json"
EVAL_MODELS = {  # at 64x64; the evaluation pipeline's memory does not depend on the model
    "small": {
        "encoder_widths": [16, 32],
        "norm_groups": 8,
        "dim": 32,
        "sequence_options": {"depth": 2, "state_dim": 16, "kernel_size": 3, "norm_groups": 8},
    },
    "tiny": {
        "encoder_widths": [8, 8, 8],
        "norm_groups": 4,
        "dim": 8,
        "sequence_options": {"depth": 1, "state_dim": 4, "kernel_size": 3, "norm_groups": 4},
    },
}


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


# ---------------------------------------------------------------- children


def child_train(length: int, chunk: int | None, checkpointing: bool, config: Path = PAPER) -> dict:
    import torch

    from convssm.train import train_step
    from convssm.train.config import load_config
    from convssm.train.distributed import DistributedContext
    from convssm.train.factory import build_model
    from convssm.train.state import create_train_state

    cfg = load_config(
        config,
        [
            "train.batch_size=1",
            "train.precision=fp32",
            f"train.tbptt_chunk={'null' if chunk is None else chunk}",
            f"train.activation_checkpointing={str(checkpointing).lower()}",
        ],
    )
    torch.manual_seed(0)
    model = build_model(cfg.model)
    state = create_train_state(cfg, model, 1, False, DistributedContext())
    g = torch.Generator().manual_seed(0)
    train_step(state, torch.rand(1, 3, 1, 64, 64, generator=g) * 2 - 1)  # warm-up
    warm = _peak_gib()
    video = torch.rand(1, length, 1, 64, 64, generator=g) * 2 - 1
    t0 = time.perf_counter()
    loss = float(train_step(state, video)["loss"])
    seconds = time.perf_counter() - t0
    return {
        "kind": "train",
        "config": cfg.name,
        "length": length,
        "tbptt_chunk": chunk,
        "activation_checkpointing": checkpointing,
        "parameters": sum(p.numel() for p in model.parameters()),
        "peak_rss_gib": _peak_gib(),
        "rss_after_warmup_gib": warm,
        "step_s": seconds,
        "s_per_frame": seconds / (length - 1),
        "loss": loss,
        "threads": torch.get_num_threads(),
    }


def child_eval(
    videos: int, in_memory: bool, model_kind: str, horizons: list[int], metrics: list[str]
) -> dict:
    import torch

    from convssm.train.checkpoint import save_checkpoint
    from convssm.train.config import config_from_dict, config_to_dict, load_config
    from convssm.train.factory import build_model

    data = config_to_dict(load_config(PAPER))
    if model_kind != "paper":
        data["model"] = {**data["model"], **EVAL_MODELS[model_kind]}
    data["eval"]["metrics"] = metrics
    data["eval"]["num_videos"] = videos
    data["eval"]["horizons"] = horizons
    cfg = config_from_dict(data)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_checkpoint(Path(tmp) / "ckpt", 0, model, cfg, {})
        del model
        t0 = time.perf_counter()
        if in_memory:
            result = _eval_in_memory(ckpt, videos)
        else:
            from convssm.run.inference import evaluate_checkpoint

            result, _ = evaluate_checkpoint(ckpt, Path(tmp) / "eval", device="cpu")
        seconds = time.perf_counter() - t0
    ev = cfg.eval
    return {
        "kind": "eval",
        "videos": videos,
        "path": "in-memory" if in_memory else "streaming",
        "model": model_kind,
        "frames_per_video": ev.context + max(ev.horizons),
        "metrics": ev.metrics,
        f"psnr@{max(horizons)}": result.per_horizon[str(max(horizons))]["psnr"],
        "peak_rss_gib": _peak_gib(),
        "seconds": seconds,
        "threads": torch.get_num_threads(),
    }


def _eval_in_memory(ckpt: Path, videos: int):
    """The reference path: every true and predicted frame in memory, then scored."""
    from torch.utils.data import DataLoader

    from convssm.metrics import evaluate_predictions
    from convssm.run.inference import load_trained
    from convssm.train.factory import build_eval_dataset, split_item
    from convssm.train.validation import generate_videos

    tm = load_trained(ckpt, "cpu")
    ev = tm.config.eval
    dataset = build_eval_dataset(tm.config, videos, ev.context + max(ev.horizons))
    batches = (split_item(b) for b in DataLoader(dataset, batch_size=ev.batch_size))
    truth, pred = generate_videos(tm.model, batches, ev.context, max(ev.horizons), tm.device)
    return evaluate_predictions(truth, pred, ev.context, ev.horizons, ev.metrics)


# ---------------------------------------------------------------- parent


def _run_child(args: list[str], threads: int | None) -> dict:
    cmd = [sys.executable, __file__, "_child", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:], "args": args}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _append(path: Path, row: dict) -> None:
    rows = json.loads(path.read_text())["rows"] if path.is_file() else []
    rows.append(row)
    payload = {"machine": platform.processor() or platform.machine(), "rows": rows}
    path.write_text(json.dumps(payload, indent=2))


def _table(rows: list[dict]) -> str:
    lines = []
    train = [r for r in rows if r.get("kind") == "train"]
    if train:
        lines.append(f"{'config':>12}{'L':>6}{'chunk':>7}{'ckpt':>6}{'peak RSS GiB':>14}"
                     f"{'step s':>9}{'s/frame':>9}{'load1':>7}")  # fmt: skip
        for r in train:
            lines.append(
                f"{r.get('config', 'convs5_300'):>12}{r['length']:>6}{r['tbptt_chunk'] or '-':>7}"
                f"{'yes' if r['activation_checkpointing'] else 'no':>6}"
                f"{r['peak_rss_gib']:>14.2f}{r['step_s']:>9.1f}{r['s_per_frame']:>9.3f}"
                f"{r.get('load_before', float('nan')):>7.1f}"
            )
    ev = [r for r in rows if r.get("kind") == "eval"]
    if ev:
        lines.append(f"{'videos':>7}{'path':>11}{'model':>7}{'metrics':>18}{'frames':>8}"
                     f"{'peak RSS GiB':>14}{'seconds':>9}{'load1':>7}")  # fmt: skip
        for r in ev:
            lines.append(
                f"{r['videos']:>7}{r['path']:>11}{r['model']:>7}"
                f"{','.join(r.get('metrics', ['psnr', 'ssim'])):>18}{r['frames_per_video']:>8}"
                f"{r['peak_rss_gib']:>14.2f}{r['seconds']:>9.0f}"
                f"{r.get('load_before', float('nan')):>7.1f}"
            )
    for r in rows:
        if "error" in r:
            lines.append(f"FAILED {r['args']}: {r['error'][-300:]}")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "train":
            chunk = None if rest[1] == "none" else int(rest[1])
            row = child_train(int(rest[0]), chunk, rest[2] == "1", Path(rest[3]))
        else:
            row = child_eval(
                int(rest[0]), rest[1] == "1", rest[2], json.loads(rest[3]), json.loads(rest[4])
            )
        print(json.dumps(row))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["train", "eval"])
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--chunk", type=int, default=None, help="train.tbptt_chunk")
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument(
        "--config", default=str(PAPER), help="the training config (model) to measure, batch 1"
    )
    parser.add_argument("--videos", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--in-memory", action="store_true", help="the reference eval path")
    parser.add_argument("--eval-model", choices=["tiny", "small", "paper"], default="tiny")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per child")
    parser.add_argument("--horizons", type=int, nargs="+", default=[400, 800, 1200])
    parser.add_argument(
        "--metrics", nargs="+", default=["psnr", "ssim"], help="eval metrics (MSE always)"
    )
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--summarize", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    if not args.summarize:
        if args.what is None:
            parser.error("say train or eval (or --summarize)")
        out.parent.mkdir(parents=True, exist_ok=True)
        if args.what == "train":
            jobs = [
                [
                    "train",
                    str(n),
                    str(args.chunk or "none"),
                    str(int(args.checkpointing)),
                    str(Path(args.config).resolve()),
                ]
                for n in args.lengths
            ]
        else:
            jobs = [
                [
                    "eval",
                    str(n),
                    str(int(args.in_memory)),
                    args.eval_model,
                    json.dumps(args.horizons),
                    json.dumps(args.metrics),
                ]
                for n in args.videos
            ]
        for job in jobs:
            load = os.getloadavg()[0]
            row = {
                **_run_child(job, args.threads),
                "load_before": load,
                "load_after": os.getloadavg()[0],
            }
            _append(out, row)
            print(_table([row]), flush=True)
    rows = json.loads(out.read_text())["rows"] if out.is_file() else []
    print(_table(rows))


if __name__ == "__main__":
    main()
