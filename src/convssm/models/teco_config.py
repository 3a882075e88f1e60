"""TECOConfig: every setting of :class:`convssm.models.TECO` in one object.

The defaults are the reference's ``dmlab_teco_convS5`` (NVlabs/ConvSSM
``configs/3D_ENV_BENCHMARK/dmlab/dmlab_teco_convS5.yaml``) except where a key says
otherwise; the reference's names are given beside ours.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

from convssm._typed import dataclass_from_dict
from convssm.models.config import check_sequence_options
from convssm.models.maskgit import SCHEDULES

__all__ = ["TECOConfig", "S5_OPTIONS"]

S5_OPTIONS = {"kernel_size": 1, "output_kernel_size": 1, "output": "s5", "projection_init": "s5"}
"""What ``sequence_model: s5`` means: ConvS5 with 1×1 kernels, S5's output block
(feedthrough and half GLU, :class:`convssm.nn.convs5.S5Output`) and S5's draw of B and C,
on a 1×1 grid: S5."""


@dataclass
class TECOConfig:
    """The settings of a :class:`~convssm.models.TECO` (see ``docs/latent_models.md``).

    Attributes:
        codebook_size: K, the frame tokenizer's number of codes (the VQ-GAN's ``n_codes``).
        latent_size: h = w, the tokenizer's code grid (16).
        code_embed_dim: channels of the learned code embedding (the VQ-GAN's
            ``embedding_dim``, 64 for TECO's DMLab VQ-GAN).
        freeze_code_embeddings: keep the code embedding fixed (after
            ``copy_code_embeddings``, the reference's frozen VQ-GAN codebook).
        encoder_widths: the posterior encoder's stage widths (``encoder.depths``; each
            further stage halves the grid: [256, 512] takes 16×16 to 8×8).
        encoder_blocks: residual blocks per later encoder stage (``encoder.blocks``).
        decoder_widths: the decoder's widths as the reference writes them, finest first
            (``decoder.depths``).
        decoder_blocks: residual blocks per decoder stage (``decoder.blocks``).
        norm_groups: GroupNorm groups in encoder and decoder.
        z_dim: channels of the posterior (``embedding_dim`` of the TECO model).
        z_codes: codes of the posterior codebook (``codebook.n_codes``).
        z_proj_dim: width of the posterior codebook's normalised space
            (``codebook.proj_dim``).
        commitment_weight: β of the posterior codebook's commitment term (0.25).
        dim: channels the sequence model works at (``d_model``).
        sequence_model: ``convs5``, ``s5`` (ConvS5 with 1×1 kernels and S5's output block
            on a 1×1 grid: the reference's ``teco_S5``), ``transformer`` (the frame
            transformer: TECO's own temporal model, up to the differences
            ``docs/latent_models.md`` lists) or any registered sequence model.
        sequence_options: the sequence model's own options (ConvS5: ``depth`` is
            ``n_layers``, ``state_dim`` is ``ssm_size / 2``, ``blocks``, ...).
        grid_downsample: g: the sequence model runs on the posterior grid divided by g
            (a g×g stride-g convolution in, a transposed one back to ``z_dim`` channels:
            the reference's ``z_ds``); null: 1, or the whole grid for ``s5``.
        start_token: a learned input map (dim, h'/g, w'/g), N(0, 0.02²), put before frame 0's
            in the sequence model, its output dropped: every frame sees it (the ``sos`` of
            the reference's ``teco_transformer``).
        num_actions: size of the action vocabulary (``action_dim``); 0 for none.
        action_embed_dim: channels of the action embedding.
        action_dropout: probability of dropping a training sample's actions
            (``action_dropout_rate`` with ``dropout_actions``).
        causal_masking: replace the sequence inputs of frames ≥ mask_context by
            frame_mask_value for action-conditioned samples, and score the prior on
            predicted frames ≥ mask_context only (``causal_masking``).
        mask_context: ``open_loop_ctx_1`` (144).
        frame_mask_value: ``frame_mask_id`` (−2).
        prior_embed_dim: the MaskGit transformer's width (``z_git.tfm_kwargs.embed_dim``).
        prior_depth: its layers (``num_layers``).
        prior_heads: its attention heads (``num_heads``).
        prior_mlp_dim: its MLP width (``mlp_dim``).
        prior_token_dim: its token embedding width (``z_git.vocab_dim``).
        prior_dropout: its dropout (``dropout``).
        mask_schedule: ``cosine`` (the reference's) or ``linear``.
        label_smoothing: of the reconstruction cross-entropy (0.01).
        drop_loss_rate: share of the predicted frames left out of the reconstruction and
            prior losses in training (0.9 in all three reference configs).
        draft_steps: ``T_draft``, what ``convssm evaluate`` samples with.
        revise_steps: ``T_revise``, likewise.
        revise_rounds: ``M``, likewise (``TECO.sampling_options``).
    """

    codebook_size: int = 1024
    latent_size: int = 16
    code_embed_dim: int = 64
    freeze_code_embeddings: bool = False
    encoder_widths: list[int] = field(default_factory=lambda: [256, 512])
    encoder_blocks: int = 2
    decoder_widths: list[int] = field(default_factory=lambda: [256, 512])
    decoder_blocks: int = 4
    norm_groups: int = 32
    z_dim: int = 64
    z_codes: int = 1024
    z_proj_dim: int = 32
    commitment_weight: float = 0.25
    dim: int = 512
    sequence_model: str = "convs5"
    sequence_options: dict[str, Any] = field(default_factory=dict)
    grid_downsample: int | None = None
    start_token: bool = False
    num_actions: int = 0
    action_embed_dim: int = 16
    action_dropout: float = 0.0
    causal_masking: bool = False
    mask_context: int = 144
    frame_mask_value: float = -2.0
    prior_embed_dim: int = 512
    prior_depth: int = 8
    prior_heads: int = 8
    prior_mlp_dim: int = 2048
    prior_token_dim: int = 256
    prior_dropout: float = 0.0
    mask_schedule: str = "cosine"
    label_smoothing: float = 0.01
    drop_loss_rate: float = 0.9
    draft_steps: int = 8
    revise_steps: int = 8
    revise_rounds: int = 2

    @classmethod
    def from_dict(cls, data: Any, where: str = "model") -> TECOConfig:
        """Read a mapping (YAML/JSON); unknown keys and wrong types are errors naming
        ``where.key``; keys left out keep their defaults."""
        return dataclass_from_dict(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dicts and lists (a deep copy)."""
        return copy.deepcopy(asdict(self))

    @property
    def z_size(self) -> int:
        """The posterior grid: latent_size / 2^(len(encoder_widths) − 1)."""
        return self.latent_size // 2 ** (len(self.encoder_widths) - 1)

    @property
    def downsample(self) -> int:
        """g, the resolved ``grid_downsample``."""
        if self.grid_downsample is not None:
            return self.grid_downsample
        return self.z_size if self.sequence_model == "s5" else 1

    def sequence_spec(self) -> tuple[str, dict[str, Any]]:
        """The registered sequence model and its options (``s5`` → ConvS5, 1×1 kernels)."""
        if self.sequence_model == "s5":
            return "convs5", {**S5_OPTIONS, **self.sequence_options}
        return self.sequence_model, dict(self.sequence_options)

    def __post_init__(self) -> None:
        self.sequence_options = dict(self.sequence_options or {})
        self.encoder_widths = [int(w) for w in self.encoder_widths]
        self.decoder_widths = [int(w) for w in self.decoder_widths]
        positive = ("codebook_size", "latent_size", "code_embed_dim", "encoder_blocks",
                    "decoder_blocks", "z_dim", "z_codes", "z_proj_dim", "dim", "mask_context",
                    "prior_embed_dim", "prior_depth", "prior_heads", "prior_mlp_dim",
                    "prior_token_dim", "draft_steps", "revise_steps")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.revise_rounds < 0 or self.num_actions < 0:
            raise ValueError("revise_rounds and num_actions must be >= 0")
        if len(self.encoder_widths) != len(self.decoder_widths) or not self.encoder_widths:
            raise ValueError(
                f"encoder_widths {self.encoder_widths} and decoder_widths "
                f"{self.decoder_widths} must be non-empty and of the same length (the decoder "
                "upsamples as often as the encoder downsamples)"
            )
        down = 2 ** (len(self.encoder_widths) - 1)
        if self.latent_size % down:
            raise ValueError(f"latent_size {self.latent_size} must be divisible by {down}")
        g = self.downsample
        if g < 1 or self.z_size % g:
            raise ValueError(
                f"grid_downsample {g} must divide the posterior grid {self.z_size} "
                f"(latent_size {self.latent_size} / {down})"
            )
        for name in ("action_dropout", "label_smoothing", "drop_loss_rate", "prior_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.mask_schedule not in SCHEDULES:
            raise ValueError(
                f"mask_schedule must be one of {SCHEDULES}, got {self.mask_schedule!r}"
            )
        if self.prior_embed_dim % self.prior_heads:
            raise ValueError("prior_embed_dim must be divisible by prior_heads")
        name, options = self.sequence_spec()
        check_sequence_options(name, options)
