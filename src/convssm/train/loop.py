"""``train_and_evaluate``: the training loop, one process or many under ``torchrun``.

It reads top to bottom: build (data, model, :class:`TrainState`), resume (the newest
checkpoint restores the state whole), then loop {:func:`train_step`; log every
``train.log_every``; validate every ``train.eval_every``; checkpoint every
``train.checkpoint_every``; score on held-out videos at the steps of ``eval.score_count``
or with every validation, when ``eval.score_videos`` asks for it}. The loss is read back
to the host only at log intervals (and before a checkpoint), where a non-finite loss stops
the run; ``train.time_limit_s`` is checked after every step in one process (a clock read,
no sync) and at log intervals under ``torchrun``, where the ranks agree. ``train.minutes`` plans
the steps before the loop (:mod:`convssm.train.budget`); ``train.rollout_start`` switches
the loss from teacher forcing to the rollout inside :func:`train_step`.

Safety: rank 0 holds the workdir's lock for the run's life (a second run on the same
workdir is refused, naming the holder) and decides what to do with what it finds there
(:func:`convssm.train.workdir.claim_workdir`: a run is never overwritten, ``--resume`` on an
empty workdir starts fresh). SIGTERM and SIGINT finish the current step, write a
checkpoint and return with ``TrainResult.stopped_by`` set (a second signal ends the process
at once); under ``torchrun`` the ranks agree on stopping at log intervals.

Exact resume: the batches of step ``s`` are a function of ``s`` (:class:`StepSampler`) and
the torch RNG is re-seeded from ``(seed, step, data-parallel rank)`` before every step, so
a run resumed from a checkpoint computes the same losses as an uninterrupted one (bit for
bit on CPU).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader, Dataset

from convssm._files import atomic_write_text
from convssm._progress import Progress
from convssm.data import DelayedRecall
from convssm.models import read_config_json
from convssm.models.pretrained import verify_weights
from convssm.train.budget import plan_steps
from convssm.train.checkpoint import (
    CheckpointInfo,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_latest_intact,
    load_model_weights,
    resolve_checkpoint,
)
from convssm.train.config import ExperimentConfig, dump_yaml, model_config_to_dict, model_kind
from convssm.train.distributed import (
    DistributedContext,
    all_reduce_mean,
    barrier,
    init_distributed,
    split_sequence_groups,
    teardown,
)
from convssm.train.factory import (
    build_eval_dataset,
    build_model,
    build_train_dataset,
    check_data,
    split_item,
    with_channel_labels,
    with_normalization,
)
from convssm.train.heldout import HeldOutScorer, scored_steps
from convssm.train.recall_eval import recall_scores
from convssm.train.runlog import RunLogger, read_jsonl
from convssm.train.state import (
    TrainState,
    create_train_state,
    restore_train_state,
    save_train_state,
)
from convssm.train.step import train_step
from convssm.train.validation import CODE_VALIDATORS, validate_predictor
from convssm.train.workdir import WorkdirLock, claim_workdir

__all__ = ["TrainResult", "train_and_evaluate"]


@dataclass
class TrainResult:
    """What a run ends with: its last step, last loss, workdir and last checkpoint."""

    step: int
    loss: float | None
    workdir: Path
    checkpoint: Path | None
    validation: dict[str, Any] | None
    is_main: bool = True
    stopped_by: str | None = None  # "SIGTERM" / "SIGINT": stopped early, resumable


def _collate(items: list[Any]) -> Any:
    return torch.utils.data.default_collate(items)


def train_and_evaluate(
    config: ExperimentConfig,
    workdir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    model_factory: Callable[[ExperimentConfig], torch.nn.Module] | None = None,
    train_dataset: Dataset | None = None,
    val_dataset: Dataset | None = None,
    stop_after: int | None = None,
    command: str | None = None,
) -> TrainResult:
    """Train ``config`` in ``workdir`` (logs, checkpoints); validate and checkpoint periodically.

    Args:
        resume: continue from the newest intact checkpoint in ``workdir/checkpoints`` (a
            fresh run, said on stderr, when the workdir holds none); the config must match
            the checkpoint's apart from the ``train`` cadence keys and ``train.steps``.
            Without it a workdir that already holds a run is refused.
        overwrite: move the run already in ``workdir`` into ``workdir/archive/<time>/``
            (nothing is deleted) and start afresh.
        model_factory, train_dataset, val_dataset: replace the config-built model and data
            (tests and library use); items are (T, C, H, W) in [-1, 1] or dicts with ``video``.
        stop_after: stop after this many steps in total (simulates an interruption).
        command: the command line that started this process (``convssm train`` passes
            it), recorded with the machine in the workdir's ``sessions.jsonl``.
    """
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    ctx = init_distributed(config.train.device)
    data = (train_dataset, val_dataset)
    workdir = Path(workdir)
    lock = WorkdirLock(workdir) if ctx.is_main else None
    try:
        ctx = split_sequence_groups(ctx, config.train.sequence_parallel)
        if lock is not None:
            lock.acquire()
            resume, note = claim_workdir(workdir, resume=resume, overwrite=overwrite)
            if note is not None:
                print(note, file=sys.stderr)
        barrier(ctx)  # the others read the workdir rank 0 has settled
        if not ctx.is_main:
            resume = resume and any((workdir / "checkpoints").glob("step_*"))
        return _train(config, workdir, ctx, resume, model_factory, data, stop_after, command)
    finally:
        if lock is not None:
            lock.release()
        teardown(ctx)


def _train(cfg, workdir, ctx, resume, model_factory, data, stop_after, command) -> TrainResult:
    tc, ckpt_dir = cfg.train, workdir / "checkpoints"
    train_dataset, val_dataset = data
    # ---- build
    resume_from = _checkpoint_to_resume(ckpt_dir, ctx.is_main) if resume else None
    shuffle, built = True, train_dataset is None
    if built:
        train_dataset, shuffle = build_train_dataset(cfg)
    normalized = with_normalization(cfg, train_dataset)  # physical arrays: split statistics
    stats_checked, cfg = normalized is not cfg, normalized
    cfg = with_channel_labels(cfg)  # HDF5 / zarr attributes: the channels' names and units
    if tc.minutes is not None:  # the steps that fit the budget replace train.steps
        cfg = _planned(cfg, workdir, ctx, resume_from, model_factory, train_dataset, shuffle)
        tc = cfg.train
        if built:  # a generated set's length follows the steps
            train_dataset, shuffle = build_train_dataset(cfg)
    torch.manual_seed(tc.seed)
    model = (model_factory or (lambda c: build_model(c.model)))(cfg)
    if tc.init_from is not None and resume_from is None:  # a resumed run has its own weights
        source = init_weights_from(model, cfg, tc.init_from)
        if ctx.is_main:  # which weights, for the run's lineage (convssm publish reads it)
            # also relative to the workdir, so the lineage is found from any directory
            source["checkpoint_from_workdir"] = os.path.relpath(source["checkpoint"], workdir)
            atomic_write_text(workdir / "init_from.json", json.dumps(source) + "\n")
    state = create_train_state(cfg, model, len(train_dataset), shuffle, ctx)
    # ---- resume
    if resume_from is not None:
        restore_train_state(state, resume_from)
    batches = iter(
        DataLoader(
            train_dataset,
            batch_sampler=state.sampler,
            num_workers=cfg.data.num_workers,
            collate_fn=_collate,
            pin_memory=ctx.device.type == "cuda",
        )
    )
    if ctx.is_main and val_dataset is None:
        horizon = cfg.eval.val_horizon or min(cfg.eval.horizons)
        val_dataset = build_eval_dataset(cfg, cfg.eval.val_videos, cfg.eval.context + horizon)
    if ctx.is_main:  # bad values found now, not at step 1 or the first validation
        check_data(None if stats_checked else train_dataset, val_dataset)
    barrier(ctx)
    progress = _Progress(cfg, workdir, ctx, state.step, resumed=resume, run_time=state.run_time)
    progress.log_session(command)
    scorer = HeldOutScorer(cfg, ctx.device) if ctx.is_main and cfg.eval.score_videos else None
    is_scored = scored_steps(cfg)
    # ---- loop
    end = tc.steps if stop_after is None else min(tc.steps, stop_after)
    loss = checkpoint = val = stopped = None
    with _StopSignals() as signals:
        while state.step < end:
            metrics = train_step(state, next(batches))
            step, out_of_time = state.step, False
            scored = is_scored(step)
            if not ctx.is_distributed:  # one process: the clock after every step, no sync
                out_of_time = _out_of_time(tc.time_limit_s, progress.elapsed(tc.time_clock), ctx)
            logged = step % tc.log_every == 0 or step == end or scored or out_of_time
            if logged:
                loss = _synced_loss(metrics, step, ctx)  # host sync point (GPU waits)
            progress.advance(step, loss if logged else None, metrics["lr"])  # this step's values
            if logged and ctx.is_distributed:  # the ranks agree at log intervals
                out_of_time = _out_of_time(tc.time_limit_s, progress.elapsed(tc.time_clock), ctx)
            if logged or not ctx.is_distributed:  # ranks agree at log intervals only
                stopped = _stop_requested(signals.received, ctx)
            if step % tc.eval_every == 0 or step == tc.steps or out_of_time:
                val = _validate(state, val_dataset, progress)
            scored = scored or (out_of_time and cfg.eval.score_videos > 0)
            if scored:
                _score(state, scorer, progress)
            due = step % tc.checkpoint_every == 0 or step == tc.steps
            if due or out_of_time or stopped or scored:  # a scored step can be published
                if not logged:
                    _synced_loss(metrics, step, ctx)  # never checkpoint a diverged model
                state.run_time = progress.run_time()
                checkpoint = save_train_state(ckpt_dir, state)
            if out_of_time:
                progress.note(f"train.time_limit_s ({tc.time_limit_s:g} s) reached at step {step}")
                break
            if stopped:
                progress.note(f"{stopped} received: stopped at step {step}, checkpoint written")
                break
    progress.close()
    checkpoint = checkpoint or latest_checkpoint(ckpt_dir)
    return TrainResult(state.step, loss, workdir, checkpoint, val, ctx.is_main, stopped)


class _StopSignals:
    """While active, SIGTERM / SIGINT set :attr:`received` (the loop then checkpoints and
    stops); a second signal restores the default action and re-raises it: the process ends
    at once. Active only in the main thread (where Python delivers signals)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.received = signal.Signals(signum).name

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _stop_requested(received: str | None, ctx: DistributedContext) -> str | None:
    """The signal that asks to stop, if any (rank 0's decides for every rank)."""
    if not ctx.is_distributed:
        return received
    names = [s.name for s in _StopSignals.SIGNALS]
    code = names.index(received) + 1 if received in names else 0
    flag = torch.tensor([float(code)], device=ctx.device)
    torch.distributed.broadcast(flag, src=0)
    code = int(flag.item())
    return names[code - 1] if code else None


