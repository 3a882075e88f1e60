"""VQTokenizer and VectorQuantizer: shapes, the straight-through gradient, both codebook
updates, encode/decode, save/load, and clear errors."""

from __future__ import annotations

import pytest
import torch

from convssm.models import VQTokenizer, VQTokenizerConfig
from convssm.models.discriminator import PatchDiscriminator
from convssm.models.vector_quantizer import VectorQuantizer


def _small(**kw):
    args = dict(
        image_channels=3,
        image_size=16,
        channels=8,
        channel_mult=[1, 2],
        num_res_blocks=1,
        norm_groups=4,
        embed_dim=4,
        codebook_size=16,
    )
    args.update(kw)
    return VQTokenizer(**args)


def _video(b=2, t=3, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, t, 3, size, size, generator=g) * 2 - 1


def test_shapes_encode_decode():
    torch.manual_seed(0)
    tok = _small().eval()
    video = _video()
    out = tok(video)
    assert out.reconstruction.shape == video.shape
    assert out.codes.shape == (2, 3, 8, 8) and out.codes.dtype == torch.int64
    codes = tok.encode(video, batch_frames=4)
    assert torch.equal(codes, out.codes)
    frames = tok.decode(codes, batch_frames=5)
    assert frames.shape == video.shape and frames.abs().max() <= 1
    torch.testing.assert_close(frames, out.reconstruction.detach().clamp(-1, 1))
    assert tok.latent_size == 8 and VQTokenizerConfig(image_size=64).latent_size == 16


def test_quantizer_picks_the_nearest_code_and_passes_gradients_straight_through():
    torch.manual_seed(0)
    vq = VectorQuantizer(5, 3).double()
    z = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    out = vq(z)
    dist = ((z.detach().permute(0, 2, 3, 1)[..., None, :] - vq.codebook.detach()) ** 2).sum(-1)
    assert torch.equal(out.codes, dist.argmin(-1))
    torch.testing.assert_close(out.quantized, vq.lookup(out.codes))
    g = torch.randn_like(z)
    (out.quantized * g).sum().backward()
    torch.testing.assert_close(z.grad, g)  # identity Jacobian
    z.grad = None
    (out.codebook_loss + out.commitment_loss).backward()
    zq = vq.lookup(out.codes).detach()
    torch.testing.assert_close(z.grad, 0.25 * 2 * (z - zq).detach() / z.numel())
    assert vq.codebook.grad is not None and vq.codebook.grad.abs().sum() > 0
    assert 1 <= out.perplexity <= 5


def test_tokenizer_gradient_reaches_the_encoder_through_the_codes():
    torch.manual_seed(0)
    tok = _small()
    out = tok(_video())
    (out.reconstruction**2).mean().backward()  # no VQ loss: only the straight-through path
    assert tok.encoder[0].weight.grad.abs().sum() > 0


def test_ema_update_moves_used_codes_to_the_mean_of_their_vectors():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 2, update="ema", ema_decay=0.5, ema_eps=0.0, dead_code_threshold=0)
    assert "codebook" not in dict(vq.named_parameters())
    z = torch.randn(1, 2, 3, 3)
    for _ in range(40):
        out = vq(z)
    assert out.codebook_loss == 0
    flat = z.permute(0, 2, 3, 1).reshape(-1, 2)
    for k in out.codes.unique():
        mean = flat[out.codes.reshape(-1) == k].mean(0)
        torch.testing.assert_close(vq.codebook[k], mean, rtol=1e-4, atol=1e-4)
    before = vq.codebook.clone()
    vq.eval()
    vq(torch.randn(1, 2, 3, 3))
    assert torch.equal(vq.codebook, before)  # no update in eval mode


@pytest.mark.parametrize("update", ["loss", "ema"])
def test_save_load_round_trip(tmp_path, update):
    torch.manual_seed(0)
    tok = _small(codebook_update=update, attention=False)
    tok.train()
    tok(_video())  # moves the EMA codebook
    tok.save_pretrained(tmp_path / "t")
    loaded = VQTokenizer.from_pretrained(tmp_path / "t")
    assert loaded.config == tok.config
    video = _video(seed=1)
    assert torch.equal(loaded.encode(video), tok.eval().encode(video))
    torch.testing.assert_close(loaded.decode(tok.encode(video)), tok.decode(tok.encode(video)))


def test_patch_discriminator_shape():
    d = PatchDiscriminator(3, channels=8, num_layers=2, norm_groups=4)
    assert d(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 6, 6)


def test_clear_errors():
    with pytest.raises(TypeError, match="unknown VQTokenizer option"):
        _small(codebok_size=3)
    with pytest.raises(ValueError, match="image_size 18 must be divisible by 4"):
        _small(image_size=18, channel_mult=[1, 2, 2])
    with pytest.raises(ValueError, match="codebook_update"):
        _small(codebook_update="kmeans")
    tok = _small()
    with pytest.raises(ValueError, match="3 channels"):
        tok.encode(torch.zeros(1, 2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 16\)"):
        tok.decode(torch.full((1, 1, 8, 8), 16))


def test_dead_codes_restart_on_encoder_outputs():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 2, update="ema", dead_code_threshold=1.0)
    z = torch.randn(1, 2, 4, 4) * 5 + 3  # far from the tiny initial codebook
    vq(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 2)
    # every code was dead at the start, so every code now sits on an encoder output
    dist = torch.cdist(vq.codebook, flat).min(1).values
    assert dist.max() < 1e-5
    assert vq(z).perplexity > 2  # the positions spread over several codes
    vq.eval()
    frozen = vq.codebook.clone()
    vq(torch.randn(1, 2, 4, 4))
    assert torch.equal(vq.codebook, frozen)  # no restarts in eval mode
