"""``convssm train`` with ``model.kind: teco`` on a code cache: real steps, exact resume,
validation, and ``convssm evaluate`` through the tokenizer (TECO's protocol)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from convssm.cli.main import main
from convssm.models import TECO, VQTokenizer, VQTokenizerConfig
from convssm.run.encode import encode_folder
from convssm.train.config import load_config
from convssm.train.loop import train_and_evaluate
from convssm.train.runlog import read_jsonl

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments" / "latent"
TOKENIZER = dict(
    image_size=16, channels=8, channel_mult=[1, 2], num_res_blocks=1, norm_groups=4,
    embed_dim=4, codebook_size=16, attention=False,
)  # fmt: skip
TECO_MODEL = {
    "kind": "teco", "codebook_size": 16, "latent_size": 8, "code_embed_dim": 4,
    "encoder_widths": [8, 8], "encoder_blocks": 1, "decoder_widths": [8, 8],
    "decoder_blocks": 1, "norm_groups": 4, "z_dim": 4, "z_codes": 8, "z_proj_dim": 4,
    "dim": 8, "prior_embed_dim": 8, "prior_depth": 1, "prior_heads": 2, "prior_mlp_dim": 16,
    "prior_token_dim": 4, "num_actions": 6, "action_dropout": 0.5, "drop_loss_rate": 0.5,
    "draft_steps": 2, "revise_steps": 2, "revise_rounds": 1,
    "sequence_options": {"depth": 1, "state_dim": 4, "norm_groups": 4},
}  # fmt: skip


def _cache(root):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for i in range(4):
            path = root / split / f"{i}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            video = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
            np.savez(path, video=video, actions=rng.integers(0, 6, 6))
    torch.manual_seed(0)
    tok = VQTokenizer(VQTokenizerConfig(**TOKENIZER))
    return tok, encode_folder(root, tok, progress=False)


def _losses(workdir):
    return [r["loss"] for r in read_jsonl(workdir / "train_log.jsonl")]


def test_teco_trains_resumes_exactly_and_is_evaluated_through_its_tokenizer(tmp_path, monkeypatch):
    tok, codes = _cache(tmp_path / "maze")
    config = {
        "name": "teco_tiny",
        "model": TECO_MODEL,
        "data": {"dataset": "codes", "root": str(codes), "seq_len": 5},
        "optim": {"lr": 1e-3, "warmup_steps": 1},
        "train": {"steps": 4, "batch_size": 2, "log_every": 1, "eval_every": 4,
                  "checkpoint_every": 2, "progress": False, "threads": 1},
        "eval": {"context": 2, "horizons": [3], "val_videos": 2, "batch_size": 2},
    }  # fmt: skip
    path = tmp_path / "teco.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path), "--workdir", str(tmp_path / "full")]) == 0
    full = _losses(tmp_path / "full")
    assert len(full) == 4 and all(np.isfinite(full))
    part = tmp_path / "part"
    train_and_evaluate(load_config(path), part, stop_after=2)  # as if killed after step 2
    resumed = train_and_evaluate(load_config(path), part, resume=True)
    assert _losses(part) == full  # the same draws (drop-loss, masks, action dropout) resumed
    assert set(resumed.validation) >= {"val_loss", "prior_loss", "recon_accuracy"}
    ckpt = resumed.checkpoint
    model = TECO.from_pretrained(ckpt)  # a checkpoint is a model directory
    assert model.config == load_config(path).model
    tok.save_pretrained(tmp_path / "tok")
    sets = ["eval.protocol=teco", "eval.teco.frames=6", "eval.teco.context_with_actions=3",
            "eval.teco.context_without_actions=2", "eval.metrics=[psnr,ssim]"]  # fmt: skip
    ev = ["evaluate", str(ckpt), "--out", str(tmp_path / "ev"), "--device", "cpu"]
    ev += [x for item in sets for x in ("--set", item)]
    assert main([*ev, "--tokenizer", str(tmp_path / "tok")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(metrics["settings"]) == {"actions", "no_actions"}
    assert metrics["settings"]["actions"]["horizon"] == 3
    assert main(ev) == 1  # a code model without its tokenizer: a clear error
    # the next-code accuracy of experiments/latent (prior-drawn and posterior-given)
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    import next_code_accuracy

    out = tmp_path / "acc.json"
    monkeypatch.setattr(sys, "argv", ["x", "--codes", str(codes), "--run", f"teco={ckpt}",
                                      "--frames", "6", "--out", str(out)])  # fmt: skip
    next_code_accuracy.main()
    row = json.loads(out.read_text())["teco"]
    assert 0 <= row["accuracy"] <= 1 and 0 <= row["teco_posterior"] <= 1