def _planned(cfg, workdir, ctx, resume_from, model_factory, dataset, shuffle) -> ExperimentConfig:
    """``cfg`` with ``train.steps`` set by ``train.minutes``: a resumed run keeps the steps
    its checkpoint was planned with; a fresh one times a stand-in model of the same
    architecture (:func:`plan_steps`) and records the plan in ``workdir/plan.json``."""
    if resume_from is not None:
        steps = resume_from.config.train.steps
    else:
        stand_in = (model_factory or (lambda c: build_model(c.model)))(cfg)
        plan = plan_steps(cfg, stand_in, dataset, shuffle, ctx)
        steps = plan.steps
        if ctx.is_main:
            atomic_write_text(workdir / "plan.json", json.dumps(dataclasses.asdict(plan)) + "\n")
            print(
                f"train.minutes {plan.minutes:g}: {plan.step_s:.3g} s per step "
                f"({plan.clock} clock) -> {steps} steps",
                file=sys.stderr,
            )
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=steps))


def _score(state: TrainState, scorer: HeldOutScorer | None, progress: _Progress) -> None:
    """Score the model on the held-out set (rank 0, the others wait): a row of
    ``scores.jsonl`` (step, the run's wall and CPU seconds, the mean of the losses logged
    since the last scoring, the scores) and its strip."""
    if scorer is not None:
        scores, strip = scorer.score(state.model)
        row = {"step": state.step, **progress.run_time(), "loss": progress.mean_loss(state.step)}
        progress.log_scores({**row, **scores}, strip)
    barrier(state.ctx)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _checkpoint_to_resume(ckpt_dir: Path, is_main: bool = True) -> CheckpointInfo:
    """The newest intact checkpoint; each newer corrupt one is skipped with a warning and
    (by rank 0) moved into the workdir's ``archive/``, so the resumed run's checkpoints are
    the newest again."""
    info = load_latest_intact(ckpt_dir)
    if info is None:
        found = "no intact checkpoint" if list_checkpoints(ckpt_dir) else "no checkpoint"
        raise ValueError(f"--resume: {found} under {str(ckpt_dir)!r}")
    newer = [p for p in ckpt_dir.glob("step_*") if p.is_dir() and _step_number(p) > info.step]
    if is_main and newer:
        aside = ckpt_dir.parent / "archive" / f"not-intact-after-{info.path.name}"
        aside.mkdir(parents=True, exist_ok=True)
        for p in newer:
            os.replace(p, aside / p.name)
        print(f"moved the checkpoints newer than {info.path.name} to {aside}", file=sys.stderr)
    return info


