"""``train.sequence_parallel``: ranks sharing each sequence train exactly as one process.

Gloo processes launched the way torchrun launches them (and once by torchrun itself) run
real ``train_and_evaluate`` steps of a float64 ConvS5 VideoPredictor with each rank on its
part of the time axis; their logged losses and final weights equal one process's on the
whole sequences, with whole sequences and with ``train.tbptt_chunk``; a run stopped and
resumed equals the straight run; and a run whose ranks restart the state at their part
(what naive sequence splitting does) is caught by the same comparison.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from train_sp_worker import run, sp_config

from convssm.train.checkpoint import load_checkpoint
from convssm.train.config import config_from_dict, config_to_dict
from convssm.train.distributed import DistributedContext
from convssm.train.runlog import read_jsonl
from convssm.train.sequence_parallel import rank_pieces
from convssm.train.state import _check_layout

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
TOL = {"rtol": 1e-9, "atol": 1e-10}  # AdamW turns a zero gradient's rounding into 1e-12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=f"{SRC}{os.pathsep}{HERE.parent}{os.pathsep}{HERE}")
    env.update(extra)
    return env


def _launch(world: int, out: Path, mode: str, *extra: str, env: dict | None = None) -> None:
    port = _free_port()
    procs = []
    for rank in range(world):
        ranks = dict(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HERE / "train_sp_worker.py"), str(out), mode, *extra],
                env=_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), **ranks, **(env or {})),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outs)


def _losses(workdir: Path) -> list[float]:
    return [r["loss"] for r in read_jsonl(workdir / "train_log.jsonl")]


def _assert_same_run(a: Path, b: Path, **tol) -> None:
    """Logged losses (train_step sums them in float32: to its rounding) and the weights."""
    loss_tol = {"rtol": max(tol["rtol"], 1e-6), "atol": tol["atol"]}
    torch.testing.assert_close(torch.tensor(_losses(a)), torch.tensor(_losses(b)), **loss_tol)
    wa, wb = load_checkpoint(a).weights, load_checkpoint(b).weights
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], **tol, msg=k)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One process's runs: whole sequences and chunked, 4 steps and 2."""
    root = tmp_path_factory.mktemp("single")
    for mode in ("whole", "chunked"):
        for steps in (4, 2):
            run(sp_config(mode, 1, steps=steps), root / f"{mode}{steps}")
    return root


@pytest.mark.parametrize("mode", ["whole", "chunked"])
def test_two_ranks_per_sequence_train_as_one_process(tmp_path, single, mode):
    _launch(2, tmp_path, mode, "restart")
    _assert_same_run(tmp_path / "straight", single / f"{mode}4", **TOL)
    info = load_checkpoint(tmp_path / "straight")
    assert (info.training_state["world_size"], info.training_state["sequence_parallel"]) == (2, 2)
    assert info.config.train.sequence_parallel == 2
    session = read_jsonl(tmp_path / "straight" / "sessions.jsonl")[0]
    assert (session["world_size"], session["sequence_parallel"]) == (2, 2)
    # stopped at step 2 and resumed: the same run, bit for bit
    _assert_same_run(tmp_path / "resumed", tmp_path / "straight", rtol=0, atol=0)
    # resuming it as one process (another layout) is refused, naming both layouts
    with pytest.raises(ValueError, match="written by 2 process.*sequence_parallel=2"):
        run(sp_config(mode, 1, steps=6), tmp_path / "straight", resume=True)
    # each rank restarting the state at its part: the comparison catches it
    with pytest.raises(AssertionError):
        _assert_same_run(tmp_path / "restarted", single / f"{mode}2", **TOL)


@pytest.mark.slow
def test_three_ranks_with_uneven_parts_and_checkpointing_train_as_one_process(tmp_path, single):
    _launch(3, tmp_path, "whole+ckpt")  # parts of 3, 3 and 2 predicted frames, recomputed
    _assert_same_run(tmp_path / "straight", single / "whole4", **TOL)


