"""The training loop writes plain progress lines, not a carriage-return bar, into a log."""

from __future__ import annotations

from train_standin import RandomVideos, standin_factory, tiny_config

from convssm.train.loop import train_and_evaluate


def test_training_logs_plain_lines_when_redirected(tmp_path, capsys):
    cfg = tiny_config(steps=4, eval_every=100, progress=True)
    train_and_evaluate(cfg, tmp_path, model_factory=standin_factory,
                       train_dataset=RandomVideos(n=8, frames=6),
                       val_dataset=RandomVideos(n=2, frames=6, seed=9))  # fmt: skip
    err = capsys.readouterr().err
    assert "\r" not in err
    assert f"{cfg.name}: step 4/4 (100%)" in err and "loss " in err
