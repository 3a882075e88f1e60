"""The package is layered (SPEC section 9): each level imports only the levels before it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "convssm"
LEVELS = ["ops", "nn", "models", "data", "metrics", "train", "cli"]
# data and metrics know no model: they may use ops only (and shared checks).
ALLOWED = {
    "ops": set(),
    "nn": {"ops"},
    "models": {"ops", "nn"},
    "data": {"ops"},
    "metrics": {"ops"},
    "train": {"ops", "nn", "models", "data", "metrics"},
    "cli": {"ops", "nn", "models", "data", "metrics", "train"},
}


def _imported_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "convssm" and len(parts) > 1 and parts[1] in LEVELS:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("level", LEVELS)
def test_level_imports_only_levels_before_it(level):
    offenders = []
    for path in sorted((PACKAGE / level).rglob("*.py")):
        bad = _imported_levels(path) - ALLOWED[level] - {level}
        if bad:
            offenders.append(f"{path.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert not offenders, "layering violated:\n" + "\n".join(offenders)
