"""Every command in the README and the guides in docs/ runs as written, from a fresh clone.

Each guide's fenced ``bash`` / ``sh`` / ``console`` and ``python`` blocks run in order in a
temporary working directory laid out like a fresh clone (the repository's tracked top-level
folders copied in, nothing a run has written), with the interpreter's environment on PATH
(so ``convssm`` and ``python`` are the repository's .venv's) and its ``src`` on PYTHONPATH.
A ``python`` or ``yaml`` block whose first line is a comment naming a file (``# field.yaml``,
``# make_field.py: ...``) is written to that file instead of run: a later command uses it.

Sizes. The commands run at tiny sizes: the arguments in :data:`TINY` are appended to every
command that starts with one of its prefixes (a repeated option's last value wins, for
``--set`` as for the others). That is the only change made to a command.

Skipping. A block whose line above reads ``<!-- doc-test: skip (why) -->`` is not run; the
reason is required, and this test checks that every skip names one. Shell commands in
unlabelled fences cannot escape: every fence must name its language.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The user guides: the README and every page of docs/ except the generated key reference.
GUIDES = ["README.md"] + sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md") if p.name != "configuration.md"
)
SHELL, PYTHON = {"bash", "sh", "console"}, {"python"}
# The tracked folders a command may read (a fresh clone's, without src/ and tests/).
CLONE = ["configs", "pretrained", "benchmarks", "experiments", "tools"]
TINY = {
    "convssm train": ["--set", "train.steps=2", "--set", "train.eval_every=2",
                      "--set", "train.checkpoint_every=2", "--set", "train.log_every=1",
                      "--set", "train.batch_size=2", "--set", "train.threads=1",
                      "--set", "train.progress=false", "--set", "eval.val_videos=1"],
    "convssm evaluate": ["--videos", "1"],
    "convssm data make-maze": ["--videos", "2", "--quiet"],
    "convssm data encode": ["--quiet"],
    "python make_field.py": ["--sequences", "12"],
    "python experiments/recall/delay_sweep.py": ["--videos", "2", "--delays", "250,256"],
    "python experiments/recall/slow_state.py": ["--videos", "1", "--delays", "16,64"],
    "python experiments/latent/teco_synthetic.py": ["--seconds", "0.2", "--prior-seconds", "0.2",
                                                    "--size", "4", "--frames", "3"],
}  # fmt: skip
SKIP = re.compile(r"<!--\s*doc-test:\s*skip\s*\((?P<why>[^)]*)\)\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
FILE_BLOCK = re.compile(r"#\s*(?P<name>[\w.-]+\.(?:py|ya?ml))\b")


def blocks(guide: str) -> list[tuple[str, str, str | None, int]]:
    """(language, body, skip reason or None, line) of every fenced block of a guide."""
    text = (ROOT / guide).read_text()
    found = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip().splitlines()
        skip = SKIP.fullmatch(before[-1].strip()) if before else None
        line = text.count("\n", 0, m.start()) + 1
        found.append((m["lang"], m["body"], skip["why"].strip() if skip else None, line))
    return found


def shell_lines(body: str) -> list[str]:
    """The commands of a shell block: continuations joined, comments and prompts dropped."""
    commands = []
    for line in body.replace("\\\n", " ").splitlines():
        line = line.strip().removeprefix("$ ")
        if line and not line.startswith("#"):
            commands.append(line)
    return commands


def tiny(command: str) -> str:
    """``command`` with the :data:`TINY` arguments of its prefix appended."""
    words = shlex.split(command, comments=True)
    if {"|", "&&", "||", ";", ">", "<"} & set(words):  # a pipeline: left as written
        return command
    for prefix, extra in TINY.items():
        if words[: len(prefix.split())] == prefix.split():
            return shlex.join(words + extra)
    return command


def _clone(tmp: Path) -> None:
    for name in CLONE:
        shutil.copytree(ROOT / name, tmp / name, ignore=shutil.ignore_patterns("__pycache__"))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"  # tiny sizes: no OpenMP spin-waits on a busy machine
    env["MPLBACKEND"] = "Agg"
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _run(args: list[str], cwd: Path, what: str) -> None:
    done = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{what}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"


def test_every_skip_says_why_and_every_fence_names_its_language():
    for guide in GUIDES:
        text = (ROOT / guide).read_text()
        for m in re.finditer(r"<!--\s*doc-test:[^>]*-->", text):
            assert SKIP.fullmatch(m[0]) and SKIP.fullmatch(m[0])["why"].strip(), (guide, m[0])
        for lang, _, _, line in blocks(guide):
            assert lang, f"{guide}:{line}: a fence without a language (bash, python, yaml, ...)"


def test_tiny_appends_to_the_right_commands():
    assert tiny("convssm train a.yaml --workdir w  # 1. tokenizer").startswith(
        "convssm train a.yaml --workdir w --set train.steps=2"
    )
    assert tiny("convssm evaluate runs/x") == "convssm evaluate runs/x --videos 1"
    assert tiny("convssm generate runs/x --out g") == "convssm generate runs/x --out g"


def run_guide(guide: str, tmp: Path) -> str | None:
    """Run a guide's blocks in order in ``tmp``; the first failure's message, or None."""
    todo = [(lang, body, line) for lang, body, why, line in blocks(guide)
            if why is None and lang in SHELL | PYTHON | {"yaml"}]  # fmt: skip
    _clone(tmp)
    try:
        for lang, body, line in todo:
            where = f"{guide}:{line}"
            named = FILE_BLOCK.match(body.lstrip())
            if lang == "yaml" or (lang in PYTHON and named):
                if named:  # a file a later command reads
                    (tmp / named["name"]).write_text(body)
                continue
            if lang in PYTHON:
                script = tmp / f"doc_block_{line}.py"
                script.write_text(body)
                _run([sys.executable, script.name], tmp, f"{where}: the python block")
                continue
            for command in shell_lines(body):
                _run(["bash", "-e", "-o", "pipefail", "-c", tiny(command)], tmp,
                     f"{where}: {command}")  # fmt: skip
    except AssertionError as err:
        return str(err)
    return None


def _steps(guide: str) -> int:
    """How many commands and python blocks of the guide run."""
    run = [(lang, body) for lang, body, why, _ in blocks(guide) if why is None]
    return sum(len(shell_lines(body)) if lang in SHELL else lang in PYTHON for lang, body in run)


def _runnable(guide: str) -> bool:
    return _steps(guide) > 0


@pytest.fixture(scope="module")
def guide_runs(request, tmp_path_factory):
    """The selected guides, run two at a time (every command is single-threaded), each in
    its own temporary clone: guide -> a future of its first failure (or None)."""
    name = "test_the_guide_runs_as_written"
    selected = [i.callspec.params["guide"] for i in request.session.items
                if getattr(i, "originalname", None) == name]  # fmt: skip
    pool = ThreadPoolExecutor(max_workers=2)
    request.addfinalizer(pool.shutdown)
    order = sorted(filter(_runnable, selected), key=lambda g: -_steps(g))  # the longest first
    return {g: pool.submit(run_guide, g, tmp_path_factory.mktemp("clone")) for g in order}


@pytest.mark.slow
@pytest.mark.parametrize("guide", GUIDES)
def test_the_guide_runs_as_written(guide, guide_runs):
    if guide not in guide_runs:
        pytest.skip(f"{guide} has no block to run (or all are marked doc-test: skip)")
    failure = guide_runs[guide].result()
    assert failure is None, failure
