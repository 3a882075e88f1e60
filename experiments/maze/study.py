"""The MazeWorld study's analysis: does each trained model use the actions, and does it remember?

    python experiments/maze/study.py --out runs/maze [--models convs5,convlstm,transformer]

Reads the models run.py trained (``OUT/runs/<model>``, newest checkpoint) and the held-out
test videos (``OUT/data/test``), and writes ``OUT/study.json``, ``OUT/strip.png`` and
``OUT/bands.png``, printing a table.

**Action use.** Every test video is cut into windows of ``--context`` + ``--horizon`` frames
(32 + 16, back to back); the model sees the window's context frames with their true actions
and generates the next 16 frames from the actions that led to them. The same windows are
generated again with those 16 actions taken from another test video (a fixed derangement of
the videos, the same positions in the video; the context's actions stay true). The score is
the MSE over the 16 generated frames (frames in [-1, 1], the training loss's units), its
ratio shuffled / true, and the share of generated frames whose donor action happens to equal
the true one (those cannot raise the error). A donor video's actions are real action
sequences — the policy's runs of forward steps, turns on the spot, bursts — so the model is
fed plausible but wrong actions; shuffling each video's own actions in time would instead
make sequences the policy never produces (a turn between every two steps), which measures
robustness to odd inputs as much as the use of the true ones.

**Memory of revisits.** Teacher forcing over whole test videos: each frame t >= 1 is
predicted from the true frames before it and the action that led to it (one-step error, no
compounding of generated frames, so a frame's error says what the model could tell about it
from the true past). A frame revisits a *view* when the camera is in a cell it was in before
and looks the same way (the same quarter of the compass, ``--sectors 4``: with a 90 degree
field of view, much the same walls): ``k`` is the number of frames since that view was last
seen before the agent came back to it (frames that stay in a view keep counting from there).
Frames in a view seen for the first time are *first visits*. The error is averaged per band
of ``k`` (``--bands``) and compared with first visits at the same times (first-visit frames
at ``t >= `` the band's lowest ``k``, since a revisit at gap ``k`` happens at ``t >= k`` and
errors change along a video). JSON also holds the same split by place alone (the cell, any
heading: ``revisits``' notion), and the same split over *turns into a view* alone (frames
whose heading sector differs from the previous frame's: the view was not in the frame
before, so only a memory of it can help; on other frames most of the view is in sight).
**Three predictors as yardsticks** (no training, in ``study.json``'s ``references``): *copy the
last frame* has no memory at all, so its revisit ratio is what revisits cost a predictor
that never remembers (the ratio a model with no memory of places should land near); *recall
the view* predicts each revisit by the frame at which that view was last seen (``t - k``)
and first visits by the last frame, a memory that keeps every frame exactly; *recall the
pose* does the same only where the camera is in the same cell at exactly the same heading
(positions within a cell still differ). Their ratios say how much fetching an old frame
could help on these frames (a model can do better only by combining what it remembers with
what it sees).
Each test video's trajectory is regenerated from the
manifest ``convssm data make-maze`` wrote (seed, split, parameters), and its actions are
checked against the stored ones.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch
from common import MODELS, data_root, load_trained, run_dir

from convssm.data import (
    MAZE_GENERATOR_VERSION,
    MazeWorld,
    MazeWorldParams,
    VideoFolder,
    maze_manifest_path,
)

DEFAULT_BANDS = "1-31,32-63,64-127,128-"
STRIP_OFFSETS = (1, 2, 4, 8, 12, 16)  # generated frames shown in the strip


# ---------------------------------------------------------------- revisits and bands


def view_keys(cells: np.ndarray, heading: np.ndarray, num_headings: int, sectors: int) -> list:
    """One hashable key per frame: the cell and the heading's sector of ``sectors`` equal
    sectors centred on the axes (``sectors=1``: the cell alone)."""
    if sectors < 1 or num_headings % sectors:
        raise ValueError(f"sectors must divide num_headings={num_headings}, got {sectors}")
    sector = ((2 * sectors * np.asarray(heading) + num_headings) // (2 * num_headings)) % sectors
    return [
        (r, c, s) for (r, c), s in zip(np.asarray(cells).tolist(), sector.tolist(), strict=True)
    ]


def revisit_gaps(keys: list) -> np.ndarray:
    """(T,) int64: ``-1`` where the view is seen for the first time, else ``k``, the frames
    since the view was last seen before the current stay in it began (the stay counts on)."""
    gaps = np.full(len(keys), -1, dtype=np.int64)
    last: dict = {}
    previous, origin = object(), None  # origin: last sighting before the current stay
    for t, key in enumerate(keys):
        if key != previous:
            origin = last.get(key)
        if origin is not None:
            gaps[t] = t - origin
        last[key], previous = t, key
    return gaps


def sector_turns(keys: list) -> np.ndarray:
    """(T,) bool: True where the heading sector (a ``view_keys`` key's last entry) differs
    from the previous frame's (frame 0: False)."""
    turns = np.zeros(len(keys), dtype=bool)
    for t in range(1, len(keys)):
        turns[t] = keys[t][-1] != keys[t - 1][-1]
    return turns


def parse_bands(text: str) -> list[tuple[int, int | None]]:
    """``"1-31,32-63,128-"`` -> [(1, 31), (32, 63), (128, None)]: inclusive, ascending,
    non-overlapping bands of ``k`` (an open last band runs to the video's end)."""
    bands = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d*)\s*", part)
        if not m:
            raise ValueError(f"--bands: {part!r} must look like LO-HI or LO- (e.g. 128-)")
        lo, hi = int(m[1]), int(m[2]) if m[2] else None
        if lo < 1 or (hi is not None and hi < lo):
            raise ValueError(f"--bands: {part!r} must have 1 <= LO <= HI")
        if bands and (bands[-1][1] is None or lo <= bands[-1][1]):
            raise ValueError(f"--bands: {part!r} overlaps or follows an open band")
        bands.append((lo, hi))
    return bands


