"""The best any predictor can do on a config's held-out set under MSE: the Bayes predictor.

The data: docs/design.md#moving-mnist.

Moving-MNIST's generator is known exactly (:mod:`convssm.data.trajectories`): a
digit starts at a uniform point of the unit square (positions are fractions of the free
range), moves ``step`` per frame in a uniformly drawn direction, bounces, and is drawn at
``floor(position · free_range)``. What the context frames tell about a digit is its image
and its pixel positions in those frames; what they leave open is the exact start and angle
inside the set that reproduces those pixels. Under the generator's uniform prior the
posterior is uniform on that set. :func:`posterior_samples` draws from it by rejection
(a first pass over every angle, a second pass inside a box around what the first accepted,
widened until nothing accepted lies near its edge), and the frame that minimises the
expected MSE is the posterior mean: the digit drawn along each sampled trajectory,
averaged (:func:`bayes_prediction`).

This is an oracle — it is told the digit images and the generator, which a model has to
learn — so its scores are a floor that no predictor can beat on average, and its pictures
show what an MSE-optimal prediction looks like: how far into the future a sharp digit is
*knowable* from the context, and from where on even the best MSE answer is a blur.
For 2 digits each digit's posterior is drawn from its own pixel positions (the oracle knows
which digit is which even where they overlap), so there it is a slightly optimistic floor.

    python experiments/learning/bayes_predictor.py configs/learning/convs5_1digit.yaml \
        --out docs/results/bayes_1digit.json --strip docs/figures/learning/bayes_1digit.png
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from convssm._files import atomic_write
from convssm.data.trajectories import pixel_positions, render, trajectory
from convssm.train.config import ExperimentConfig, config_to_dict, load_config
from convssm.train.heldout import held_out_set, lpips_function, prediction_scores, score_strip

SPREAD_AT = (1, 10, 20, 50, 100)  # generated frames whose posterior spread is reported


def _positions(start: np.ndarray, angle: np.ndarray, frames: int, step: float) -> np.ndarray:
    """Folded positions (frames, N, 2) of N single-digit trajectories (start (N, 2), angle (N,))."""
    direction = np.stack([np.sin(angle), np.cos(angle)], axis=1)
    return trajectory(start, direction, frames, step)[0]


def _consistent(start, angle, pixels, free_range, step) -> np.ndarray:
    """(N,) bool: which proposals reproduce the context pixels (C, 2) exactly."""
    got = pixel_positions(_positions(start, angle, len(pixels), step), free_range)
    return np.all(got == pixels[:, None, :], axis=(0, 2))


def posterior_samples(
    pixels: np.ndarray,
    free_range: int,
    step: float,
    rng: np.random.Generator,
    num_samples: int = 256,
    proposals: int = 200_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform draws of (start, angle) that reproduce one digit's context pixels.

    Args:
        pixels: (C, 2) int top-left pixels (y, x) of the digit in the C context frames.
        free_range: ``image_size - digit_size``.
        step: displacement per frame (fraction of the free range).
        rng: the random generator.
        num_samples: M, the number of draws returned.
        proposals: proposals per rejection pass.

    Returns:
        start (M, 2) in [0, 1] and angle (M,) in radians (direction = (sin, cos)).
    """
    pixels = np.asarray(pixels, dtype=np.int64)
    if pixels.ndim != 2 or pixels.shape[1] != 2 or len(pixels) < 1:
        raise ValueError(f"pixels must have shape (C, 2), got {pixels.shape}")
    # the support of the start is the first frame's pixel cell; the angle's is unknown
    cell_lo = pixels[0] / free_range
    cell_hi = np.minimum((pixels[0] + 1) / free_range, 1.0)
    hard_lo = np.array([*cell_lo, -math.pi])
    hard_hi = np.array([*cell_hi, math.pi])

    def draw(lo, hi, centre):
        """Proposals uniform in the box [lo, hi] of (start_y, start_x, angle − centre)."""
        x = lo + rng.random((proposals, 3)) * (hi - lo)
        ok = _consistent(x[:, :2], centre + x[:, 2], pixels, free_range, step)
        return x[ok]

    # first pass: the whole cell and every angle
    first = draw(hard_lo, hard_hi, 0.0)
    if len(first) == 0:
        raise RuntimeError(
            f"no trajectory among {proposals} proposals reproduces the context pixels "
            f"{pixels.tolist()}: are free_range={free_range} and step={step} the generator's?"
        )
    centre = math.atan2(np.sin(first[:, 2]).mean(), np.cos(first[:, 2]).mean())
    first[:, 2] = np.angle(np.exp(1j * (first[:, 2] - centre)))
    lo, hi = first.min(0), first.max(0)
    # next passes: a box around what was accepted, widened until no accepted draw lies near
    # an edge that is not the support's own (so the box holds the whole support and the
    # draws, uniform in the box, are uniform on the support); passes in one box add up
    min_pad = np.array([1e-5, 1e-5, 1e-4])
    for _ in range(8):
        pad = np.maximum(0.5 * (hi - lo), min_pad)
        lo, hi = np.maximum(lo - pad, hard_lo), np.minimum(hi + pad, hard_hi)
        accepted = [draw(lo, hi, centre)]
        while sum(len(x) for x in accepted) < num_samples:
            if len(accepted) > 50:
                raise RuntimeError(
                    f"fewer than {num_samples} of {50 * proposals} proposals accepted"
                )
            accepted.append(draw(lo, hi, centre))
        x = np.concatenate(accepted)
        margin = 0.05 * (hi - lo)
        near_edge = ((x < lo + margin) & (lo > hard_lo)) | ((x > hi - margin) & (hi < hard_hi))
        if not near_edge.any():
            x = x[:num_samples]
            return x[:, :2], np.mod(centre + x[:, 2], 2 * math.pi)
        lo, hi = np.minimum(lo, x.min(0)), np.maximum(hi, x.max(0))
    raise RuntimeError("the posterior's support did not settle within 8 passes")


