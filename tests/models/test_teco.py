"""TECO: the recurrent step equals the parallel mode (float64: ConvS5, S5, the transformer
with TECO's head and start token), actions
matter, the loss terms of a frame depend on no later frame, sampling is reproducible, a
saved model loads back, and a tiny TECO learns a task whose next frame is known, prior
included."""

from __future__ import annotations

import pytest
import torch

from convssm.models import TECO, TECOConfig

TINY = dict(
    codebook_size=12, latent_size=8, code_embed_dim=4, encoder_widths=[8, 8], encoder_blocks=1,
    decoder_widths=[8, 8], decoder_blocks=1, norm_groups=4, z_dim=4, z_codes=8, z_proj_dim=4,
    dim=8, prior_embed_dim=8, prior_depth=1, prior_heads=2, prior_mlp_dim=16, prior_token_dim=4,
    num_actions=3, sequence_options={"depth": 2, "state_dim": 4, "norm_groups": 4},
)  # fmt: skip


TF_TECO = {"depth": 2, "heads": 2, "embed_dim": 8, "mlp_dim": 16, "head": "teco", "tokens": "pixel"}


def _model(**kw) -> TECO:
    torch.manual_seed(0)
    return TECO(TECOConfig(**{**TINY, **kw}))


def _data(b=2, t=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 12, (b, t, 8, 8), generator=g), torch.randint(0, 3, (b, t), generator=g)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"sequence_model": "s5"},
        {"causal_masking": True, "mask_context": 3},
        {"start_token": True},
        {
            "sequence_model": "transformer",
            "start_token": True,
            "grid_downsample": 2,
            "causal_masking": True,
            "mask_context": 3,
            "sequence_options": TF_TECO,
        },
    ],
    ids=["convs5", "s5", "convs5_causal_masking", "convs5_start", "transformer_teco"],
)
def test_recurrent_steps_equal_the_parallel_deter_in_float64(options):
    model = _model(**options).double().eval()
    codes, actions = _data()
    z, _ = model.posterior(codes)
    conditioned = torch.ones(2, dtype=torch.bool)
    parallel, _ = model.dynamics(z[:, :-1], actions[:, 1:], conditioned)
    deter, states = model.condition(codes[:, :1], actions[:, :2])
    steps = [deter]
    for i in range(1, codes.shape[1] - 1):
        deter, states = model.step(z[:, i], i, states, actions[:, i + 1])
        steps.append(deter)
    torch.testing.assert_close(torch.stack(steps, 1), parallel, atol=1e-10, rtol=1e-10)
    if options.get("sequence_model") == "s5":
        assert model.sequence.layers[0].ssm.kernel_size_b == 1
        assert model.config.sequence_spec()[1]["projection_init"] == "s5"
        assert parallel.shape[-1] == 4 and model.proj_out is not None  # 1×1 grid, back to 4×4


def test_the_start_token_is_seen_and_a_first_step_from_no_state_takes_it_first():
    model = _model(start_token=True).double().eval()
    assert model.start is not None and model.start.shape == (8, 4, 4)
    codes, actions = _data()
    z, _ = model.posterior(codes)
    conditioned = torch.ones(2, dtype=torch.bool)
    with torch.no_grad():
        parallel, _ = model.dynamics(z[:, :-1], actions[:, 1:], conditioned)
        first, _ = model.step(z[:, 0], 0, None, actions[:, 1])
        torch.testing.assert_close(first, parallel[:, 0], atol=1e-10, rtol=1e-10)
        model.start.add_(1.0)
        moved, _ = model.dynamics(z[:, :-1], actions[:, 1:], conditioned)
    assert not torch.allclose(moved, parallel)
    assert "start" not in dict(_model().named_parameters())


def test_actions_change_the_predictions():
    model = _model().eval()
    codes, actions = _data()
    torch.manual_seed(5)
    a = model(codes, actions)
    torch.manual_seed(5)
    b = model(codes, (actions + 1) % 3)
    assert not torch.allclose(a.logits, b.logits)
    assert not torch.allclose(a.prior_terms, b.prior_terms)
    torch.manual_seed(5)
    c = model(codes, None)  # "no action" everywhere
    assert not torch.allclose(a.logits, c.logits)


