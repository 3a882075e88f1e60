"""A Hugging Face Hub cache made on disk, in the layout huggingface_hub reads, for tests that
load models by hub id without a network: ``models--owner--name/blobs/<hash>`` holds each
file once, ``snapshots/<commit>/<file>`` links to it, ``refs/<branch or tag>`` names the
commit."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def add_to_hub_cache(
    cache: Path,
    repo_id: str,
    folder: Path,
    *,
    commit: str = "a" * 40,
    refs: tuple[str, ...] = ("main",),
) -> Path:
    """Put ``folder``'s files into ``cache`` as commit ``commit`` of model repo ``repo_id``,
    which the branches or tags ``refs`` point at; returns the snapshot folder."""
    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for f in sorted(Path(folder).iterdir()):
        if not f.is_file():
            continue
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / f.name)
    for ref in refs:
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)  # huggingface_hub writes no newline
    return snapshot
