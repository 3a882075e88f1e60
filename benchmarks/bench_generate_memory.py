"""Peak memory (RSS) of ``convssm generate`` against the horizon: bounded, whatever the horizon.

Every horizon runs ``convssm generate`` in a fresh child process on CPU, which reports its
peak resident set size (``ru_maxrss``). The model is an untrained ConvS5 ``VideoPredictor``
(``save_pretrained`` into a temporary folder; ``--image-size``, 64 by default, as the
reference's Moving-MNIST) conditioned on 4 random frames from an npz; ``generate`` writes
the GIF, MP4, strip, error plot and ``generated.npz``. Memory should be flat in the horizon:
every frame goes from the model to the GIF, MP4 and npz writers and is dropped (the strip
keeps its ten frames, the error plot a number per frame).

Run:
  PYTHONPATH=src python benchmarks/bench_generate_memory.py --horizons 500 5000
  PYTHONPATH=src python benchmarks/bench_generate_memory.py --horizons 500 5000 10000 \
      --json benchmarks/results/generate_memory.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = """
import json, resource, sys
from convssm.cli.main import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def make_model(folder: Path, image_size: int) -> Path:
    """An untrained small ConvS5 predictor saved as a published model folder."""
    import torch

    from convssm.models import VideoPredictor

    torch.manual_seed(0)
    model = VideoPredictor(
        image_size=image_size,
        encoder_widths=[8, 16],
        norm_groups=4,
        dim=16,
        sequence_model="convs5",
        sequence_options={"depth": 1, "state_dim": 8, "norm_groups": 4},
    )
    model.save_pretrained(folder)
    return folder


def measure(model: Path, horizon: int, image_size: int, work: Path) -> dict:
    """Peak RSS (MiB) and seconds of one ``convssm generate`` of ``horizon`` frames."""
    video = np.random.default_rng(0).integers(0, 256, (4, image_size, image_size), np.uint8)
    np.savez(work / "context.npz", video=video)
    out = work / f"h{horizon}"
    argv = ["generate", str(model), "--input", str(work / "context.npz"), "--context", "4",
            "--horizon", str(horizon), "--out", str(out), "--device", "cpu"]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"generate --horizon {horizon} failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["rc"] != 0:
        raise RuntimeError(f"generate --horizon {horizon} exited {report['rc']}:\n{done.stderr}")
    return {"horizon": horizon, "peak_mib": report["peak_kib"] / 1024, "seconds": seconds}


def run(horizons: list[int], image_size: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = make_model(work / "model", image_size)
        return [measure(model, h, image_size, work) for h in horizons]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--horizons", type=int, nargs="+", default=[500, 5000])
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = p.parse_args(argv)
    rows = run(args.horizons, args.image_size)
    print(f"convssm generate, {args.image_size}x{args.image_size}, CPU: peak RSS by horizon")
    print(f"{'horizon':>8} {'peak MiB':>9} {'seconds':>8}")
    for r in rows:
        print(f"{r['horizon']:>8} {r['peak_mib']:>9.0f} {r['seconds']:>8.1f}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"image_size": args.image_size, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
