"""The learning harness: train one recipe, score it on held-out videos as it goes.

A recipe is a small YAML file (``recipes/*.yaml``) with five sections:

- ``model``: :class:`convssm.models.VideoPredictor` keyword arguments;
- ``data``: Moving-MNIST generator parameters (``image_size``, ``digit_size``,
  ``num_digits``, ``seq_len``) — training digits only;
- ``optim``: ``lr``, ``warmup_steps``, ``batch_size``, ``grad_clip`` (null: none);
- ``train``: ``steps`` (or null with ``minutes``: steps from a timing probe so the cosine
  schedule fits the budget), ``rollout_context`` (null: teacher forcing only; an int C:
  ``VideoPredictor.forward(..., rollout_context=C)``: C true context frames,
  the rest predicted free-running from the model's own output), ``rollout_start`` (the
  fraction of the steps trained by teacher forcing before the rollout loss starts)),
  ``detach_feedback``, ``pixel_loss`` (``mse_l1``, the paper's, or ``mse``),
  ``init_from`` (null, or a ``from_pretrained`` folder — e.g. another run's
  ``model_<step>`` — whose weights a fresh run starts from: a second training phase; its
  model must have this recipe's ``model`` section),
  ``precision`` (fp32 | bf16), ``scores`` (how many scored checkpoints along the way);
- ``eval``: ``videos``, ``context`` (10), ``horizon`` (100), ``seed`` — a fixed, seeded set
  from the *evaluation* digits, which training never sees.

Every scored checkpoint records (JSON, one line per checkpoint in ``scores.jsonl``): step,
wall time, the training process's CPU seconds (``cpu_s``, without its data worker), training
loss, :func:`convssm.metrics.trivial_predictor_scores`
(MSE over generated frames 1–10 and 1–100 beside the empty frame and repeat-last,
brightness over frames 50–100), PSNR and SSIM over frames 1–10 and 1–100 (LPIPS on CPU when
its weights are installed), and a picture strip (``strip_<step>.png``: truth above
prediction for three videos at generated frames 1, 2, 3, 5, 10, 20, 30, 50, 100). The model
is saved with ``save_pretrained`` at every scored checkpoint (``model/``) and the whole
training state in ``state.pt`` (and each scored checkpoint's model in ``model_<step>/``,
so the best one can be published), so an interrupted run resumes exactly where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image
from torch.utils.data import DataLoader

from convssm._files import atomic_write
from convssm._precision import autocast_context
from convssm.data import MovingMNIST
from convssm.metrics import psnr, ssim, trivial_predictor_scores
from convssm.models import VideoPredictor
from convssm.train.objectives import video_prediction_loss
from convssm.train.schedule import build_scheduler, make_optimizer

STRIP_FRAMES = (1, 2, 3, 5, 10, 20, 30, 50, 100)
CARD_VIDEOS = 4  # a published model's card scores: the first videos of its held-out set
SECTIONS = ("model", "data", "optim", "train", "eval")


@dataclass
class Recipe:
    name: str
    model: dict[str, Any]
    data: dict[str, Any]
    optim: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.optim = {
            "lr": 1e-3,
            "warmup_steps": 200,
            "batch_size": 16,
            "grad_clip": 1.0,
            **self.optim,
        }
        self.train = {
            "steps": None,
            "minutes": None,
            "rollout_context": None,
            "detach_feedback": False,
            "rollout_start": 0.0,
            "pixel_loss": "mse_l1",
            "init_from": None,
            "precision": "fp32",
            "scores": 8,
            "seed": 0,
            **self.train,
        }
        self.eval = {
            "videos": 32,
            "context": 10,
            "horizon": 100,
            "seed": 1234,
            "batch": 32,
            **self.eval,
        }
        for section, allowed in (
            ("data", {"image_size", "digit_size", "num_digits", "seq_len", "step"}),
            ("optim", {"lr", "warmup_steps", "batch_size", "grad_clip"}),
            (
                "train",
                {
                    "steps",
                    "minutes",
                    "rollout_context",
                    "rollout_start",
                    "detach_feedback",
                    "pixel_loss",
                    "init_from",
                    "precision",
                    "scores",
                    "seed",
                },
            ),
            ("eval", {"videos", "context", "horizon", "seed", "batch"}),
        ):
            unknown = set(getattr(self, section)) - allowed
            if unknown:
                raise ValueError(
                    f"recipe {self.name!r}: unknown key(s) {sorted(unknown)} in "
                    f"section {section!r}; valid: {sorted(allowed)}"
                )
        if (self.train["steps"] is None) == (self.train["minutes"] is None):
            raise ValueError(
                f"recipe {self.name!r}: give exactly one of train.steps and train.minutes"
            )

    @classmethod
    def load(cls, path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> Recipe:
        path = Path(path)
        raw = yaml.safe_load(path.read_text()) or {}
        unknown = set(raw) - {"name", *SECTIONS}
        if unknown:
            raise ValueError(f"{path}: unknown section(s) {sorted(unknown)}")
        for key, value in (overrides or {}).items():
            section, _, name = key.partition(".")
            if section not in SECTIONS or not name:
                raise ValueError(
                    f"override {key!r} must look like SECTION.KEY, SECTION in {SECTIONS}"
                )
            raw.setdefault(section, {})
            target = raw[section]
            *parents, leaf = name.split(".")
            for p in parents:
                target = target.setdefault(p, {})
            target[leaf] = value
        return cls(name=raw.get("name", path.stem), **{k: raw.get(k) or {} for k in SECTIONS})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **{k: getattr(self, k) for k in SECTIONS}}


def read_run(run: Path) -> tuple[Recipe, list[dict]]:
    """The recipe a run was trained with (``run/recipe.yaml``) and its scored rows."""
    raw = yaml.safe_load((run / "recipe.yaml").read_text())
    raw.pop("planned_steps", None)  # written by the harness beside the recipe
    scores = [json.loads(x) for x in (run / "scores.jsonl").read_text().splitlines() if x]
    return Recipe(**raw), scores


def moving_mnist(recipe: Recipe, split: str, num_videos: int, frames: int, seed: int):
    d = recipe.data
    return MovingMNIST(
        num_videos,
        num_frames=frames,
        image_size=d["image_size"],
        num_digits=d.get("num_digits", 1),
        digit_size=d["digit_size"],
        step=d.get("step", 0.15),
        split=split,
        seed=seed,
    )


def eval_videos(recipe: Recipe) -> torch.Tensor:
    """The fixed held-out set: (N, context + horizon, 1, H, W) in [−1, 1]."""
    e = recipe.eval
    ds = moving_mnist(recipe, "eval", e["videos"], e["context"] + e["horizon"], e["seed"])
    return torch.stack([ds[i] for i in range(len(ds))])


def autocast(device: torch.device, precision: str):
    """:func:`convssm._precision.autocast_context` for the precisions a recipe may name."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"train.precision must be fp32 or bf16, got {precision!r}")
    return autocast_context(device, precision)