@pytest.mark.parametrize("sequence_model", ["convs5", "transformer", "transformer_teco"])
def test_later_codes_do_not_change_the_loss_terms_of_earlier_frames(sequence_model):
    tf = {"depth": 1, "heads": 2, "embed_dim": 8, "mlp_dim": 16}
    opts = {} if sequence_model == "convs5" else {"sequence_options": tf}
    if sequence_model == "transformer_teco":
        sequence_model, opts = "transformer", {"sequence_options": TF_TECO, "start_token": True}
    model = _model(sequence_model=sequence_model, **opts).eval()
    codes, actions = _data(t=7)
    t = 3  # change every code after frame t
    changed = codes.clone()
    changed[:, t + 1 :] = (changed[:, t + 1 :] + 5) % 12
    torch.manual_seed(7)
    a = model(codes, actions)
    torch.manual_seed(7)
    b = model(changed, actions)
    # predicted frame i + 1 sits at index i: frames 1..t are indices 0..t-1
    for name in ("recon_terms", "prior_terms", "prior_counts"):
        torch.testing.assert_close(getattr(a, name)[:, :t], getattr(b, name)[:, :t])
        assert not torch.allclose(getattr(a, name)[:, t:], getattr(b, name)[:, t:]) or (
            name == "prior_counts"
        )


def test_training_loss_parts_drop_loss_and_gradients():
    model = _model(drop_loss_rate=0.5, action_dropout=0.5).train()
    codes, actions = _data(t=7)
    torch.manual_seed(0)
    out = model(codes, actions)
    assert out.positions is not None and len(out.positions) == 3  # ⌊0.5 · 6⌋ of 6
    assert out.recon_terms.shape == out.prior_terms.shape == (2, 3)
    total = out.recon_loss + out.prior_loss + out.codebook_loss + out.commitment_loss
    torch.testing.assert_close(out.loss, total)
    assert 1 <= float(out.perplexity) <= 8
    out.loss.backward()
    for part in (model.encoder, model.codebook, model.sequence, model.decoder, model.prior):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_sampling_is_reproducible_and_saved_models_load_back(tmp_path):
    model = _model().eval()
    codes, actions = _data(t=4)
    acts = torch.cat([actions, actions], 1)

    def sample(m, seed, **kw):
        g = torch.Generator().manual_seed(seed)
        return m.generate(codes[:, :3], 4, acts[:, :7], generator=g, **kw)

    first = sample(model, 0)
    assert first.shape == (2, 4, 8, 8) and first.dtype == torch.int64
    assert torch.equal(first, sample(model, 0))
    assert not torch.equal(first, sample(model, 1))
    quick = sample(model, 0, draft_steps=2, revise_steps=2, revise_rounds=0)
    assert quick.shape == first.shape
    model.save_pretrained(tmp_path / "teco")
    loaded = TECO.from_pretrained(tmp_path / "teco").eval()
    assert loaded.config == model.config
    assert torch.equal(sample(loaded, 0), first)
    assert model.generate(codes[:, :1], 2, generator=torch.Generator()).shape == (2, 2, 8, 8)


def test_bad_settings_and_inputs_are_named():
    with pytest.raises(TypeError, match="unknown TECO option"):
        TECO(width=3)
    with pytest.raises(ValueError, match="grid_downsample 3 must divide"):
        TECOConfig(**{**TINY, "grid_downsample": 3})
    with pytest.raises(ValueError, match="sequence_options: unknown key 'layers'"):
        TECOConfig(**{**TINY, "sequence_options": {"layers": 2}})
    model = _model()
    codes, actions = _data()
    with pytest.raises(ValueError, match="codes must hold codes in"):
        model(codes + 12)
    with pytest.raises(ValueError, match="actions must have shape"):
        model(codes, actions[:, :2])