def band_name(band: tuple[int, int | None]) -> str:
    lo, hi = band
    return f"{lo}-{hi}" if hi is not None else f"{lo}+"


def band_masks(gaps: np.ndarray, bands: list[tuple[int, int | None]]) -> dict[str, np.ndarray]:
    """Masks of the same shape as ``gaps``: ``"first"`` (first visits) and one per band."""
    masks = {"first": gaps < 0}
    for lo, hi in bands:
        masks[band_name((lo, hi))] = (gaps >= lo) & (gaps <= (hi if hi is not None else gaps.max()))
    return masks


# ---------------------------------------------------------------- shuffled actions


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(n)`` with no fixed point (one cycle through all)."""
    if n < 2:
        raise ValueError(f"shuffling actions across videos needs at least 2 videos, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    perm = np.empty(n, dtype=np.int64)
    perm[order] = np.roll(order, -1)  # order[i] takes its actions from order[i + 1]
    return perm


def shuffle_actions(actions: torch.Tensor, donors: np.ndarray, spans) -> torch.Tensor:
    """``actions`` (N, T) with each ``(start, stop)`` span of video i taken from video
    ``donors[i]`` (the same positions); the rest stays."""
    out = actions.clone()
    index = torch.as_tensor(donors)
    for start, stop in spans:
        out[:, start:stop] = actions[index, start:stop]
    return out


# ---------------------------------------------------------------- data


class TestSet:
    """The test split's videos (read by ``VideoFolder``) and their regenerated trajectories."""

    def __init__(self, out: Path) -> None:
        root = data_root(out)
        manifest_path = maze_manifest_path(root, "test")
        if not manifest_path.is_file():
            raise ValueError(f"no {manifest_path}: run experiments/maze/run.py first")
        manifest = json.loads(manifest_path.read_text())
        if not manifest.get("complete"):
            raise ValueError(f"{manifest_path}: the test split was not written to the end")
        if manifest.get("generator_version") != MAZE_GENERATOR_VERSION:
            raise ValueError(
                f"{manifest_path}: MazeWorld generator {manifest.get('generator_version')}, "
                f"this convssm draws version {MAZE_GENERATOR_VERSION}: regenerate the data"
            )
        params = MazeWorldParams.from_dict(manifest["params"])
        self.num_frames = params.num_frames
        self.num_headings = params.num_headings
        self.folder = VideoFolder(root, "test", seq_len=self.num_frames, actions="require")
        world = MazeWorld(
            manifest["num_videos"], seed=manifest["seed"], split="test", **params.to_dict()
        )
        self.trajectories = [world.episode(i).trajectory for i in range(len(world))]
        if len(self.folder) != len(self.trajectories):
            raise ValueError(
                f"{root / 'test'} holds {len(self.folder)} videos, its manifest "
                f"{len(self.trajectories)}"
            )
        self.actions = torch.from_numpy(np.stack([tr.actions for tr in self.trajectories]))

    def __len__(self) -> int:
        return len(self.trajectories)

    def batches(self, size: int):
        """(first index, videos (B, T, 3, H, W), actions (B, T)) in order."""
        for i in range(0, len(self), size):
            items = [self.folder[j] for j in range(i, min(i + size, len(self)))]
            videos = torch.stack([it["video"] for it in items])
            actions = torch.stack([it["actions"] for it in items])
            if not torch.equal(actions, self.actions[i : i + len(items)]):
                raise ValueError(
                    f"test videos {i}..{i + len(items) - 1}: stored actions differ from the "
                    "trajectories regenerated from the manifest"
                )
            yield i, videos, actions

    def turns(self, sectors: int) -> np.ndarray:
        """(N, T) bool: the frames that turn into another heading sector (``sector_turns``)."""
        return np.stack([
            sector_turns(view_keys(tr.cells, tr.heading, self.num_headings, sectors))
            for tr in self.trajectories
        ])  # fmt: skip

    def gaps(self, sectors: int) -> np.ndarray:
        """(N, T) revisit gaps of every test video (``revisit_gaps``)."""
        return np.stack([
            revisit_gaps(view_keys(tr.cells, tr.heading, self.num_headings, sectors))
            for tr in self.trajectories
        ])  # fmt: skip


