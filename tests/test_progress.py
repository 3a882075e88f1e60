"""Progress: plain periodic lines (no carriage returns) when the stream is not a terminal."""

from __future__ import annotations

import io

from convssm._progress import Progress, progress_iter


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_in_a_log_and_a_bar_on_a_terminal():
    log = io.StringIO()
    bar = Progress(100, desc="run", stream=log)
    for step in range(100):
        bar.set_postfix(loss=f"{1 / (step + 1):.4f}")
        bar.update()
    bar.write("step 100: psnr 20.0")
    bar.close()
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 11  # every tenth of the run, and the message
    assert lines[0].startswith("run: step 10/100 (10%), ") and "loss 0.1000" in lines[0]
    assert lines[9].startswith("run: step 100/100 (100%)") and lines[10] == "step 100: psnr 20.0"
    tty = _Tty()
    bar = Progress(5, desc="run", stream=tty)
    for _ in range(5):
        bar.update()
    bar.close()
    assert "\r" in tty.getvalue()  # tqdm's bar


def test_iterating_and_resuming_count_from_the_right_place():
    log = io.StringIO()
    assert list(progress_iter(range(4), desc="videos", unit="video", stream=log)) == [0, 1, 2, 3]
    assert log.getvalue().splitlines()[-1].startswith("videos: video 4/4 (100%)")
    log = io.StringIO()
    bar = Progress(10, initial=8, stream=log)
    bar.update(2)
    bar.close()
    assert log.getvalue().startswith("step 10/10 (100%)")
    silent = io.StringIO()
    bar = Progress(3, stream=silent, disable=True)
    bar.update(3)
    bar.write("hidden")
    bar.close()
    assert silent.getvalue() == ""


def test_a_value_is_shown_in_one_plain_line_only():
    log = io.StringIO()
    bar = Progress(4, desc="run", stream=log, every=1)
    bar.set_postfix(loss="0.5000")
    for _ in range(4):
        bar.update()
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 4 and "loss 0.5000" in lines[0]
    assert not any("loss" in line for line in lines[1:])  # never repeated as if fresh
