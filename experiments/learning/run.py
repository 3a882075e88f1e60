"""Train and score learning recipes, one process per recipe.

    python experiments/learning/run.py experiments/learning/recipes/cpu_convs5_curr_mse.yaml \
        --out runs/learning
    python experiments/learning/run.py recipes/a.yaml recipes/b.yaml --parallel   # side by side
    python experiments/learning/run.py --summarize runs/learning                 # the table

Each recipe trains into ``OUT/<recipe name>/`` and resumes from its ``state.pt`` when run
again. See ``harness.py`` for what a recipe holds and what is scored.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from convssm.train.config import parse_override

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Recipe, train_recipe  # noqa: E402

COLUMNS = (
    "step",
    "wall_s",
    "loss",
    "rel_best@10",
    "rel_empty@100",
    "brightness@50-100",
    "psnr@10",
    "ssim@10",
    "lpips@10",
    "psnr@100",
    "ssim@100",
    "lpips@100",
)


def summarize(root: Path) -> list[dict]:
    rows = []
    for path in sorted(root.glob("*/scores.jsonl")):
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        for r in lines:
            rows.append({"recipe": path.parent.name, **r})
    head = ["recipe", *COLUMNS]
    print(" | ".join(head))
    for r in rows:
        cells = [r["recipe"]] + [
            f"{r[c]:.4g}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in COLUMNS
        ]
        print(" | ".join(cells))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("recipes", nargs="*", type=Path)
    ap.add_argument("--out", type=Path, default=Path("runs/learning"))
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a recipe value (YAML-parsed), repeatable",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--parallel", action="store_true", help="one process per recipe, at once")
    ap.add_argument("--summarize", type=Path, default=None, metavar="DIR")
    args = ap.parse_args(argv)
    if args.summarize is not None:
        summarize(args.summarize)
        return
    if not args.recipes:
        ap.error("give at least one recipe file (or --summarize DIR)")
    if args.parallel and len(args.recipes) > 1:
        base = [sys.executable, __file__, "--out", str(args.out), "--device", args.device]
        base += [x for s in args.set for x in ("--set", s)]
        if args.threads:
            base += ["--threads", str(args.threads)]
        procs = [subprocess.Popen([*base, str(r)]) for r in args.recipes]
        codes = [p.wait() for p in procs]
        if any(codes):
            failed = [str(r) for r, c in zip(args.recipes, codes, strict=True) if c]
            sys.exit(f"recipes failed: {failed}")
        return
    overrides = {}
    for item in args.set:
        try:
            keys, value = parse_override(item)
        except ValueError as err:
            ap.error(f"--set wants SECTION.KEY=VALUE: {err}")
        overrides[".".join(keys)] = value
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    for path in args.recipes:
        recipe = Recipe.load(path, overrides)
        print(f"== {recipe.name} on {device} (pid {os.getpid()})", flush=True)
        train_recipe(recipe, args.out / recipe.name, device)


if __name__ == "__main__":
    main()
