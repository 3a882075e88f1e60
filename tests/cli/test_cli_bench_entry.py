"""``convssm bench``: lists and runs the scripts in benchmarks/, rejects unknown names."""

from __future__ import annotations

from convssm.cli import bench
from convssm.cli.main import main


def test_bench_lists_and_runs_scripts(tmp_path, monkeypatch, capfd):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "bench_hello.py").write_text("print('hello table')\n")
    monkeypatch.setattr(bench, "benchmarks_dir", lambda: tmp_path / "benchmarks")
    assert main(["bench", "--list"]) == 0
    assert capfd.readouterr().out.strip() == "hello"
    assert main(["bench", "hello"]) == 0
    assert "hello table" in capfd.readouterr().out
    assert main(["bench", "nope"]) == 1
    assert "no benchmark 'nope'; available: hello" in capfd.readouterr().err


def test_help_lists_the_training_commands(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for name in ("train", "evaluate", "generate", "demo", "bench"):
        assert name in out
