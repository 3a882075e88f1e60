"""Run logs: JSONL and CSV always, TensorBoard when ``torch.utils.tensorboard`` imports (and
``train.tensorboard`` is not false; a missing package is reported only when it is true).

``scores.jsonl`` (one line per held-out scoring, :mod:`convssm.train.heldout`) and its
``strip_<step>.png`` pictures are written here too, and ``sessions.jsonl``: one line per
process that trained the run (its first step, command, machine), kept across resumptions.

Only rank 0 creates a :class:`RunLogger`. On resume, records past the resumed step are
dropped from the files first, so the logs read as one uninterrupted run. A torn last line
(a process killed mid-write) is skipped with a warning naming the file and line.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from convssm._files import atomic_write

__all__ = ["RunLogger", "read_jsonl"]

TRAIN_COLUMNS = ["step", "loss", "lr", "steps_per_s", "elapsed_s"]


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    lines = path.read_text(errors="replace").splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            if i != last:
                raise ValueError(f"{path}, line {i + 1}: not a JSON record ({err})") from None
            warnings.warn(
                f"{path}, line {i + 1}: skipping a torn last record ({err})",
                RuntimeWarning,
                stacklevel=2,
            )
    return rows


def _strip_step(path: Path) -> int:
    digits = path.stem.removeprefix("strip_")
    return int(digits) if digits.isdigit() else -1


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    return x


class RunLogger:
    """Writes ``train_log.jsonl``, ``train_log.csv`` and ``val_log.jsonl`` under ``workdir``."""

    def __init__(
        self, workdir: str | Path, resume_step: int | None = None, tensorboard: bool | None = None
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.train_jsonl = self.workdir / "train_log.jsonl"
        self.train_csv = self.workdir / "train_log.csv"
        self.val_jsonl = self.workdir / "val_log.jsonl"
        self.scores_jsonl = self.workdir / "scores.jsonl"
        self.sessions_jsonl = self.workdir / "sessions.jsonl"
        if resume_step is None:
            fresh = (self.train_jsonl, self.train_csv, self.val_jsonl, self.scores_jsonl)
            for p in (*fresh, self.sessions_jsonl):
                p.unlink(missing_ok=True)
        else:
            self._truncate(resume_step)
        for p in self.workdir.glob("strip_*.png"):  # a strip past the resumed step is redone
            if resume_step is None or _strip_step(p) > resume_step:
                p.unlink()
        new_csv = not self.train_csv.exists()
        self._csv_file = open(self.train_csv, "a", newline="")  # noqa: SIM115
        self._csv = csv.DictWriter(self._csv_file, fieldnames=TRAIN_COLUMNS, extrasaction="ignore")
        if new_csv:
            self._csv.writeheader()
        self.tensorboard_note = None  # set only when TensorBoard was asked for and is missing
        self._tb = None
        if tensorboard is not False:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.workdir / "tensorboard"))
            except ImportError as err:
                if tensorboard:
                    self.tensorboard_note = (
                        f"TensorBoard logging off: {err} (train.tensorboard is true; "
                        "pip install tensorboard)"
                    )

    def _truncate(self, step: int) -> None:
        for path in (self.train_jsonl, self.val_jsonl, self.scores_jsonl):
            if not path.is_file():
                continue
            rows = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        if self.train_csv.exists():
            with open(self.train_csv, newline="") as f:
                rows = [r for r in csv.DictReader(f)  # a torn last row has no whole step
                        if (r["step"] or "").isdigit() and int(r["step"]) <= step]  # fmt: skip
            with open(self.train_csv, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=TRAIN_COLUMNS)
                w.writeheader()
                w.writerows(rows)

    def log_train(self, record: dict[str, Any]) -> None:
        with open(self.train_jsonl, "a") as f:
            f.write(json.dumps(_clean(record)) + "\n")
        self._csv.writerow(record)
        self._csv_file.flush()
        if self._tb is not None:
            for k in ("loss", "lr", "steps_per_s"):
                if k in record:
                    self._tb.add_scalar(f"train/{k}", record[k], record["step"])

    def log_val(self, step: int, metrics: dict[str, Any]) -> None:
        with open(self.val_jsonl, "a") as f:
            f.write(json.dumps(_clean({"step": step, **metrics})) + "\n")
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)):
                    self._tb.add_scalar(f"val/{k}", v, step)

    def log_session(self, record: dict[str, Any]) -> None:
        """One process of the run (a start or a resumption): machine, command, step."""
        with open(self.sessions_jsonl, "a") as f:
            f.write(json.dumps(_clean(record)) + "\n")

    def log_scores(self, row: dict[str, Any], strip: np.ndarray) -> None:
        """One held-out scoring: its row in ``scores.jsonl``, its picture ``strip_<step>.png``
        (written atomically, before the row that names its step)."""
        pic = Image.fromarray(strip)
        atomic_write(self.workdir / f"strip_{row['step']:06d}.png", lambda t: pic.save(t, "PNG"))
        with open(self.scores_jsonl, "a") as f:
            f.write(json.dumps(_clean(row)) + "\n")
        if self._tb is not None:
            for k, v in row.items():
                if isinstance(v, float) and k not in ("wall_s", "cpu_s"):
                    self._tb.add_scalar(f"scores/{k}", v, row["step"])

    def close(self) -> None:
        self._csv_file.close()
        if self._tb is not None:
            self._tb.close()
