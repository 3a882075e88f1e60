"""One rank of the context-parallel training tests, started with RANK / WORLD_SIZE /
MASTER_* set as torchrun sets them. Usage:

    python train_sp_worker.py OUT MODE [restart]

MODE: ``whole`` or ``chunked`` (``train.tbptt_chunk``), ``+ckpt`` appended for
``train.activation_checkpointing``. Environment: SP_PARALLEL ranks per sequence (default:
the world size), SP_DROPOUT ConvS5's dropout. It joins the group once, then runs
``train_and_evaluate`` three times in it:
OUT/straight (4 steps), OUT/resumed (2 steps, then resumed to 4), and with ``restart``
OUT/restarted, where every rank starts its part from a fresh state (the known failure
mode of naive sequence splitting, which the test must catch).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from train_standin import RandomVideos

from convssm.train import step as step_module
from convssm.train.config import config_from_dict
from convssm.train.factory import build_model
from convssm.train.loop import train_and_evaluate

FRAMES = 9  # 8 predicted frames: parts 4 + 4 (2 ranks), 3 + 3 + 2 (3 ranks)
CHUNK = 3  # pieces of 3, 3, 2 predicted frames: ranks take 2 + 1 (2 ranks) or 1 each (3)


def sp_config(mode: str, parallel: int, steps: int = 4, dropout: float = 0.0):
    chunked, checkpointing = mode.startswith("chunked"), mode.endswith("+ckpt")
    return config_from_dict({
        "name": "sp",
        "model": {"image_size": 8, "encoder_widths": [4, 8], "norm_groups": 4, "dim": 8,
                  "sequence_model": "convs5",
                  "sequence_options": {"depth": 2, "state_dim": 4, "norm_groups": 4,
                                       "dropout": dropout}},
        "data": {"seq_len": FRAMES, "seed": 5},
        "optim": {"lr": 0.01, "warmup_steps": 1},
        "train": {"steps": steps, "batch_size": 2, "log_every": 1, "eval_every": 1000,
                  "checkpoint_every": 2, "progress": False, "seed": 3, "threads": 1,
                  "precision": "fp32", "device": "cpu", "sequence_parallel": parallel,
                  "tbptt_chunk": CHUNK if chunked else None,
                  "activation_checkpointing": checkpointing},
        "eval": {"context": 3, "horizons": [3], "val_videos": 1, "batch_size": 1,
                 "metrics": ["psnr"]},
    })  # fmt: skip


def sp_factory(cfg):
    return build_model(cfg.model).double()  # float64: comparisons to rounding only


def run(cfg, workdir, **kw):
    return train_and_evaluate(
        cfg,
        workdir,
        model_factory=sp_factory,
        train_dataset=RandomVideos(n=8, frames=FRAMES, size=8),
        val_dataset=RandomVideos(n=1, frames=FRAMES, size=8, seed=9),
        **kw,
    )


def _restart_every_rank() -> None:
    """Each rank trains its part alone, from a fresh state: no group, no carried state."""
    loss = step_module.sequence_loss

    def alone(*args, **kw):
        kw["sequence_group"] = None
        return loss(*args, **kw)

    step_module.sequence_loss = alone
    step_module.states_before = lambda *args, **kw: None


if __name__ == "__main__":
    out, mode = Path(sys.argv[1]), sys.argv[2]
    dropout = float(os.environ.get("SP_DROPOUT", "0"))
    dist.init_process_group("gloo")  # the runs below share it (and leave it open)
    torch.set_num_threads(1)
    parallel = int(os.environ.get("SP_PARALLEL", dist.get_world_size()))
    run(sp_config(mode, parallel, dropout=dropout), out / "straight")
    run(sp_config(mode, parallel, dropout=dropout), out / "resumed", stop_after=2)
    run(sp_config(mode, parallel, dropout=dropout), out / "resumed", resume=True)
    if "restart" in sys.argv[3:]:
        _restart_every_rank()
        run(sp_config(mode, parallel, steps=2), out / "restarted")
    dist.barrier()  # no rank tears down while a peer finishes (gloo aborts it otherwise)
    dist.destroy_process_group()
