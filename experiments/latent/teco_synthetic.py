"""TECO and the latent predictor on a synthetic code task whose next frame is known.

    python experiments/latent/teco_synthetic.py --task shift --seconds 120

Every video starts from a random (size × size) grid of ``vocab`` codes; each next frame is a
deterministic function of the one before: ``increment`` adds 1 to every code (mod vocab);
``add`` adds its action (0..3, drawn at random per frame; mod vocab); ``shift`` moves the
grid by one cell in the direction its action names (4 actions, drawn at random per frame;
the cells that come in are code 0); ``constant`` repeats frame 0. A model that has learned
the task predicts every next code exactly.

Trains TECO (tiny) and, unless ``--no-latent``, a LatentVideoPredictor for ``--seconds``
CPU-seconds each (one thread, AdamW), on fresh batches every step, then scores on held-out
videos, teacher-forced over frames 1..T−1:

- ``teco``: posterior codes drawn from the prior given ``deter`` of the true past
  (draft-and-revise with the config's steps at ``--temperature``), then the decoder's most
  likely codes;
- ``teco_posterior``: the decoder given the next frame's own posterior;
- ``prior_*``: the prior alone: its most likely posterior codes against the true ones with
  every position masked (``prior_all_masked``) or one position masked at a time
  (``prior_one_masked``), the drawn codes' agreement with the true ones
  (``prior_drawn``), and the posterior codebook's perplexity;
- ``latent``: the latent predictor's most likely codes; ``copy``: the last frame's codes.

Prints a table and writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from convssm.models import TECO, LatentVideoPredictor, MaskGit, TECOConfig
from convssm.models.latent_video_predictor import LatentVideoPredictorConfig

TASKS = ("increment", "add", "shift", "constant")
ACTION_TASKS = ("add", "shift")
SHIFTS = ((0, 1), (0, -1), (1, 1), (1, -1))  # (dim of the grid, step) per action


def _shift(x: torch.Tensor, dim: int, step: int) -> torch.Tensor:
    """(size, size) moved one cell along ``dim`` by ``step``; the cells that come in are 0."""
    x = torch.roll(x, step, dim)
    edge = 0 if step > 0 else x.shape[dim] - 1
    x.select(dim, edge).zero_()
    return x


def make_codes(
    task: str, batch: int, frames: int, size: int, vocab: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """codes (batch, frames, size, size) and actions (batch, frames) or None (see above)."""
    x = torch.randint(0, vocab, (batch, size, size), generator=generator)
    actions = torch.randint(0, len(SHIFTS), (batch, frames), generator=generator)
    out = [x]
    for t in range(1, frames):
        if task == "increment":
            x = (x + 1) % vocab
        elif task == "add":
            x = (x + actions[:, t, None, None]) % vocab
        elif task == "shift":
            x = torch.stack([_shift(x[i], *SHIFTS[int(a)]) for i, a in enumerate(actions[:, t])])
        out.append(x)
    return torch.stack(out, 1), (actions if task in ACTION_TASKS else None)


def teco_config(task: str, size: int, vocab: int, **over) -> TECOConfig:
    """A tiny TECO whose posterior grid is the code grid (no downsampling)."""
    base = dict(
        codebook_size=vocab, latent_size=size, code_embed_dim=16, encoder_widths=[32],
        encoder_blocks=1, decoder_widths=[32], decoder_blocks=1, norm_groups=8, z_dim=16,
        z_codes=32, z_proj_dim=16, dim=32, num_actions=len(SHIFTS) if task in ACTION_TASKS else 0,
        action_embed_dim=8, prior_embed_dim=64, prior_depth=2, prior_heads=4,
        prior_mlp_dim=128, prior_token_dim=32, drop_loss_rate=0.0,
        sequence_options={"depth": 2, "state_dim": 32, "kernel_size": 3, "norm_groups": 8},
    )  # fmt: skip
    base.update(over)
    return TECOConfig(**base)


def latent_config(task: str, size: int, vocab: int) -> LatentVideoPredictorConfig:
    return LatentVideoPredictorConfig(
        codebook_size=vocab, latent_size=size, dim=32, code_embed_dim=16, encoder_widths=[32],
        decoder_widths=[32], decoder_blocks=1, norm_groups=8,
        num_actions=len(SHIFTS) if task in ACTION_TASKS else 0, action_embed_dim=8,
        sequence_options={"depth": 2, "state_dim": 32, "kernel_size": 3, "norm_groups": 8},
    )  # fmt: skip


def train(model, loss_fn, data, seconds: float, lr: float, log: str, params=None) -> int:
    """AdamW on ``params`` (None: all) for ``seconds`` CPU-seconds (50 warm-up steps) on
    fresh batches; returns the steps."""
    params = model.parameters() if params is None else params
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=1e-5)
    model.train()
    start, step = time.process_time(), 0
    while time.process_time() - start < seconds:
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 50)
        codes, actions = data()
        loss, parts = loss_fn(model, codes, actions)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"{log} step {step:5d} loss {loss.item():9.3f} {parts}", flush=True)
        step += 1
    return step


def teco_loss(model, codes, actions):
    out = model(codes, actions)
    parts = (f"recon {out.recon_loss.item():8.3f} prior {out.prior_loss.item():7.3f} "
             f"perplexity {out.perplexity.item():5.1f}")  # fmt: skip
    return out.loss, parts


def latent_loss(model, codes, actions):
    logits = model(codes, actions).logits
    loss = F.cross_entropy(logits.transpose(1, 2), codes[:, 1:], label_smoothing=0.01)
    return loss, ""


@torch.no_grad()
def score_teco(model: TECO, codes, actions, temperature: float, seed: int) -> dict[str, float]:
    """The teco/prior scores (module docstring), means over frames 1..T−1 and positions."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    z, vq = model.posterior(codes)
    b, t = codes.shape[:2]
    post = vq.codes.reshape(b, t, *vq.codes.shape[1:])[:, 1:]  # true posterior codes
    conditioned = torch.full((b,), actions is not None)
    deter, _ = model.dynamics(z[:, :-1], None if actions is None else actions[:, 1:], conditioned)
    cfg, prior = model.config, model.prior
    steps = (cfg.draft_steps, cfg.revise_steps, cfg.revise_rounds)
    names = ["teco", "teco_argmax", "teco_posterior", "prior_all_masked", "prior_one_masked",
             "prior_drawn"]  # fmt: skip
    sums = dict.fromkeys(names, 0.0)
    n = deter.shape[1]
    for i in range(n):
        d, target, truth = deter[:, i], codes[:, i + 1], post[:, i]
        drawn = prior.draft_and_revise(d, *steps, temperature, gen)
        pred = model.decode_logits(d, model.codebook.embed(drawn)).argmax(1)
        sums["teco"] += (pred == target).float().mean().item()
        sums["prior_drawn"] += (drawn == truth).float().mean().item()
        best = prior.draft_and_revise(d, *steps, 0.0, gen)
        pred = model.decode_logits(d, model.codebook.embed(best)).argmax(1)
        sums["teco_argmax"] += (pred == target).float().mean().item()
        given = model.decode_logits(d, z[:, i + 1]).argmax(1)
        sums["teco_posterior"] += (given == target).float().mean().item()
        masked = torch.full_like(truth, prior.mask_id)
        guess = prior.logits(masked, d).argmax(1)
        sums["prior_all_masked"] += (guess == truth).float().mean().item()
        hw = truth.shape[-1] * truth.shape[-2]
        one = 0.0
        for p in range(hw):
            tokens = truth.clone().flatten(1)
            tokens[:, p] = prior.mask_id
            logits = prior.logits(tokens.reshape(truth.shape), d).flatten(2)[:, :, p]
            one += (logits.argmax(1) == truth.flatten(1)[:, p]).float().mean().item()
        sums["prior_one_masked"] += one / hw
    out = {k: v / n for k, v in sums.items()}
    out["perplexity"] = vq.perplexity.item()
    out["posterior_codes_used"] = int(post.unique().numel())
    return out


