"""Two gloo processes (launched the way torchrun launches them) match one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_standin import RandomVideos, standin_factory, tiny_config

from convssm.train.checkpoint import load_checkpoint
from convssm.train.distributed import init_distributed
from convssm.train.loop import train_and_evaluate
from convssm.train.runlog import read_jsonl

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "train",
    [
        {"tbptt_chunk": None, "grad_accum": 1},
        {"tbptt_chunk": 2, "grad_accum": 2},  # several backward passes per step
    ],
    ids=["whole", "chunked-accum"],
)
def test_two_gloo_processes_match_one_process_over_the_combined_batch(tmp_path, train):
    extra = [f"{k}={'null' if v is None else v}" for k, v in train.items()]
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
        env.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            OMP_NUM_THREADS="1",
            PYTHONPATH=f"{SRC}{os.pathsep}{HERE.parent}",  # train_standin.py
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HERE / "train_ddp_worker.py"), str(tmp_path / "ddp"), *extra],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outs)

    cfg = tiny_config(dropout=0.0, steps=4, checkpoint_every=2, **train)
    train_and_evaluate(
        cfg,
        tmp_path / "single",
        model_factory=standin_factory,
        train_dataset=RandomVideos(n=24, frames=6),
        val_dataset=RandomVideos(n=2, frames=6, seed=9),
    )

    ddp = load_checkpoint(tmp_path / "ddp")
    one = load_checkpoint(tmp_path / "single")
    assert ddp.step == one.step == 4
    assert ddp.training_state["world_size"] == 2
    for k in one.weights:
        torch.testing.assert_close(ddp.weights[k], one.weights[k], rtol=1e-5, atol=1e-6)
    # logged loss is the mean over ranks = the loss of the combined batch
    la = [r["loss"] for r in read_jsonl(tmp_path / "ddp" / "train_log.jsonl")]
    lb = [r["loss"] for r in read_jsonl(tmp_path / "single" / "train_log.jsonl")]
    assert la == pytest.approx(lb, rel=1e-5)


def test_single_process_without_torchrun_environment(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.is_distributed) == (0, 1, True, False)


def test_bad_torchrun_environment_is_reported(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="outside WORLD_SIZE"):
        init_distributed("cpu")
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="not an integer"):
        init_distributed("cpu")
