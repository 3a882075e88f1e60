"""A delayed-recall ConvS5 run's model with only its first layers: a starting point for a
phase that tests whether the later layers are what breaks extrapolation.

    python experiments/recall/drop_layers.py runs/recall/convs5_real_log_distractor/delay_256 \
        runs/recall_layers/convs5_real_log_distractor_depth1 --depth 1

Reads the run's newest checkpoint, keeps the encoder, decoder, projections and the first
``--depth`` sequence layers' weights (the later layers are residual: without them the first
layers' output goes to the decoder), and writes a model folder (``save_pretrained``) that
``train.init_from`` accepts, with a ``phase.json`` of zero CPU whose ``init_from`` is the
source run, so ``report.py`` counts the source's training in the new model's CPU-minutes.
The phase that follows has to teach the decoder the new input; the layers kept are
unchanged here.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from convssm._files import atomic_write_text
from convssm.models import VideoPredictor
from convssm.train.checkpoint import load_checkpoint, load_model_weights


def drop_layers(source: Path, out: Path, depth: int) -> VideoPredictor:
    """The source run's model with its first ``depth`` ConvS5 layers, saved to ``out``."""
    info = load_checkpoint(source, training_state=False)
    config = info.config.model
    if config.sequence_model != "convs5":
        raise SystemExit(f"{source}: a {config.sequence_model} model; only ConvS5 stacks")
    had = len({k.split(".")[2] for k in info.weights if k.startswith("sequence.layers.")})
    if not 1 <= depth < had:
        raise SystemExit(f"--depth must be between 1 and {had - 1} (the run has {had} layers)")
    kept = replace(config, sequence_options={**config.sequence_options, "depth": depth})
    model = VideoPredictor(kept)
    dropped = tuple(f"sequence.layers.{i}." for i in range(depth, had))
    weights = {k: v for k, v in info.weights.items() if not k.startswith(dropped)}
    load_model_weights(model, weights, str(info.path))  # strict: every kept key must fit
    model.save_pretrained(out)
    record = {
        "model": f"{source.parent.name}, first {depth} of {had} layers",
        "delay": json.loads((source / "phase.json").read_text())["delay"],
        "budget_cpu_min": 0.0,
        "cpu_s_process": 0.0,
        "steps": 0,
        "init_from": str(source),
        # what made this phase, for a card's reproduce commands (not a run.py phase)
        "command": (
            f"python experiments/recall/drop_layers.py {source.as_posix()} {out.as_posix()} "
            f"--depth {depth}"
        ),
    }
    atomic_write_text(out / "phase.json", json.dumps(record, indent=2) + "\n")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a run.py phase's workdir")
    parser.add_argument("out", type=Path, help="the model folder to write")
    parser.add_argument("--depth", type=int, required=True, help="how many layers to keep")
    args = parser.parse_args()
    model = drop_layers(args.source, args.out, args.depth)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out}: {args.depth} ConvS5 layer(s), {n} parameters")


if __name__ == "__main__":
    main()
