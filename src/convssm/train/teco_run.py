"""``convssm evaluate`` with ``eval.protocol: teco``: TECO's protocol on a checkpoint's data.

Reads the evaluation videos (``teco.frames`` each; the ``test`` split of a video folder),
runs :func:`convssm.train.teco_eval.evaluate_teco` with the checkpoint's model as a
generator, and writes ``metrics.json``, per setting ``videos_<setting>.npz`` (uint8 truth
and prediction of the first batch, when ``eval.save_videos``) and pictures of the first
video under ``<setting>/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from convssm._files import atomic_write, atomic_write_text
from convssm.train.evaluation import to_uint8
from convssm.train.factory import build_eval_dataset, split_item
from convssm.train.generators import PredictorGenerator
from convssm.train.teco_eval import TecoResult, evaluate_teco

__all__ = ["evaluate_teco_checkpoint"]


def evaluate_teco_checkpoint(
    tm: Any,
    out_dir: str | Path,
    *,
    eval_set: str | Path | None = None,
    num_videos: int | None = None,
    precision: str | None = None,
) -> tuple[TecoResult, dict[str, Path]]:
    """TECO's protocol for a loaded ``TrainedModel`` (see the module docstring)."""
    import json

    from convssm.train.inference import write_media

    if eval_set is not None:
        raise ValueError(
            "--eval-set names a Moving-MNIST evaluation set; the TECO protocol reads the "
            "config's data (data.root's test split)"
        )
    ev = tm.config.eval
    dataset = build_eval_dataset(tm.config, num_videos or ev.num_videos, ev.teco.frames)
    if num_videos is not None and num_videos < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(num_videos))
    loader = DataLoader(dataset, batch_size=ev.batch_size)
    generator = PredictorGenerator(tm.model, precision or tm.config.train.precision)
    result, kept = evaluate_teco(
        generator,
        (split_item(b) for b in loader),
        ev.teco,
        metrics=ev.metrics,
        fvd_chunk=ev.fvd_chunk,
        num_videos=len(dataset),
        device=tm.device,
        keep_videos=ev.batch_size if ev.save_videos else 1,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = result.to_dict()
    payload.update(checkpoint=str(tm.info.path), step=tm.info.step, data=tm.config.data.root)
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


def _save(tmp: str, truth: torch.Tensor, pred: torch.Tensor, context: int) -> None:
    with open(tmp, "wb") as f:
        np.savez_compressed(
            f, truth=to_uint8(truth), pred=to_uint8(pred), context=np.int64(context)
        )
