"""Use a trained model: load it, run the evaluation (docs/design.md#evaluation-protocol), generate
videos.

These are the library functions behind ``convssm evaluate`` and ``convssm generate``. A
model is a training checkpoint (``<run>/checkpoints/step_N``, or a run's workdir for its
newest), a published model folder (``config.json`` + ``model.safetensors``, as written by
``save_pretrained``; an ``experiment.yaml`` beside them supplies the data and evaluation
settings, the defaults otherwise) or the id of one on the Hugging Face Hub
(``owner/name[@revision]``, a string that names no existing path: fetched into the hub
cache, or read from it alone with ``HF_HUB_OFFLINE=1``). Inputs are videos (mp4, npz) or
arrays (``.npy``, ``.h5``, ``.zarr``, with a key where the format has them); predictions from
an array are written in that array's format. A model of physical fields (``normalization``
in its config) takes and returns the data's units and is scored per channel
(:func:`convssm.metrics.evaluate_predictions`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

import convssm.data as cdata
from convssm._files import atomic_write_text
from convssm.data import array_format, write_array
from convssm.metrics import evaluate_predictions
from convssm.metrics.scoring import to_uint8
from convssm.models import VideoPredictor, kind_of, read_config_json
from convssm.models.pretrained import download_model, parse_hub_id
from convssm.run.baselines import TrivialBaselines, channel_titles
from convssm.run.eval_stream import StreamingEvaluator, VideoArrayWriter
from convssm.run.evaluation import write_eval_outputs
from convssm.run.frame_files import NpyFrameWriter, NpzFrameWriter
from convssm.run.inputs import (
    check_array_fits,
    display_frames,
    fit_video_to_model,
    is_array_file,
    moving_mnist_sample,
    read_input_array,
    read_input_video,
    write_predictions,
)
from convssm.run.media import MediaWriter, write_media
from convssm.run.teco_run import evaluate_teco_checkpoint
from convssm.train.checkpoint import (
    CheckpointInfo,
    load_checkpoint,
    load_model_weights,
    read_experiment_yaml,
    resolve_checkpoint,
)
from convssm.train.config import (
    DataConfig,
    ExperimentConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    model_kind,
)
from convssm.train.distributed import resolve_device
from convssm.train.factory import build_eval_dataset, build_model, split_item
from convssm.train.validation import generate_videos, iter_generated

__all__ = [
    "TrainedModel",
    "default_out_dir",
    "load_trained",
    "open_eval_set",
    "resolve_model",
    "evaluate_checkpoint",
    "read_input_video",
    "generate_from_checkpoint",
]


@dataclass
class TrainedModel:
    """A loaded model, its experiment config and where it came from.

    ``info`` is the checkpoint's (``None`` for a published folder); ``path`` the folder;
    ``step`` the training step (``None`` when a published folder does not say).
    """

    model: torch.nn.Module
    config: ExperimentConfig
    info: CheckpointInfo | None
    device: torch.device
    path: Path
    step: int | None = None

    @property
    def normalize(self):
        """The model's map from physical units onto [-1, 1], or ``None`` for video models."""
        normalizer = getattr(self.model, "normalizer", None)
        return normalizer.normalize if normalizer is not None and normalizer.enabled else None

    @property
    def channel_titles(self) -> list[str] | None:
        """``name [unit]`` per channel of a physical-field model (from ``data.channel_names``
        and ``data.channel_units``, stored with the run), or ``None`` for video models."""
        if self.normalize is None:
            return None
        data = self.config.data
        return channel_titles(
            self.config.model.image_channels, data.channel_names, data.channel_units
        )


OUTPUTS = Path("convssm_outputs")  # under the working directory


def default_out_dir(checkpoint: str | Path, kind: str) -> Path:
    """Where ``convssm evaluate`` / ``generate`` write by default: where the user works,
    never inside a model folder, the hub cache or an installed package.

    A checkpoint ``<run>/checkpoints/step_N`` gives ``<run>/<kind>/step_N``, beside the
    user's own run (never inside the checkpoint, which rotation deletes); a hub model's
    cached folder (``.../models--owner--name/snapshots/<commit>``) gives
    ``convssm_outputs/owner--name/<kind>/<commit[:12]>`` and any other model folder
    ``convssm_outputs/<folder name>/<kind>``, both under the working directory.
    """
    checkpoint = Path(checkpoint)
    if checkpoint.parent.name == "checkpoints" and checkpoint.name.startswith("step_"):
        return checkpoint.parent.parent / kind / checkpoint.name
    repo = checkpoint.parent.parent.name
    if checkpoint.parent.name == "snapshots" and repo.startswith("models--"):
        return OUTPUTS / repo.removeprefix("models--") / kind / checkpoint.name[:12]
    name = checkpoint.resolve().name
    if not name:
        raise ValueError(f"cannot name an output folder after {str(checkpoint)!r}; pass --out")
    return OUTPUTS / name / kind


