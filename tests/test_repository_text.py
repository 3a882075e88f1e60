"""The repository stands alone: no tracked file names a tracker's issue number or a path on
one machine. History lives in git; a file says what it means, and commands use paths
relative to the repository (or a directory the reader picks)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# an issue word then a number ("issue", "Issue #", "issues … and …", "issue" glued to the
# number in a file name), or a number in parentheses after "#". The examples below are built
# by concatenation so that this file passes its own test.
ISSUE_NUMBER = re.compile(r"(?i)\bissues?[\s_-]*#?\d|\(#\d+\)")
# Absolute paths of a machine: home, temp, work or root directories.
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|home|tmp|root|Users|scratch)/")


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def _text(path: Path) -> str | None:
    """The file's text, or None for a binary file (a NUL byte in its first 8 KiB)."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


# Files another branch owns and cleans; drop each entry once that branch has merged.
OWNED_ELSEWHERE: set[str] = set()


def _offences(pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in _tracked_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in OWNED_ELSEWHERE:
            continue
        if pattern.search(rel):
            found.append(f"{rel}: (the file's name)")
        if not path.is_file():
            continue
        text = _text(path)
        if text is None:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                found.append(f"{rel}:{lineno}: {line.strip()[:120]}")
    return found


# A citation of the development setup's specification, which is not in the repository.
SPEC_CITATION = re.compile(r"\bSPEC\s*(?:section\s*|§\s*)?\d")
# Tables another branch owns; drop each entry once it cites docs/design.md instead.
SPEC_ELSEWHERE: set[str] = set()
DESIGN = ROOT / "docs" / "design.md"
DESIGN_CITATION = re.compile(r"design\.md#([\w-]+)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_no_issue_numbers():
    found = _offences(ISSUE_NUMBER)
    assert not found, (
        "tracked files cite tracker issue numbers; say what is meant instead "
        "(history lives in git):\n" + "\n".join(found)
    )


def test_no_machine_paths():
    found = _offences(MACHINE_PATH)
    assert not found, (
        "tracked files hold absolute machine paths; use paths relative to the repository "
        "or a directory the reader chooses:\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    "text",
    [
        w + n
        for w, n in [
            ("issue", " 10"),
            ("Issue", " #10"),
            ("issues", " 10 and 14"),
            ("(", "#12)"),
            ("see issue", "14_side_by_side"),
        ]
    ],
)
def test_issue_pattern_catches(text):
    assert ISSUE_NUMBER.search(text)


@pytest.mark.parametrize("text", ["tissue 3", "the issue is timing", "#10 of 12", "step 10"])
def test_issue_pattern_spares(text):
    assert not ISSUE_NUMBER.search(text)


@pytest.mark.parametrize(
    "text",
    ["cd " + "/work" + "/main", "--out " + "/tmp" + "/suite", "/home" + "/me/x"],
)
def test_path_pattern_catches(text):
    assert MACHINE_PATH.search(text)


@pytest.mark.parametrize("text", ["runs/tmp/x", "tests/work/a", "~/data", "./tmp/x"])
def test_path_pattern_spares(text):
    assert not MACHINE_PATH.search(text)


def test_code_cites_the_design_not_the_specification():
    found = [o for o in _offences(SPEC_CITATION) if o.split(":")[0] not in SPEC_ELSEWHERE]
    assert not found, (
        "cite the section of docs/design.md (the specification is not in the repository):\n"
        + "\n".join(found)
    )


def test_design_citations_name_existing_sections():
    headings = re.findall(r"^#+\s+(.+)$", DESIGN.read_text(), flags=re.M)
    anchors = {_anchor(h) for h in headings}
    cited = set()
    for path in _tracked_files():
        text = _text(path) if path.is_file() else None
        if text:
            cited |= {(path.relative_to(ROOT).as_posix(), a) for a in DESIGN_CITATION.findall(text)}
    missing = sorted(f"{where}: #{a}" for where, a in cited if a not in anchors)
    assert cited and not missing, "no such section in docs/design.md:\n" + "\n".join(missing)
