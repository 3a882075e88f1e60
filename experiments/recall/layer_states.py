"""What every ConvS5 layer of a recall model holds at the cue, as the delay grows: what the
background alone leaves, what the delay frames add, and the digit's trace.

    python experiments/recall/layer_states.py MODEL [--delays 256,1024,4096] [--videos 4]
        [--out recall_layer_states]

MODEL is a published folder or a run.py workdir (as for delay_sweep.py). For held-out videos
of each delay, three versions of every video up to and including the cue frame are run
through the model, and each layer's state at the end is kept:

- ``blank``: every frame background;
- ``delay``: only the delay frames (the digit's frame 0 and the cue blanked:
  ``convssm.train.objectives.delay_frames_only``);
- ``digit``: only frame 0 (the digit), the rest background.

Each row gives, per layer, mean |x|² (over the batch, the modes and the grid) of
``blank``, of ``delay − blank`` (what the delay frames put there) and of ``digit − blank``
(the digit's trace). In the first layer the differences are exact by linearity; from the
second on they pass through the first layer's nonlinear output block, so they show where
things grow, not an exact split. A state whose ``blank`` grows with the delay integrates a
constant: a frame that shows nothing still puts something into it.

It also reports what the sequence model receives (the encoder's latents, after
``blank_offset`` and ``rectify_latents``) on the delay frames and on the digit's frame: the
share of entries that are not zero and their mean |z|. With ``rectify_latents`` a closed gate
reads 0 on the delay frames; without it nearly every entry is non-zero.

Writes ``OUT/layer_states.json`` and prints the tables; nothing goes into a model folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from convssm._files import atomic_write_text
from convssm.train.factory import delayed_recall
from convssm.train.objectives import delay_frames_only

sys.path.insert(0, str(Path(__file__).resolve().parent))
from delay_sweep import load_model  # noqa: E402


def states_at_cue(model, video: torch.Tensor) -> list[torch.Tensor]:
    """Every sequence layer's complex state (B, P, h, w) after ``video`` (B, T, C, H, W)."""
    _, states = model.sequence(model.encode(video), None)
    return states


def measure(model, cfg, delay: int, videos: int) -> dict:
    ds = delayed_recall(cfg, "eval", videos, cfg.eval.seed, delay=delay)
    items = [ds[i] for i in range(videos)]
    end = ds.cue_index + 1
    video = torch.stack([it["video"] for it in items])
    recall = torch.stack([it["recall"] for it in items])
    versions = {
        "delay": delay_frames_only(video, recall)[:, :end],
        "digit": torch.full_like(video[:, :end], -1.0),
        "blank": torch.full_like(video[:, :end], -1.0),
    }
    versions["digit"][:, 0] = video[:, 0]
    with torch.no_grad():
        states = {name: states_at_cue(model, v) for name, v in versions.items()}

    def size(xs):
        return [float(x.abs().square().mean()) for x in xs]

    def minus_blank(name):
        return size([x - b for x, b in zip(states[name], states["blank"], strict=True)])

    with torch.no_grad():
        z = model.encode(video[:, :end])
    delay_z = z[:, 1 : ds.cue_index]  # the delay frames (one fixed delay: the cue is fixed)
    return {
        "delay": delay,
        "blank": size(states["blank"]),
        "delay_frames": minus_blank("delay"),
        "digit": minus_blank("digit"),
        "latents": {
            "delay_nonzero": float((delay_z != 0).float().mean()),
            "delay_mean_abs": float(delay_z.abs().mean()),
            "digit_nonzero": float((z[:, 0] != 0).float().mean()),
            "digit_mean_abs": float(z[:, 0].abs().mean()),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a published folder or a run.py workdir")
    parser.add_argument("--delays", default="256,1024,4096")
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--out", default="recall_layer_states")
    args = parser.parse_args(argv)
    if args.videos < 1:
        parser.error("--videos must be positive")
    torch.set_num_threads(1)
    model, cfg = load_model(Path(args.model))
    layers = getattr(model.sequence, "layers", None)
    if layers is None or not all(hasattr(layer, "ssm") for layer in layers):
        parser.error(f"{args.model}: not a ConvS5 model (no state space layers to look into)")
    rows = [measure(model, cfg, int(d), args.videos) for d in args.delays.split(",")]
    head = "".join(f" | layer {k + 1}: blank, delay frames, digit" for k in range(len(layers)))
    print(f"{'delay':>6}{head}")
    for r in rows:
        cells = "".join(
            f" | {b:10.4g} {d:10.4g} {g:10.4g}"
            for b, d, g in zip(r["blank"], r["delay_frames"], r["digit"], strict=True)
        )
        print(f"{r['delay']:>6}{cells}")
    print(f"{'delay':>6} | latents ≠ 0 and mean |z|: delay frames      | digit frame")
    for r in rows:
        z = r["latents"]
        print(
            f"{r['delay']:>6} | {z['delay_nonzero']:10.3%} {z['delay_mean_abs']:10.3g}"
            f"             | {z['digit_nonzero']:8.1%} {z['digit_mean_abs']:8.3g}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python experiments/recall/layer_states.py " + " ".join(sys.argv[1:]),
        "model": args.model,
        "videos": args.videos,
        "units": "mean |x|^2 of each layer's state at the cue",
        "rows": rows,
    }
    atomic_write_text(out / "layer_states.json", json.dumps(record, indent=1) + "\n")
    print(f"wrote {out / 'layer_states.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