def resolve_model(model: str | Path) -> Path:
    """The local folder of a model given to ``convssm evaluate`` / ``generate``: a checkpoint
    (a run's workdir or ``checkpoints`` folder gives its newest), a published model folder,
    or a hub id's folder in the hub cache (fetched unless ``HF_HUB_OFFLINE=1``;
    FileNotFoundError naming the id when it cannot be had)."""
    hub = parse_hub_id(model)
    if hub is not None:
        return download_model(hub[0], revision=hub[1])
    return resolve_checkpoint(model)


def _is_published(path: Path) -> bool:
    return (
        path.is_dir()
        and not (path / "manifest.json").is_file()
        and (path / "config.json").is_file()
        and (path / "model.safetensors").is_file()
    )


def load_trained(
    checkpoint: str | Path, device: str = "auto", threads: int | None = None
) -> TrainedModel:
    """Model (eval mode, on ``device``) and experiment config from a checkpoint, a run's
    workdir, a published model folder or a hub id (see the module docstring).

    ``threads`` sets ``torch.set_num_threads`` (process-wide) for what follows; ``None``:
    a training checkpoint's ``train.threads`` when it set one, else torch's default. On a
    small CPU, one thread can be the faster choice for batch-1 generation (docs/benchmarks.md,
    "The step on a quiet machine")."""
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be positive, got {threads}")
    dev = resolve_device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    path = resolve_model(checkpoint)
    if _is_published(path):
        if (path / "training_state.pt").is_file():  # a checkpoint folder that lost its manifest
            warnings.warn(
                f"{str(path)!r} looks like a training checkpoint but has no manifest.json; "
                "loading it as a published model folder (only its weights' SHA-256 in "
                "config.json is checked)",
                RuntimeWarning,
                stacklevel=2,
            )
        stored = kind_of(read_config_json(path))
        if not stored.generates_frames:
            raise ValueError(
                f"{str(path)!r} holds a published {stored.model_class.__name__}: "
                "evaluate and generate load video predictors from a published folder (a "
                "latent model is evaluated from its training checkpoint with --tokenizer)"
            )
        model = VideoPredictor.from_pretrained(path)  # checks the weights' SHA-256
        if (path / "experiment.yaml").is_file():
            cfg = read_experiment_yaml(path, model.config)
        else:  # a bare model: default data and evaluation settings around it
            kind = "array" if model.config.normalization is not None else "moving_mnist"
            cfg = ExperimentConfig(model=model.config, data=DataConfig(dataset=kind))
        return TrainedModel(model.to(dev).eval(), cfg, None, dev, path, None)
    info = load_checkpoint(path, training_state=False)  # inference needs no optimizer
    cfg = info.config
    if threads is None and cfg.train.threads is not None:
        torch.set_num_threads(cfg.train.threads)
    model = build_model(cfg.model)
    load_model_weights(model, info.weights, f"checkpoint {str(info.path)!r}")
    return TrainedModel(model.to(dev).eval(), cfg, info, dev, info.path, info.step)


def _require_pixel_model(tm: TrainedModel, command: str) -> None:
    """A clear error for checkpoints of models that do not predict pixels themselves."""
    kind = model_kind(tm.config.model)
    if not kind_of(tm.config.model).generates_frames:
        if command == "evaluate" and kind_of(tm.config.model).predicts_codes:
            raise ValueError(
                f"{str(tm.path)!r} holds a {kind} (a code model): evaluate it with "
                "--tokenizer PATH (the tokenizer whose codes it was trained on) and "
                "eval.protocol teco"
            )
        raise ValueError(
            f"{command} runs on video predictor checkpoints; {str(tm.path)!r} holds a "
            f"{kind} (a tokenizer encodes frames with `convssm data encode`; a latent model "
            "predicts codes that its tokenizer decodes)"
        )


