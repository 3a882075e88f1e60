"""Parameter counts of the TECO configs (``configs/teco/*_teco_*.yaml``: TECO-ConvS5 and the
TECO-S5 and TECO-Transformer baselines), ours beside the reference's.

Ours: the model built from the config, its parameters counted by part. The reference's:
counted from the shapes its flax modules declare (NVlabs/ConvSSM ``teco_convS5.py``,
``teco_S5.py``, ``teco_transformer.py``, ``base.py``, ``maskgit.py``, ``transformer.py``,
``convS5/diagonal_ssm.py``, ``convS5/conv_ops.py``, ``convS5/layers.py``, ``S5/layers.py``,
``S5/diagonal_ssm.py``; for Minecraft and Habitat's TECO-Transformer, TECO's own
``teco.py``, the same module) with the same config values, written out below as one
formula per part; the reference's frozen VQ-GAN (its code embeddings included) is not part
of its TECO model. Where the two differ:

- ``code_embed``: ours learns its K × E code embedding; the reference looks codes up in
  its frozen VQ-GAN's codebook (``copy_code_embeddings`` + ``freeze_code_embeddings``
  gives that arrangement, and then these parameters are frozen);
- a residual block that changes width has a 1×1 shortcut without bias in the reference,
  with a (zero-initialised) bias here (``models/autoencoder.py``);
- teco_S5 declares a learned start map ``sos`` (tokens × width) it never uses; ours has
  none (teco_transformer's, which it uses, is our ``start_token``).

Run (a few seconds per config; about 1 GB of memory for the largest):
  PYTHONPATH=src python benchmarks/teco_sizes.py
writes benchmarks/results/teco_sizes.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from convssm.models import build_model
from convssm.train.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [
    "dmlab_teco_convs5",
    "minecraft_teco_convs5",
    "habitat_teco_convs5",
    "dmlab_teco_s5",
    "dmlab_teco_transformer",
    "minecraft_teco_transformer",
    "habitat_teco_transformer",
]


def _resblock(c_in: int, c_out: int, shortcut_bias: bool) -> int:
    """TECO's ResNetBlock: GN, conv3×3 (bias), GN, conv3×3 + AddBias, 1×1 skip on a change."""
    n = 2 * c_in + 9 * c_in * c_out + c_out + 2 * c_out + 9 * c_out * c_out + c_out
    if c_in != c_out:
        n += c_in * c_out + (c_out if shortcut_bias else 0)
    return n


def _common(m, cond: int) -> dict[str, int]:
    """The parts every reference TECO shares: posterior, decoder and MaskGit prior, with
    ``cond`` the width of what the sequence model hands them (``deter``)."""
    e, h, k = m.code_embed_dim, m.latent_size, m.codebook_size
    d0, d1 = m.encoder_widths
    z = m.z_dim
    enc = 9 * 2 * e * d0 + d0 + _resblock(d0, d0, False)
    enc += _resblock(d0, d1, False) + (m.encoder_blocks - 1) * _resblock(d1, d1, False)
    enc += d1 * z + z  # Dense to embedding_dim
    codebook = m.z_codes * m.z_proj_dim + 2 * z * m.z_proj_dim
    dec_in = cond + z
    dec = 9 * dec_in * d0 + d0  # conv to depths[0]
    dec += _resblock(d0, d1, False) + (m.decoder_blocks - 1) * _resblock(d1, d1, False)
    dec += _resblock(d1, d0, False) + (m.decoder_blocks - 1) * _resblock(d0, d0, False)
    dec += 2 * d0 + d0 * k + k  # LayerNorm, Dense to the VQ-GAN's codes
    emb, dv, mlp, grid = m.prior_embed_dim, m.prior_token_dim, m.prior_mlp_dim, h // 2
    prior = (m.z_codes + 1) * dv + (dv + cond) * emb + emb + grid * emb  # tokens, in, pos.
    prior += m.prior_depth * _tfm_layer(emb, mlp) + emb * emb + emb + 2 * emb  # Dense + LN
    prior += emb * dv + dv + 2 * dv + m.z_codes  # MlmLayer: Dense, LayerNorm, bias
    return {"posterior": h * h * e + enc + codebook, "decoder": dec, "prior": prior}


def _tfm_layer(emb: int, mlp: int) -> int:
    """TECO's TransformerLayer: LayerNorm, q/k/v/out projections with biases, LayerNorm,
    MLP (wi with bias, wo + AddBias)."""
    return 2 * emb + 4 * (emb * emb + emb) + 2 * emb + emb * mlp + mlp + mlp * emb + emb


