"""Teacher-forced next-frame code accuracy of code models on a code cache's test split.

    python experiments/latent/next_code_accuracy.py --codes data/maze.codes \
        --run latent=runs/maze_latent_convs5_small --run teco=runs/maze_teco_convs5_small

For every test video (``--videos``, ``--frames`` from the start, with its actions), every
frame t ≥ 1 is predicted from the true frames before it, and the accuracy is the share of
the 16×16 positions whose predicted code is the true one:

- ``latent_video_predictor``: the most likely code of its logits;
- ``teco``: the posterior codes of frame t drawn from the prior given ``deter`` of the true
  past (draft-and-revise with the config's steps, temperature 1, one seeded generator), then
  the decoder's most likely code; ``teco_posterior`` also reports the decoder given frame t's
  own posterior (it has seen frame t: an autoencoding score, not a prediction).

Prints a table and writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from convssm.data import CodeFolder
from convssm.models import TECO, kind_of
from convssm.run import load_trained


@torch.no_grad()
def teco_accuracy(model: TECO, codes, actions, generator) -> tuple[float, float]:
    """(prior-drawn accuracy, posterior-given accuracy) over frames 1..T−1."""
    z, _ = model.posterior(codes)
    conditioned = torch.full((codes.shape[0],), actions is not None)
    nxt = None if actions is None else actions[:, 1:]
    deter, _ = model.dynamics(z[:, :-1], nxt, conditioned)
    right = right_post = 0.0
    cfg = model.config
    for i in range(deter.shape[1]):
        steps = (cfg.draft_steps, cfg.revise_steps, cfg.revise_rounds)
        drawn = model.prior.draft_and_revise(deter[:, i], *steps, 1.0, generator)
        pred = model.decode_logits(deter[:, i], model.codebook.embed(drawn)).argmax(1)
        right += float((pred == codes[:, i + 1]).float().mean())
        post = model.decode_logits(deter[:, i], z[:, i + 1]).argmax(1)
        right_post += float((post == codes[:, i + 1]).float().mean())
    return right / deter.shape[1], right_post / deter.shape[1]


@torch.no_grad()
def latent_accuracy(model, codes, actions) -> float:
    out = model(codes, actions)
    return float((out.logits.argmax(2) == codes[:, 1:]).float().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codes", required=True, help="the code cache (convssm data encode)")
    p.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR (repeatable)")
    p.add_argument("--videos", type=int, default=16)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="next_code_accuracy.json")
    args = p.parse_args()
    data = CodeFolder(args.codes, split="test", seq_len=args.frames)
    items = [data[i] for i in range(min(args.videos, len(data)))]
    codes = torch.stack([it["codes"] for it in items])
    actions = torch.stack([it["actions"] for it in items]) if "actions" in items[0] else None
    results = {}
    for spec in args.run:
        name, run = spec.split("=", 1)
        tm = load_trained(run, "cpu")
        model, kind = tm.model.eval(), kind_of(tm.config.model).name
        acts = actions if model.num_actions else None
        if kind == "teco":
            gen = torch.Generator().manual_seed(args.seed)
            drawn, post = teco_accuracy(model, codes, acts, gen)
            row = {"accuracy": drawn, "teco_posterior": post}
        else:
            row = {"accuracy": latent_accuracy(model, codes, acts)}
        row.update(kind=kind, step=tm.step, checkpoint=str(tm.path))
        results[name] = row
        print(f"{name:10s} {kind:24s} step {tm.step}: next-code accuracy {row['accuracy']:.4f}")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
