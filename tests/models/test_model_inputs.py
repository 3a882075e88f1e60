"""The rough edges of VideoPredictor's inputs: the floating-dtype rule, integer horizons,
resolution errors in frame terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convssm.models import VideoPredictor


def _small(**kw):
    args = dict(image_size=16, encoder_widths=(8, 16), norm_groups=4, dim=8,
                sequence_options=dict(state_dim=4, depth=1, norm_groups=4))  # fmt: skip
    args.update(kw)
    torch.manual_seed(0)
    return VideoPredictor(**args).eval()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_floating_inputs_are_cast_to_the_model_dtype(dtype):
    model = _small()
    context = torch.rand(1, 3, 1, 16, 16, generator=torch.Generator().manual_seed(0)) - 0.5
    want = model.generate(context, 2)
    got = model.generate(context.to(dtype), 2)
    assert got.dtype == model.dtype == torch.float32
    tol = 0 if dtype == torch.float64 else 0.05  # the input itself was rounded
    torch.testing.assert_close(got, want, atol=tol + 1e-6, rtol=0)
    assert model(torch.zeros(1, 3, 1, 16, 16, dtype=dtype)).predictions.dtype == torch.float32
    with pytest.raises(TypeError, match="floating-point tensor, got dtype torch.int64"):
        model.generate(torch.zeros(1, 3, 1, 16, 16, dtype=torch.int64), 2)


def test_horizon_must_be_an_integer():
    model = _small()
    context = torch.zeros(1, 2, 1, 16, 16)
    with pytest.raises(TypeError, match=r"horizon must be an int \(a number of frames\), got 2.5"):
        model.generate(context, 2.5)
    with pytest.raises(TypeError, match="horizon must be an int"):
        model.generate(context, True)
    assert model.generate(context, np.int64(2)).shape == (1, 2, 1, 16, 16)


def test_frames_of_another_size_are_refused_as_the_cli_refuses_them():
    opts = dict(depth=1, embed_dim=8, heads=2, mlp_dim=8)
    model = _small(image_size=32, sequence_model="transformer", sequence_options=opts)
    with pytest.raises(ValueError, match=r"context frames are 64x64, but this model takes 32x32"):
        model.generate(torch.zeros(1, 2, 1, 64, 64), 2)
    conv = _small()  # a convolutional model too: its weights were trained at one size
    wrong = torch.zeros(1, 3, 1, 32, 32)
    for call in (lambda: conv(wrong), lambda: conv.generate(wrong, 1),
                 lambda: next(conv.iter_generate(wrong, 1))):  # fmt: skip
        with pytest.raises(ValueError, match=r"frames are 32x32, .* takes 16x16 .*interpolate"):
            call()


def test_generate_shows_progress_only_when_asked(capsys):
    model = _small()
    context = torch.zeros(1, 2, 1, 16, 16)
    quiet = model.generate(context, 20)
    assert capsys.readouterr().err == ""
    shown = model.generate(context, 20, progress=True)
    torch.testing.assert_close(shown, quiet)
    lines = capsys.readouterr().err.splitlines()  # not a terminal: a plain line every tenth
    assert len(lines) == 10 and lines[-1].startswith("generate: frame 20/20 (100%)"), lines
