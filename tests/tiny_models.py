"""The smallest config of each model kind, shared by the tests that build, save and load every
kind (the registry's and the hub's)."""

from __future__ import annotations

from convssm.models import (
    LatentVideoPredictorConfig,
    TECOConfig,
    VideoPredictorConfig,
    VQTokenizerConfig,
)

TINY = {
    "video_predictor": VideoPredictorConfig(
        image_size=16, encoder_widths=[8, 8], norm_groups=4, dim=8,
        sequence_options={"depth": 1, "state_dim": 4, "norm_groups": 4},
    ),
    "vq_tokenizer": VQTokenizerConfig(
        image_size=16, channels=8, channel_mult=[1, 2], num_res_blocks=1, norm_groups=4,
        embed_dim=4, codebook_size=16, attention=False,
    ),
    "latent_video_predictor": LatentVideoPredictorConfig(
        codebook_size=16, latent_size=8, dim=8, code_embed_dim=4, encoder_widths=[8],
        decoder_widths=[8], decoder_blocks=1, norm_groups=4,
        sequence_options={"depth": 1, "state_dim": 4, "norm_groups": 4},
    ),
    "teco": TECOConfig(
        codebook_size=16, latent_size=8, code_embed_dim=4, encoder_widths=[8, 8],
        encoder_blocks=1, decoder_widths=[8, 8], decoder_blocks=1, norm_groups=4, z_dim=4,
        z_codes=8, z_proj_dim=4, dim=8, prior_embed_dim=8, prior_depth=1, prior_heads=2,
        prior_mlp_dim=16, prior_token_dim=4,
        sequence_options={"depth": 1, "state_dim": 4, "norm_groups": 4},
    ),
}  # fmt: skip
