"""What a freshly initialised model predicts, over several init seeds: the teacher-forced
loss and the mean and spread of its predicted pixels ([−1, 1]).

    PYTHONPATH=src python experiments/reference_init/init_stats.py [--config C] [--seeds 8]

Two held-out 16-frame videos of the config's data (1 digit); forward pass only.
"""

from __future__ import annotations

import argparse

import torch

from convssm.train.config import load_config
from convssm.train.factory import build_eval_dataset, build_model, split_item
from convssm.train.objectives import video_prediction_loss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/cpu/convs5_small.yaml")
    p.add_argument("--seeds", type=int, default=8)
    args = p.parse_args()
    cfg = load_config(args.config, ["data.num_digits=1"])
    data = build_eval_dataset(cfg, 2, cfg.data.seq_len)
    video, _ = split_item(torch.utils.data.default_collate([data[0], data[1]]))
    losses, means, stds = [], [], []
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        model = build_model(cfg.model)
        with torch.no_grad():
            out = model(video)
        losses.append(f"{video_prediction_loss(out).item():.2f}")
        means.append(f"{out.predictions.mean().item():+.2f}")
        stds.append(f"{out.predictions.std().item():.2f}")
    print("initial loss per seed   ", " ".join(losses))
    print("mean predicted pixel    ", " ".join(means))
    print("std of predicted pixels ", " ".join(stds))


if __name__ == "__main__":
    main()
