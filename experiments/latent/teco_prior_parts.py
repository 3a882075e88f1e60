"""A trained TECO's parts scored apart on a code cache's test split, teacher-forced.

    python experiments/latent/teco_prior_parts.py --codes data/maze.codes \
        --run runs/maze_teco_convs5_small

The scores of ``teco_synthetic.score_teco`` (``experiments/latent/teco_synthetic.py``) on
the first ``--videos`` test videos (``--frames`` from the start, with their actions): the
prediction through codes drawn from the prior at ``--temperature`` (``teco``) and at
temperature 0 (``teco_argmax``), the decoder given the true posterior, the prior's most
likely codes against the true posterior codes with all or one position masked, and the
posterior codebook's perplexity. Prints them as JSON and writes ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from convssm.data import CodeFolder
from convssm.run import load_trained

sys.path.insert(0, str(Path(__file__).resolve().parent))
from teco_synthetic import score_teco  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codes", required=True, help="the code cache (convssm data encode)")
    p.add_argument("--run", required=True, help="a TECO run folder")
    p.add_argument("--videos", type=int, default=16)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="teco_prior_parts.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = CodeFolder(args.codes, split="test", seq_len=args.frames)
    items = [data[i] for i in range(min(args.videos, len(data)))]
    codes = torch.stack([it["codes"] for it in items])
    actions = torch.stack([it["actions"] for it in items]) if "actions" in items[0] else None
    tm = load_trained(args.run, "cpu")
    model = tm.model.eval()
    acts = actions if model.num_actions else None
    result = {"step": tm.step, **score_teco(model, codes, acts, args.temperature, args.seed)}
    result["copy"] = (codes[:, 1:] == codes[:, :-1]).float().mean().item()
    print(json.dumps(result, indent=2))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
