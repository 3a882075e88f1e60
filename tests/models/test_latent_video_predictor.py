"""LatentVideoPredictor: shapes, loss, causality, step == parallel (float64), actions, action
dropout, causal masking, drop-loss, sampling determinism, save/load, initialisation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convssm.models import LatentVideoPredictor
from convssm.models.latent_blocks import flax_default_init_
from convssm.train.objectives import drop_loss_positions, latent_prediction_loss

K, S = 12, 4  # codebook size, latent grid


def _small(sequence_model="convs5", **kw):
    options = {
        "convs5": dict(state_dim=4, depth=2, norm_groups=4),
        "convlstm": dict(depth=2),
        "transformer": dict(embed_dim=16, depth=2, heads=2, mlp_dim=32, max_len=64),
    }[sequence_model]
    args = dict(
        dim=8,
        sequence_model=sequence_model,
        sequence_options=options,
        code_embed_dim=6,
        encoder_widths=(8,),
        decoder_widths=(8,),
        decoder_blocks=2,
        norm_groups=4,
    )
    args.update(kw)
    return LatentVideoPredictor(K, S, **args)


def _codes(b=2, t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, K, (b, t, S, S), generator=g)


def _actions(b=2, t=6, n=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (b, t), generator=g)


def test_shapes_and_loss_is_label_smoothed_cross_entropy():
    torch.manual_seed(0)
    model = _small()
    codes = _codes()
    out = model(codes)
    assert out.logits.shape == (2, 5, K, S, S)
    assert out.positions is None
    want = F.cross_entropy(out.logits.transpose(1, 2), codes[:, 1:], label_smoothing=0.01)
    loss = latent_prediction_loss(out, codes, model.config)
    torch.testing.assert_close(loss, want)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


@pytest.mark.parametrize("sequence_model", ["convs5", "convlstm", "transformer"])
def test_causal_future_frames_do_not_change_past_logits(sequence_model):
    torch.manual_seed(0)
    model = _small(sequence_model).double().eval()
    codes = _codes(t=7)
    other = codes.clone()
    other[:, 4:] = (other[:, 4:] + 1) % K
    with torch.no_grad():
        a, b = model(codes).logits, model(other).logits
    # logits at position j predict frame j+1 from frames 0..j.
    torch.testing.assert_close(a[:, :4], b[:, :4], rtol=0, atol=0)
    assert not torch.allclose(a[:, 4:], b[:, 4:])


@pytest.mark.parametrize("sequence_model", ["convs5", "convlstm", "transformer"])
def test_recurrent_step_equals_parallel_logits_float64(sequence_model):
    torch.manual_seed(0)
    model = _small(sequence_model, num_actions=3).double().eval()
    codes, actions = _codes(t=8), _actions(t=8)
    with torch.no_grad():
        full = model(codes, actions).logits  # (B, 7, K, h, w)
        t_c = 3
        logits, states = model.condition(codes[:, :t_c], actions[:, : t_c + 1])
        got = [logits]
        for t in range(t_c, 7):
            logits, states = model.step(codes[:, t], t, states, actions[:, t + 1])
            got.append(logits)
    torch.testing.assert_close(torch.stack(got, 1), full[:, t_c - 1 :], rtol=1e-10, atol=1e-10)


def test_generate_shapes_determinism_and_agreement_with_parallel_mode():
    torch.manual_seed(0)
    model = _small(num_actions=3).double().eval()
    context, actions = _codes(t=3), _actions(t=9)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = model.generate(context, 6, actions, generator=g1)
    b = model.generate(context, 6, actions, generator=g2)
    assert a.shape == (2, 6, S, S) and a.dtype == torch.int64
    assert torch.equal(a, b)
    c = model.generate(context, 6, actions, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(a, c)
    # Greedy generation is the argmax of the parallel mode run on its own output.
    greedy = model.generate(context, 6, actions, temperature=0.0)
    with torch.no_grad():
        logits = model(torch.cat([context, greedy], 1), actions).logits
    assert torch.equal(logits[:, 2:].argmax(2), greedy)


def test_actions_change_predictions_and_none_means_the_no_action_token():
    torch.manual_seed(0)
    model = _small(num_actions=3).eval()
    codes = _codes()
    a1 = torch.zeros(2, 6, dtype=torch.int64)
    a2 = torch.full((2, 6), 2, dtype=torch.int64)
    with torch.no_grad():
        l1, l2 = model(codes, a1).logits, model(codes, a2).logits
        none = model(codes).logits
        token = model.forward(codes, None).logits
    assert not torch.allclose(l1, l2)
    # the first action is never used (actions[:, t] led to frame t)
    a3 = a1.clone()
    a3[:, 0] = 2
    with torch.no_grad():
        torch.testing.assert_close(model(codes, a3).logits, l1)
    torch.testing.assert_close(none, token)
    assert not torch.allclose(none, l1)


def test_action_dropout_in_training_only():
    model = _small(num_actions=3, action_dropout=0.5)
    codes, actions = _codes(b=8), _actions(b=8)
    model.eval()
    with torch.no_grad():
        e1, e2 = model(codes, actions).logits, model(codes, actions).logits
        torch.testing.assert_close(e1, e2, rtol=0, atol=0)
        model.train()
        torch.manual_seed(3)
        t1 = model(codes, actions).logits
        uncond = model(codes).logits
    # in training some samples (not all) see the no-action token instead of their actions
    dropped = [torch.allclose(t1[i], uncond[i]) for i in range(8)]
    kept = [torch.allclose(t1[i], e1[i], atol=1e-5) for i in range(8)]
    assert any(dropped) and any(kept)
    assert all(d != k for d, k in zip(dropped, kept, strict=True))


def test_causal_masking_hides_frames_after_the_context_when_conditioned():
    torch.manual_seed(0)
    model = _small(num_actions=3, causal_masking=True, mask_context=3).double().eval()
    codes, actions = _codes(t=7), _actions(t=7)
    other = codes.clone()
    other[:, 3:] = (other[:, 3:] + 1) % K
    with torch.no_grad():
        a, b = model(codes, actions), model(other, actions)
        # conditioned: inputs of frames >= 3 are masked, so changing them changes nothing
        torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
        # unconditioned: teacher forcing as usual
        assert not torch.allclose(model(codes).logits[:, 3:], model(other).logits[:, 3:])
    # the loss on conditioned samples covers positions >= mask_context - 1 only
    ce = F.cross_entropy(
        a.logits.transpose(1, 2), codes[:, 1:], label_smoothing=0.01, reduction="none"
    ).mean((-2, -1))
    torch.testing.assert_close(latent_prediction_loss(a, codes, model.config), ce[:, 2:].mean())
    # step == parallel under masking
    with torch.no_grad():
        logits, states = model.condition(codes[:, :2], actions[:, :3])
        got = [logits]
        for t in range(2, 6):
            logits, states = model.step(codes[:, t], t, states, actions[:, t + 1])
            got.append(logits)
    torch.testing.assert_close(torch.stack(got, 1), a.logits[:, 1:], rtol=1e-10, atol=1e-10)


def test_drop_loss_scores_a_random_subset_of_positions_in_training():
    torch.manual_seed(0)
    model = _small(drop_loss_rate=0.5)
    codes = _codes(t=9)
    positions = drop_loss_positions(8, model.config.drop_loss_rate)
    out = model(codes, positions=positions)
    assert out.logits.shape == (2, 4, K, S, S)
    assert out.positions is not None and out.positions.shape == (4,)
    want = F.cross_entropy(
        out.logits.transpose(1, 2), codes[:, 1:][:, positions], label_smoothing=0.01
    )
    torch.testing.assert_close(latent_prediction_loss(out, codes, model.config), want)
    model.eval()
    with torch.no_grad():
        full = model(codes).logits
    torch.testing.assert_close(out.logits.detach(), full[:, out.positions], rtol=1e-5, atol=1e-5)


def test_one_by_one_grid_is_the_s5_case():
    torch.manual_seed(0)
    model = (
        _small(
            grid_downsample=S,
            sequence_options=dict(state_dim=4, depth=2, kernel_size=1, norm_groups=4),
        )
        .double()
        .eval()
    )
    assert model.grid == 1
    codes = _codes(t=6)
    with torch.no_grad():
        full = model(codes).logits
        logits, states = model.condition(codes[:, :2])
        got = [logits]
        for t in range(2, 5):
            logits, states = model.step(codes[:, t], t, states)
            got.append(logits)
    assert full.shape == (2, 5, K, S, S)
    torch.testing.assert_close(torch.stack(got, 1), full[:, 1:], rtol=1e-10, atol=1e-10)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = _small(num_actions=3, causal_masking=True, mask_context=4).eval()
    model.save_pretrained(tmp_path / "m")
    loaded = LatentVideoPredictor.from_pretrained(tmp_path / "m").eval()
    assert loaded.config == model.config
    codes, actions = _codes(), _actions()
    with torch.no_grad():
        torch.testing.assert_close(loaded(codes, actions).logits, model(codes, actions).logits)


def test_frozen_code_embeddings_can_be_copied_from_a_codebook():
    model = _small(freeze_code_embeddings=True)
    book = torch.randn(K, 6)
    model.copy_code_embeddings(book)
    torch.testing.assert_close(model.code_embed.weight.detach(), book)
    assert not model.code_embed.weight.requires_grad
    with pytest.raises(ValueError, match="codebook must have shape"):
        model.copy_code_embeddings(torch.randn(K, 5))


def test_flax_default_initialisation_statistics():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(64, 256, 3)
    lin = torch.nn.Linear(512, 128)
    emb = torch.nn.Embedding(1000, 64)
    flax_default_init_(torch.nn.ModuleList([conv, lin, emb]))
    for w, fan_in in [(conv.weight, 64 * 9), (lin.weight, 512)]:
        std = math.sqrt(1 / fan_in)
        assert abs(w.std().item() / std - 1) < 0.03
        assert w.abs().max().item() <= 2 * std / 0.87962566103423978 + 1e-6
    assert conv.bias.abs().max() == 0 and lin.bias.abs().max() == 0
    assert abs(emb.weight.std().item() * 8 - 1) < 0.03


def test_clear_errors():
    model = _small(num_actions=3)
    with pytest.raises(ValueError, match=r"codes must have shape \(B, T, 4, 4\)"):
        model(torch.zeros(1, 3, 5, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"codes must hold codes in \[0, 12\)"):
        model(torch.full((1, 3, S, S), K))
    with pytest.raises(TypeError, match="codes must have dtype"):
        model(torch.zeros(1, 3, S, S))
    with pytest.raises(ValueError, match="at least 2 frames"):
        model(_codes(t=1))
    with pytest.raises(ValueError, match=r"actions must lie in \[0, 3\)"):
        model(_codes(), torch.full((2, 6), 3))
    with pytest.raises(ValueError, match="takes no actions"):
        _small()(_codes(), _actions())
    with pytest.raises(ValueError, match="same length"):
        _small(encoder_widths=(8, 8))
    with pytest.raises(ValueError, match="cannot be combined"):
        _small(causal_masking=True, drop_loss_rate=0.5)
    with pytest.raises(ValueError, match="horizon"):
        model.generate(_codes(t=2), 0)


def test_config_dataclass_mirrors_the_constructor():
    import dataclasses
    import inspect

    from convssm.models import LatentVideoPredictorConfig

    params = inspect.signature(LatentVideoPredictor.__init__).parameters
    fields = {f.name: f for f in dataclasses.fields(LatentVideoPredictorConfig)}
    assert list(fields) == [p for p in params if p != "self"]
    cfg = LatentVideoPredictorConfig()
    for name, p in params.items():
        if name == "self" or p.default is inspect.Parameter.empty:
            continue
        want = p.default if p.default is not None else {}
        got = getattr(cfg, name)
        assert (list(got) if isinstance(got, list) else got) == (
            list(want) if isinstance(want, tuple) else want
        ), name
    torch.manual_seed(0)
    cfg = LatentVideoPredictorConfig(
        codebook_size=K, latent_size=S, dim=8, code_embed_dim=6, encoder_widths=[8],
        decoder_widths=[8], decoder_blocks=1, norm_groups=4,
        sequence_options=dict(state_dim=4, depth=1, norm_groups=4),
    )  # fmt: skip
    model = LatentVideoPredictor.from_config(cfg)
    assert model.config.sequence_options["depth"] == 1


def test_generate_shows_progress_only_when_asked(capsys):
    model = _small().eval()
    quiet = model.generate(_codes(t=3), 10, temperature=0.0)
    assert capsys.readouterr().err == ""
    shown = model.generate(_codes(t=3), 10, temperature=0.0, progress=True)
    assert torch.equal(shown, quiet)
    assert "generate: frame 10/10 (100%)" in capsys.readouterr().err
