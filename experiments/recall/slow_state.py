"""What a recall model's slowest modes hold at the cue: the digit's trace against the sum of
the delay frames, as the delay grows.

    python experiments/recall/slow_state.py MODEL [--delays 16,256,1024,4096] [--modes 8]
        [--videos 8] [--out recall_slow_state]

MODEL is a published folder or a run.py workdir (as for delay_sweep.py). For held-out videos
of each delay, the first sequence layer's state at the cue is split by linearity into what
frame 0 (the digit) put there and what every later frame put there: the state of the video
minus the state of the same video with frame 0 replaced by the background, and that second
state itself. Both are averaged (mean |x|) over the ``--modes`` modes with the largest
|Λ̄| (the slowest), over the videos and the grid. With ``--blank`` the delay frames are the
background (no distractor). A memory that keeps the digit keeps the first number level; a
readout fitted at one delay fails elsewhere when the second number grows with the delay.

Writes ``OUT/slow_state.json`` and prints the table; nothing goes into a model folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from convssm._files import atomic_write_text
from convssm.train.factory import delayed_recall

sys.path.insert(0, str(Path(__file__).resolve().parent))
from delay_sweep import load_model  # noqa: E402


def first_layer_state(model, video: torch.Tensor) -> torch.Tensor:
    """The first sequence layer's complex state (B, P, h, w) after ``video`` (B, T, C, H, W)."""
    _, states = model.sequence(model.encode(video), None)
    return states[0]


def measure(model, cfg, delay: int, videos: int, modes: int, blank: bool) -> dict:
    ds = delayed_recall(cfg, "eval", videos, cfg.eval.seed, delay=delay)
    video = torch.stack([ds[i]["video"][: ds.cue_index + 1] for i in range(videos)])
    if blank:
        video[:, 1 : ds.cue_index] = -1.0
    without = video.clone()
    without[:, 0] = -1.0  # the same video with the digit's frame left as background
    with torch.no_grad():
        lam_bar, _, _ = model.sequence.layers[0].ssm.discretize()
        slow = torch.argsort(lam_bar.abs(), descending=True)[:modes]
        full, rest = first_layer_state(model, video), first_layer_state(model, without)
    digit = (full - rest)[:, slow].abs().mean().item()
    frames = rest[:, slow].abs().mean().item()
    return {
        "delay": delay,
        "digit": digit,
        "delay_frames": frames,
        "ratio": frames / digit,
        "slowest_kept_over_delay": float(lam_bar.abs()[slow].min() ** delay),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a published folder or a run.py workdir")
    parser.add_argument("--delays", default="16,256,1024,4096")
    parser.add_argument("--modes", type=int, default=8, help="how many of the slowest modes")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--blank", action="store_true", help="background delay frames")
    parser.add_argument("--out", default="recall_slow_state")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model, cfg = load_model(Path(args.model))
    if not hasattr(model.sequence, "layers") or not hasattr(model.sequence.layers[0], "ssm"):
        parser.error(f"{args.model}: not a ConvS5 model (no state space layer to look into)")
    if args.modes < 1 or args.videos < 1:
        parser.error("--modes and --videos must be positive")
    rows = []
    print(f"{'delay':>6} {'digit':>9} {'delay frames':>13} {'ratio':>8} {'|Λ̄|^delay':>10}")
    for d in (int(x) for x in args.delays.split(",")):
        row = measure(model, cfg, d, args.videos, args.modes, args.blank)
        rows.append(row)
        print(f"{d:>6} {row['digit']:>9.4f} {row['delay_frames']:>13.4f} {row['ratio']:>8.1f} "
              f"{row['slowest_kept_over_delay']:>10.3f}", flush=True)  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python experiments/recall/slow_state.py " + " ".join(argv or sys.argv[1:]),
        "model": args.model,
        "modes": args.modes,
        "videos": args.videos,
        "blank": args.blank,
        "rows": rows,
    }
    atomic_write_text(out / "slow_state.json", json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
