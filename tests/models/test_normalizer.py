"""The per-channel normaliser: a round trip, the training range onto [-1, 1], checks."""

from __future__ import annotations

import pytest
import torch

from convssm.models.normalizer import Normalizer

STATS = {"count": 10, "mean": [290.0, 0.5], "std": [4.0, 0.1],
         "min": [280.0, 0.5], "max": [300.0, 0.5]}  # fmt: skip


def test_round_trip_and_range():
    norm = Normalizer(STATS, channels=2).double()
    x = torch.stack([torch.linspace(280, 300, 9), torch.full((9,), 0.5)]).view(1, 2, 3, 3)
    y = norm.normalize(x.double())
    assert y[0, 0].min() == -1 and y[0, 0].max() == 1  # the training range onto [-1, 1]
    assert torch.equal(y[0, 1], torch.zeros(3, 3, dtype=torch.float64))  # constant channel
    torch.testing.assert_close(norm.denormalize(y), x.double(), rtol=0, atol=1e-12)
    assert norm.state_dict() == {}  # the config holds the numbers, not the weights file
    ident = Normalizer(None, channels=2)
    assert ident.normalize(x) is x and ident.denormalize(x) is x


@pytest.mark.parametrize(
    "stats, message",
    [
        ({**STATS, "mean": [1.0]}, r"normalization\.mean must be a list of 2 numbers"),
        ({k: v for k, v in STATS.items() if k != "std"}, "must have exactly the keys"),
        ({**STATS, "max": [float("nan"), 1.0]}, "must be finite"),
        ({**STATS, "min": [301.0, 0.5]}, "min exceeds max"),
        ({**STATS, "count": 0}, "count must be a positive int"),
    ],
)
def test_bad_statistics_are_named(stats, message):
    with pytest.raises(ValueError, match=message):
        Normalizer(stats, channels=2)


def _pair():
    from convssm.models import VideoPredictor

    args = dict(image_channels=2, image_size=16, encoder_widths=(8, 16), norm_groups=4, dim=8,
                sequence_options=dict(state_dim=4, depth=1, norm_groups=4))  # fmt: skip
    torch.manual_seed(0)
    physical = VideoPredictor(**args, normalization=STATS).double().eval()
    plain = VideoPredictor(**args).double().eval()
    plain.load_state_dict(physical.state_dict())
    return physical, plain


def test_a_model_with_statistics_speaks_physical_units(tmp_path):
    from convssm.models import VideoPredictor
    from convssm.train.objectives import video_prediction_loss

    physical, plain = _pair()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 5, 2, 16, 16, generator=g, dtype=torch.float64)
    x = x * torch.tensor([20.0, 0.0]).view(2, 1, 1) + torch.tensor([280.0, 0.5]).view(2, 1, 1)
    unit = physical.normalizer.normalize(x)
    a, b = physical(x), plain(unit)
    # the loss in the working range
    torch.testing.assert_close(
        video_prediction_loss(a), video_prediction_loss(b), rtol=1e-12, atol=0
    )
    torch.testing.assert_close(a.predictions, physical.normalizer.denormalize(b.predictions))
    gen = physical.generate(x[:, :3], 4)
    torch.testing.assert_close(gen, physical.normalizer.denormalize(plain.generate(unit[:, :3], 4)))
    assert 270 < float(gen[:, :, 0].mean()) < 310  # kelvin in, kelvin out
    folder = physical.save_pretrained(tmp_path / "m")
    loaded = VideoPredictor.from_pretrained(folder).double().eval()
    assert loaded.config.normalization == STATS
    torch.testing.assert_close(loaded.generate(x[:, :3], 4), gen)
