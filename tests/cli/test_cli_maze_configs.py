"""The shipped configs: the MazeWorld CPU configs train a few real steps through the CLI on
tiny data (tokenizer, then `data encode`, then each latent model); the reference configs
load at their sizes, and the TECO ones build and train with their widths shrunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from convssm.cli.main import main
from convssm.models import TECO, LatentVideoPredictor, VQTokenizer
from convssm.train.checkpoint import latest_checkpoint
from convssm.train.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FAST = [
    "train.steps=2",
    "train.batch_size=2",
    "train.eval_every=2",
    "train.checkpoint_every=2",
    "train.progress=false",
    "train.threads=1",
    "eval.val_videos=2",
    "eval.batch_size=2",
]


def _sets(items):
    return [x for item in items for x in ("--set", item)]


@pytest.fixture(scope="module")
def maze(tmp_path_factory):
    root = tmp_path_factory.mktemp("cfg") / "maze"
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for i in range(2):
            path = root / split / f"{i}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            video = rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
            np.savez(path, video=video, actions=rng.integers(0, 6, 6))
    return root


@pytest.fixture(scope="module")
def codes(maze):
    work = maze.parent / "tok"
    args = ["train", str(CONFIGS / "maze/tokenizer_small.yaml"), "--workdir", str(work)]
    assert main([*args, *_sets([*FAST, f"data.root={maze}"])]) == 0
    ckpt = latest_checkpoint(work / "checkpoints")
    assert VQTokenizer.from_pretrained(ckpt).latent_size == 16
    assert main(["data", "encode", str(maze), "--tokenizer", str(ckpt), "--quiet"]) == 0
    return maze.parent / "maze.codes"


@pytest.mark.parametrize("seq", ["convs5", "convlstm", "transformer"])
def test_latent_maze_configs_train_on_the_encoded_codes(codes, seq):
    work = codes.parent / seq
    overrides = [
        *FAST,
        f"data.root={codes}",
        "data.seq_len=4",
        "eval.context=2",
        "eval.horizons=[2]",
        "eval.val_horizon=2",
    ]
    args = ["train", str(CONFIGS / f"maze/latent_{seq}_small.yaml"), "--workdir", str(work)]
    assert main([*args, *_sets(overrides)]) == 0
    model = LatentVideoPredictor.from_pretrained(latest_checkpoint(work / "checkpoints"))
    assert model.config.sequence_model == seq and model.num_actions == 6


@pytest.mark.parametrize(
    "name,depth,lr,causal,drop",
    [
        ("dmlab_convs5", 8, 5e-4, True, 0.0),
        ("minecraft_convs5", 12, 5e-4, False, 0.9),
        ("habitat_convs5", 8, 1e-4, False, 0.9),
    ],
)
def test_reference_configs_load_at_their_sizes(name, depth, lr, causal, drop):
    cfg = load_config(CONFIGS / f"teco/{name}.yaml", ["data.root=/raid/x.codes"])
    m = cfg.model
    sizes = (m.dim, m.sequence_options["state_dim"], m.sequence_options["depth"])
    assert sizes == (512, 256, depth)
    assert (m.encoder_widths, m.decoder_widths, m.decoder_blocks) == ([256], [512], 4)
    assert m.sequence_options["clip_eigs"] is False and m.num_actions == 6
    assert (m.causal_masking, m.drop_loss_rate, cfg.optim.lr) == (causal, drop, lr)
    assert (cfg.data.seq_len, cfg.train.batch_size, cfg.eval.context) == (300, 16, 144)


def test_teco_maze_config_trains_on_the_encoded_codes(codes):
    work = codes.parent / "teco"
    overrides = [*FAST, f"data.root={codes}", "data.seq_len=4", "eval.context=2",
                 "eval.horizons=[2]", "eval.val_horizon=2"]  # fmt: skip
    args = ["train", str(CONFIGS / "maze/teco_convs5_small.yaml"), "--workdir", str(work)]
    assert main([*args, *_sets(overrides)]) == 0
    model = TECO.from_pretrained(latest_checkpoint(work / "checkpoints"))
    assert model.config.sequence_model == "convs5" and model.num_actions == 6


@pytest.mark.parametrize(
    "name,layers,blocks,prior,z,causal,lr",
    [
        ("dmlab", 8, 32, (512, 8, 8, 2048), (64, 1024), True, 5e-4),
        ("minecraft", 12, 1, (768, 6, 12, 3072), (128, 1024), False, 5e-4),
        ("habitat", 8, 1, (1024, 16, 16, 4096), (256, 2048), False, 1e-4),
    ],
)
def test_reference_teco_configs_load_at_their_sizes(name, layers, blocks, prior, z, causal, lr):
    cfg = load_config(CONFIGS / f"teco/{name}_teco_convs5.yaml", ["data.root=/raid/x.codes"])
    m = cfg.model
    seq = m.sequence_options
    assert (m.dim, seq["depth"], seq["blocks"], seq["kernel_size"]) == (512, layers, blocks, 3)
    assert (m.prior_embed_dim, m.prior_depth, m.prior_heads, m.prior_mlp_dim) == prior
    assert (m.z_dim, m.z_codes, m.z_proj_dim, m.z_size) == (*z, 32, 8)
    assert (m.draft_steps, m.revise_steps, m.revise_rounds, m.drop_loss_rate) == (8, 8, 2, 0.9)
    assert (m.causal_masking, cfg.optim.lr, cfg.data.seq_len) == (causal, lr, 300)


@pytest.mark.parametrize(
    "name,seq,dim,tokens,depth,lr,batch,causal,dropout",
    [
        ("dmlab_teco_s5", "s5", 2048, 1, 8, 1e-3, 16, True, 0.5),
        ("dmlab_teco_transformer", "transformer", 1024, 1, 8, 1e-4, 16, True, 0.5),
        ("minecraft_teco_transformer", "transformer", 1024, 1, 12, 1e-4, 8, False, 0.0),
        ("habitat_teco_transformer", "transformer", 1024, 2, 8, 1e-4, 32, False, 0.5),
    ],
)
def test_reference_teco_baseline_configs_load_at_their_sizes(
    name, seq, dim, tokens, depth, lr, batch, causal, dropout
):
    cfg = load_config(CONFIGS / f"teco/{name}.yaml", ["data.root=/raid/x.codes"])
    m, o = cfg.model, cfg.model.sequence_options
    assert (m.sequence_model, m.dim, m.z_size // m.downsample, o["depth"]) == (
        seq, dim, tokens, depth)  # fmt: skip
    if seq == "s5":  # ssm_size 2048: P = 1024, S5's output block
        assert (o["state_dim"], o["blocks"]) == (1024, 1)
        assert m.sequence_spec()[1]["output"] == "s5"
    else:  # z_tfm_kwargs, TECO's sos and head
        assert (o["embed_dim"], o["heads"], o["mlp_dim"]) == (1024, 16, 4096)
        assert m.start_token and o["head"] == "teco"
        assert o.get("tokens", "frame") == ("pixel" if tokens > 1 else "frame")
    assert (m.causal_masking, m.action_dropout, m.drop_loss_rate) == (causal, dropout, 0.9)
    assert (cfg.optim.lr, cfg.train.batch_size, cfg.data.seq_len) == (lr, batch, 300)


SHRINK = [
    "model.codebook_size=32", "model.code_embed_dim=4", "model.encoder_widths=[8,16]",
    "model.encoder_blocks=1", "model.decoder_widths=[8,16]", "model.decoder_blocks=1",
    "model.norm_groups=4", "model.z_dim=8", "model.z_codes=16", "model.z_proj_dim=4",
    "model.dim=16", "model.mask_context=2", "model.prior_embed_dim=16", "model.prior_depth=1",
    "model.prior_heads=2", "model.prior_mlp_dim=32", "model.prior_token_dim=8",
    "model.sequence_options.depth=1",
]  # fmt: skip
SHRINK_SEQUENCE = {
    "convs5": ["model.sequence_options.state_dim=4", "model.sequence_options.blocks=1",
               "model.sequence_options.norm_groups=4"],
    "s5": ["model.sequence_options.state_dim=4"],
    "transformer": ["model.sequence_options.embed_dim=16", "model.sequence_options.heads=2",
                    "model.sequence_options.mlp_dim=32"],
}  # fmt: skip


@pytest.mark.parametrize(
    "name",
    [f"{d}_teco_{s}" for d in ("dmlab", "minecraft", "habitat") for s in ("convs5", "transformer")]
    + ["dmlab_teco_s5"],
)
def test_reference_teco_configs_build_and_train_shrunk(name):
    """Every TECO config builds its arrangement (sequence model, grid, masking, actions)
    with the widths shrunk, takes a training forward and backward, and generates."""
    seq = load_config(CONFIGS / f"teco/{name}.yaml", ["data.root=x.codes"]).model.sequence_model
    cfg = load_config(
        CONFIGS / f"teco/{name}.yaml", ["data.root=x.codes", *SHRINK, *SHRINK_SEQUENCE[seq]]
    )
    torch.manual_seed(0)
    model = TECO(cfg.model)
    assert model.config.sequence_model == seq and model.num_actions == 6
    codes, actions = torch.randint(0, 32, (2, 4, 16, 16)), torch.randint(0, 6, (2, 5))
    out = model(codes, actions[:, :4])
    out.loss.backward()
    assert torch.isfinite(out.loss)
    model.eval()
    sample = model.generate(codes[:, :2], 3, actions, torch.Generator().manual_seed(0), 2, 2, 1)
    assert sample.shape == (2, 3, 16, 16)
