"""PSNR, SSIM and OpenSTL-style errors: cross-checked against torchmetrics and by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from convssm.metrics.image import mae_openstl, mse_openstl, psnr, ssim


def _pair(b=2, t=3, c=1, h=32, w=24, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand(b, t, c, h, w, generator=gen, dtype=dtype)
    noise = 0.1 * torch.randn(b, t, c, h, w, generator=gen, dtype=dtype)
    pred = (target + noise).clamp(0, 1)
    return pred, target


@pytest.mark.parametrize("c", [1, 3])
def test_psnr_matches_torchmetrics_per_frame(c):
    pred, target = _pair(c=c)
    ours = psnr(pred, target)
    assert ours.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            ref = peak_signal_noise_ratio(pred[i, j], target[i, j], data_range=1.0)
            # torchmetrics keeps data_range in float32: agreement to 1e-5 dB.
            assert abs(float(ours[i, j]) - float(ref)) < 1e-5


@pytest.mark.parametrize("c", [1, 3])
def test_ssim_matches_torchmetrics_per_frame(c):
    pred, target = _pair(c=c, dtype=torch.float32)
    ours = ssim(pred, target)
    assert ours.shape == (2, 3)
    _, ref_map = structural_similarity_index_measure(
        pred.flatten(0, 1),
        target.flatten(0, 1),
        gaussian_kernel=True,
        sigma=1.5,
        kernel_size=11,
        k1=0.01,
        k2=0.03,
        data_range=1.0,
        reduction="none",
        return_full_image=True,
    )
    # torchmetrics >= 1.x averages over a reflect-padded border too; the protocol (like
    # tf.image.ssim, dm-pix and scikit-image) uses the valid region only. Inside the
    # 5-pixel border both maps are the same, so crop it and average.
    ref = ref_map[..., 5:-5, 5:-5].mean(dim=(1, 2, 3)).view(2, 3)
    # float32 on both sides, different summation order: tolerance 1e-5 absolute.
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_ssim_of_identical_frames_is_one_and_drops_with_noise():
    _, target = _pair()
    assert torch.allclose(ssim(target, target), torch.ones(2, 3, dtype=torch.float64))
    noisy1, _ = _pair(seed=0)
    more = (target + 0.3 * torch.randn_like(target)).clamp(0, 1)
    assert bool((ssim(more, target) < ssim(noisy1, target)).all())


def test_psnr_by_hand_and_identical_is_inf():
    target = torch.zeros(1, 2, 1, 4, 4)
    pred = torch.full((1, 2, 1, 4, 4), 0.1)
    # mse = 0.01 -> psnr = 20 dB
    torch.testing.assert_close(psnr(pred, target), torch.full((1, 2), 20.0))
    assert math.isinf(float(psnr(target, target)[0, 0]))


def test_openstl_errors_are_per_frame_sums():
    pred, target = _pair(c=3, h=8, w=8)
    mse = mse_openstl(pred, target)
    mae = mae_openstl(pred, target)
    assert mse.shape == mae.shape == (2, 3)
    # OpenSTL: np.mean(err, axis=(0, 1)).sum() == mean over (B, T) of per-frame sums.
    openstl_mse = ((pred - target) ** 2).mean(dim=(0, 1)).sum()
    openstl_mae = (pred - target).abs().mean(dim=(0, 1)).sum()
    torch.testing.assert_close(mse.mean(), openstl_mse)
    torch.testing.assert_close(mae.mean(), openstl_mae)
    torch.testing.assert_close(mse[1, 2], ((pred[1, 2] - target[1, 2]) ** 2).sum())


@pytest.mark.parametrize("fn", [psnr, ssim, mse_openstl, mae_openstl])
def test_bad_inputs_raise(fn):
    good = torch.rand(1, 2, 1, 16, 16)
    with pytest.raises(ValueError, match="dimensions"):
        fn(good[0], good[0])
    with pytest.raises(ValueError, match="same shape"):
        fn(good, good[:, :1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fn(good * 2, good)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fn(good, good - 0.5)
    bad = good.clone()
    bad[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        fn(bad, good)
    with pytest.raises(TypeError, match="floating"):
        fn((good * 255).to(torch.uint8), good)
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn(good.numpy(), good)


def test_ssim_rejects_frames_smaller_than_window():
    x = torch.rand(1, 1, 1, 10, 16)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x, x)