# ---------------------------------------------------------------- the two measurements


def window_starts(num_frames: int, context: int, horizon: int) -> list[int]:
    span = context + horizon
    if span > num_frames:
        raise ValueError(f"context + horizon = {span} exceeds the test videos' {num_frames}")
    return list(range(0, num_frames - span + 1, span))


@torch.no_grad()
def action_use(model, test: TestSet, context: int, horizon: int, donors, batch: int) -> dict:
    """Generation error with the true and with the donors' actions (see the docstring)."""
    starts = window_starts(test.num_frames, context, horizon)
    spans = [(s + context, s + context + horizon) for s in starts]  # led to generated frames
    shuffled_all = shuffle_actions(test.actions, donors, spans)
    err = {"true": [], "shuffled": []}
    first_window = None
    for i, videos, actions in test.batches(batch):
        shuffled = shuffled_all[i : i + len(videos)]
        for s in starts:
            truth = videos[:, s + context : s + context + horizon]
            for name, acts in (("true", actions), ("shuffled", shuffled)):
                pred = model.generate(
                    videos[:, s : s + context], horizon, acts[:, s:], check_values=False
                )
                err[name].append(((pred - truth) ** 2).mean(dim=(2, 3, 4)))  # (B, horizon)
                if name == "true" and i == 0 and s == 0:
                    first_window = pred[0]
    per_frame = {k: torch.cat(v).mean(0).tolist() for k, v in err.items()}
    mse = {k: float(np.mean(v)) for k, v in per_frame.items()}
    positions = [t for s in starts for t in range(s + context, s + context + horizon)]
    agree = (test.actions[:, positions] == shuffled_all[:, positions]).float().mean()
    return {
        "mse_true": mse["true"],
        "mse_shuffled": mse["shuffled"],
        "ratio": mse["shuffled"] / mse["true"],
        "per_frame_true": per_frame["true"],
        "per_frame_shuffled": per_frame["shuffled"],
        "windows": len(test) * len(starts),
        "shuffled_equal_true": float(agree),
        "strip": first_window,  # (horizon, 3, H, W) of test video 0, window 0 (not in JSON)
    }


