"""The package is layered (docs/design.md#layers-of-the-package): each level imports only the levels
before it, and no modules import each other in a circle.

The import graph is read from the source: every ``import convssm.x`` / ``from convssm.x import
y`` / ``from .x import y`` anywhere in a module — at its top, inside a function, a class or
an ``if`` — is an edge. An import inside a function runs later than one at the top, but it
closes a cycle all the same; such a cycle fails here.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "convssm"
LEVELS = ["ops", "nn", "models", "data", "metrics", "train", "run", "cli"]
# data and metrics know no model: they may use ops only (and the shared helpers).
ALLOWED = {
    "ops": set(),
    "nn": {"ops"},
    "models": {"ops", "nn"},
    "data": {"ops"},
    "metrics": {"ops"},
    "train": {"ops", "nn", "models", "data", "metrics"},
    "run": {"ops", "nn", "models", "data", "metrics", "train"},
    "cli": {"ops", "nn", "models", "data", "metrics", "train", "run"},
}
SHARED = "shared"  # the package root and its private helpers (``convssm._files``, ...)
TOP = "top"  # ``convssm.__main__``: the entry point above everything


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package under ``root`` (its ``__init__.py`` folder), by dotted name."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool, modules: dict) -> list[str]:
    """The package's modules that one import statement loads (the deepest that exists)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:  # relative: from the module's own package upwards
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module or ""
        names = [f"{stem}.{a.name}" for a in node.names] if stem else []
    else:
        return []
    targets = []
    for name in names:
        parts = name.split(".")
        while parts and ".".join(parts) not in modules:
            parts.pop()
        if parts:
            targets.append(".".join(parts))
    return targets


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """module -> the package's modules it imports, from imports at any depth."""
    modules = module_names(root, package)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(tree):
            edges.update(_imported(node, name, is_package, modules))
        edges.discard(name)  # ``from . import x`` in a package's __init__ names itself first
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def level_of(module: str, levels: list[str]) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in levels:
        return parts[1]
    if parts[1:] == ["__main__"]:
        return TOP
    return SHARED


def level_violations(
    graph: dict[str, set[str]], levels: list[str], allowed: dict[str, set[str]]
) -> list[str]:
    """Edges from a level to one it may not import (the shared helpers import no level)."""
    bad = []
    for module, targets in sorted(graph.items()):
        src = level_of(module, levels)
        for target in sorted(targets):
            dst = level_of(target, levels)
            if dst == SHARED or dst == src or src == TOP:
                continue
            if src == SHARED or dst not in allowed[src]:
                bad.append(f"{module} ({src}) imports {target} ({dst})")
    return bad


def check_package(
    root: Path, package: str, levels: list[str], allowed: dict[str, set[str]]
) -> list[str]:
    """Every problem of the package's import graph: cycles, then level violations."""
    graph = import_graph(root, package)
    problems = [f"import cycle: {' <-> '.join(c)}" for c in cycles(graph)]
    return problems + level_violations(graph, levels, allowed)


def test_package_has_no_cycles_and_only_looks_down():
    problems = check_package(PACKAGE, "convssm", LEVELS, ALLOWED)
    assert not problems, "import graph:\n" + "\n".join(problems)


def test_every_level_is_a_package():
    for level in LEVELS:
        assert (PACKAGE / level / "__init__.py").is_file(), level


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph(PACKAGE, "convssm")
    assert "convssm.run.inference" in graph["convssm.cli.evaluate"]
    assert "convssm.train.config" in graph["convssm.run.inputs"]


def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "fake"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


FAKE_LEVELS = ["low", "high"]
FAKE_ALLOWED = {"low": set(), "high": {"low"}}


def test_fails_on_an_in_function_import_that_closes_a_cycle(tmp_path):
    root = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "high/__init__.py": "",
            "high/a.py": "from fake.high.b import g\n\ndef f():\n    return g()\n",
            "high/b.py": """
                def g():
                    from fake.high import a  # hidden from import time, a cycle all the same
                    return a
            """,
        },
    )
    problems = check_package(root, "fake", FAKE_LEVELS, FAKE_ALLOWED)
    assert problems == ["import cycle: fake.high.a <-> fake.high.b"]


def test_fails_on_a_relative_in_function_import_that_closes_a_cycle(tmp_path):
    root = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "high/__init__.py": "",
            "high/a.py": "from .b import g\n",
            "high/b.py": """
                class C:
                    def m(self):
                        if True:
                            from . import a
            """,
        },
    )
    problems = check_package(root, "fake", FAKE_LEVELS, FAKE_ALLOWED)
    assert problems == ["import cycle: fake.high.a <-> fake.high.b"]


def test_fails_on_an_in_function_import_of_a_higher_level(tmp_path):
    root = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "_helpers.py": "",
            "low/__init__.py": "",
            "low/x.py": "import fake._helpers\n\ndef f():\n    import fake.high.y\n",
            "high/__init__.py": "",
            "high/y.py": "from fake.low import x\n",
        },
    )
    problems = check_package(root, "fake", FAKE_LEVELS, FAKE_ALLOWED)
    assert "fake.low.x (low) imports fake.high.y (high)" in problems
    assert "import cycle: fake.high.y <-> fake.low.x" in problems


def test_passes_a_clean_fake_package(tmp_path):
    root = _fake_package(
        tmp_path,
        {
            "__init__.py": "from fake._helpers import h\n",
            "_helpers.py": "",
            "low/__init__.py": "from fake.low.x import f\n",
            "low/x.py": "def f():\n    import fake._helpers\n",
            "high/__init__.py": "",
            "high/y.py": "from ..low import x\n\ndef g():\n    from fake.low.x import f\n",
        },
    )
    assert check_package(root, "fake", FAKE_LEVELS, FAKE_ALLOWED) == []


@pytest.mark.parametrize("level", LEVELS)
def test_level_imports_only_levels_before_it(level):
    graph = import_graph(PACKAGE, "convssm")
    mine = {m: t for m, t in graph.items() if level_of(m, LEVELS) == level}
    assert not level_violations(mine, LEVELS, ALLOWED)