@pytest.mark.slow
def test_two_replicas_of_two_ranks_train_as_one_process(tmp_path, single):
    """World 4 = 2 data-parallel replicas x 2 ranks per sequence: each replica reads half of
    the batch; the gradient is the sum over a sequence group, averaged over the replicas."""
    _launch(4, tmp_path, "chunked+ckpt", env={"SP_PARALLEL": "2"})
    _assert_same_run(tmp_path / "straight", single / "chunked4", **TOL)


@pytest.mark.slow
def test_dropout_masks_shared_over_time_agree_across_ranks(tmp_path):
    """ConvS5's dropout draws one mask for all time steps; the ranks of a sequence group
    are seeded alike, so they draw the one mask a single process draws."""
    _launch(2, tmp_path, "whole", env={"SP_DROPOUT": "0.3"})
    run(sp_config("whole", 1, dropout=0.3), tmp_path / "single")
    _assert_same_run(tmp_path / "straight", tmp_path / "single", **TOL)


@pytest.mark.slow
def test_torchrun_convssm_train_matches_one_process(tmp_path):
    """The real command: ``torchrun --nproc-per-node 2 -m convssm train`` on built data."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed beside this interpreter")
    cfg = config_to_dict(sp_config("chunked", 2, steps=2))
    cfg["model"]["sequence_options"]["dropout"] = 0.0
    cfg["data"] = {"dataset": "moving_mnist", "seq_len": 9, "seed": 5, "num_workers": 0,
                   "options": {"digit_size": 4}}  # fmt: skip
    (tmp_path / "sp.yaml").write_text(yaml.safe_dump(cfg))
    base = ["convssm", "train", "sp.yaml", "--workdir"]
    launcher = [torchrun, "--nproc-per-node", "2", "--master-port", str(_free_port()), "-m"]
    for args in (launcher + base + ["cp"], [sys.executable, "-m"] + base + ["one"]):
        if args[-1] == "one":
            args += ["--set", "train.sequence_parallel=1"]
        done = subprocess.run(args, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    # float32 here (the CLI builds the model as configured): rounding-level tolerance
    _assert_same_run(tmp_path / "cp", tmp_path / "one", rtol=1e-5, atol=1e-6)


def test_a_world_size_not_divisible_is_refused(tmp_path):
    with pytest.raises(ValueError, match="world size divisible by 2"):
        run(sp_config("whole", 2), tmp_path / "w")


def test_models_that_cannot_split_time_are_refused_by_the_config():
    cfg = config_to_dict(sp_config("whole", 2))
    for name, options in (("convlstm", {"depth": 1}), ("transformer", {"depth": 1})):
        cfg["model"].update(sequence_model=name, sequence_options=options)
        with pytest.raises(ValueError, match=f"sequence_model {name!r}"):
            config_from_dict(cfg)


@pytest.mark.parametrize(
    ("saved", "now", "refused"),
    [((2, 2), (2, 2), False), ((2, 2), (4, 2), True), ((2, 2), (2, 1), True),
     ((1, 1), (2, 2), True), ((1, 1), (2, 1), False)],
)  # fmt: skip
def test_resume_on_another_layout_is_refused(saved, now, refused):
    class Info:
        path = "ckpt"
        training_state = {"world_size": saved[0], "sequence_parallel": saved[1]}

    ctx = DistributedContext(rank=0, world_size=now[0], sequence_parallel=now[1])
    if refused:
        with pytest.raises(ValueError, match="resumes exactly on the same layout only"):
            _check_layout(Info, ctx)
    else:
        _check_layout(Info, ctx)


def test_ranks_take_whole_pieces_in_order():
    assert [rank_pieces(8, None, 3, r) for r in range(3)] == [[(0, 3)], [(3, 6)], [(6, 8)]]
    assert [rank_pieces(8, 3, 2, r) for r in range(2)] == [[(0, 3), (3, 6)], [(6, 8)]]
    with pytest.raises(ValueError, match="fewer than the ranks"):
        rank_pieces(8, 3, 4, 0)