@torch.no_grad()
def generate_eval(
    model: VideoPredictor, videos: torch.Tensor, recipe: Recipe, device: torch.device
) -> torch.Tensor:
    """Generated frames (N, horizon, 1, H, W) in [0, 1] after ``eval.context`` true frames."""
    e, out = recipe.eval, []
    model.eval()
    for i in range(0, len(videos), e["batch"]):
        ctx = videos[i : i + e["batch"], : e["context"]].to(device)
        with autocast(device, recipe.train["precision"]):
            out.append(model.generate(ctx, e["horizon"]).float().cpu())
    model.train()
    return (torch.cat(out).clamp(-1, 1) + 1) / 2


def score(pred: torch.Tensor, videos: torch.Tensor, context: int, lpips_fn=None) -> dict:
    """Scores of generated frames ``pred`` (N, h, 1, H, W) in [0, 1] (see module docstring)."""
    truth = (videos[:, context:] + 1) / 2
    last = (videos[:, context - 1] + 1) / 2
    h = truth.shape[1]
    horizons = [x for x in (10, 100) if x <= h]
    res = trivial_predictor_scores(pred, truth, last, horizons, (50, 100) if h >= 100 else None)
    p, s = psnr(pred, truth), ssim(pred, truth)
    for x in horizons:
        res[f"psnr@{x}"] = float(p[:, :x].clamp(max=100).mean())
        res[f"ssim@{x}"] = float(s[:, :x].mean())
        if lpips_fn is not None:
            res[f"lpips@{x}"] = float(lpips_fn(pred[:, :x], truth[:, :x]).mean())
    return res


