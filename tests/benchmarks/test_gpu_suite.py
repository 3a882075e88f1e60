"""The GPU suite's control flow (benchmarks/gpu_suite.py, gpu_sections.py), run on CPU.

A run on a borrowed GPU machine happens once and must leave its results whatever goes
wrong: fake sections here time out inside an ``except Exception``, raise, and raise a
lasting CUDA error, and the JSON on disk is read after each; the real check and scan
sections run at tiny shapes with a Triton scan that is made wrong, to see the loop take
over and a wrong block size lose its timing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import types
from pathlib import Path

import pytest
import torch

from convssm.ops import get_scan_path, linear_scan_ref, set_scan_path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
CUDA_ERROR = "CUDA error: an illegal memory access was encountered"


@pytest.fixture
def suite_module(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # the Triton kernels on CPU tensors
    assert get_scan_path() == "auto"
    yield importlib.import_module("gpu_suite")
    set_scan_path("auto")  # the check section switches it to the loop when Triton fails


def _suite(module, tmp_path, budget_s=60.0):
    args = argparse.Namespace(out=str(tmp_path), budget_s=budget_s, device="cpu", tiny=True)
    return module.Suite(args, torch)


def _json(tmp_path) -> dict:
    return json.loads((tmp_path / "gpu_suite.json").read_text())


def test_timeouts_errors_and_a_lasting_device_error(suite_module, tmp_path, monkeypatch):
    """Through main(): a section that swallows every Exception still stops at its limit;
    an ordinary error ends only its section; a CUDA error inside attempt() ends its section
    and marks every later one skipped; the JSON holds all of it."""
    written = []

    def ok(s, shapes):
        s.row("ok", "value", 1.5)

    def swallows(s, shapes):
        try:
            time.sleep(30)  # a hang, inside the kind of handler that swallowed TimeoutError
        except Exception:  # noqa: BLE001
            pass
        written.append("not stopped")

    def raises(s, shapes):
        written.append(_json(tmp_path)["sections"]["swallows"]["status"])  # already on disk
        raise RuntimeError("ordinary failure")

    def device_lost(s, shapes):
        s.attempt("device_lost", "first", lambda: 1 / 0)  # an error row; the section goes on
        s.attempt("device_lost", "kernel", lambda: (_ for _ in ()).throw(RuntimeError(CUDA_ERROR)))
        written.append("ran on after the device was lost")

    sections = dict(ok=ok, swallows=swallows, raises=raises, device_lost=device_lost, after=ok)
    monkeypatch.setitem(sys.modules, "gpu_sections", types.SimpleNamespace(SECTIONS=sections))
    estimates = dict.fromkeys(sections, 5) | {"swallows": 0.4}  # a 1 s limit: 3 x 0.4, floored
    monkeypatch.setattr(suite_module, "ESTIMATE_S", estimates)
    monkeypatch.setattr(suite_module, "TINY", dict.fromkeys(sections, {}))
    argv = ["gpu_suite.py", "--out", str(tmp_path), "--device", "cpu", "--tiny"]
    monkeypatch.setattr(sys, "argv", [*argv, "--sections", ",".join(sections), "--budget-s", "60"])
    t0 = time.perf_counter()
    assert suite_module.main() == 0
    assert time.perf_counter() - t0 < 20
    assert written == ["timeout"]
    record = _json(tmp_path)["sections"]
    assert {k: v["status"] for k, v in record.items()} == dict(
        ok="ok", swallows="timeout", raises="error", device_lost="error", after="skipped"
    )
    assert record["raises"]["error"] == "RuntimeError: ordinary failure"
    assert record["device_lost"]["fatal"] is True
    rows = {r["name"]: r for r in record["device_lost"]["rows"]}
    assert rows["first"]["value"] == "error" and "ZeroDivisionError" in rows["first"]["note"]
    assert CUDA_ERROR in rows["kernel"]["note"]
    assert "fatal device error: device_lost: RuntimeError: CUDA error" in record["after"]["note"]


def test_json_is_written_before_a_cleanup_that_raises(suite_module, tmp_path, monkeypatch):
    """After a lasting CUDA error, empty_cache() raises again: the section's result is on
    disk first, the cleanup error is recorded, and the next section is skipped."""
    suite = _suite(suite_module, tmp_path)
    on_disk = []

    def cleanup():
        on_disk.append(_json(tmp_path)["sections"]["first"].get("status"))
        raise RuntimeError(CUDA_ERROR)

    monkeypatch.setattr(suite, "_free", cleanup)
    suite.run("first", lambda s: s.row("first", "value", 2.0))
    assert on_disk == ["ok"]
    suite.run("second", lambda s: pytest.fail("ran after the device was lost"))
    record = _json(tmp_path)["sections"]
    assert record["first"]["status"] == "ok" and CUDA_ERROR in record["first"]["cleanup_error"]
    assert record["second"]["status"] == "skipped"
    assert "first (cleanup)" in record["second"]["note"]


def test_failed_check_switches_later_sections_to_the_loop(suite_module, tmp_path, monkeypatch):
    sections = importlib.import_module("gpu_sections")
    monkeypatch.setattr(
        sections,
        "linear_scan_triton",
        lambda a, b, x0=None, time_chunks=None: 1.01 * linear_scan_ref(a, b, x0),
    )
    suite = _suite(suite_module, tmp_path)
    suite.run("check", lambda s: sections.check(s, suite_module.TINY["check"]))
    assert suite.triton_ok is False and get_scan_path() == "loop"
    record = _json(tmp_path)
    assert record["sections"]["check"]["status"] == "error"
    assert "AssertionError: Triton scan disagrees" in record["scan_path"]["why"]
    assert record["scan_path"]["path"] == "loop"
    suite.run("scan", lambda s: sections.scan(s, suite_module.TINY["scan"]))
    rows = _json(tmp_path)["sections"]["scan"]["rows"]
    names = [r["name"] for r in rows]
    assert rows[names.index("triton")]["value"] == "skipped"
    assert not [n for n in names if " triton " in n], names
    assert "M=600 loop forward+backward" in names
    assert "M=600 loop (per-step kernels) forward" in names


def test_each_timed_configuration_is_checked_first(suite_module, tmp_path, monkeypatch):
    sections = importlib.import_module("gpu_sections")
    launcher = sections._lst
    bad = launcher.FORWARD_CONFIGS[torch.float32][1]
    real = launcher._forward

    def wrong_for_one_configuration(a, b, x0, x, chunks, config):
        real(a, b, x0, x, chunks, config)
        if config == bad:
            x.mul_(1.01)

    monkeypatch.setattr(launcher, "_forward", wrong_for_one_configuration)
    suite = _suite(suite_module, tmp_path)
    suite.run("scan", lambda s: sections.scan(s, suite_module.TINY["scan"]))
    assert importlib.import_module("convssm.ops.scan_triton_plan")._forced == {
        "forward": None,
        "backward": None,
    }  # restored after the sweep
    record = _json(tmp_path)["sections"]["scan"]
    assert record["status"] == "ok"
    rows = {r["name"]: r for r in record["rows"]}
    name = sections._config_name
    assert rows[f"M=600 triton forward {name(bad)}"]["value"] == "MISMATCH"
    good = launcher.FORWARD_CONFIGS[torch.float32][0]
    assert isinstance(rows[f"M=600 triton forward {name(good)}"]["value"], float)
    assert isinstance(rows["M=600 triton forward as chosen"]["value"], float)
    for config in launcher.BACKWARD_CONFIGS[torch.float32]:
        assert isinstance(rows[f"M=600 triton backward {name(config)}"]["value"], float)
