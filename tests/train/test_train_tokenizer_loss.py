"""TokenizerLoss: the terms add up as documented, LPIPS is the project's, and the
adversarial terms reach only their own side (generator vs discriminator)."""

from __future__ import annotations

import torch

from convssm.metrics import LPIPS
from convssm.models import VQTokenizer
from convssm.train.config import TokenizerLossConfig
from convssm.train.tokenizer_loss import TokenizerLoss


def _tok():
    torch.manual_seed(0)
    return VQTokenizer(
        image_size=32, channels=8, channel_mult=[1, 2], num_res_blocks=1, norm_groups=4,
        embed_dim=4, codebook_size=16, attention=False,
    )  # fmt: skip


def _video():
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 2, 3, 32, 32, generator=g) * 2 - 1


def test_terms_add_up_with_the_project_lpips():
    tok, video = _tok(), _video()
    lp = LPIPS.from_pretrained()
    obj = TokenizerLoss(TokenizerLossConfig(l1_weight=2.0, perceptual_weight=0.5), 3, lp)
    assert list(obj.parameters()) == []  # LPIPS is neither trained nor saved
    torch.manual_seed(1)
    loss, terms = obj(tok, video)
    out = tok(video)
    recon = out.reconstruction.flatten(0, 1)
    want_p = lp(recon.clamp(-1, 1), video.flatten(0, 1)).mean()
    torch.testing.assert_close(terms["perceptual"], want_p.detach())
    want = 2.0 * terms["l1"] + terms["codebook"] + terms["commitment"] + 0.5 * want_p
    torch.testing.assert_close(loss.detach(), want.detach())


def test_adversarial_terms_reach_only_their_own_side():
    tok, video = _tok(), _video()
    cfg = TokenizerLossConfig(
        perceptual_weight=0.0, l1_weight=0.0, adversarial_weight=1.0, adversarial_start=5,
        disc_channels=8, disc_layers=2, disc_norm_groups=4,
    )  # fmt: skip
    obj = TokenizerLoss(cfg, 3)
    assert obj.discriminator is not None
    loss, terms = obj(tok, video, step=4)
    want = terms["codebook"] + terms["commitment"]  # l1_weight and perceptual_weight 0
    torch.testing.assert_close(loss.detach(), want)  # weight 0 before adversarial_start
    loss.backward()  # every discriminator weight takes part (DDP), with zero gradient
    assert all(
        p.grad is not None and p.grad.abs().max() == 0 for p in obj.discriminator.parameters()
    )
    for p in [*obj.discriminator.parameters(), *tok.parameters()]:
        p.grad = None
    # the generator's gradient of g_loss alone equals the gradient through a frozen critic
    loss, terms = obj(tok, video, step=5)
    d_params = list(obj.discriminator.parameters())
    g_params = [p for p in tok.decoder.parameters()]
    loss.backward()
    d_grad = [p.grad.clone() for p in d_params]
    g_grad = [p.grad.clone() for p in g_params]
    for p in [*d_params, *tok.parameters()]:
        p.grad = None
    torch.manual_seed(0)
    out = tok(video)
    x, x_hat = video.flatten(0, 1), out.reconstruction.flatten(0, 1)
    d_only = (
        torch.relu(1 - obj.discriminator(x)).mean()
        + torch.relu(1 + obj.discriminator(x_hat.detach())).mean()
    )
    d_only.backward()
    for got, p in zip(d_grad, d_params, strict=True):
        torch.testing.assert_close(got, p.grad)
    for p in [*d_params, *tok.parameters()]:
        p.grad = None
    obj.discriminator.requires_grad_(False)
    out = tok(video)
    g_only = -obj.discriminator(out.reconstruction.flatten(0, 1)).mean()
    (g_only + out.codebook_loss + out.commitment_loss).backward()
    for got, p in zip(g_grad, g_params, strict=True):
        torch.testing.assert_close(got, p.grad)
