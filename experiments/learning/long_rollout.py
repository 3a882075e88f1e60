"""Generate far past the training length: per-frame time and brightness over N frames.

    python experiments/learning/long_rollout.py pretrained/moving_mnist/convs5_1digit \
        --frames 10000 --out docs/results/long_rollout.json

``--videos`` held-out videos of the folder's data (its ``experiment.yaml``, as ``convssm
publish`` writes it; seed 7) (1 by default: the time per frame at batch 1), 10 context
frames, then ``--frames`` generated one at a time (CPU, float32, the videos as one batch).
Prints, per window of frames, the median milliseconds per generated frame (per batch) and
the mean intensity of the generated frames in [0, 1] beside the truth's (the digits keep
bouncing, so the truth's brightness stays that of the digits all along); ``max`` is the
brightest frame's mean intensity (averaged over the videos); writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from convssm._files import atomic_write_text
from convssm.models import VideoPredictor
from convssm.train.checkpoint import read_experiment_yaml
from convssm.train.factory import build_eval_dataset


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--videos", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = VideoPredictor.from_pretrained(args.model).eval()
    cfg = read_experiment_yaml(args.model, model.config)
    context = 10
    if args.videos < 1:
        raise SystemExit(f"--videos must be at least 1, got {args.videos}")
    videos = build_eval_dataset(cfg, args.videos, context + args.frames, seed=7)
    truth = torch.stack([videos[i] for i in range(args.videos)])
    times, bright, rows = [], [], []
    t_prev = time.perf_counter()
    for k, frame in enumerate(model.iter_generate(truth[:, :context], args.frames), start=1):
        now = time.perf_counter()
        times.append(now - t_prev)
        bright.append(float((frame + 1).mean() / 2))
        t_prev = now
        if k % args.window == 0:
            lo = k - args.window
            true_b = float((truth[:, context + lo : context + k] + 1).mean() / 2)
            row = {"frames": f"{lo + 1}-{k}",
                   "median_ms": 1e3 * statistics.median(times[lo:k]),
                   "brightness": statistics.fmean(bright[lo:k]),
                   "true_brightness": true_b,
                   "max_brightness": max(bright[lo:k])}  # fmt: skip
            rows.append(row)
            print(f"frames {row['frames']:>11}: {row['median_ms']:6.2f} ms/frame, brightness "
                  f"{row['brightness']:.4f} (truth {true_b:.4f}, max {row['max_brightness']:.4f})",
                  flush=True)  # fmt: skip
    result = {"model": str(args.model), "frames": args.frames, "window": args.window,
              "videos": args.videos, "threads": args.threads, "load_avg": os.getloadavg(),
              "rows": rows}  # fmt: skip
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
