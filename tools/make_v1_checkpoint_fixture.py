"""Write the format-1 checkpoint fixture of tests/train/fixtures/checkpoint_v1.

Run with the convssm of commit 99ecb1e (before `VideoPredictorConfig`) on the path:
    PYTHONPATH=<old checkout>/src python tools/make_v1_checkpoint_fixture.py OUT [--full]
It trains a tiny ConvS5 VideoPredictor for 1 of 2 steps and copies the checkpoint to
OUT/step_00000001; with --full it also runs both steps uninterrupted and prints the log,
whose step-2 loss is expected.json's ``step_2_loss``.
"""

import json
import shutil
import sys
from pathlib import Path

from convssm.train.config import config_from_dict
from convssm.train.loop import train_and_evaluate

CONFIG = {
    "name": "v1_fixture",
    "model": {
        "image_size": 32,
        "encoder_widths": [4, 4],
        "norm_groups": 2,
        "dim": 4,
        "sequence_model": "convs5",
        "sequence_options": {"state_dim": 2, "depth": 1, "norm_groups": 2},
    },
    "data": {"seq_len": 4, "seed": 1, "num_videos": 8},
    "optim": {"lr": 1e-3, "warmup_steps": 1},
    "train": {
        "steps": 2,
        "batch_size": 2,
        "log_every": 1,
        "eval_every": 100,
        "checkpoint_every": 1,
        "keep_checkpoints": 1,
        "progress": False,
        "threads": 1,
        "seed": 0,
    },
    "eval": {
        "context": 2,
        "horizons": [2],
        "val_videos": 2,
        "batch_size": 2,
        "metrics": ["psnr"],
        "num_videos": 2,
    },
}

if __name__ == "__main__":
    out = Path(sys.argv[1])
    res = train_and_evaluate(config_from_dict(CONFIG), out / "run", stop_after=1)
    shutil.copytree(res.checkpoint, out / "step_00000001")
    if "--full" in sys.argv:
        train_and_evaluate(config_from_dict(CONFIG), out / "full")
        print(json.dumps([json.loads(x) for x in open(out / "full" / "train_log.jsonl")]))
