"""One rank of the 2-process gloo test: run with RANK/WORLD_SIZE/MASTER_* set, like torchrun.

Usage: python train_ddp_worker.py WORKDIR
"""

from __future__ import annotations

import sys

from train_standin import RandomVideos, standin_factory, tiny_config

from convssm.train.loop import train_and_evaluate

if __name__ == "__main__":
    cfg = tiny_config(dropout=0.0, steps=4, checkpoint_every=2)
    train_and_evaluate(
        cfg,
        sys.argv[1],
        model_factory=standin_factory,
        train_dataset=RandomVideos(n=24, frames=6),
        val_dataset=RandomVideos(n=2, frames=6, seed=9),
    )
