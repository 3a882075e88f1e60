"""The training loop writes plain progress lines, not a carriage-return bar, into a log."""

from __future__ import annotations

from train_standin import RandomVideos, standin_factory, tiny_config

from convssm.train.loop import train_and_evaluate
from convssm.train.runlog import read_jsonl


def test_training_logs_plain_lines_when_redirected(tmp_path, capsys):
    cfg = tiny_config(steps=4, eval_every=100, progress=True)
    train_and_evaluate(cfg, tmp_path, model_factory=standin_factory,
                       train_dataset=RandomVideos(n=8, frames=6),
                       val_dataset=RandomVideos(n=2, frames=6, seed=9))  # fmt: skip
    err = capsys.readouterr().err
    assert "\r" not in err
    assert f"{cfg.name}: step 4/4 (100%)" in err and "loss " in err


def _train(cfg, workdir):
    train_and_evaluate(cfg, workdir, model_factory=standin_factory,
                       train_dataset=RandomVideos(n=8, frames=6),
                       val_dataset=RandomVideos(n=2, frames=6, seed=9))  # fmt: skip


def test_progress_lines_show_each_loss_once_and_at_its_own_step(tmp_path, capsys):
    cfg = tiny_config(steps=4, log_every=2, eval_every=100, progress=True)
    _train(cfg, tmp_path)  # 4 steps: the plain cadence writes a line at every step
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("tiny: step")]
    logged = {r["step"]: r["loss"] for r in read_jsonl(tmp_path / "train_log.jsonl")}
    for step in (1, 2, 3, 4):
        (line,) = [x for x in lines if x.startswith(f"tiny: step {step}/4")]
        if step in logged:  # the loss measured at this very step
            assert f"loss {logged[step]:.4f}" in line, line
        else:  # no loss measured since the last line: none shown, not a repeated one
            assert "loss" not in line, line


def test_tensorboard_is_mentioned_only_when_asked_for(tmp_path, capsys):
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        installed = False
    else:
        installed = True
    _train(tiny_config(steps=1), tmp_path / "default")
    assert "TensorBoard" not in capsys.readouterr().err
    assert (tmp_path / "default" / "tensorboard").is_dir() == installed
    _train(tiny_config(steps=1, tensorboard=False), tmp_path / "off")
    assert not (tmp_path / "off" / "tensorboard").exists()
    _train(tiny_config(steps=1, tensorboard=True), tmp_path / "asked")
    err = capsys.readouterr().err
    if installed:
        assert (tmp_path / "asked" / "tensorboard").is_dir()
    else:
        assert "TensorBoard logging off" in err and "train.tensorboard" in err
