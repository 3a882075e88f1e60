"""A small stand-in with VideoPredictor's interface, for testing the loop without it.

forward(video, actions=None, states=None) -> output with .predictions (B, T-1, C, H, W),
.states (the recurrent state after the last input frame) and .working_predictions /
.working_targets (the same frames: it has no normaliser);
generate(context, horizon) -> (B, horizon, C, H, W); .config -> its VideoPredictorConfig.
It has dropout, so tests also check that RNG state is handled across resume and ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Dataset


@dataclass
class StandInOutput:
    predictions: torch.Tensor
    states: torch.Tensor | None
    working_predictions: torch.Tensor
    working_targets: torch.Tensor


class StandInPredictor(nn.Module):
    """Built from a VideoPredictorConfig (uses image_channels, dim, sequence_options.dropout)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.dim = dim = config.dim
        channels = config.image_channels
        self.enc = nn.Conv2d(channels, dim, 3, padding=1)
        self.mix = nn.Conv2d(2 * dim, dim, 1)
        self.dec = nn.Conv2d(dim, channels, 3, padding=1)
        self.drop = nn.Dropout(float(config.sequence_options.get("dropout", 0.2)))

    def _cell(self, x_t, h):
        u = self.drop(torch.relu(self.enc(x_t)))
        h = torch.tanh(self.mix(torch.cat([u, h], dim=1)))
        return torch.tanh(self.dec(h)), h

    def _h0(self, x):
        return x.new_zeros(x.shape[0], self.dim, x.shape[-2], x.shape[-1])

    def forward(self, video, actions=None, states=None):
        inputs, targets = video[:, :-1], video[:, 1:]
        h, preds = self._h0(video) if states is None else states, []
        for t in range(inputs.shape[1]):
            y, h = self._cell(inputs[:, t], h)
            preds.append(y)
        pred = torch.stack(preds, 1)
        return StandInOutput(pred, h, pred, targets)

    @torch.no_grad()
    def generate(self, context, horizon, actions=None):
        h, y = self._h0(context), None
        for t in range(context.shape[1]):
            y, h = self._cell(context[:, t], h)
        out = [y]
        for _ in range(horizon - 1):
            y, h = self._cell(y, h)
            out.append(y)
        return torch.stack(out, 1)


class RandomVideos(Dataset):
    """Item i: a (T, 1, S, S) video in [-1, 1], a pure function of (seed, i)."""

    def __init__(self, n=64, frames=6, size=16, seed=0):
        self.n, self.frames, self.size, self.seed = n, frames, size, seed

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(self.seed * 100_003 + int(i))
        base = torch.rand(1, 1, self.size, self.size, generator=g)
        shifts = [torch.roll(base, shifts=t, dims=-1) for t in range(self.frames)]
        return (torch.cat(shifts, 0) * 2 - 1).contiguous()


def standin_factory(cfg):
    return StandInPredictor(cfg.model)


def tiny_config(dropout=0.2, **train):
    from convssm.train.config import config_from_dict

    t = {
        "steps": 6,
        "batch_size": 4,
        "log_every": 1,
        "eval_every": 1000,
        "checkpoint_every": 3,
        "progress": False,
        "seed": 3,
        "threads": 1,
    }
    t.update(train)
    return config_from_dict(
        {
            "name": "tiny",
            "model": {
                "image_size": 16,
                "dim": 8,
                "encoder_widths": [8],
                "sequence_model": "standin",
                "sequence_options": {"dropout": dropout},
            },
            "data": {"seq_len": 6, "seed": 5},
            "optim": {"lr": 0.01, "warmup_steps": 2},
            "train": t,
            "eval": {
                "context": 3,
                "horizons": [3],
                "val_videos": 2,
                "batch_size": 2,
                "metrics": ["psnr", "ssim"],
            },
        }
    )
