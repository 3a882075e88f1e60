"""Writing the evaluation's results (docs/design.md#evaluation-protocol): ``metrics.json`` and
the videos.

The scoring itself is :func:`convssm.metrics.evaluate_predictions` (videos in memory) or
:class:`convssm.run.eval_stream.StreamingEvaluator` (batch by batch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convssm._files import atomic_write, atomic_write_text
from convssm.metrics.scoring import EvalResult, json_safe, to_uint8

__all__ = ["write_eval_outputs"]


def write_eval_outputs(
    out_dir: str | Path,
    result: EvalResult,
    truth: torch.Tensor | None = None,
    pred: torch.Tensor | None = None,
    extra: dict[str, Any] | None = None,
    physical: bool = False,
) -> dict[str, Path]:
    """Write ``metrics.json`` (the result plus ``extra``) and, when given, ``videos.npz``
    with uint8 ``truth``/``pred`` (float32 in the data's units when ``physical``), each
    atomically, into ``out_dir``. (The streaming path of ``evaluate_checkpoint`` passes no
    videos: it writes them as memory-mapped ``.npy`` files itself.)"""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = result.to_dict()
    if extra:
        payload.update(json_safe(extra))
    paths = {"metrics": atomic_write_text(out / "metrics.json", json.dumps(payload, indent=2))}
    if truth is not None and pred is not None:
        convert = (lambda v: v.float().cpu().numpy()) if physical else to_uint8

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:  # a file object: numpy would append .npz to a name
                np.savez_compressed(
                    f, truth=convert(truth), pred=convert(pred), context=np.int64(result.context)
                )

        paths["videos"] = atomic_write(out / "videos.npz", write)
    return paths
