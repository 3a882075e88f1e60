"""``encode_folder``: cache a video folder's tokenizer codes next to it (``convssm data encode``).

For ``<root>/<split>/**/<name>.npz|mp4`` it writes ``<root>.codes/<split>/**/<name>.npz``
holding ``codes`` (T, h, w) (uint16, or int32 for codebooks over 65 536 codes) and the
video's ``actions`` when it has them, then ``manifest.json`` last; see
:class:`convssm.data.CodeFolder` for the reader. Every file is written atomically. An
interrupted run resumes where it stopped: ``encoding.json`` records the tokenizer's weight
digest, and files already written with the same tokenizer are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from convssm._files import atomic_write, atomic_write_text
from convssm.data import VideoFolder
from convssm.data.code_folder import CODES_FORMAT, CODES_VERSION, MANIFEST_NAME
from convssm.data.video_files import read_video_file
from convssm.models import VQTokenizer
from convssm.models.pretrained import WEIGHTS_NAME
from convssm.train.checkpoint import resolve_checkpoint

__all__ = ["encode_folder", "default_codes_dir"]

_PROGRESS = "encoding.json"


def default_codes_dir(root: str | os.PathLike) -> Path:
    """Where ``encode_folder`` caches ``root``'s codes: the sibling ``<root>.codes``."""
    root = Path(root).resolve()
    return root.with_name(root.name + ".codes")


def _digest(tokenizer: VQTokenizer, directory: Path | None) -> str:
    h = hashlib.sha256()
    if directory is not None:
        with open(directory / WEIGHTS_NAME, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    for name, tensor in sorted(tokenizer.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _splits(root: Path, splits: list[str] | None) -> list[str]:
    if splits:
        return list(splits)
    found = sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and any(q.suffix.lower() in (".npz", ".mp4") for q in p.rglob("*"))
    )
    if not found:
        raise ValueError(f"no split folders with npz or mp4 videos under {root}")
    return found


def _prepare(out: Path, digest: str, root: Path, overwrite: bool) -> None:
    """Create ``out`` or check that it is an unfinished cache of the same tokenizer."""
    progress = out / _PROGRESS
    if out.exists() and overwrite:
        if not ((out / MANIFEST_NAME).is_file() or progress.is_file()):
            raise ValueError(f"--overwrite: {out} exists but is not a code cache; not removing it")
        shutil.rmtree(out)
    if (out / MANIFEST_NAME).is_file():
        raise ValueError(f"{out} already holds encoded codes; pass overwrite=True to redo them")
    if out.exists() and not progress.is_file():
        raise ValueError(f"{out} exists and is not an unfinished code cache")
    if progress.is_file():
        started = json.loads(progress.read_text())
        if started.get("tokenizer_sha256") != digest:
            raise ValueError(
                f"{out} was started with another tokenizer; pass overwrite=True to start again"
            )
        return
    out.mkdir(parents=True)
    note = {"tokenizer_sha256": digest, "source": str(root)}
    atomic_write_text(progress, json.dumps(note, indent=1))


def encode_folder(
    root: str | os.PathLike,
    tokenizer: VQTokenizer | str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    splits: list[str] | None = None,
    batch_frames: int = 64,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Encode every video under ``root/<split>`` with ``tokenizer`` (a model or a saved
    directory); returns the cache directory (default :func:`default_codes_dir`)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"video folder not found: {root}")
    tok_dir = None
    if isinstance(tokenizer, str | os.PathLike):  # a saved tokenizer's directory
        tok_dir = Path(tokenizer)
        if tok_dir.is_dir():  # a run's workdir or checkpoints folder: its newest checkpoint
            tok_dir = resolve_checkpoint(tok_dir)
        tokenizer = VQTokenizer.from_pretrained(tok_dir)
    tokenizer = tokenizer.to(device).eval()
    out = Path(out) if out is not None else default_codes_dir(root)
    digest = _digest(tokenizer, tok_dir)
    split_names = _splits(root, splits)
    folders = {s: VideoFolder(root, s, seq_len=1) for s in split_names}
    _prepare(out, digest, root, overwrite)
    dtype = np.uint16 if tokenizer.codebook_size <= 1 << 16 else np.int32
    counts: dict[str, int] = {}
    total = sum(len(f) for f in folders.values())
    bar = tqdm(total=total, disable=not progress, desc="encode", unit="video")
    for split, folder in folders.items():
        counts[split] = len(folder)
        for info in folder.files:
            target = out / info.path.relative_to(root).with_suffix(".npz")
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                video, actions = read_video_file(
                    info, 0, info.num_frames, with_actions=folder.with_actions
                )
                codes = _encode(tokenizer, video, batch_frames, device).astype(dtype)
                arrays = {"codes": codes}
                if actions is not None:
                    arrays["actions"] = actions
                atomic_write(target, lambda tmp, a=arrays: _save_npz(tmp, a))
            bar.update(1)
    bar.close()
    manifest: dict[str, Any] = {
        "format": CODES_FORMAT,
        "format_version": CODES_VERSION,
        "codebook_size": tokenizer.codebook_size,
        "latent_size": tokenizer.latent_size,
        "tokenizer": str(tok_dir) if tok_dir is not None else None,
        "tokenizer_sha256": digest,
        "tokenizer_config": tokenizer.config.to_dict(),
        "source": str(root),
        "splits": counts,
    }
    atomic_write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=1))
    (out / _PROGRESS).unlink()
    return out


def _save_npz(tmp: str, arrays: dict[str, np.ndarray]) -> None:
    with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
        np.savez(f, **arrays)


def _encode(
    tokenizer: VQTokenizer, video: np.ndarray, batch_frames: int, device: str
) -> np.ndarray:
    """(T, H, W, C) uint8 -> (T, h, w) int64 codes."""
    frames = torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2)
    frames = frames.to(device=device, dtype=torch.float32).div_(127.5).sub_(1.0)
    dtype = next(tokenizer.parameters()).dtype
    codes = tokenizer.encode(frames[None].to(dtype), batch_frames=batch_frames)[0]
    return codes.cpu().numpy()