def _step_number(path: Path) -> int:
    digits = path.name.removeprefix("step_")
    return int(digits) if digits.isdigit() else -1


def _synced_loss(metrics: dict[str, Any], step: int, ctx: DistributedContext) -> float:
    """The step's loss averaged over ranks, read to the host: a sync point (GPU waits)."""
    loss = float(all_reduce_mean(metrics["loss"], ctx))
    if not math.isfinite(loss):
        raise FloatingPointError(f"loss is {loss} at step {step}")
    return loss


def init_weights_from(model: torch.nn.Module, cfg: ExperimentConfig, source: str) -> dict:
    """Load ``train.init_from``'s weights into ``model``: a run's workdir (its newest
    checkpoint), a checkpoint folder or a published model folder, whose model config must
    equal ``cfg.model``. Returns what was loaded: ``init_from`` (as given), ``checkpoint``
    (the folder it resolved to) and ``step`` (the checkpoint's; None for a model folder)."""
    folder = resolve_checkpoint(source)
    step = None
    if (folder / "manifest.json").is_file():  # a training checkpoint: verified by its manifest
        info = load_checkpoint(folder)
        saved, weights, step = info.config.model, info.weights, info.step
    else:  # a published folder: verified by the SHA-256 in its config.json
        verify_weights(folder)
        saved, weights = read_config_json(folder), load_file(str(folder / "model.safetensors"))
    ours, theirs = model_config_to_dict(cfg.model), model_config_to_dict(saved)
    diff = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    allowed = cfg.train.init_changes
    unknown = sorted(set(allowed) - ours.keys())
    if unknown:
        raise ValueError(f"train.init_changes names keys the model config has not: {unknown}")
    refused = [k for k in diff if k not in allowed]
    if refused:
        raise ValueError(
            f"train.init_from {source!r}: its model differs from this config's in {refused}"
            + (f" (allowed to differ: {sorted(allowed)})" if allowed else "")
            + "; list keys whose change keeps the weights in train.init_changes"
        )
    load_model_weights(model, weights, str(folder))
    changes = {k: {"from": theirs.get(k), "to": ours.get(k)} for k in diff}
    record = {"init_from": source, "checkpoint": folder.as_posix(), "step": step}
    return {**record, "model_changes": changes} if changes else record


