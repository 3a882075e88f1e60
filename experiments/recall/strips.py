"""A picture of a few recall models' recalls after one delay, on the report's held-out videos.

    python experiments/recall/strips.py MODEL [MODEL ...] --delay 4096 [--videos 4]
        [--blank-delay] --out strip.png

Each MODEL is a run.py workdir (its newest checkpoint) or a published folder. One block of
rows per video: the digit shown at frame 0 and the true recall frames on top, then each
model's generated recall, in the order given (the caption names them). Prints each model's
``rel_recall`` on those videos, so a picture is never shown without its score.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from delay_sweep import load_model  # noqa: E402

from convssm.train.factory import delayed_recall  # noqa: E402
from convssm.train.recall_eval import recall_errors, recall_predictions, recall_strip  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--delay", type=int, required=True)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--blank-delay", action="store_true", help="the diagnostic: no distractor")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows, first, truth = {}, None, None
    for path in args.models:
        model, cfg = load_model(path)
        ds = delayed_recall(cfg, "eval", args.videos, cfg.eval.seed, delay=args.delay)
        (pred, true), *_ = recall_predictions(
            model, ds, num_videos=args.videos, batch_size=args.videos, blank_delay=args.blank_delay
        )
        if truth is None:
            first = torch.stack([ds[i]["video"][0] for i in range(args.videos)])
            truth = true
        elif not torch.equal(true, truth):
            raise ValueError(f"{path}: its held-out videos differ from the first model's")
        err, base = recall_errors(pred, true, ds.mean_pattern())
        print(f"{path}: rel_recall {float(err.mean() / base.mean()):.3f} on {args.videos} videos")
        rows[str(path)] = pred
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(recall_strip(first, truth, rows)).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
