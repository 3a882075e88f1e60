"""I3D port against logits of the original JAX module (tools/make_metric_fixtures.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convssm.metrics.fvd import FVDAccumulator, fvd, preprocess_for_i3d
from convssm.metrics.i3d import same_padding


def test_same_padding_is_tensorflow_same():
    # stride 2, kernel 7 on 224: out 112, total pad (111 * 2 + 7 - 224) = 5 -> (2, 3).
    assert same_padding((10, 224, 224), (7, 7, 7), (2, 2, 2)) == [2, 3, 2, 3, 2, 3]
    # stride 2, kernel 3 on 112: total 1 -> (0, 1); time untouched by a (1, 3, 3) pool.
    assert same_padding((5, 112, 112), (1, 3, 3), (1, 2, 2)) == [0, 1, 0, 1, 0, 0]
    # stride 1, kernel 3: symmetric 1.
    assert same_padding((4, 7, 7), (3, 3, 3), (1, 1, 1)) == [1, 1, 1, 1, 1, 1]


def _assert_logits_close(ours: torch.Tensor, ref: np.ndarray) -> None:
    ref_t = torch.from_numpy(ref)
    assert ours.shape == ref_t.shape
    # 1e-3 relative, with an absolute floor of 1e-4 for logits near 0 (they reach ~15).
    torch.testing.assert_close(ours, ref_t, rtol=1e-3, atol=1e-4)


def test_i3d_matches_jax_reference_logits(i3d_model, i3d_reference):
    clips = torch.from_numpy(i3d_reference["clips_28"])  # (2, 10, 28, 28, 3) uint8
    clips = clips.repeat_interleave(8, dim=2).repeat_interleave(8, dim=3)
    x = clips.permute(0, 1, 4, 2, 3).float() / 127.5 - 1.0  # (2, 10, 3, 224, 224)
    with torch.no_grad():
        logits = i3d_model(x)
    _assert_logits_close(logits, i3d_reference["clips_logits"])


def test_fvd_feature_path_matches_jax_resize_and_i3d(i3d_model, i3d_reference):
    # A 64x64 grey clip in [0, 1] through FVDAccumulator.update: grey -> RGB, bilinear to
    # 224 (jax.image.resize in the reference), [-1, 1], I3D, mean logits over time.
    grey = torch.from_numpy(i3d_reference["grey_64"]).permute(0, 1, 4, 2, 3).float() / 255.0
    acc = FVDAccumulator(chunk_size=2, model=i3d_model)
    acc.update(grey, grey.clone())
    real, fake = acc.chunks[0]
    assert real.count == fake.count == 1 and acc.num_frames == 10
    _assert_logits_close(real.mean().float()[None], i3d_reference["grey_64_logits"])
    _assert_logits_close(fake.mean().float()[None], i3d_reference["grey_64_logits"])
    with pytest.raises(ValueError, match="at least one full chunk of 2"):
        acc.compute()
    with pytest.raises(ValueError, match="frame count"):
        acc.update(grey[:, :9], grey[:, :9])
    with pytest.raises(ValueError, match="frame count"):
        fvd(grey, grey[:, :9], i3d_model)


def test_i3d_rejects_wrong_inputs(i3d_model):
    with pytest.raises(ValueError, match="224x224"):
        i3d_model(torch.zeros(1, 9, 3, 64, 64))
    with pytest.raises(ValueError, match="at least 9 frames"):
        i3d_model(torch.zeros(1, 8, 3, 224, 224))
    with pytest.raises(ValueError, match="dimensions"):
        i3d_model(torch.zeros(9, 3, 224, 224))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        i3d_model(torch.full((1, 9, 3, 224, 224), 1.5))
    with pytest.raises(ValueError, match="non-finite"):
        i3d_model(torch.full((1, 9, 3, 224, 224), float("nan")))


def test_preprocess_shapes_ranges_and_errors():
    x = torch.rand(2, 3, 1, 32, 48)
    y = preprocess_for_i3d(x)
    assert y.shape == (2, 3, 3, 224, 224)
    assert float(y.min()) >= -1.0 and float(y.max()) <= 1.0
    torch.testing.assert_close(y[:, :, 0], y[:, :, 2])  # grey repeated to RGB
    full = torch.rand(1, 2, 3, 224, 224)
    torch.testing.assert_close(preprocess_for_i3d(full), full * 2 - 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        preprocess_for_i3d(x * 2)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        preprocess_for_i3d(torch.rand(1, 2, 2, 32, 32))
