"""Errors of predicted physical fields, per channel, in the data's own units.

Fields (temperature, velocity, concentration, ...) have no [0, 1] range, so the image
metrics do not apply to them directly. These take predicted and target videos (B, T, C, H, W)
in any units and return one value per frame and channel, shape (B, T, C):

- :func:`channel_mse`: mean squared error over (H, W) of each frame and channel;
- :func:`channel_mae`: mean absolute error over (H, W).

Every frame has the same number of pixels, so the RMSE of channel ``c`` over any set of
frames and videos is ``sqrt(mean(channel_mse[..., c]))`` and its MAE
``mean(channel_mae[..., c])``: :func:`rmse_per_channel` and :func:`mae_per_channel` do
exactly that, and the evaluation aggregates per horizon the same way.
"""

from __future__ import annotations

import torch

from convssm._checks import check_tensor

__all__ = ["channel_mse", "channel_mae", "rmse_per_channel", "mae_per_channel"]


def _pair(pred: object, target: object) -> tuple[torch.Tensor, torch.Tensor]:
    pred = check_tensor(pred, "pred", ndim=5, floating=True)
    target = check_tensor(target, "target", ndim=5, floating=True)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape (B, T, C, H, W), "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    dtype = torch.promote_types(torch.promote_types(pred.dtype, target.dtype), torch.float32)
    return pred.to(dtype), target.to(dtype)


def channel_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) pair -> (B, T, C) mean squared error over each frame's pixels."""
    pred, target = _pair(pred, target)
    return (pred - target).pow(2).mean(dim=(-2, -1))


def channel_mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) pair -> (B, T, C) mean absolute error over each frame's pixels."""
    pred, target = _pair(pred, target)
    return (pred - target).abs().mean(dim=(-2, -1))


def rmse_per_channel(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) pair -> (C,) root mean squared error over everything but channels."""
    return channel_mse(pred, target).mean(dim=(0, 1)).sqrt()


def mae_per_channel(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) pair -> (C,) mean absolute error over everything but channels."""
    return channel_mae(pred, target).mean(dim=(0, 1))