def _out_of_time(limit: float | None, elapsed: float, ctx: DistributedContext) -> bool:
    """Whether the run's time limit has passed (rank 0's clock decides for every rank)."""
    if limit is None:
        return False
    if not ctx.is_distributed:
        return elapsed > limit
    flag = torch.tensor([float(elapsed > limit)], device=ctx.device)
    torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


def _validate(state: TrainState, val_set: Dataset, progress: _Progress) -> dict[str, Any] | None:
    """Generate on a few held-out videos and score them (rank 0; the others wait)."""
    out = None
    kind = model_kind(state.config.model)
    if state.ctx.is_main and isinstance(val_set, DelayedRecall):
        cfg = state.config
        out = recall_scores(
            state.model,
            val_set,
            num_videos=cfg.eval.val_videos,
            batch_size=cfg.eval.batch_size,
            device=state.ctx.device,
            precision=cfg.train.precision,
        )
        progress.log_val(state.step, out)
    elif state.ctx.is_main and kind in CODE_VALIDATORS:
        cfg = state.config
        n = min(len(val_set), cfg.eval.val_videos)
        subset = torch.utils.data.Subset(val_set, range(n))
        loader = DataLoader(subset, batch_size=cfg.eval.batch_size, collate_fn=_collate)
        batches = (split_item(b) for b in loader)
        out = CODE_VALIDATORS[kind](state.model, batches, state.ctx.device)
        progress.log_val(state.step, out)
    elif state.ctx.is_main:
        cfg = state.config
        horizon = cfg.eval.val_horizon or min(cfg.eval.horizons)
        loader = DataLoader(val_set, batch_size=cfg.eval.batch_size, collate_fn=_collate)
        normalizer = getattr(state.model, "normalizer", None)  # physical fields: per channel
        normalize = normalizer.normalize if normalizer is not None and normalizer.enabled else None
        out = validate_predictor(
            state.model,
            (split_item(b) for b in loader),
            cfg.eval.context,
            horizon,
            cfg.eval.metrics,
            state.ctx.device,
            cfg.train.precision,
            normalize,
        )
        progress.log_val(state.step, out)
    barrier(state.ctx)
    return out


