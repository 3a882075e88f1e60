"""``convssm evaluate`` with ``eval.protocol: teco``: TECO's protocol on a checkpoint's data.

Reads the evaluation videos (``teco.frames`` each, unset: the shortest test video's length;
the ``test`` split of a video folder),
runs :func:`convssm.run.teco_eval.evaluate_teco` with the checkpoint's model as a
generator, and writes ``metrics.json``, per setting ``videos_<setting>.npz`` (uint8 truth
and prediction of the first batch, when ``eval.save_videos``) and pictures of the first
video under ``<setting>/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from convssm._files import atomic_write, atomic_write_text
from convssm.data import VideoFolder, read_codes_manifest
from convssm.metrics.scoring import to_uint8
from convssm.models import VQTokenizer
from convssm.run.generators import LatentGenerator, PredictorGenerator
from convssm.run.media import write_media
from convssm.run.teco_eval import TecoResult, evaluate_teco
from convssm.train.checkpoint import resolve_checkpoint
from convssm.train.config import TecoProtocol
from convssm.train.factory import build_eval_dataset, split_item

__all__ = ["evaluate_teco_checkpoint"]


def evaluate_teco_checkpoint(
    tm: Any,
    out_dir: str | Path,
    *,
    eval_set: str | Path | None = None,
    num_videos: int | None = None,
    precision: str | None = None,
    tokenizer: str | Path | None = None,
) -> tuple[TecoResult, dict[str, Path]]:
    """TECO's protocol for a loaded ``TrainedModel`` (see the module docstring).

    ``tokenizer``: a latent model's tokenizer directory; the model then samples codes
    (``eval.teco.temperature`` and ``seed``) that the tokenizer decodes, on the test videos
    of the folder its code cache was encoded from.
    """
    if eval_set is not None:
        raise ValueError(
            "--eval-set names a Moving-MNIST evaluation set; the TECO protocol reads the "
            "config's data (data.root's test split)"
        )
    ev = tm.config.eval
    precision = precision or tm.config.train.precision
    if tokenizer is not None:
        dataset, generator, teco = _latent(tm, tokenizer, precision)
    else:
        teco = ev.teco
        if tm.config.data.dataset == "video_folder":  # unset lengths from the test videos
            probe = build_eval_dataset(tm.config, num_videos or ev.num_videos, 1)
            teco = teco.for_videos(min(f.num_frames for f in probe.files))
        else:  # generated videos (any length): TECO's lengths where unset
            teco = teco.for_videos(None)
        dataset = build_eval_dataset(tm.config, num_videos or ev.num_videos, teco.frames)
        generator = PredictorGenerator(tm.model, precision)
    if num_videos is not None and num_videos < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(num_videos))
    loader = DataLoader(dataset, batch_size=ev.batch_size)
    result, kept = evaluate_teco(
        generator,
        (split_item(b) for b in loader),
        teco,
        metrics=ev.metrics,
        fvd_chunk=ev.fvd_chunk,
        num_videos=len(dataset),
        device=tm.device,
        keep_videos=ev.batch_size if ev.save_videos else 1,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = result.to_dict()
    payload.update(checkpoint=str(tm.path), step=tm.step, data=tm.config.data.root)
    paths = {"metrics": atomic_write_text(out / "metrics.json", json.dumps(payload, indent=2))}
    for name, (truth, pred) in kept.items():
        row = result.settings[name]
        if ev.save_videos:
            paths[f"videos_{name}"] = atomic_write(
                out / f"videos_{name}.npz",
                lambda tmp, t=truth, p=pred, c=row["context"]: _save(tmp, t, p, c),
            )
        media = write_media(
            out / name, truth[0], pred[0], row["context"], row["per_frame"], stem="sample"
        )
        paths.update({f"{name}_{k}": v for k, v in media.items()})
    return result, paths


def _latent(
    tm: Any, tokenizer: str | Path, precision: str
) -> tuple[Any, LatentGenerator, TecoProtocol]:
    """The source videos of a latent model's code cache, its sampling generator and the
    protocol with its unset lengths taken from those videos."""
    cfg = tm.config
    if cfg.data.root is None:
        raise ValueError("the checkpoint's data.root (its code cache) is not set")
    source = read_codes_manifest(cfg.data.root).get("source")
    if not source:
        raise ValueError(f"the code cache {cfg.data.root} does not name its source videos")
    if Path(tokenizer).is_dir():  # a run's workdir or checkpoints folder: its newest checkpoint
        tokenizer = resolve_checkpoint(tokenizer)
    tok = VQTokenizer.from_pretrained(tokenizer).to(tm.device).eval()
    if (tok.codebook_size, tok.latent_size) != (tm.model.codebook_size, tm.model.latent_size):
        raise ValueError(
            f"tokenizer {str(tokenizer)!r} makes {tok.latent_size}x{tok.latent_size} codes of "
            f"{tok.codebook_size}; the model reads {tm.model.latent_size}x"
            f"{tm.model.latent_size} codes of {tm.model.codebook_size}"
        )
    probe = VideoFolder(source, "test", seq_len=1)
    teco = cfg.eval.teco.for_videos(min(f.num_frames for f in probe.files))
    dataset = VideoFolder(source, "test", seq_len=teco.frames)
    gen = LatentGenerator(
        tm.model,
        tok,
        temperature=teco.temperature,
        seed=teco.seed,
        device=tm.device,
        precision=precision,
    )
    return dataset, gen, teco


def _save(tmp: str, truth: torch.Tensor, pred: torch.Tensor, context: int) -> None:
    with open(tmp, "wb") as f:
        np.savez_compressed(
            f, truth=to_uint8(truth), pred=to_uint8(pred), context=np.int64(context)
        )
