"""Parameter counts of the TECO-ConvS5 configs (``configs/teco/*_teco_convs5.yaml``), ours
beside the reference's.

Ours: the model built from the config, its parameters counted by part. The reference's:
counted from the shapes its flax modules declare (NVlabs/ConvSSM ``teco_convS5.py``,
``base.py``, ``maskgit.py``, ``transformer.py``, ``convS5/diagonal_ssm.py``,
``convS5/conv_ops.py``, ``convS5/layers.py``) with the same config values, written out
below as one formula per part; the reference's frozen VQ-GAN (its code embeddings
included) is not part of its TECO model. Where the two differ:

- ``code_embed``: ours learns its K × E code embedding; the reference looks codes up in
  its frozen VQ-GAN's codebook (``copy_code_embeddings`` + ``freeze_code_embeddings``
  gives that arrangement, and then these parameters are frozen);
- a residual block that changes width has a 1×1 shortcut without bias in the reference,
  with a (zero-initialised) bias here (``models/autoencoder.py``).

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
CONFIGS = ["dmlab", "minecraft", "habitat"]


def _resblock(c_in: int, c_out: int, shortcut_bias: bool) -> int:
    """TECO's ResNetBlock: GN, conv3×3 (bias), GN, conv3×3 + AddBias, 1×1 skip on a change."""
    n = 2 * c_in + 9 * c_in * c_out + c_out + 2 * c_out + 9 * c_out * c_out + c_out
    if c_in != c_out:
        n += c_in * c_out + (c_out if shortcut_bias else 0)
    return n


def reference_count(m) -> dict[str, int]:
    """The reference's teco_convS5 parameters for the model config ``m``, by part."""
    e, h, k = m.code_embed_dim, m.latent_size, m.codebook_size
    d0, d1 = m.encoder_widths
    z, u = m.z_dim, m.dim
    enc = 9 * 2 * e * d0 + d0 + _resblock(d0, d0, False)
    enc += _resblock(d0, d1, False) + (m.encoder_blocks - 1) * _resblock(d1, d1, False)
    enc += d1 * z + z  # Dense to embedding_dim
    codebook = m.z_codes * m.z_proj_dim + 2 * z * m.z_proj_dim
    actions = (m.num_actions + 1) * m.action_embed_dim + (z + m.action_embed_dim) * u + u
    p, ks, kd = m.sequence_options["state_dim"], 3, 3
    ssm = 2 * p + 2 * p * u * ks * ks + 2 * u * p * ks * ks + p  # Λ, B̃, C̃, log Δ
    cd = 2 * u + kd * kd * u * u + u + 2 * u + kd * kd * u * u + u  # resnet C_D block
    layer = ssm + cd + 2 * u  # + LayerNorm
    seq = m.sequence_options["depth"] * layer
    dec_in = u + z
    dec = 9 * dec_in * d0 + d0  # conv to depths[0]
    dec += _resblock(d0, d1, False) + (m.decoder_blocks - 1) * _resblock(d1, d1, False)
    dec += _resblock(d1, d0, False) + (m.decoder_blocks - 1) * _resblock(d0, d0, False)
    dec += 2 * d0 + d0 * k + k  # LayerNorm, Dense to the VQ-GAN's codes
    emb, dv, mlp, grid = m.prior_embed_dim, m.prior_token_dim, m.prior_mlp_dim, h // 2
    prior = (m.z_codes + 1) * dv + (dv + u) * emb + emb + grid * emb  # tokens, in, positions
    tl = 2 * emb + 3 * (emb * emb + emb) + emb * emb + emb + 2 * emb + emb * mlp + mlp
    tl += mlp * emb + emb
    prior += m.prior_depth * tl + emb * emb + emb + 2 * emb  # layers, Dense + LayerNorm
    prior += emb * dv + dv + 2 * dv + m.z_codes  # MlmLayer: Dense, LayerNorm, bias
    parts = {"posterior": h * h * e + enc + codebook, "actions": actions, "sequence": seq,
             "decoder": dec, "prior": prior}  # fmt: skip
    return {**parts, "total": sum(parts.values())}


def our_count(model) -> dict[str, int]:
    """Our model's parameters by the same parts."""

    def n(*mods) -> int:
        return sum(p.numel() for mod in mods if mod is not None for p in mod.parameters())

    parts = {
        "code_embed": n(model.code_embed),
        "posterior": model.sos.numel() + n(model.encoder, model.codebook),
        "actions": n(model.action_embed, model.proj_in, model.proj_out),
        "sequence": n(model.sequence),
        "decoder": n(model.decoder),
        "prior": n(model.prior),
    }
    assert sum(parts.values()) == n(model)
    return {**parts, "total": n(model)}


def main() -> None:
    rows = {}
    for name in CONFIGS:
        path = ROOT / "configs" / "teco" / f"{name}_teco_convs5.yaml"
        cfg = load_config(path, ["data.root=x.codes"])
        ours, ref = our_count(build_model(cfg.model)), reference_count(cfg.model)
        rows[name] = {"config": str(path.relative_to(ROOT)), "ours": ours, "reference": ref}
        total = f"ours {ours['total'] / 1e6:8.2f} M   reference {ref['total'] / 1e6:8.2f} M"
        print(f"{name:10s} {total}")
        for part in ref:
            if part != "total":
                print(f"  {part:10s} {ours[part] / 1e6:8.3f} M  {ref[part] / 1e6:8.3f} M")
        print(f"  code_embed {ours['code_embed'] / 1e6:8.3f} M  (the reference's VQ-GAN's)")
    out = ROOT / "benchmarks" / "results" / "teco_sizes.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
