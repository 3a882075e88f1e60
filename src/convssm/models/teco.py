"""TECO with ConvS5 as its temporal model: the paper's TECO-ConvS5 (NVlabs/ConvSSM
``teco_convS5``, after TECO, Yan et al. 2023), written anew over a frame tokenizer's codes::

    codes x_0..x_{T−1} (B, T, h, w) ─ code embedding ─> e_t (B, T, E, h, w)
    posterior   q_t = Enc([e_{t−1}, e_t])          (e_{−1}: a learned start map; h×w → h'×w')
                z_0 = q_0, kept continuous (the condition of the first frame)
                z_t, c_t = Codebook(q_t), t ≥ 1     (c_t: posterior codes on the h'×w' grid)
    dynamics    d_t = Seq(Proj(z_t ⊕ action a_{t+1}))          t = 0..T−2 (d_t saw frames ≤ t)
    decoder     logits of x_{t+1} = Dec(d_t ⊕ z_{t+1})          (B, T−1, K, h, w)
    prior       MaskGit over c_{t+1} given d_t                  (masked-token cross-entropy)

The loss (``forward``), each part as the reference scales it: ``recon_loss``, the
label-smoothed cross-entropy of the decoder summed over the h×w positions, a mean over
frames and samples; ``prior_loss``, MaskGit's cross-entropy averaged over the masked
positions, times h'·w'; ``codebook_loss`` and ``commitment_loss`` of the posterior codebook
(:mod:`convssm.models.teco_blocks`). In training, ``drop_loss_rate`` r keeps
max(1, ⌊(1 − r)(T − 1)⌋) predicted frames, drawn without replacement, for the decoder and the
prior (the reference draws with replacement). With ``causal_masking`` the sequence inputs of
frames ≥ ``mask_context`` are ``frame_mask_value`` for the samples whose actions were given
and kept, and the prior is scored on predicted frames ≥ ``mask_context`` only, for every
sample (what the reference's two-part prior loss adds up to). Actions follow TECO's
convention: ``actions[:, t]`` led to frame t; index ``num_actions`` is "no action".

``generate`` conditions on the context in parallel and then, per frame, draws the posterior
codes from the prior by draft-and-revise, decodes the codes of the frame (the most likely
code at every position, as the reference) and advances the sequence model by one recurrent
step: O(1) per frame for ConvS5. ``sequence_model: s5`` is ConvS5 with 1×1 kernels and S5's
output block on a 1×1 grid (:data:`~convssm.models.teco_config.S5_OPTIONS`), the reference's
``teco_S5``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from convssm._checks import check_codes, check_optional_actions, check_tensor
from convssm.models.latent_blocks import LogitsDecoder, flax_default_init_
from convssm.models.maskgit import MaskGit
from convssm.models.pretrained import PretrainedMixin
from convssm.models.teco_blocks import CodebookOutput, PosteriorCodebook, PosteriorEncoder
from convssm.models.teco_config import TECOConfig
from convssm.nn import build_sequence_model

__all__ = ["TECO", "TECOOutput"]


@dataclass
class TECOOutput:
    """The loss and its parts (scalars), and per-frame terms for the predicted frames
    ``positions`` (all T − 1 when None): recon_terms (B, n), the decoder's cross-entropy
    summed over h×w; prior_terms (B, n), MaskGit's cross-entropy summed over the masked
    positions, prior_counts (B, n) how many were masked; logits (B, n, K, h, w) of the
    decoder given the posterior; conditioned (B,): the samples whose actions were kept."""

    loss: torch.Tensor
    recon_loss: torch.Tensor
    prior_loss: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    perplexity: torch.Tensor
    recon_terms: torch.Tensor
    prior_terms: torch.Tensor
    prior_counts: torch.Tensor
    logits: torch.Tensor
    conditioned: torch.Tensor
    positions: torch.Tensor | None = None


class TECO(PretrainedMixin, nn.Module):
    """TECO over a tokenizer's codes (see the module docstring). Build it from a
    :class:`TECOConfig` or its fields as keywords: ``TECO(TECOConfig(dim=64))`` or
    ``TECO(dim=64)``."""

    config_class = TECOConfig

    def __init__(self, config: TECOConfig | None = None, **fields: Any) -> None:
        super().__init__()
        if config is not None and not isinstance(config, TECOConfig):
            raise TypeError(f"config must be a TECOConfig, got {type(config).__name__}")
        names = {f.name for f in dataclasses.fields(TECOConfig)}
        unknown = sorted(set(fields) - names)
        if unknown:
            raise TypeError(f"unknown TECO option(s) {unknown}; valid: {sorted(names)}")
        cfg = dataclasses.replace(copy.deepcopy(config) or TECOConfig(), **fields)
        self.config = cfg
        self.codebook_size, self.latent_size = cfg.codebook_size, cfg.latent_size
        self.num_actions, zs, g = cfg.num_actions, cfg.z_size, cfg.downsample
        e, z = cfg.code_embed_dim, cfg.z_dim
        # posterior
        self.code_embed = flax_default_init_(nn.Embedding(cfg.codebook_size, e))
        self.code_embed.weight.requires_grad_(not cfg.freeze_code_embeddings)
        self.sos = nn.Parameter(torch.randn(e, cfg.latent_size, cfg.latent_size) * 0.02)
        self.encoder = PosteriorEncoder(
            2 * e, cfg.encoder_widths, cfg.encoder_blocks, z, cfg.norm_groups
        )
        self.codebook = PosteriorCodebook(cfg.z_codes, z, cfg.z_proj_dim, cfg.commitment_weight)
        # dynamics
        a = cfg.action_embed_dim if cfg.num_actions else 0
        self.action_embed = nn.Embedding(cfg.num_actions + 1, a) if cfg.num_actions else None
        self.proj_in = nn.Conv2d(z + a, cfg.dim, g, stride=g, bias=g == 1)
        self.proj_out = nn.ConvTranspose2d(cfg.dim, z, g, stride=g, bias=False) if g > 1 else None
        name, options = cfg.sequence_spec()
        self.sequence = build_sequence_model(name, cfg.dim, grid=(zs // g, zs // g), **options)
        start = torch.randn(cfg.dim, zs // g, zs // g) * 0.02
        self.start = nn.Parameter(start) if cfg.start_token else None
        self.deter_dim = cfg.dim if g == 1 else z
        # decoder and prior
        self.decoder = LogitsDecoder(
            self.deter_dim + z, cfg.decoder_widths, cfg.decoder_blocks, cfg.codebook_size,
            cfg.norm_groups,
        )  # fmt: skip
        for part in (self.action_embed, self.proj_in, self.proj_out, self.decoder):
            if part is not None:
                flax_default_init_(part)
        self.prior = MaskGit(
            cfg.z_codes, zs, zs, self.deter_dim, embed_dim=cfg.prior_embed_dim,
            depth=cfg.prior_depth, heads=cfg.prior_heads, mlp_dim=cfg.prior_mlp_dim,
            token_dim=cfg.prior_token_dim, dropout=cfg.prior_dropout,
            mask_schedule=cfg.mask_schedule,
        )  # fmt: skip

    # ------------------------------------------------------------------ checks
    def _check_codes(self, codes: object, name: str) -> torch.Tensor:
        return check_codes(codes, name, self.latent_size, self.codebook_size)

    def _check_actions(self, actions: object, batch: int, length: int) -> torch.Tensor | None:
        """None, or (B, ≥ length) integer actions in [0, num_actions) cut to ``length``."""
        return check_optional_actions(actions, self.num_actions, batch, length)

    def copy_code_embeddings(self, codebook: torch.Tensor) -> None:
        """Copy a tokenizer's codebook (K, code_embed_dim) into the code embedding."""
        codebook = check_tensor(codebook, "codebook", ndim=2, floating=True)
        if codebook.shape != self.code_embed.weight.shape:
            raise ValueError(
                f"codebook must have shape {tuple(self.code_embed.weight.shape)} "
                f"(codebook_size, code_embed_dim), got {tuple(codebook.shape)}"
            )
        with torch.no_grad():
            self.code_embed.weight.copy_(codebook)

    # ------------------------------------------------------------------ pieces
    def posterior(self, codes: torch.Tensor) -> tuple[torch.Tensor, CodebookOutput]:
        """codes (B, T, h, w) -> the sequence inputs (B, T, z_dim, h', w') (frame 0's
        continuous, the others quantized) and the codebook's output on all T frames
        (fields flattened over (B, T))."""
        b, t = codes.shape[:2]
        e = self.code_embed(codes).permute(0, 1, 4, 2, 3)  # (B, T, E, h, w)
        prev = torch.cat([self.sos.expand(b, 1, *self.sos.shape).to(e.dtype), e[:, :-1]], 1)
        q = self.encoder(torch.cat([prev, e], 2).flatten(0, 1))
        vq = self.codebook(q)
        q, zq = q.reshape(b, t, *q.shape[1:]), vq.embeddings.reshape(b, t, *q.shape[1:])
        return torch.cat([q[:, :1], zq[:, 1:]], 1), vq

    def _project(
        self, z: torch.Tensor, next_actions: torch.Tensor | None, masked: torch.Tensor
    ) -> torch.Tensor:
        """Sequence inputs (N, z_dim, h', w'), the actions of the frames they predict (N,)
        or None, and which to replace by frame_mask_value (N,) -> (N, dim, h'/g, w'/g)."""
        z = torch.where(masked[:, None, None, None], self.config.frame_mask_value, z)
        if self.action_embed is not None:
            if next_actions is None:
                next_actions = torch.full(z.shape[:1], self.num_actions, device=z.device)
            act = self.action_embed(next_actions).to(z.dtype)
            z = torch.cat([z, act[:, :, None, None].expand(-1, -1, *z.shape[-2:])], 1)
        return self.proj_in(z)

    def _deter(self, y: torch.Tensor) -> torch.Tensor:
        """Sequence outputs (N, dim, ., .) -> ``deter`` (N, deter_dim, h', w')."""
        return y if self.proj_out is None else self.proj_out(y)

    def dynamics(
        self,
        z: torch.Tensor,
        next_actions: torch.Tensor | None,
        conditioned: torch.Tensor,
        states: Any = None,
    ) -> tuple[torch.Tensor, Any]:
        """Parallel mode: inputs z (B, n, z_dim, h', w') of frames 0..n−1, the actions of
        frames 1..n (B, n) or None, conditioned (B,) -> deter (B, n, deter_dim, h', w'), states."""
        b, n = z.shape[:2]
        index = torch.arange(n, device=z.device)
        masked = conditioned[:, None] & (index >= self.config.mask_context)[None]
        if not self.config.causal_masking:
            masked = torch.zeros_like(masked)
        acts = None if next_actions is None else next_actions.reshape(b * n)
        x = self._project(z.flatten(0, 1), acts, masked.reshape(b * n))
        x = x.reshape(b, n, *x.shape[1:])
        lead = int(states is None and self.start is not None)
        if lead:  # the start token, at the head of the sequence (one parallel run)
            x = torch.cat([self._start_input(b).to(x.dtype), x], 1)
        y, states = self.sequence(x, states, check_values=False)
        d = self._deter(y[:, lead:].flatten(0, 1))
        return d.reshape(b, n, *d.shape[1:]), states

    def _start_input(self, batch: int) -> torch.Tensor:
        """The start token as a one-frame input (batch, 1, dim, h'/g, w'/g)."""
        assert self.start is not None
        return self.start.expand(batch, 1, *self.start.shape)

    def step(
        self, z_t: torch.Tensor, index: int, states: Any, next_action: torch.Tensor | None
    ) -> tuple[torch.Tensor, Any]:
        """One recurrent step: frame ``index``'s input z_t (B, z_dim, h', w') and the action
        of frame index + 1 (B,) or None -> deter (B, deter_dim, h', w') of frame index + 1."""
        cond = self.config.causal_masking and next_action is not None
        masked = torch.full(z_t.shape[:1], cond and index >= self.config.mask_context)
        x = self._project(z_t, next_action, masked.to(z_t.device))
        if states is None and self.start is not None:  # the start token first
            _, states = self.sequence(self._start_input(x.shape[0]).to(x.dtype), None,
                                      check_values=False)  # fmt: skip
        y, states = self.sequence.step(x, states, check_values=False)
        return self._deter(y), states

    def decode_logits(self, deter: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """deter (N, deter_dim, h', w') and posterior z (N, z_dim, h', w') -> (N, K, h, w)."""
        return self.decoder(torch.cat([deter, z.to(deter.dtype)], 1))

    # ------------------------------------------------------------------ training
    def forward(self, codes: torch.Tensor, actions: torch.Tensor | None = None) -> TECOOutput:
        """The loss on codes (B, T, h, w), T ≥ 2, actions (B, T) or None."""
        codes = self._check_codes(codes, "codes")
        b, t = codes.shape[:2]
        if t < 2:
            raise ValueError(f"codes need at least 2 frames, got {t}")
        actions = self._check_actions(actions, b, t)
        conditioned = torch.full((b,), actions is not None, device=codes.device)
        if actions is not None and self.training and self.config.action_dropout > 0:
            conditioned = torch.rand(b, device=codes.device) >= self.config.action_dropout
            actions = torch.where(conditioned[:, None], actions, self.num_actions)
        z, vq = self.posterior(codes)
        nxt = None if actions is None else actions[:, 1:]
        deter, _ = self.dynamics(z[:, :-1], nxt, conditioned)
        n, positions = t - 1, None
        if self.training and self.config.drop_loss_rate > 0:
            keep = max(1, int((1 - self.config.drop_loss_rate) * n))
            positions = torch.randperm(n, device=codes.device)[:keep].sort().values
        pos = torch.arange(n, device=codes.device) if positions is None else positions
        deter, z_next, target = deter[:, pos], z[:, 1:][:, pos], codes[:, 1:][:, pos]
        z_codes = vq.codes.reshape(b, t, *vq.codes.shape[1:])[:, 1:][:, pos]
        logits = self.decode_logits(deter.flatten(0, 1), z_next.flatten(0, 1))
        recon = F.cross_entropy(logits.float(), target.flatten(0, 1), reduction="none",
                                label_smoothing=self.config.label_smoothing)  # fmt: skip
        recon_terms = recon.sum((-2, -1)).reshape(b, -1)
        prior = self.prior(z_codes.flatten(0, 1), deter.flatten(0, 1))
        prior_terms = prior.token_loss.sum((-2, -1)).reshape(b, -1)
        prior_counts = prior.mask.sum((-2, -1)).reshape(b, -1).to(prior_terms.dtype)
        scored = torch.ones_like(pos, dtype=torch.bool)
        if self.config.causal_masking:  # predicted frame p + 1 ≥ mask_context
            scored = pos + 1 >= self.config.mask_context
        w = scored[None].to(prior_terms.dtype)
        grid = z_codes.shape[-1] * z_codes.shape[-2]
        prior_loss = (prior_terms * w).sum() / (prior_counts * w).sum().clamp(min=1) * grid
        recon_loss = recon_terms.mean()
        codebook_loss, commitment = vq.codebook_terms.mean(), vq.commitment_terms.mean()
        return TECOOutput(
            loss=recon_loss + prior_loss + codebook_loss + commitment,
            recon_loss=recon_loss,
            prior_loss=prior_loss,
            codebook_loss=codebook_loss,
            commitment_loss=commitment,
            perplexity=vq.perplexity,
            recon_terms=recon_terms,
            prior_terms=prior_terms,
            prior_counts=prior_counts,
            logits=logits.reshape(b, -1, *logits.shape[1:]),
            conditioned=conditioned,
            positions=positions,
        )

    # ------------------------------------------------------------------ generation
    def condition(
        self, context: torch.Tensor, actions: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Any]:
        """Run the context (B, T_c, h, w) in parallel mode; actions (B, ≥ T_c + 1) or None.
        Returns ``deter`` (B, deter_dim, h', w') of frame T_c and the sequence states."""
        context = self._check_codes(context, "context")
        b, t_c = context.shape[:2]
        if t_c < 1:
            raise ValueError("context needs at least one frame")
        actions = self._check_actions(actions, b, t_c + 1)
        conditioned = torch.full((b,), actions is not None, device=context.device)
        z, _ = self.posterior(context)
        nxt = None if actions is None else actions[:, 1:]
        deter, states = self.dynamics(z, nxt, conditioned)
        return deter[:, -1], states

    @torch.no_grad()
    def sampling_options(self) -> dict[str, int]:
        """The config's draft-and-revise settings, as keyword arguments of :meth:`generate`."""
        cfg = self.config
        return {
            "draft_steps": cfg.draft_steps,
            "revise_steps": cfg.revise_steps,
            "revise_rounds": cfg.revise_rounds,
        }

    def generate(
        self,
        context: torch.Tensor,
        horizon: int,
        actions: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        draft_steps: int = 8,
        revise_steps: int = 8,
        revise_rounds: int = 2,
        *,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """context (B, T_c, h, w) -> the next ``horizon`` frames of codes (B, horizon, h, w).

        actions: (B, ≥ T_c + horizon), the action of every frame, or None. The prior's draws
        (at ``temperature``) come from ``generator``; draft_steps, revise_steps and
        revise_rounds are TECO's T_draft, T_revise and M (``convssm evaluate`` passes the
        config's, :meth:`sampling_options`)."""
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        steps = (draft_steps, revise_steps, revise_rounds)
        context = self._check_codes(context, "context")
        t_c = context.shape[1]
        actions = self._check_actions(actions, context.shape[0], t_c + horizon)
        deter, states = self.condition(context, None if actions is None else actions[:, : t_c + 1])
        frames = []
        for k in range(horizon):
            z_codes = self.prior.draft_and_revise(deter, *steps, temperature, generator)
            z = self.codebook.embed(z_codes).to(deter.dtype)
            frames.append(self.decode_logits(deter, z).argmax(1))
            if k + 1 < horizon:
                a = None if actions is None else actions[:, t_c + k + 1]
                deter, states = self.step(z, t_c + k, states, a)
        return torch.stack(frames, dim=1)
