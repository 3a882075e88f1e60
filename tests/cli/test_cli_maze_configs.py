"""The shipped configs: the MazeWorld CPU configs train a few real steps through the CLI on
tiny data (tokenizer, then `data encode`, then each latent model); the reference configs
load at their sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
