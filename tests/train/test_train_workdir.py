"""Never lose a run: one writer per workdir, runs that never destroy runs, a
`latest` that always names a checkpoint, and a checkpoint on SIGTERM / SIGINT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import yaml
from torch import nn
from train_standin import RandomVideos, standin_factory, tiny_config

import convssm.train.checkpoint as ck
from convssm.train.checkpoint import list_checkpoints, load_checkpoint
from convssm.train.config import config_from_dict
from convssm.train.loop import train_and_evaluate
from convssm.train.runlog import read_jsonl
from convssm.train.workdir import WorkdirBusyError, WorkdirLock


def _run(cfg, workdir, train=None, **kw):
    return train_and_evaluate(cfg, workdir, model_factory=standin_factory,
                              train_dataset=train or RandomVideos(n=24, frames=6),
                              val_dataset=RandomVideos(n=2, frames=6, seed=9), **kw)  # fmt: skip


def _losses(workdir):
    return [(r["step"], r["loss"]) for r in read_jsonl(workdir / "train_log.jsonl")]


def _tree(root):
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1)
                  for p in root.rglob("*") if p.name != ".lock")  # fmt: skip


# ---------------------------------------------------------------- 1. one writer


def test_a_held_lock_refuses_a_second_writer_naming_pid_and_host(tmp_path):
    with WorkdirLock(tmp_path):
        with pytest.raises(WorkdirBusyError) as err:
            WorkdirLock(tmp_path).acquire()  # another open file description: refused
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in str(err.value)
        with pytest.raises(WorkdirBusyError):
            _run(tiny_config(), tmp_path)
    assert not (tmp_path / "checkpoints").exists()
    with WorkdirLock(tmp_path):  # released: free again
        pass


def test_temporary_folders_of_live_writers_are_never_deleted(tmp_path):
    host = socket.gethostname()
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(done.stdout)
    live = tmp_path / f".tmp-step_00000002-pid{os.getpid()}-{host}-abc_1"
    dead = tmp_path / f".tmp-step_00000002-pid{dead_pid}-{host}-xyz"
    elsewhere = tmp_path / f".tmp-step_00000002-pid{dead_pid}-other-host-q"
    for d in (live, dead, elsewhere):
        d.mkdir()
        (d / "experiment.yaml").write_text("x")
    cfg = config_from_dict({"name": "t", "model": {"dim": 4}})
    ck.save_checkpoint(tmp_path, 1, nn.Linear(2, 2), cfg, {"x": 1})
    assert live.is_dir() and elsewhere.is_dir() and not dead.exists()


def test_two_processes_on_one_workdir_then_sigterm(tmp_path):
    """The second `convssm train` is refused naming the first's PID; SIGTERM to the first
    writes a checkpoint and exits 75 ("resumable"); --resume then continues it."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "name": "lock",
        "model": {"image_size": 16, "encoder_widths": [8], "norm_groups": 4, "dim": 8,
                  "sequence_model": "convs5",
                  "sequence_options": {"depth": 1, "state_dim": 4, "norm_groups": 4}},
        "data": {"seq_len": 4, "options": {"digit_size": 8}},
        "train": {"steps": 100000, "batch_size": 1, "log_every": 1, "eval_every": 100000,
                  "checkpoint_every": 100000, "progress": False, "threads": 1},
        "eval": {"context": 2, "horizons": [2], "val_videos": 1, "batch_size": 1,
                 "metrics": ["psnr"]},
    }))  # fmt: skip
    work = tmp_path / "w"
    cmd = [sys.executable, "-m", "convssm", "train", str(config), "--workdir", str(work)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (work / "train_log.jsonl").is_file() or len(_losses(work)) < 2:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run did not start training"
            time.sleep(0.2)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        assert f"in use by another run (pid {first.pid} on host {socket.gethostname()})" in (
            second.stderr
        )
        assert second.stderr.count("\n") == 1 or "TensorBoard" in second.stderr
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=30)
    assert first.returncode == 75, err
    assert "stopped by SIGTERM at step" in out and "--resume" in out
    (newest,) = list_checkpoints(work / "checkpoints")
    assert (work / "checkpoints" / "latest").read_text().strip() == newest.name
    step = load_checkpoint(newest).step
    assert [s for s, _ in _losses(work)] == list(range(1, step + 1))  # one loss per step
    resumed = subprocess.run([*cmd, "--resume", "--set", f"train.steps={step + 1}"],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert [s for s, _ in _losses(work)] == list(range(1, step + 2))


# ---------------------------------------------------------------- 2. runs never destroy runs


def test_a_finished_workdir_refuses_a_new_run_and_deletes_nothing(tmp_path):
    cfg = tiny_config(checkpoint_every=2, keep_checkpoints=2)
    _run(cfg, tmp_path)
    before = _tree(tmp_path)
    with pytest.raises(ValueError, match=r"already holds a run; add --resume .*--overwrite"):
        _run(cfg, tmp_path)
    assert _tree(tmp_path) == before


def test_overwrite_archives_the_old_run(tmp_path):
    cfg = tiny_config(checkpoint_every=2, keep_checkpoints=2)
    _run(cfg, tmp_path)
    old = _losses(tmp_path)
    _run(tiny_config(steps=2, checkpoint_every=2), tmp_path, overwrite=True)
    (archived,) = (tmp_path / "archive").iterdir()
    assert _losses(archived) == old
    assert [p.name for p in list_checkpoints(archived / "checkpoints")] == [
        "step_00000004", "step_00000006"]  # fmt: skip
    assert [s for s, _ in _losses(tmp_path)] == [1, 2]
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step_00000002"]


def test_resume_on_an_empty_or_absent_workdir_starts_fresh_and_says_so(tmp_path, capsys):
    for work in (tmp_path / "absent", tmp_path):
        res = _run(tiny_config(steps=3), work, resume=True)
        assert res.step == 3 and res.checkpoint.is_dir()
        assert "no checkpoint in" in capsys.readouterr().err


def test_resume_past_a_corrupt_checkpoint_keeps_the_new_ones(tmp_path):
    """A resumed run's checkpoints are never pruned in favour of a newer corrupt one."""
    cfg = tiny_config(checkpoint_every=2, keep_checkpoints=2)
    work = tmp_path
    _run(cfg, work, stop_after=4)
    (list_checkpoints(work / "checkpoints")[-1] / "training_state.pt").write_bytes(b"x")
    with pytest.warns(RuntimeWarning, match="skipping checkpoint"):
        _run(tiny_config(checkpoint_every=1, keep_checkpoints=2), work, resume=True,
             stop_after=3)  # fmt: skip
    names = [p.name for p in list_checkpoints(work / "checkpoints")]
    assert names == ["step_00000002", "step_00000003"]
    assert (work / "checkpoints" / "latest").read_text().strip() == "step_00000003"
    assert (work / "archive" / "not-intact-after-step_00000002" / "step_00000004").is_dir()


def test_pruning_never_deletes_the_checkpoint_just_written(tmp_path):
    cfg = config_from_dict({"name": "t", "model": {"dim": 4}})
    model = nn.Linear(2, 2)
    for s in (10, 20):
        ck.save_checkpoint(tmp_path, s, model, cfg, {}, keep=2)
    for s in (1, 2, 3):
        ck.save_checkpoint(tmp_path, s, model, cfg, {}, keep=2)
        assert (tmp_path / "latest").read_text().strip() == f"step_{s:08d}"
        assert (tmp_path / f"step_{s:08d}").is_dir()
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["step_00000002", "step_00000003", "step_00000010", "step_00000020"]


def test_latest_names_a_checkpoint_between_every_file_operation(tmp_path, monkeypatch):
    """Where a kill could land (between any two file operations of a save: the disk then
    stays as it is), `latest` names a complete checkpoint that loads."""
    cfg = config_from_dict({"name": "t", "model": {"dim": 4}})
    model, seen = nn.Linear(2, 2), []

    def check():
        latest = tmp_path / "latest"
        if latest.exists():
            path = tmp_path / latest.read_text().strip()
            assert load_checkpoint(path).step == int(path.name[5:]), path
        seen.append(1)

    def hooked(fn):
        def run(*a, **k):
            check()
            out = fn(*a, **k)
            check()
            return out

        return run

    for name in ("replace", "rename", "unlink", "rmdir", "mkdir", "fsync", "open", "chmod"):
        monkeypatch.setattr(os, name, hooked(getattr(os, name)))
    for step, keep in [(1, 2), (2, 2), (3, 2), (3, 2), (4, 1), (4, 1)]:  # re-saves and prunes
        ck.save_checkpoint(tmp_path, step, model, cfg, {"s": step}, keep=keep)
    monkeypatch.undo()
    assert len(seen) > 100
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000004"]


# ---------------------------------------------------------------- 3. graceful stop


class _SignalAt(RandomVideos):
    """Sends ``sig`` to this process while the batch of step ``at`` is read."""

    def __init__(self, at, sig, **kw):
        super().__init__(n=24, frames=6, **kw)
        self.at, self.sig, self.reads = at, sig, 0

    def __getitem__(self, i):
        self.reads += 1
        if self.reads == 4 * (self.at - 1) + 1:  # batch_size 4: first item of step `at`
            os.kill(os.getpid(), self.sig)
        return super().__getitem__(i)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_step_checkpoints_and_resumes_exactly(tmp_path, sig):
    cfg = tiny_config(checkpoint_every=100)
    _run(cfg, tmp_path / "full")
    before = signal.getsignal(sig)
    res = _run(cfg, tmp_path / "cut", train=_SignalAt(4, sig))
    assert signal.getsignal(sig) is before  # handlers restored
    assert res.stopped_by == sig.name and res.step == 4
    assert res.checkpoint.name == "step_00000004" and load_checkpoint(res.checkpoint).step == 4
    _run(cfg, tmp_path / "cut", resume=True)
    assert _losses(tmp_path / "cut") == _losses(tmp_path / "full")


def test_a_second_signal_ends_the_process_at_once(tmp_path):
    script = textwrap.dedent("""
        import os, signal, time
        from convssm.train.loop import _StopSignals
        with _StopSignals() as s:
            os.kill(os.getpid(), signal.SIGTERM)
            assert s.received == "SIGTERM"
            print("first handled", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        print("survived")
    """)
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert done.stdout == "first handled\n" and time.monotonic() - t0 < 25