@torch.no_grad()
def score_latent(model, codes, actions) -> float:
    model.eval()
    return (model(codes, actions).logits.argmax(2) == codes[:, 1:]).float().mean().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=TASKS, default="shift")
    p.add_argument("--size", type=int, default=8)
    p.add_argument("--vocab", type=int, default=8)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--prior-seconds",
        type=float,
        default=0.0,
        help="then train a fresh prior alone on the frozen TECO for this long",
    )
    p.add_argument("--no-latent", action="store_true")
    p.add_argument("--set", action="append", default=[], help="TECO option KEY=JSON")
    p.add_argument("--out", default="teco_synthetic.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    over = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    gen = torch.Generator().manual_seed(args.seed)

    def data():
        return make_codes(args.task, args.batch, args.frames, args.size, args.vocab, gen)

    test_codes, test_actions = make_codes(
        args.task, 16, args.frames, args.size, args.vocab, torch.Generator().manual_seed(999)
    )
    results = {"args": vars(args)}
    torch.manual_seed(args.seed)
    teco = TECO(teco_config(args.task, args.size, args.vocab, **over))
    steps = train(teco, teco_loss, data, args.seconds, args.lr, "teco")
    scores = score_teco(teco, test_codes, test_actions, args.temperature, args.seed)
    results["teco"] = {"steps": steps, **scores}
    if args.prior_seconds > 0:  # the control: a fresh prior on the frozen model's targets
        fresh = copy.deepcopy(teco)
        fresh.requires_grad_(False)
        torch.manual_seed(args.seed + 1)
        fresh.prior = MaskGit(
            fresh.config.z_codes, fresh.config.z_size, fresh.config.z_size, fresh.deter_dim,
            embed_dim=fresh.config.prior_embed_dim, depth=fresh.config.prior_depth,
            heads=fresh.config.prior_heads, mlp_dim=fresh.config.prior_mlp_dim,
            token_dim=fresh.config.prior_token_dim,
        )  # fmt: skip
        steps = train(fresh, teco_loss, data, args.prior_seconds, args.lr, "fresh prior",
                      params=fresh.prior.parameters())  # fmt: skip
        scores = score_teco(fresh, test_codes, test_actions, args.temperature, args.seed)
        results["fresh_prior"] = {"steps": steps, **scores}
    if not args.no_latent:
        torch.manual_seed(args.seed)
        latent = LatentVideoPredictor.from_config(latent_config(args.task, args.size, args.vocab))
        steps = train(latent, latent_loss, data, args.seconds, args.lr, "latent")
        accuracy = score_latent(latent, test_codes, test_actions)
        results["latent"] = {"steps": steps, "accuracy": accuracy}
    results["copy"] = (test_codes[:, 1:] == test_codes[:, :-1]).float().mean().item()
    print(json.dumps(results, indent=2))
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