def bayes_prediction(
    dataset, index: int, context: int, horizon: int, rng, num_samples: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """The posterior-mean frames of video ``index`` of a MovingMNIST ``dataset``.

    Returns:
        frames (horizon, H, W) float64 in [0, 1] and the posterior spread (horizon,): the
        root-mean-square distance in pixels of the sampled digit positions from their mean,
        averaged over digits.
    """
    p, plan = dataset.params, dataset.plan(index)
    true_pos, _ = trajectory(plan.start, plan.direction, context, p.step)
    ctx_pixels = pixel_positions(true_pos, p.free_range)  # (C, D, 2)
    num_digits = ctx_pixels.shape[1]
    tracks, spread = [], np.zeros(horizon)
    for d in range(num_digits):
        start, angle = posterior_samples(ctx_pixels[:, d], p.free_range, p.step, rng, num_samples)
        pos = _positions(start, angle, context + horizon, p.step)[context:]  # (h, M, 2)
        px = pixel_positions(pos, p.free_range)
        spread += np.sqrt(((px - px.mean(1, keepdims=True)) ** 2).sum(-1).mean(1)) / num_digits
        tracks.append(px)
    digits = dataset.pool[plan.digit_ids]
    frames = np.zeros((horizon, p.image_size, p.image_size))
    for m in range(num_samples):
        pixels = np.stack([t[:, m] for t in tracks], axis=1)  # (h, D, 2)
        frames += render(pixels, digits, p.image_size)
    return frames / (255.0 * num_samples), spread


def evaluate(cfg: ExperimentConfig, num_samples: int = 256, seed: int = 0, lpips: bool = True):
    """Scores of the Bayes predictor on the config's held-out scoring set
    (:func:`convssm.train.heldout.prediction_scores`, what ``convssm train`` records in
    ``scores.jsonl``), the posterior spread at :data:`SPREAD_AT`, and its predictions
    (N, h, 1, H, W) in [0, 1]."""
    context, horizon = cfg.eval.score_context, cfg.eval.score_horizon
    data = held_out_set(cfg)
    videos = torch.stack([data[i] for i in range(len(data))])
    rng = np.random.default_rng(seed)
    preds, spreads = [], []
    for i in range(len(data)):
        frames, spread = bayes_prediction(data, i, context, horizon, rng, num_samples)
        preds.append(torch.from_numpy(frames).float()[:, None])
        spreads.append(spread)
    pred = torch.stack(preds)
    lpips_fn = lpips_function(cfg, torch.device("cpu")) if lpips else None
    truth, last = (videos[:, context:] + 1) / 2, (videos[:, context - 1] + 1) / 2
    row = prediction_scores(pred, truth, last, lpips_fn)
    med = np.median(np.stack(spreads), axis=0)
    row["spread_px"] = {f"+{k}": round(float(med[k - 1]), 2) for k in SPREAD_AT if k <= len(med)}
    return row, pred, videos


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="an experiment config: its data and eval.score_* are used")
    ap.add_argument("--samples", type=int, default=256, help="posterior draws per digit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="JSON file for the scores")
    ap.add_argument("--strip", type=Path, help="PNG strip: truth above the Bayes prediction")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    row, pred, videos = evaluate(cfg, args.samples, args.seed)
    keys = ("rel_best@10", "rel_empty@10", "rel_empty@100", "brightness@50-100", "psnr@10",
            "ssim@10", "lpips@10", "lpips@100")  # fmt: skip
    print(" | ".join(f"{k} {row[k]:.3f}" for k in keys if k in row))
    print("posterior spread (median over videos, px):", row["spread_px"])
    if args.out:
        text = json.dumps({"config": config_to_dict(cfg), "samples": args.samples, **row}, indent=1)
        atomic_write(args.out, lambda tmp: Path(tmp).write_text(text + "\n"))
    if args.strip:
        pic = Image.fromarray(score_strip(videos, pred * 2 - 1, cfg.eval.score_context))
        atomic_write(args.strip, lambda tmp: pic.save(tmp, format="PNG"))


if __name__ == "__main__":
    main()
