"""experiments/maze's scripts imported as modules, for the tests that call them.

experiments/learning and experiments/recall have modules of the same names (``run``,
``study``, ``common``, ``publish``): they are imported afresh from experiments/maze and the
previous ones are put back afterwards.
"""

from __future__ import annotations

import importlib
import sys
from contextlib import contextmanager
from pathlib import Path

MAZE = Path(__file__).resolve().parents[1] / "experiments" / "maze"
NAMES = ("run", "study", "common", "publish")


@contextmanager
def maze_modules(monkeypatch):
    """Yields experiments/maze's ``run``, ``study`` and ``publish`` modules (``monkeypatch``
    undoes the path change)."""
    saved = {name: sys.modules.pop(name) for name in NAMES if name in sys.modules}
    monkeypatch.syspath_prepend(str(MAZE))
    try:
        yield tuple(importlib.import_module(name) for name in ("run", "study", "publish"))
    finally:
        for name in NAMES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
