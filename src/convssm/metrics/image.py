"""Per-frame image metrics for video prediction: PSNR, SSIM and OpenSTL-style MSE/MAE.

Every function takes predicted and target videos of shape (B, T, C, H, W) with values in
[0, 1] and returns one value per frame, shape (B, T), so callers can average over frames
then videos (docs/design.md#evaluation-protocol) or plot the error against the prediction horizon.

- :func:`psnr`: peak signal-to-noise ratio with data range 1, from the mean squared error of
  each frame over (C, H, W). Identical frames give ``+inf``.
- :func:`ssim`: structural similarity with an 11x11 Gaussian window (sigma 1.5),
  K = (0.01, 0.03), data range 1, computed per channel on the "valid" part of the image
  (no padding, as torchmetrics and scikit-image do) and averaged over channels and pixels.
- :func:`mse_openstl` and :func:`mae_openstl`: squared and absolute errors **summed** over
  (C, H, W) of each frame. Their mean over frames and videos is the number OpenSTL's
  ``MSE``/``MAE`` report (``np.mean(err, axis=(0, 1)).sum()``), which is not a per-pixel mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from convssm._checks import check_tensor

__all__ = [
    "check_video_pair",
    "psnr",
    "ssim",
    "mse_openstl",
    "mae_openstl",
    "SSIM_WINDOW",
    "SSIM_SIGMA",
    "SSIM_K",
]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K = (0.01, 0.03)


def check_unit_range(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` unless every value of ``x`` lies in [0, 1]."""
    if x.numel():
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{name} must have values in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
    return x


def check_video_pair(pred: object, target: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Check two videos (B, T, C, H, W): floating, finite, equal shapes, values in [0, 1].

    Returns both promoted to a common floating dtype of at least float32.
    """
    pred = check_tensor(pred, "pred", ndim=5, floating=True)
    target = check_tensor(target, "target", ndim=5, floating=True)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape (B, T, C, H, W), "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.device != target.device:
        raise ValueError(
            f"pred and target are on different devices: {pred.device}, {target.device}"
        )
    check_unit_range(pred, "pred")
    check_unit_range(target, "target")
    dtype = torch.promote_types(torch.promote_types(pred.dtype, target.dtype), torch.float32)
    return pred.to(dtype), target.to(dtype)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR (data range 1) of every frame: (B, T, C, H, W) x 2 -> (B, T), in dB."""
    pred, target = check_video_pair(pred, target)
    mse = (pred - target).pow(2).mean(dim=(2, 3, 4))
    return 10.0 * torch.log10(1.0 / mse)


def mse_openstl(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error summed over (C, H, W) of every frame (OpenSTL's MSE): -> (B, T)."""
    pred, target = check_video_pair(pred, target)
    return (pred - target).pow(2).sum(dim=(2, 3, 4))


def mae_openstl(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Absolute error summed over (C, H, W) of every frame (OpenSTL's MAE): -> (B, T)."""
    pred, target = check_video_pair(pred, target)
    return (pred - target).abs().sum(dim=(2, 3, 4))


def gaussian_window(
    size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, *, dtype=torch.float32, device=None
) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``size`` taps centred on the middle tap: (size,)."""
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _blur_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter without padding: (N, 1, H, W) -> (N, 1, H-k+1, W-k+1)."""
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1))
    return F.conv2d(x, g.view(1, 1, 1, k))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM of every frame, mean over channels and valid pixels: (B, T, C, H, W) x 2 -> (B, T).

    Frames must be at least 11x11 (the window size).
    """
    pred, target = check_video_pair(pred, target)
    b, t, c, h, w = pred.shape
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(f"ssim needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {h}x{w}")
    g = gaussian_window(dtype=pred.dtype, device=pred.device)
    c1 = SSIM_K[0] ** 2
    c2 = SSIM_K[1] ** 2
    x = pred.reshape(b * t * c, 1, h, w)
    y = target.reshape(b * t * c, 1, h, w)
    # One batched filter call for the five local moments.
    moments = _blur_valid(torch.cat([x, y, x * x, y * y, x * y], dim=0), g)
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.chunk(5, dim=0)
    # Rounding can make a flat patch's variance slightly negative; it is >= 0 exactly.
    var_x = (e_xx - mu_x * mu_x).clamp_min(0.0)
    var_y = (e_yy - mu_y * mu_y).clamp_min(0.0)
    cov_xy = e_xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    ssim_map = num / den
    return ssim_map.reshape(b, t, -1).mean(dim=2)