def card_scores(model: VideoPredictor, recipe: Recipe) -> dict:
    """:func:`score` on the first :data:`CARD_VIDEOS` held-out videos, CPU, float32."""
    videos = eval_videos(recipe)[:CARD_VIDEOS]
    pred = generate_eval(model.cpu().float(), videos, recipe, torch.device("cpu"))
    return score(pred, videos, recipe.eval["context"])


def write_strip(pred: torch.Tensor, videos: torch.Tensor, context: int, path: Path) -> None:
    """Truth above prediction for the first three videos at :data:`STRIP_FRAMES`."""
    truth = (videos[:, context:] + 1) / 2
    idx = [f - 1 for f in STRIP_FRAMES if f <= truth.shape[1]]
    rows = []
    for v in range(min(3, len(pred))):
        rows.append(torch.cat([truth[v, i, 0] for i in idx], dim=1))
        rows.append(torch.cat([pred[v, i, 0] for i in idx], dim=1))
        rows.append(torch.ones(2, rows[-1].shape[1]))
    img = (torch.cat(rows[:-1]).clamp(0, 1) * 255).round().byte().numpy()
    scale = max(1, 256 // img.shape[0])
    pic = Image.fromarray(img).resize((img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST)
    atomic_write(path, lambda tmp: pic.save(tmp, format="PNG"))


def _lpips_or_none(device: torch.device):
    if device.type != "cpu":
        return None
    from convssm.metrics import LPIPS, MissingWeightsError, lpips

    try:
        net = LPIPS.from_pretrained()
    except MissingWeightsError:  # the weights are an optional install
        return None
    return lambda p, t: lpips(p, t, net)


def loss_of(
    model: VideoPredictor, batch: torch.Tensor, recipe: Recipe, teacher_forcing: bool = False
) -> torch.Tensor:
    context = None if teacher_forcing else recipe.train["rollout_context"]
    out = model(batch, rollout_context=context, detach_feedback=recipe.train["detach_feedback"])
    return video_prediction_loss(out, recipe.train["pixel_loss"])


def _plan_steps(model, opt, loader_iter, recipe, device, budget_s: float) -> int:
    """Steps that fit ``budget_s`` from a 10-step timing probe (3 warm-up steps first).

    The probe's updates are undone: the model and optimizer are restored afterwards."""
    saved = ({k: v.clone() for k, v in model.state_dict().items()}, opt.state_dict())
    times = []
    for i in range(13):
        batch = next(loader_iter).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with autocast(device, recipe.train["precision"]):
            loss = loss_of(model, batch, recipe)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    model.load_state_dict(saved[0])
    opt.load_state_dict(saved[1])
    step_s = sorted(times)[len(times) // 2]
    return max(recipe.optim["warmup_steps"] + 10, int(budget_s / step_s))


def _initial_weights(recipe: Recipe, model: VideoPredictor) -> dict[str, torch.Tensor]:
    """The weights of ``train.init_from``, checked to be a model like ``model`` (the one
    built from this recipe)."""
    path = Path(recipe.train["init_from"])
    start = VideoPredictor.from_pretrained(path)
    if start.config != model.config:
        raise ValueError(
            f"recipe {recipe.name!r}: train.init_from {str(path)!r} holds a different model "
            f"than the recipe's model section ({start.config} != {recipe.model})"
        )
    return start.state_dict()


def train_recipe(recipe: Recipe, out: Path, device: torch.device) -> list[dict]:
    """Train ``recipe`` into ``out`` (resuming from ``out/state.pt``); return its scores."""
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    torch.manual_seed(recipe.train["seed"])
    model = VideoPredictor(**recipe.model).to(device)
    o = recipe.optim
    opt = make_optimizer(model, o["lr"])
    seq_len = recipe.data["seq_len"]
    train_set = moving_mnist(recipe, "train", 10**9, seq_len, recipe.train["seed"])
    state_path = out / "state.pt"
    state = torch.load(state_path, map_location=device) if state_path.exists() else None
    start = state["step"] if state else 0
    loader = DataLoader(
        train_set,
        batch_size=o["batch_size"],
        sampler=range(start * o["batch_size"], 10**9),
        num_workers=1,
        prefetch_factor=4,
        persistent_workers=True,
    )
    batches = iter(loader)
    steps = state["total_steps"] if state else recipe.train["steps"]
    if steps is None:
        steps = _plan_steps(model, opt, batches, recipe, device, 60 * recipe.train["minutes"])
        batches = iter(
            DataLoader(
                train_set,
                batch_size=o["batch_size"],
                sampler=range(0, 10**9),
                num_workers=1,
                prefetch_factor=4,
            )
        )
    sched = build_scheduler(opt, o["warmup_steps"], steps)
    scores: list[dict] = []
    elapsed, cpu_before = 0.0, 0.0
    if state is None and recipe.train["init_from"] is not None:
        model.load_state_dict(_initial_weights(recipe, model))
    if state:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        scores, elapsed = state["scores"], state["elapsed_s"]
        cpu_before = state.get("cpu_s", 0.0)
    (out / "recipe.yaml").write_text(yaml.safe_dump({**recipe.to_dict(), "planned_steps": steps}))
    videos = eval_videos(recipe)
    lpips_fn = _lpips_or_none(device)
    every = max(1, steps // recipe.train["scores"])
    t0, loss_sum, loss_n = time.time() - elapsed, torch.zeros((), device=device), 0
    cpu0 = time.process_time() - cpu_before  # this process's CPU seconds (all its threads)
    tf_steps = int(recipe.train["rollout_start"] * steps)
    for step in range(start, steps):
        batch = next(batches).to(device, non_blocking=True)
        with autocast(device, recipe.train["precision"]):
            loss = loss_of(model, batch, recipe, teacher_forcing=step < tf_steps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if o["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o["grad_clip"])
        opt.step()
        sched.step()
        loss_sum += loss.detach()
        loss_n += 1
        done = step + 1
        if done % every == 0 or done == steps:
            mean_loss = float(loss_sum) / loss_n  # host sync, once per scored checkpoint
            loss_sum.zero_()
            loss_n = 0
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"{recipe.name}: loss is {mean_loss} at step {done}")
            wall = time.time() - t0
            pred = generate_eval(model, videos, recipe, device)
            row = {
                "step": done,
                "wall_s": round(wall, 1),
                "cpu_s": round(time.process_time() - cpu0, 1),
                "loss": mean_loss,
                **score(pred, videos, recipe.eval["context"], lpips_fn),
            }
            scores.append(row)
            write_strip(pred, videos, recipe.eval["context"], out / f"strip_{done:06d}.png")
            model.save_pretrained(out / "model")
            model.save_pretrained(out / f"model_{done:06d}")  # every scored checkpoint kept
            snapshot = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "rng": torch.get_rng_state(),
                "step": done,
                "total_steps": steps,
                "scores": scores,
                "elapsed_s": time.time() - t0,
                "cpu_s": time.process_time() - cpu0,
            }
            atomic_write(state_path, lambda tmp, obj=snapshot: torch.save(obj, tmp))
            with open(out / "scores.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            print(
                f"[{recipe.name}] step {done}/{steps} {wall:.0f}s loss {mean_loss:.4f} "
                f"rel_best@10 {row.get('rel_best@10', float('nan')):.3f} "
                f"rel_empty@100 {row.get('rel_empty@100', float('nan')):.3f} "
                f"bright {row.get('brightness@50-100', float('nan')):.2f}",
                flush=True,
            )
    summary = {
        "recipe": recipe.to_dict(),
        "steps": steps,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "total_wall_s": round(time.time() - t_start, 1),
        "scores": scores,
        "seed_rng": np.random.SeedSequence(recipe.train["seed"]).entropy,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return scores