def open_eval_set(path: str | Path, num_frames: int) -> Dataset:
    """A fixed evaluation set: a ``convssm data make-eval-set`` directory or an
    ``mnist_test_seq.npy`` file; items (T, C, H, W) in [-1, 1]."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"evaluation set {str(path)!r} does not exist")
    if path.is_dir():
        return cdata.load_eval_set(path, num_frames=num_frames)
    if path.suffix == ".npy":
        return cdata.MnistTestSeq(path)
    raise ValueError(
        f"evaluation set {str(path)!r} is neither an eval-set directory nor an .npy file"
    )


def evaluate_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    eval_set: str | Path | None = None,
    input_path: str | Path | None = None,
    key: str | None = None,
    num_videos: int | None = None,
    device: str = "auto",
    threads: int | None = None,
    precision: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    tokenizer: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[Any, dict[str, Path]]:
    """The model's evaluation protocol (``eval.protocol``) with its ``eval`` config.

    ``teco``: see :mod:`convssm.run.teco_run` (returns a ``TecoResult``). ``spec5``
    (returns an ``EvalResult``): the evaluation protocol with the model's ``eval`` config, as
    follows.

    Videos come from ``eval_set`` (a Moving-MNIST eval-set folder or mnist_test_seq.npy;
    else the config's ``eval.eval_set``), from ``input_path`` (an array file, ``key`` inside
    it: every sequence, conditioned on its first ``eval.context`` frames; its predictions
    are also written in its format), or else from the config's seeded held-out split.
    ``overrides`` (``eval.key=value``) change the evaluation settings. ``tokenizer``: for a
    latent model's checkpoint, the tokenizer directory that encodes its context and decodes
    its samples (the TECO protocol, on the code cache's source videos).

    Videos (a pixel model, no ``input_path``) are generated and scored batch by batch
    (:mod:`convssm.run.eval_stream`), so memory does not grow with the number of videos;
    when ``eval.save_videos``, ``videos_truth.npy`` (N, context + H, C, H, W) and
    ``videos_pred.npy`` (N, H, C, H, W) are written as memory-mapped uint8. Physical fields
    (a model with a normaliser) and ``input_path`` arrays are scored in memory
    (:func:`~convssm.metrics.evaluate_predictions`: per-channel RMSE/MAE in the
    data's units, the predictions written in the input's format), with ``videos.npz``
    (float32 in the data's units for fields) when ``eval.save_videos``. Either way
    ``metrics.json`` and, for the first video, a GIF, MP4, PNG strip and error plot.

    Beside the model, the same videos are scored for the trivial predictors
    (:mod:`convssm.run.baselines`: an empty frame, or the training mean for fields, and
    repeating the last context frame): ``metrics.json``'s ``baselines``, dashed lines in the
    error plot and, one line each, ``log``. ``threads``: as :func:`load_trained`.
    """
    tm = load_trained(checkpoint, device, threads)
    latent = tokenizer is not None and kind_of(tm.config.model).predicts_codes
    if tokenizer is not None and not latent:
        raise ValueError("--tokenizer is for checkpoints of code models (latent, teco) only")
    if not latent:
        _require_pixel_model(tm, "evaluate")
    for text in overrides:
        if not text.startswith("eval."):
            raise ValueError(f"evaluate takes only eval.* overrides, got {text!r}")
    if overrides:
        tm.config = config_from_dict(apply_overrides(config_to_dict(tm.config), overrides))
    if eval_set is not None and input_path is not None:
        raise ValueError("give either an evaluation set or an input array, not both")
    ev = tm.config.eval
    if input_path is None and eval_set is None:
        eval_set = ev.eval_set
    if ev.protocol == "teco":
        return evaluate_teco_checkpoint(
            tm,
            out_dir,
            eval_set=eval_set,
            num_videos=num_videos,
            precision=precision,
            tokenizer=tokenizer,
        )
    if latent:
        raise ValueError("a latent model is evaluated with eval.protocol teco")
    horizon = max(ev.horizons)
    frames = ev.context + horizon
    single = False
    if input_path is not None:
        if not is_array_file(input_path):
            raise ValueError(f"--input {str(input_path)!r}: expected a .npy, .h5 or .zarr array")
        dataset, single = read_input_array(input_path, key)
        check_array_fits(dataset, tm.config.model, str(input_path))
        if dataset.shape[1] < frames:
            raise ValueError(
                f"{str(input_path)!r} has sequences of {dataset.shape[1]} frames; evaluation "
                f"needs context {ev.context} + horizon {horizon} = {frames}"
            )
        source = f"{input_path}" + (f" (key {key})" if key else "")
    elif eval_set is not None:
        dataset = open_eval_set(eval_set, frames)
        source = str(eval_set)
    else:
        dataset = build_eval_dataset(tm.config, num_videos or ev.num_videos, frames)
        source = f"generated: {tm.config.data.dataset} eval split, seed {ev.seed}"
    if num_videos is not None and num_videos < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(num_videos))
    extra = {
        "checkpoint": str(tm.path),
        "step": tm.step,
        "eval_set": source,
        "kind": "field" if tm.normalize is not None else "video",
        "train_length": tm.config.data.seq_len,
    }
    if tm.normalize is not None:  # the raw metadata beside result.channels' titles
        extra["channel_names"] = tm.config.data.channel_names
        extra["channel_units"] = tm.config.data.channel_units
    out = Path(out_dir)
    batches = (split_item(b) for b in DataLoader(dataset, batch_size=ev.batch_size))
    precision = precision or tm.config.train.precision
    baselines = _baselines(tm, horizon)
    if tm.normalize is None and input_path is None:
        result, paths, first = _evaluate_streaming(
            tm, batches, len(dataset), out, precision, baselines
        )
        extra["baselines"] = baselines.to_dict(ev.horizons)
        paths.update(write_eval_outputs(out, result, extra=extra))
    else:
        truth, pred = generate_videos(tm.model, batches, ev.context, horizon, tm.device, precision)
        result = evaluate_predictions(
            truth, pred, ev.context, ev.horizons, ev.metrics, fvd_chunk=ev.fvd_chunk,
            normalize=tm.normalize,
        )  # fmt: skip
        result.channels = tm.channel_titles
        baselines.update(0, truth[:, ev.context :], pred, truth[:, ev.context - 1])
        extra["baselines"] = baselines.to_dict(ev.horizons)
        keep = ev.save_videos
        paths = write_eval_outputs(
            out, result, truth if keep else None, pred if keep else None, extra,
            physical=tm.normalize is not None,
        )  # fmt: skip
        if input_path is not None:
            paths["predictions"] = write_predictions(out, input_path, pred, single=single, key=key)
        first = (truth[0], pred[0])
    shown_t, shown_p = (display_frames(v, tm.normalize) for v in first)
    _, trivial = baselines.curves()
    paths.update(
        write_media(
            out,
            shown_t,
            shown_p,
            ev.context,
            result.per_frame,
            tm.config.data.seq_len,
            baselines=trivial,
            channel_names=tm.channel_titles,
        )  # fmt: skip
    )
    for line in baselines.lines(ev.horizons) if log else ():
        log(line)
    return result, paths


def _baselines(tm: TrainedModel, horizon: int) -> TrivialBaselines:
    """The trivial predictors' accumulator for this model's frames (fields: against the
    training data's per-channel mean)."""
    field = tm.normalize is not None
    stats = tm.config.model.normalization
    return TrivialBaselines(
        horizon, tm.config.model.image_channels, field, stats["mean"] if field else None,
        channel_names=tm.channel_titles,
    )  # fmt: skip


def _evaluate_streaming(
    tm: TrainedModel,
    batches: Any,
    num_videos: int,
    out: Path,
    precision: str,
    baselines: TrivialBaselines,
) -> tuple[Any, dict[str, Path], tuple[torch.Tensor, torch.Tensor]]:
    """Generate and score videos batch by batch (no batch held while the next is generated),
    the model and the trivial predictors (``baselines``); the videos go to memory-mapped
    uint8 ``.npy`` files when ``eval.save_videos``. Returns the ``EvalResult``, the paths
    written and (truth, prediction) of the first video."""
    ev, model_cfg = tm.config.eval, tm.config.model
    horizon = max(ev.horizons)
    image = (model_cfg.image_channels, model_cfg.image_size, model_cfg.image_size)
    scorer = StreamingEvaluator(
        ev.context, ev.horizons, ev.metrics, num_videos, image[1:], fvd_chunk=ev.fvd_chunk
    )
    writers = (
        (VideoArrayWriter(out / "videos_truth.npy", num_videos, (ev.context + horizon, *image)),
         VideoArrayWriter(out / "videos_pred.npy", num_videos, (horizon, *image)))
        if ev.save_videos else None
    )  # fmt: skip
    first = None
    for truth, pred in iter_generated(tm.model, batches, ev.context, horizon, tm.device, precision):
        scorer.update(truth, pred)
        baselines.update(0, truth[:, ev.context :], pred, truth[:, ev.context - 1])
        if writers is not None:
            writers[0].append(truth)
            writers[1].append(pred)
        if first is None:
            first = (truth[0].clone(), pred[0].clone())
        del truth, pred  # hold no batch while the next one is generated
    result = scorer.result()
    paths: dict[str, Path] = {}
    if writers is not None:
        paths["videos_truth"], paths["videos_pred"] = (w.close() for w in writers)
    return result, paths, first


def generate_from_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    input_path: str | Path | None = None,
    key: str | None = None,
    moving_mnist_seed: int | None = None,
    context: int | None = None,
    horizon: int | None = None,
    device: str = "auto",
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Generate from a video file, an array file or a fresh Moving-MNIST sample; write GIF,
    MP4, PNGs and the frames.

    Frames after the context (if any) are the ground truth of the error plot, which then
    shows the trivial predictors beside the model (:mod:`convssm.run.baselines`; their
    numbers go to ``baselines.json`` and, one line each, to ``log``). From a video (or
    Moving-MNIST) the frames go to ``generated.npz`` (uint8 ``context``, ``pred``,
    ``truth``); from an array (``key`` inside it) every sequence is continued and the
    predictions are written in the input's format and units (``predictions.npy`` for a
    ``.npy`` input, and so on), the pictures showing the first sequence.

    Frames are written as they are generated (:class:`~convssm.run.media.MediaWriter`,
    :mod:`convssm.run.frame_files`), so memory does not grow with the horizon beyond the
    input itself; every file appears complete or not at all. A non-finite prediction stops
    the generation with a ValueError naming the frame, and no output is left. ``threads``:
    as :func:`load_trained`.
    """
    tm = load_trained(checkpoint, device, threads)
    _require_pixel_model(tm, "generate")
    ev = tm.config.eval
    context = context or ev.context
    horizon = horizon or max(ev.horizons)
    if context < 1 or horizon < 1:
        raise ValueError(f"context and horizon must be positive, got {context}, {horizon}")
    if input_path is not None and moving_mnist_seed is not None:
        raise ValueError("give either an input video or a Moving-MNIST seed, not both")
    array_input = input_path is not None and is_array_file(input_path)
    single = True
    if array_input:
        videos, single = read_input_array(input_path, key)
        check_array_fits(videos, tm.config.model, str(input_path))
    elif input_path is not None:
        video = fit_video_to_model(read_input_video(input_path), tm.config.model, str(input_path))
        videos = video[None]
    else:
        videos = moving_mnist_sample(tm.config, context + horizon, moving_mnist_seed or 0)[None]
    if videos.shape[1] < context:
        raise ValueError(f"the input has {videos.shape[1]} frames, fewer than context {context}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = _StreamedGeneration(tm, videos, context, horizon, out)
    try:
        if array_input:
            suffix = Path(input_path).suffix.lower()
            spool = out / ("predictions.npy" if suffix == ".npy" else ".predictions.spool.npy")
            run.sink = NpyFrameWriter(spool, videos.shape[0], horizon, videos.shape[2:],
                                      single=single)  # fmt: skip
        else:
            run.sink = NpzFrameWriter(out / "generated.npz")
            run.sink.write("context", to_uint8(videos[0, :context]))
            run.sink.begin("pred", (horizon, *videos.shape[2:]), np.uint8)
        run.generate(ev.batch_size)
        paths = run.finish_media()
        if array_input:
            written = run.sink.close()
            if suffix == ".npy":
                paths["predictions"] = written
            else:  # HDF5 / zarr: from the spooled frames, mapped from disk
                fmt = array_format(input_path)
                spooled = np.load(written, mmap_mode="r")
                target = out / f"predictions{suffix}"
                paths["predictions"] = write_array(target, spooled, None if fmt == "npy" else key)
                del spooled
                written.unlink()
        else:
            run.sink.end()
            truth = videos[0, : context + horizon]
            run.sink.begin("truth", tuple(truth.shape), np.uint8)
            for start in range(0, truth.shape[0], 256):  # the input, a chunk at a time
                run.sink.append(to_uint8(truth[start : start + 256]))
            run.sink.end()
            paths["npz"] = run.sink.close()
    except BaseException:
        run.abort()
        raise
    if run.baselines is not None:
        horizons = sorted({h for h in (*ev.horizons, run.baselines.frames) if h <= horizon})
        record = run.baselines.to_dict(horizons)
        paths["baselines"] = atomic_write_text(out / "baselines.json", json.dumps(record, indent=1))
        for line in run.baselines.lines(horizons) if log else ():
            log(line)
    return paths


class _StreamedGeneration:
    """One ``generate_from_checkpoint``: generate batch by batch and frame by frame, feed
    each frame to the predictions' file (``sink``), the pictures of the first sequence and
    the per-frame errors, and hold no frame after it is written."""

    def __init__(
        self, tm: TrainedModel, videos: torch.Tensor, context: int, horizon: int, out: Path
    ) -> None:
        self.tm, self.videos, self.context, self.horizon = tm, videos, context, horizon
        self.known = min(videos.shape[1] - context, horizon)  # frames with ground truth
        self.field = tm.normalize is not None
        self.sink: Any = None
        self.baselines = None
        if self.known > 0:
            stats = tm.config.model.normalization
            self.baselines = TrivialBaselines(
                horizon, videos.shape[2], self.field, stats["mean"] if self.field else None,
                channel_names=tm.channel_titles,
            )  # fmt: skip
        self.change: list[float] = []
        self.previous: torch.Tensor | None = None
        self.media = MediaWriter(out, display_frames(videos[0, :context], tm.normalize),
                                 horizon, tm.config.data.seq_len, "generated")  # fmt: skip

    def _check(self, frame: torch.Tensor, first: int, k: int) -> None:
        """Refuse non-finite predictions (as evaluate does) rather than draw a black video;
        the frame is on the host already, so the check costs no extra sync."""
        if bool(torch.isfinite(frame).all()):
            return
        n_nan = int(torch.isnan(frame).sum())
        n_inf = int(torch.isinf(frame).sum())
        raise ValueError(
            f"the model in {str(self.tm.path)!r} generated non-finite values at frame +{k + 1} "
            f"of sequence {first + 1} ({n_nan} NaN, {n_inf} inf in that frame): its weights "
            "or this input are not usable"
        )

    def generate(self, batch_size: int) -> None:
        tm, videos, context = self.tm, self.videos, self.context
        with torch.no_grad():
            for first in range(0, videos.shape[0], batch_size):
                batch = videos[first : first + batch_size]
                frames = tm.model.iter_generate(batch[:, :context].to(tm.device), self.horizon)
                for k, frame in enumerate(frames):
                    self._frame(first, k, frame.float().cpu(), batch)

    def _frame(self, first: int, k: int, frame: torch.Tensor, batch: torch.Tensor) -> None:
        self._check(frame, first, k)
        if isinstance(self.sink, NpyFrameWriter):
            self.sink.put(first, k, frame.numpy())
        elif first == 0:
            self.sink.append(to_uint8(frame[:1]))
        truth = batch[:, self.context + k] if k < self.known else None
        if truth is not None and self.baselines is not None:
            self.baselines.update(k, truth, frame, batch[:, self.context - 1])
        if first != 0:
            return
        shown = display_frames(frame[0], self.tm.normalize)
        shown_truth = None if truth is None else display_frames(truth[0], self.tm.normalize)
        self.media.add(shown, shown_truth)
        if self.known == 0:  # no ground truth: how much each frame changes
            if self.previous is not None:
                scale = 1.0 if self.field else 0.5
                diff = (frame[0] - self.previous) * scale
                self.change.append(float(diff.pow(2).mean()))
            self.previous = frame[0]

    def finish_media(self) -> dict[str, Path]:
        if self.baselines is not None:
            curves, baselines = self.baselines.curves()
        else:
            curves, baselines = {"frame change (no ground truth)": self.change or [0.0]}, None
        return self.media.close(curves, baselines, self.tm.channel_titles)

    def abort(self) -> None:
        """Remove every unfinished file."""
        self.media.abort()
        if self.sink is not None:
            self.sink.abort()