def _actions(m, width: int, tokens: int, sos: bool) -> int:
    """Action embedding, z_proj (g×g, stride g, no bias) and z_unproj (transposed, no bias)
    at ``width``; ``sos``: the learned start map (tokens × width) the module declares."""
    a, z, g = m.action_embed_dim, m.z_dim, m.downsample
    n = (m.num_actions + 1) * a + (z + a) * g * g * width + width * g * g * z
    return n + (tokens * width if sos else 0)


def reference_convs5(m) -> dict[str, int]:
    """The reference's teco_convS5 parameters for the model config ``m``, by part."""
    z, u = m.z_dim, m.dim
    actions = (m.num_actions + 1) * m.action_embed_dim + (z + m.action_embed_dim) * u + u
    p, ks, kd = m.sequence_options["state_dim"], 3, 3
    ssm = 2 * p + 2 * p * u * ks * ks + 2 * u * p * ks * ks + p  # Λ, B̃, C̃, log Δ
    cd = 2 * u + kd * kd * u * u + u + 2 * u + kd * kd * u * u + u  # resnet C_D block
    layer = ssm + cd + 2 * u  # + LayerNorm
    seq = m.sequence_options["depth"] * layer
    return {**_common(m, u), "actions": actions, "sequence": seq}


def reference_s5(m) -> dict[str, int]:
    """The reference's teco_S5 (z_proj to d_model, a stack of S5 layers, z_unproj to
    embedding_dim); its ``sos`` is declared but never used, and counted, being a parameter."""
    u, p = m.dim, m.sequence_options["state_dim"]
    tokens = (m.z_size // m.downsample) ** 2
    # Λ (re, im), B̃ and C̃ (re, im), D, log Δ, the half GLU's Dense, the layer's LayerNorm
    layer = 2 * p + 2 * p * u + 2 * u * p + u + p + u * u + u + 2 * u
    seq = m.sequence_options["depth"] * layer
    return {**_common(m, m.z_dim), "actions": _actions(m, u, tokens, True), "sequence": seq}


def reference_transformer(m) -> dict[str, int]:
    """TECO's teco_transformer (z_proj to embed_dim, sos, Transformer with fc_in, sinusoidal
    positions, layers, Dense + LayerNorm head; z_unproj to embedding_dim)."""
    o = m.sequence_options
    emb, mlp, tokens = o["embed_dim"], o["mlp_dim"], (m.z_size // m.downsample) ** 2
    seq = emb * emb + emb + o["depth"] * _tfm_layer(emb, mlp) + emb * emb + emb + 2 * emb
    return {**_common(m, m.z_dim), "actions": _actions(m, emb, tokens, True), "sequence": seq}


REFERENCE = {"convs5": reference_convs5, "s5": reference_s5, "transformer": reference_transformer}


def reference_count(m) -> dict[str, int]:
    """The reference's parameters for the model config ``m`` (its sequence model's
    formula), by part."""
    parts = REFERENCE[m.sequence_model](m)
    parts = {k: parts[k] for k in ("posterior", "actions", "sequence", "decoder", "prior")}
    return {**parts, "total": sum(parts.values())}


def our_count(model) -> dict[str, int]:
    """Our model's parameters by the same parts."""

    def n(*mods) -> int:
        return sum(p.numel() for mod in mods if mod is not None for p in mod.parameters())

    parts = {
        "code_embed": n(model.code_embed),
        "posterior": model.sos.numel() + n(model.encoder, model.codebook),
        "actions": n(model.action_embed, model.proj_in, model.proj_out)
        + (0 if model.start is None else model.start.numel()),
        "sequence": n(model.sequence),
        "decoder": n(model.decoder),
        "prior": n(model.prior),
    }
    assert sum(parts.values()) == n(model)
    return {**parts, "total": n(model)}


def main() -> None:
    rows = {}
    for name in CONFIGS:
        path = ROOT / "configs" / "teco" / f"{name}.yaml"
        cfg = load_config(path, ["data.root=x.codes"])
        ours, ref = our_count(build_model(cfg.model)), reference_count(cfg.model)
        rows[name] = {"config": str(path.relative_to(ROOT)), "ours": ours, "reference": ref}
        total = f"ours {ours['total'] / 1e6:8.2f} M   reference {ref['total'] / 1e6:8.2f} M"
        print(f"{name:26s} {total}")
        for part in ref:
            if part != "total":
                print(f"  {part:10s} {ours[part] / 1e6:8.3f} M  {ref[part] / 1e6:8.3f} M")
        print(f"  code_embed {ours['code_embed'] / 1e6:8.3f} M  (the reference's VQ-GAN's)")
    out = ROOT / "benchmarks" / "results" / "teco_sizes.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