@torch.no_grad()
def one_step_errors(model, test: TestSet, batch: int) -> np.ndarray:
    """(N, T) teacher-forced per-frame MSE over whole test videos (column 0: NaN, frame 0 is
    never predicted)."""
    rows = []
    for _, videos, actions in test.batches(batch):
        pred = model(videos, actions, check_values=False).predictions
        err = ((pred - videos[:, 1:]) ** 2).mean(dim=(2, 3, 4)).double().numpy()
        rows.append(np.concatenate([np.full((len(err), 1), np.nan), err], axis=1))
    return np.concatenate(rows)


def reference_errors(test: TestSet, recall_gaps: dict[str, np.ndarray], batch: int = 8) -> dict:
    """(N, T) one-step MSE of the yardstick predictors (column 0: NaN): ``copy_last``
    predicts frame t by frame t - 1; each ``recall_gaps`` entry (name -> (N, T) gaps) by
    frame t - gaps[t] where the frame revisits (``gaps[t] >= 1``), else like ``copy_last``."""
    rows: dict[str, list] = {"copy_last": [], **{name: [] for name in recall_gaps}}
    for i, videos, _ in test.batches(batch):
        v = videos.double()
        n, t = v.shape[:2]
        nan = np.full((n, 1), np.nan)
        last = ((v[:, 1:] - v[:, :-1]) ** 2).mean(dim=(2, 3, 4)).numpy()
        rows["copy_last"].append(np.concatenate([nan, last], axis=1))
        for name, gaps in recall_gaps.items():
            g = gaps[i : i + n]
            source = np.where(g >= 1, np.arange(t) - g, np.arange(t) - 1)[:, 1:]
            picked = v[torch.arange(n)[:, None], torch.from_numpy(source)]
            recalled = ((picked - v[:, 1:]) ** 2).mean(dim=(2, 3, 4)).numpy()
            rows[name].append(np.concatenate([nan, recalled], axis=1))
    return {k: np.concatenate(v) for k, v in rows.items()}


def memory_by_band(
    errors: np.ndarray,
    gaps: np.ndarray,
    bands,
    far: int = 32,
    frames: np.ndarray | None = None,
) -> dict:
    """Mean one-step error per band against first visits (overall and at the same times),
    and over all revisits at ``k >= far`` (``"far"``, the issue's target at 32); ``frames``
    (N, T) bool: only those frames count (None: all)."""
    predicted = np.zeros_like(gaps, dtype=bool)
    predicted[:, 1:] = True
    if frames is not None:
        predicted &= frames
    times = np.broadcast_to(np.arange(gaps.shape[1]), gaps.shape)
    masks = band_masks(gaps, bands)
    first = masks["first"] & predicted
    out = {"first": {"mse": _mean(errors, first), "frames": int(first.sum())}}
    for (lo, _), name in zip(bands, list(masks)[1:], strict=True):
        mask = masks[name] & predicted
        baseline = _mean(errors, first & (times >= lo))
        mse = _mean(errors, mask)
        out[name] = {
            "mse": mse,
            "frames": int(mask.sum()),
            "first_same_times": baseline,
            "ratio": mse / baseline if mse is not None and baseline else None,
        }
    far_mask = (gaps >= far) & predicted
    base = _mean(errors, first & (times >= far))
    far_mse = _mean(errors, far_mask)
    out["far"] = {
        "k_min": far,
        "mse": far_mse,
        "frames": int(far_mask.sum()),
        "first_same_times": base,
        "ratio": far_mse / base if far_mse is not None and base else None,
    }
    return out


def _mean(values: np.ndarray, mask: np.ndarray) -> float | None:
    return float(values[mask].mean()) if mask.any() else None