class _Progress:
    """Rank 0's logs (JSONL/CSV/TensorBoard) and progress bar; silent on other ranks."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        workdir: Path,
        ctx: DistributedContext,
        start: int,
        resumed: bool,
        run_time: dict[str, float] | None = None,
    ) -> None:
        self.main = ctx.is_main
        self.start, self.device, self.world_size = start, ctx.device, ctx.world_size
        self.sequence_parallel = ctx.sequence_parallel
        self.base = dict(run_time or {"wall_s": 0.0, "cpu_s": 0.0})  # before this process
        resume_step = start if resumed else None
        self.logger = (
            RunLogger(workdir, resume_step=resume_step, tensorboard=cfg.train.tensorboard)
            if self.main
            else None
        )
        if self.main:
            (workdir / "config.yaml").write_text(dump_yaml(cfg))
            if self.logger.tensorboard_note:
                print(self.logger.tensorboard_note, file=sys.stderr)
        self.bar = Progress(  # a bar on a terminal, plain periodic lines in a log file
            cfg.train.steps,
            initial=start,
            disable=not (self.main and cfg.train.progress),
            desc=cfg.name,
        )
        self.t0 = self.window_t = time.perf_counter()
        self.cpu0 = time.process_time()
        self.window_steps = 0

    def elapsed(self, clock: str = "wall") -> float:
        """Seconds since the run (or its resumption) started: wall or this process's CPU."""
        if clock == "cpu":
            return time.process_time() - self.cpu0
        return time.perf_counter() - self.t0

    def run_time(self) -> dict[str, float]:
        """The run's training time so far, over every process it ran in."""
        return {
            "wall_s": round(self.base["wall_s"] + self.elapsed("wall"), 1),
            "cpu_s": round(self.base["cpu_s"] + self.elapsed("cpu"), 1),
        }

    def mean_loss(self, step: int) -> float:
        """The mean of the losses logged after the last scored step, up to ``step``."""
        scored = read_jsonl(self.logger.scores_jsonl)
        after = scored[-1]["step"] if scored else 0
        logged = read_jsonl(self.logger.train_jsonl)
        losses = [r["loss"] for r in logged if after < r["step"] <= step]
        return sum(losses) / len(losses)

    def log_session(self, command: str | None) -> None:
        """Where and how this process trains: one line of ``sessions.jsonl``."""
        if self.main:
            device = self.device
            name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
            self.logger.log_session({
                "start_step": self.start, "command": command, "started": _utc_now(),
                "machine": platform.machine(), "system": platform.system(),
                "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
                "device": str(device), "device_name": name, "world_size": self.world_size,
                "sequence_parallel": self.sequence_parallel, "torch": str(torch.__version__),
            })  # fmt: skip

    def log_scores(self, row: dict[str, Any], strip: Any) -> None:
        self.logger.log_scores(row, strip)
        shown = ", ".join(f"{k} {row[k]:.3f}" for k in ("rel_best@10", "rel_empty@100") if k in row)
        self.bar.write(f"step {row['step']} scored: {shown}")

    def advance(self, step: int, loss: float | None, lr: float) -> None:
        """One step done; ``loss`` (read back at log steps only, else ``None``) is logged
        and shown before the bar moves, so a progress line never shows an older loss."""
        self.window_steps += 1
        if loss is not None:
            self._log(step, loss, lr)
        self.bar.update(1)

    def _log(self, step: int, loss: float, lr: float) -> None:
        now = time.perf_counter()
        rate = self.window_steps / max(now - self.window_t, 1e-9)
        self.window_t, self.window_steps = now, 0
        if self.main:
            record = {"step": step, "loss": loss, "lr": lr, "steps_per_s": rate}
            cpu = time.process_time() - self.cpu0
            self.logger.log_train({**record, "elapsed_s": now - self.t0, "cpu_s": cpu})
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")

    def log_val(self, step: int, metrics: dict[str, Any]) -> None:
        self.logger.log_val(step, metrics)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        self.bar.write(f"step {step}: {shown}")

    def note(self, text: str) -> None:
        if self.main:
            self.bar.write(text)

    def close(self) -> None:
        self.bar.close()
        if self.logger is not None:
            self.logger.close()
