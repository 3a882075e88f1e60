"""Training the tokenizer and the latent model from a config: model kinds in the experiment
config (old configs still build the video predictor, unknown keys still rejected), exact
resume with the discriminator, and the code cache feeding the latent model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from convssm.cli.main import main
from convssm.models import (
    LatentVideoPredictor,
    LatentVideoPredictorConfig,
    VideoPredictorConfig,
    VQTokenizer,
    VQTokenizerConfig,
)
from convssm.run.encode import encode_folder
from convssm.train.checkpoint import load_checkpoint
from convssm.train.config import (
    TokenizerLossConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
)
from convssm.train.loop import train_and_evaluate
from convssm.train.runlog import read_jsonl

TRAIN = {"steps": 4, "batch_size": 2, "log_every": 1, "eval_every": 4, "checkpoint_every": 2,
         "progress": False, "threads": 1}  # fmt: skip
TOKENIZER = {
    "kind": "vq_tokenizer", "image_size": 16, "channels": 8, "channel_mult": [1, 2],
    "num_res_blocks": 1, "norm_groups": 4, "embed_dim": 4, "codebook_size": 16,
    "attention": False,
}  # fmt: skip
LATENT = {
    "kind": "latent_video_predictor", "codebook_size": 16, "latent_size": 8, "dim": 8,
    "code_embed_dim": 4, "encoder_widths": [8], "decoder_widths": [8], "decoder_blocks": 1,
    "norm_groups": 4, "num_actions": 6, "action_dropout": 0.5,
    "sequence_options": {"depth": 1, "state_dim": 4, "norm_groups": 4},
}  # fmt: skip


def _folder(root, n=4, frames=6):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for i in range(n):
            path = root / split / f"{i}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            video = rng.integers(0, 256, (frames, 16, 16, 3), dtype=np.uint8)
            np.savez(path, video=video, actions=rng.integers(0, 6, frames))
    return root


def _losses(workdir):
    return [r["loss"] for r in read_jsonl(workdir / "train_log.jsonl")]


def test_model_kind_selects_the_config_and_old_configs_build_the_video_predictor():
    assert isinstance(config_from_dict({"model": {"dim": 32}}).model, VideoPredictorConfig)
    cfg = config_from_dict({"model": TOKENIZER, "data": {"seq_len": 1}})
    assert isinstance(cfg.model, VQTokenizerConfig) and cfg.model.channel_mult == [1, 2]
    assert config_to_dict(cfg)["model"]["kind"] == "vq_tokenizer"
    assert config_from_dict(config_to_dict(cfg)) == cfg
    cfg = config_from_dict({"model": LATENT, "data": {"dataset": "codes"}})
    assert isinstance(cfg.model, LatentVideoPredictorConfig)
    with pytest.raises(ValueError, match="unknown key 'channels' in section 'model'"):
        config_from_dict({"model": {**LATENT, "channels": 3}, "data": {"dataset": "codes"}})
    with pytest.raises(ValueError, match=r"model.kind: must be one of"):
        config_from_dict({"model": {"kind": "vqgan"}})
    with pytest.raises(ValueError, match="data.dataset to 'codes'"):
        config_from_dict({"model": LATENT})
    with pytest.raises(ValueError, match="the loss section is for vq_tokenizer runs"):
        config_from_dict({"loss": {"perceptual_weight": 0.0}})
    data = apply_overrides({"model": dict(TOKENIZER)}, ["model.codebook_size=32"])
    assert data["model"]["codebook_size"] == 32
    with pytest.raises(ValueError, match="unknown key 'dim' in section 'model'"):
        apply_overrides({"model": dict(TOKENIZER)}, ["model.dim=32"])
    data = apply_overrides({}, ["model.kind=vq_tokenizer", "model.codebook_size=32"])
    assert config_from_dict({**data, "data": {"seq_len": 1}}).model.codebook_size == 32
    assert TokenizerLossConfig().adversarial_weight == 0.0  # off by default


def test_tokenizer_trains_and_resumes_exactly_with_its_discriminator(tmp_path):
    root = _folder(tmp_path / "maze")
    cfg = config_from_dict({
        "model": TOKENIZER,
        "loss": {"perceptual_weight": 0.0, "adversarial_weight": 0.5, "adversarial_start": 1,
                 "disc_channels": 8, "disc_layers": 1, "disc_norm_groups": 4},
        "data": {"dataset": "video_folder", "root": str(root), "seq_len": 2},
        "optim": {"lr": 1e-3, "warmup_steps": 1},
        "train": TRAIN,
        "eval": {"context": 1, "horizons": [1], "val_videos": 2, "batch_size": 2},
    })  # fmt: skip
    full = train_and_evaluate(cfg, tmp_path / "full")
    assert full.step == 4 and set(full.validation) == {"psnr", "ssim", "perplexity"}
    part = tmp_path / "part"
    train_and_evaluate(cfg, part, stop_after=2)
    resumed = train_and_evaluate(cfg, part, resume=True)
    assert _losses(part) == _losses(tmp_path / "full")
    info = load_checkpoint(resumed.checkpoint)
    assert any(k.startswith("discriminator.") for k in info.training_state["objective"])
    tok = VQTokenizer.from_pretrained(resumed.checkpoint)  # a checkpoint is a model directory
    assert tok.config == cfg.model


def test_latent_model_trains_on_the_code_cache(tmp_path):
    root = _folder(tmp_path / "maze")
    torch.manual_seed(0)
    tok = VQTokenizer(VQTokenizerConfig(**{k: v for k, v in TOKENIZER.items() if k != "kind"}))
    codes = encode_folder(root, tok, progress=False)
    cfg = config_from_dict({
        "model": LATENT,
        "data": {"dataset": "codes", "root": str(codes), "seq_len": 4},
        "optim": {"lr": 1e-3, "warmup_steps": 1},
        "train": TRAIN,
        "eval": {"context": 2, "horizons": [3], "val_horizon": 3, "val_videos": 2,
                 "batch_size": 2},
    })  # fmt: skip
    res = train_and_evaluate(cfg, tmp_path / "run")
    assert res.step == 4 and set(res.validation) == {"val_loss", "accuracy"}
    assert all(np.isfinite(_losses(tmp_path / "run")))
    model = LatentVideoPredictor.from_pretrained(res.checkpoint)
    assert model.config == cfg.model
    bad = config_from_dict({**config_to_dict(cfg), "model": {**LATENT, "codebook_size": 32}})
    with pytest.raises(ValueError, match="holds 8x8 codes of a 16-code tokenizer"):
        train_and_evaluate(bad, tmp_path / "bad")
    # TECO's protocol through `convssm evaluate` with the tokenizer, on the cache's source
    tok.save_pretrained(tmp_path / "tok")
    sets = ["eval.protocol=teco", "eval.teco.frames=6", "eval.teco.context_with_actions=3",
            "eval.teco.context_without_actions=2", "eval.metrics=[psnr,ssim]"]  # fmt: skip
    args = ["evaluate", str(res.checkpoint), "--out", str(tmp_path / "ev"), "--device", "cpu"]
    args += [x for item in sets for x in ("--set", item)]
    assert main([*args, "--tokenizer", str(tmp_path / "tok")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(metrics["settings"]) == {"actions", "no_actions"}
    assert metrics["settings"]["actions"]["horizon"] == 3
    assert main(args) == 1  # a latent model without its tokenizer: a clear error


def test_pixel_commands_refuse_tokenizer_checkpoints_clearly(tmp_path):
    from convssm.run.inference import generate_from_checkpoint

    root = _folder(tmp_path / "maze")
    cfg = config_from_dict({
        "model": TOKENIZER, "loss": {"perceptual_weight": 0.0},
        "data": {"dataset": "video_folder", "root": str(root), "seq_len": 1},
        "train": {**TRAIN, "steps": 1, "eval_every": 10},
        "eval": {"context": 1, "horizons": [1], "val_videos": 1, "batch_size": 1},
    })  # fmt: skip
    res = train_and_evaluate(cfg, tmp_path / "run")
    with pytest.raises(ValueError, match="generate runs on video predictor checkpoints"):
        generate_from_checkpoint(res.checkpoint, tmp_path / "out", horizon=2)


def test_array_data_and_published_folders_are_for_video_predictors(tmp_path):
    from convssm.run.inference import load_trained

    with pytest.raises(ValueError, match="'array'.*trains a video_predictor only"):
        config_from_dict({"model": TOKENIZER, "data": {"dataset": "array", "seq_len": 1}})
    torch.manual_seed(0)
    tok = VQTokenizer(VQTokenizerConfig(**{k: v for k, v in TOKENIZER.items() if k != "kind"}))
    tok.save_pretrained(tmp_path / "tok")  # a published tokenizer folder (hash recorded)
    assert "weights_sha256" in json.loads((tmp_path / "tok" / "config.json").read_text())
    with pytest.raises(ValueError, match="holds a published VQTokenizer"):
        load_trained(tmp_path / "tok", "cpu")