def test_evaluation_samples_with_the_configs_draft_and_revise_settings():
    import inspect

    from convssm.run.generators import LatentGenerator

    model = _model(draft_steps=3, revise_steps=2, revise_rounds=1)
    assert model.sampling_options() == {"draft_steps": 3, "revise_steps": 2, "revise_rounds": 1}
    defaults = {
        k: p.default
        for k, p in inspect.signature(TECO.generate).parameters.items()
        if k in ("draft_steps", "revise_steps", "revise_rounds")
    }
    assert defaults == {"draft_steps": 8, "revise_steps": 8, "revise_rounds": 2}
    seen = {}

    def generate(codes, horizon, **kwargs):
        seen.update(kwargs)
        return codes[:, -1:].expand(-1, horizon, -1, -1)

    model.generate = generate
    tokenizer = torch.nn.Module()
    tokenizer.encode = lambda frames: torch.zeros(frames.shape[0], frames.shape[1], 8, 8).long()
    tokenizer.decode = lambda codes: torch.zeros(codes.shape[0], codes.shape[1], 3, 16, 16)
    LatentGenerator(model, tokenizer)(torch.zeros(1, 2, 3, 16, 16), 2, None)
    assert {k: seen[k] for k in ("draft_steps", "revise_steps", "revise_rounds")} == {
        "draft_steps": 3,
        "revise_steps": 2,
        "revise_rounds": 1,
    }


def _add_task(batch: int, frames: int, generator: torch.Generator):
    """Codes (batch, frames, 4, 4) in [0, 4) whose next frame is the last plus its action
    (mod 4), and those actions (batch, frames): the next frame is known exactly."""
    x = torch.randint(0, 4, (batch, 4, 4), generator=generator)
    actions = torch.randint(0, 4, (batch, frames), generator=generator)
    out = [x]
    for t in range(1, frames):
        out.append((out[-1] + actions[:, t, None, None]) % 4)
    return torch.stack(out, 1), actions


def test_teco_learns_a_task_whose_next_frame_is_known_through_its_prior():
    # experiments/latent/teco_synthetic.py --task add, shrunk: 250 steps (a few CPU-seconds).
    # Pins that the prior learns the posterior codes from deter (same frame, the action seen)
    # and that generate (condition, step, draft-and-revise, decoder) predicts the task.
    torch.manual_seed(0)
    model = TECO(
        codebook_size=4, latent_size=4, code_embed_dim=8, encoder_widths=[16], encoder_blocks=1,
        decoder_widths=[16], decoder_blocks=1, norm_groups=4, z_dim=8, z_codes=4, z_proj_dim=8,
        dim=16, num_actions=4, action_embed_dim=4, prior_embed_dim=32, prior_depth=1,
        prior_heads=2, prior_mlp_dim=64, prior_token_dim=16, drop_loss_rate=0.0,
        sequence_options={"depth": 1, "state_dim": 16, "norm_groups": 4},
    )  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(0)
    for _ in range(250):
        loss = model(*_add_task(8, 4, gen)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    codes, actions = _add_task(16, 4, torch.Generator().manual_seed(9))
    with torch.no_grad():
        z, vq = model.posterior(codes)
        deter, _ = model.dynamics(z[:, :-1], actions[:, 1:], torch.ones(16, dtype=torch.bool))
        truth = vq.codes.reshape(16, 4, 4, 4)[:, 1:].flatten(0, 1)
        masked = torch.full_like(truth, model.prior.mask_id)
        guess = model.prior.logits(masked, deter.flatten(0, 1)).argmax(1)
    assert float(vq.perplexity) > 3  # the posterior uses its codebook
    assert (guess == truth).float().mean() > 0.95  # the prior, every position masked
    sample = model.generate(codes[:, :2], 2, actions, generator=torch.Generator().manual_seed(0))
    assert (sample == codes[:, 2:]).float().mean() > 0.95
    copy_last = (codes[:, 2:] == codes[:, 1:2]).float().mean()
    assert copy_last < 0.5
