"""The one ``torch.autocast`` helper, for training steps, validation and inference alike."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["autocast_context"]


def autocast_context(device: torch.device, precision: str):
    """``torch.autocast`` for ``bf16``/``fp16`` (``auto``: bf16 or fp16 on CUDA, off on CPU)."""
    if precision == "auto":
        if device.type != "cuda":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    elif precision == "fp32":
        return contextlib.nullcontext()
    elif precision == "bf16":
        dtype = torch.bfloat16
    elif precision == "fp16":
        dtype = torch.float16
    else:
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    return torch.autocast(device_type=device.type, dtype=dtype)
