"""Score checkpoints on held-out videos: MSE over generated frames 1..H after C context frames,
beside the empty-frame and repeat-last predictors on the same videos (frames in [0, 1]).

    PYTHONPATH=src python experiments/reference_init/score.py RUN/checkpoints/step_000600 ...

Runs with whichever convssm is on PYTHONPATH, so a checkpoint from older code is scored by
that code. Prints one line per checkpoint.
"""

from __future__ import annotations

import argparse

from torch.utils.data import DataLoader

from convssm.metrics.scoring import to_unit
from convssm.run.inference import load_trained
from convssm.train.factory import build_eval_dataset, split_item
from convssm.train.validation import generate_videos


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--videos", type=int, default=32)
    p.add_argument("--context", type=int, default=8)
    p.add_argument("--horizon", type=int, default=10)
    args = p.parse_args()
    for ckpt in args.checkpoints:
        tm = load_trained(ckpt, device="cpu")
        frames = args.context + args.horizon
        data = build_eval_dataset(tm.config, args.videos, frames)
        videos = (split_item(b) for b in DataLoader(data, batch_size=8))
        truth, pred = generate_videos(tm.model, videos, args.context, args.horizon, tm.device)
        truth, pred = to_unit(truth), to_unit(pred)
        future = truth[:, args.context :]
        mse = ((pred - future) ** 2).mean().item()
        empty = (future**2).mean().item()
        repeat = ((truth[:, args.context - 1 : args.context] - future) ** 2).mean().item()
        print(
            f"{ckpt}: MSE frames 1-{args.horizon} {mse:.5f} = {mse / empty:.2f}x empty frame "
            f"({empty:.5f}), {mse / repeat:.2f}x repeat-last ({repeat:.5f}); "
            f"brightness {pred.mean().item() / future.mean().item():.2f}x truth"
        )


if __name__ == "__main__":
    main()
