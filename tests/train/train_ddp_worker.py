"""One rank of the 2-process gloo test: run with RANK/WORLD_SIZE/MASTER_* set, like torchrun.

Usage: python train_ddp_worker.py WORKDIR [KEY=VALUE ...]   (extra train.* settings)
"""

from __future__ import annotations

import sys

from train_standin import RandomVideos, standin_factory, tiny_config

from convssm.train.loop import train_and_evaluate

if __name__ == "__main__":
    extra = dict(arg.split("=", 1) for arg in sys.argv[2:])
    extra = {k: None if v == "null" else int(v) for k, v in extra.items()}
    cfg = tiny_config(dropout=0.0, steps=4, checkpoint_every=2, **extra)
    train_and_evaluate(
        cfg,
        sys.argv[1],
        model_factory=standin_factory,
        train_dataset=RandomVideos(n=24, frames=6),
        val_dataset=RandomVideos(n=2, frames=6, seed=9),
    )
