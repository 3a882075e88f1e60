"""Progress that reads well both on a terminal and in a log file.

On a terminal, :class:`Progress` is a tqdm bar. When its stream is not a terminal (output
redirected to a file, a pipe, a CI log), carriage-return updates would pile up into one
endless line, so it writes plain lines instead: one every ``every`` updates (a tenth of the
total by default) or every ``every_s`` seconds, whichever comes first, and one at the end:

    convs5_small: step 120/1000 (12%), 3.1 step/s, eta 4m44s, loss 0.1234, lr 1.00e-03

A value given to :meth:`Progress.set_postfix` appears in one plain line only: a line written
before a fresh value arrives shows the counts alone, never the old value again.

This module imports nothing from ``convssm``, so every level may use it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

__all__ = ["Progress", "progress_iter"]

T = TypeVar("T")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """A tqdm bar on a terminal, periodic plain lines elsewhere (see the module docstring).

    Args:
        total: updates expected (``None``: unknown).
        initial: updates already done (a resumed run).
        desc: the prefix of every line.
        unit: what one update is ("step", "video").
        disable: show nothing at all.
        stream: where to write (default ``sys.stderr``, as tqdm).
        every, every_s: the plain-line cadence (updates, seconds).
    """

    def __init__(
        self,
        total: int | None,
        *,
        initial: int = 0,
        desc: str = "",
        unit: str = "step",
        disable: bool = False,
        stream: IO[str] | None = None,
        every: int | None = None,
        every_s: float = 60.0,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.n, self.desc, self.unit = total, initial, desc, unit
        self.disable = disable
        self.postfix: dict[str, Any] = {}
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty()) if callable(isatty) else False
        self._bar = None
        if self.tty and not disable:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit,
                             file=self.stream, dynamic_ncols=True)  # fmt: skip
        self.every = every or max(1, (total or 10) // 10)
        self.every_s = every_s
        self._t0 = self._last_t = time.perf_counter()
        self._start_n = self._last_n = initial

    def line(self) -> str:
        """The plain progress line for the current state."""
        elapsed = time.perf_counter() - self._t0
        done = self.n - self._start_n
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.unit} {self.n}" + (f"/{self.total}" if self.total else "")]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        if done:
            parts.append(f"{rate:.3g} {self.unit}/s")
            if self.total and rate > 0:
                parts.append(f"eta {_duration((self.total - self.n) / rate)}")
        parts += [f"{k} {v}" for k, v in self.postfix.items()]
        return (f"{self.desc}: " if self.desc else "") + ", ".join(parts)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
            return
        if self.disable:
            return
        now = time.perf_counter()
        if self.n - self._last_n >= self.every or now - self._last_t >= self.every_s:
            self._emit(now)

    def _emit(self, now: float) -> None:
        print(self.line(), file=self.stream, flush=True)
        self._last_n, self._last_t = self.n, now
        self.postfix = {}  # shown once: a later line never repeats a stale value

    def set_postfix(self, **values: Any) -> None:
        """Values shown after the counts (e.g. ``loss="0.1234"``)."""
        self.postfix.update(values)
        if self._bar is not None:
            self._bar.set_postfix(**values)

    def write(self, message: str) -> None:
        """A message on its own line (above the bar on a terminal)."""
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        elif not self.disable:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif not self.disable and self.n != self._last_n:
            self._emit(time.perf_counter())
        self.disable = True


def progress_iter(items: Iterable[T], total: int | None = None, **kwargs: Any) -> Iterator[T]:
    """Iterate ``items`` with a :class:`Progress` (same keywords), closed at the end."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    bar = Progress(total, **kwargs)
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()