# ---------------------------------------------------------------- pictures


def _to_image(frame: torch.Tensor) -> np.ndarray:
    return ((frame.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def write_strip(path: Path, truth: torch.Tensor, preds: dict, context: int) -> None:
    """Truth (top row) and each model's generated frames of test video 0's first window."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    offsets = [o for o in STRIP_OFFSETS if o <= min(len(p) for p in preds.values())]
    rows = [("truth", truth)] + list(preds.items())
    cols = 1 + len(offsets)
    fig = Figure(figsize=(1.2 * cols, 1.3 * len(rows)), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, (name, frames) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            if c == 0:  # the last context frame
                ax.imshow(_to_image(truth[context - 1]), interpolation="nearest")
            else:
                o = offsets[c - 1]
                shown = truth[context + o - 1] if name == "truth" else frames[o - 1]
                ax.imshow(_to_image(shown), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("context" if c == 0 else f"+{offsets[c - 1]}", fontsize=8)
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def write_bands(path: Path, memory: dict, bands) -> None:
    """Grouped bars: one-step MSE on first visits and per revisit band, per model."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = ["first"] + [band_name(b) for b in bands]
    fig = Figure(figsize=(1.6 * len(groups) + 1.5, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    width = 0.8 / max(len(memory), 1)
    x = np.arange(len(groups))
    for j, (model, by_band) in enumerate(memory.items()):
        values = [by_band[g]["mse"] if by_band[g]["mse"] is not None else 0.0 for g in groups]
        ax.bar(x + (j - (len(memory) - 1) / 2) * width, values, width, label=model)
    ax.set_xticks(x)
    ax.set_xticklabels(["first visit"] + [f"k {g}" for g in groups[1:]], fontsize=8)
    ax.set_ylabel("one-step MSE (teacher forced)")
    ax.set_title("error on revisits of a view seen k frames earlier", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


# ---------------------------------------------------------------- main


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def print_references(references: dict, far: int) -> None:
    for name, memory in references.items():
        view, turns = memory["view"], memory["view_turns"]
        print(
            f"{name}: first {_fmt(view['first']['mse'])}, k>={far}/first "
            f"{_fmt(view['far']['ratio'], '.3f')}, turns: k>={far}/first "
            f"{_fmt(turns['far']['ratio'], '.3f')}"
        )


def print_table(results: dict, bands, far: int) -> None:
    names = [band_name(b) for b in bands]
    head = ["model", "steps", "cpu-min", "mse true", "shuffled", "ratio", "first"]
    head += [f"k {n}" for n in names] + [f"k>={far}/first", "turns: k>=far/first"]
    rows = []
    for model, r in results.items():
        a, m = r["action_use"], r["memory"]["view"]
        cpu = r.get("cpu_s_training")
        rows.append([
            model, str(r.get("steps")), _fmt(cpu / 60 if cpu else None, ".1f"),
            _fmt(a["mse_true"]), _fmt(a["mse_shuffled"]), _fmt(a["ratio"], ".3f"),
            _fmt(m["first"]["mse"]), *(_fmt(m[n]["mse"]) for n in names),
            _fmt(m["far"]["ratio"], ".3f"), _fmt(r["memory"]["view_turns"]["far"]["ratio"], ".3f"),
        ])  # fmt: skip
    widths = [max(len(x), *(len(row[i]) for row in rows)) for i, x in enumerate(head)]
    for row in [head, *rows]:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


def memory_splits(errors: np.ndarray, frames: dict, bands, far: int) -> dict:
    """One predictor's one-step ``errors`` (N, T) by band three ways: revisits of a view,
    of a place (the cell alone), and of a view on turning frames only; ``frames`` holds the
    test set's ``"view"`` and ``"place"`` gaps and its ``"turns"`` (computed once)."""
    return {
        "view": memory_by_band(errors, frames["view"], bands, far),
        "place": memory_by_band(errors, frames["place"], bands, far),
        "view_turns": memory_by_band(errors, frames["view"], bands, far, frames=frames["turns"]),
    }


def study_model(
    model_name: str, out: Path, test: TestSet, args, bands, donors, frames: dict
) -> dict:
    trained = load_trained(run_dir(out, model_name), device="cpu")
    torch.set_num_threads(args.threads)
    model = trained.model
    record = {"step": trained.step, "path": str(trained.path)}
    run_json = run_dir(out, model_name) / "run.json"
    if run_json.is_file():
        run = json.loads(run_json.read_text())
        record.update({k: run.get(k) for k in ("steps", "cpu_s_training", "parameters")})
    record["parameters"] = record.get("parameters") or sum(p.numel() for p in model.parameters())
    use = action_use(model, test, args.context, args.horizon, donors, args.batch)
    strip = use.pop("strip")
    errors = one_step_errors(model, test, args.batch)
    memory = memory_splits(errors, frames, bands, args.far)
    record["action_use"] = use
    record["memory"] = memory
    record["one_step_mse"] = float(np.nanmean(errors))
    record["targets"] = {
        "shuffled_actions_raise_error_20pct": use["ratio"] >= 1.2,
        "revisits_far_below_first_visits": bool(
            memory["view"]["far"]["ratio"] is not None and memory["view"]["far"]["ratio"] < 1
        ),
    }
    return {"record": record, "strip": strip}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/maze", help="run.py's --out")
    parser.add_argument("--models", default=None, help="comma-separated (default: all trained)")
    parser.add_argument("--context", type=int, default=32, help="true frames before generating")
    parser.add_argument("--horizon", type=int, default=16, help="generated frames scored")
    parser.add_argument("--bands", default=DEFAULT_BANDS, help="bands of k, e.g. 32-63,64-")
    parser.add_argument("--far", type=int, default=32, help="k of the memory target (k >= far)")
    parser.add_argument("--sectors", type=int, default=4, help="heading sectors of a view")
    parser.add_argument("--seed", type=int, default=0, help="seed of the action derangement")
    parser.add_argument("--batch", type=int, default=8, help="test videos per batch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        bands = parse_bands(args.bands)
    except ValueError as err:
        parser.error(str(err))
    if args.models:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
    else:
        models = [m for m in MODELS if (run_dir(out, m) / "checkpoints").is_dir()]
    if not models:
        parser.error(f"no trained models under {out / 'runs'}: run experiments/maze/run.py")
    torch.set_num_threads(args.threads)
    test = TestSet(out)
    donors = derangement(len(test), args.seed)
    frames = {
        "view": test.gaps(args.sectors),
        "place": test.gaps(1),
        "turns": test.turns(args.sectors),
    }
    results, strips = {}, {}
    for name in models:
        print(f"{name}: scoring {len(test)} test videos", file=sys.stderr, flush=True)
        done = study_model(name, out, test, args, bands, donors, frames)
        results[name], strips[name] = done["record"], done["strip"]
    fetch = {"recall_view": frames["view"], "recall_pose": test.gaps(test.num_headings)}
    references = {
        name: memory_splits(errors, frames, bands, args.far)
        for name, errors in reference_errors(test, fetch, args.batch).items()
    }
    summary = {
        "settings": {
            "context": args.context,
            "horizon": args.horizon,
            "bands": [band_name(b) for b in bands],
            "sectors": args.sectors,
            "far": args.far,
            "seed": args.seed,
            "test_videos": len(test),
            "test_frames": test.num_frames,
            "units": "MSE of frames in [-1, 1], mean over pixels and channels",
        },
        "models": results,
        "references": references,
    }
    (out / "study.json").write_text(json.dumps(summary, indent=2) + "\n")
    truth = next(test.batches(1))[1][0]
    write_strip(out / "strip.png", truth, strips, args.context)
    write_bands(out / "bands.png", {m: r["memory"]["view"] for m, r in results.items()}, bands)
    print_table(results, bands, args.far)
    print_references(references, args.far)
    print(f"wrote {out / 'study.json'}, {out / 'strip.png'}, {out / 'bands.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
