"""MazeWorld: the renderer against its scalar reference, determinism, actions, walls, revisits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convssm.data import MAZE_ACTIONS, MazeWorld, make_loader, revisits
from convssm.data.maze_agent import (
    BACK,
    FORWARD,
    POSITION_UNITS,
    STRAFE_LEFT,
    STRAFE_RIGHT,
    TURN_LEFT,
    TURN_RIGHT,
    Motion,
)
from convssm.data.maze_layout import (
    FOG_LEVELS,
    TEXTURE_SIZE,
    MazeLayout,
    texture_atlas,
)
from convssm.data.maze_render import (
    _ray_directions,
    cast_rays,
    cast_rays_ref,
    render,
    render_ref,
    texels_to_planes,
    texels_to_rgb,
)

K = 24  # headings of the default MazeWorld


def _render(layout, states, size=16):
    pos = np.array([[x, y] for x, y, _ in states], dtype=np.float64) / POSITION_UNITS
    heading = np.array([k for _, _, k in states])
    return render(layout, pos, heading, num_headings=K, image_size=size)


def test_action_names_are_the_documented_six():
    assert MAZE_ACTIONS == (
        "forward", "back", "turn_left", "turn_right", "strafe_left", "strafe_right",
    )  # fmt: skip
    assert MazeWorld.num_actions == 6


@pytest.mark.parametrize("size", [16, 17])
def test_render_matches_scalar_reference(size):
    ds = MazeWorld(4, num_frames=120, image_size=size, seed=3)
    for i in range(2):
        ep = ds.episode(i)
        pos, heading = ep.trajectory.position[::13], ep.trajectory.heading[::13]
        fast = render(ep.layout, pos, heading, num_headings=K, image_size=size, chunk=4)
        ref = render_ref(ep.layout, pos, heading, num_headings=K, image_size=size)
        assert fast.shape == (len(pos), size, size)
        np.testing.assert_array_equal(fast, ref)  # (three chunks of frames and a partial one)
        whole = render(ep.layout, pos, heading, num_headings=K, image_size=size, chunk=1000)
        np.testing.assert_array_equal(whole, fast)


def test_cast_rays_matches_reference_on_random_rays():
    ep = MazeWorld(1, num_frames=50, seed=7).episode(0)
    rng = np.random.default_rng(0)
    cells = ep.layout.open_cells()
    pick = cells[rng.integers(len(cells), size=200)]
    px = pick[:, 1] + rng.uniform(0.05, 0.95, 200)
    py = pick[:, 0] + rng.uniform(0.05, 0.95, 200)
    angle = rng.uniform(0, 2 * np.pi, 200)
    rdx, rdy = np.cos(angle), np.sin(angle)
    rdx[:3], rdy[:3] = 0.0, 1.0  # axis-aligned rays (a zero component)
    rdx[3:6], rdy[3:6] = -1.0, 0.0
    perp, value, side, u = cast_rays(ep.layout.grid, px, py, rdx, rdy)
    for i in range(200):
        ref = cast_rays_ref(ep.layout.grid, px[i], py[i], rdx[i], rdy[i])
        assert (perp[i], value[i], side[i], u[i]) == ref
    assert (value > 0).all() and (perp > 0).all()


def test_items_are_deterministic_and_well_formed():
    kwargs = dict(num_frames=40, image_size=24, seed=5)
    ds = MazeWorld(6, **kwargs)
    item = ds[3]
    assert set(item) == {"video", "actions"}
    video, actions = item["video"], item["actions"]
    assert video.shape == (40, 3, 24, 24) and video.dtype == torch.float32
    assert actions.shape == (40,) and actions.dtype == torch.int64
    assert video.min() >= -1.0 and video.max() <= 1.0 and video.std() > 0.1
    assert actions.min() >= 0 and actions.max() < 6
    # Pure function of (seed, split, index): a fresh instance, another order, same items.
    again = MazeWorld(6, **kwargs)
    for i in (5, 3, 0):
        a, b = ds[i], again[i]
        torch.testing.assert_close(a["video"], b["video"], rtol=0, atol=0)
        torch.testing.assert_close(a["actions"], b["actions"], rtol=0, atol=0)
    # float item = uint8 video / 127.5 - 1, exactly as VideoFolder converts an npz
    rgb, acts = ds.video_uint8(3)
    assert rgb.shape == (40, 24, 24, 3) and rgb.dtype == np.uint8
    as_float = torch.from_numpy(rgb).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    torch.testing.assert_close(video, as_float, rtol=0, atol=0)
    np.testing.assert_array_equal(acts, actions.numpy())
    # and through a loader (batched dicts)
    batch = next(iter(make_loader(ds, 2, shuffle=False)))
    assert batch["video"].shape == (2, 40, 3, 24, 24) and batch["actions"].shape == (2, 40)


def test_seeds_splits_indices_and_epochs_differ():
    base = MazeWorld(3, num_frames=30, image_size=16, seed=0)
    others = [
        MazeWorld(3, num_frames=30, image_size=16, seed=1),
        MazeWorld(3, num_frames=30, image_size=16, seed=0, split="test"),
    ]
    v0 = base[0]["video"]
    for other in others:
        assert not torch.equal(v0, other[0]["video"])
    assert not torch.equal(v0, base[1]["video"])
    base.set_epoch(1)
    assert not torch.equal(v0, base[0]["video"])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="split"):
        MazeWorld(2, split="eval")
    with pytest.raises(ValueError, match="num_headings"):
        MazeWorld(2, num_headings=10)
    with pytest.raises(ValueError, match="unknown MazeWorld parameters"):
        MazeWorld(2, colour="red")
    with pytest.raises(ValueError, match="num_videos"):
        MazeWorld(0)
    with pytest.raises(IndexError):
        MazeWorld(2)[2]


def _corridor() -> MazeLayout:
    """Cells (row 2, columns 1-5) open; the wall above (row 1) has value 1, the wall below
    (row 3) value 2, every other wall value 4."""
    grid = np.full((7, 7), 4, dtype=np.int16)
    grid[1, :], grid[3, :] = 1, 2
    grid[2, 1:6] = 0
    zeros = np.zeros((7, 7), dtype=np.int16)
    return MazeLayout(grid=grid, floor=zeros, zones=zeros)


def _column_walls(layout, x, y, k, width=16):
    rdx, rdy = _ray_directions(np.array([k]), K, width)
    _, value, _, _ = cast_rays(
        layout.grid, np.full(width, x / POSITION_UNITS), np.full(width, y / POSITION_UNITS),
        rdx[0], rdy[0],
    )  # fmt: skip
    return value


def test_actions_move_the_camera_as_documented():
    layout = _corridor()
    motion = Motion(layout, K, 0.25, 0.2)
    q = POSITION_UNITS
    start = (3 * q + q // 2, 2 * q + q // 2, 0)  # mid-corridor, looking along +x
    # The right of the view is +y (the wall of value 2), the left -y (value 1), ahead +x.
    walls = _column_walls(layout, *start)
    assert walls[:4].tolist() == [1] * 4 and walls[-4:].tolist() == [2] * 4
    assert walls[7:9].tolist() == [4, 4]
    # turn_right pans towards the right-hand wall: after a quarter turn it is straight ahead.
    state = start
    for _ in range(K // 4):
        state = motion.step(*state, TURN_RIGHT)
    assert state == (start[0], start[1], K // 4)
    assert _column_walls(layout, *state)[7:9].tolist() == [2, 2]
    # strafe_right moves to +y, strafe_left to -y, forward to +x, back to -x.
    sx, sy, _ = motion.step(*start, STRAFE_RIGHT)
    assert sy > start[1] and sx == start[0]
    sx, sy, _ = motion.step(*start, STRAFE_LEFT)
    assert sy < start[1] and sx == start[0]
    assert motion.step(*start, FORWARD)[0] == start[0] + q // 4
    assert motion.step(*start, BACK)[0] == start[0] - q // 4
    # Undoing an action gives the very same frame; the action itself changes it.
    pairs = [(TURN_LEFT, TURN_RIGHT), (TURN_RIGHT, TURN_LEFT), (FORWARD, BACK),
             (STRAFE_LEFT, STRAFE_RIGHT)]  # fmt: skip
    frame0 = _render(layout, [start])[0]
    for a, b in pairs:
        mid = motion.step(*start, a)
        end = motion.step(*mid, b)
        assert end == start
        frames = _render(layout, [mid, end])
        assert not np.array_equal(frames[0], frame0), MAZE_ACTIONS[a]
        np.testing.assert_array_equal(frames[1], frame0)
    # A full turn returns to the same frame.
    state = start
    for _ in range(K):
        state = motion.step(*state, TURN_LEFT)
    np.testing.assert_array_equal(_render(layout, [state])[0], frame0)


def test_walking_into_a_wall_does_not_move():
    layout = _corridor()
    motion = Motion(layout, K, 0.25, 0.2)
    q = POSITION_UNITS
    for action, axis, limit in ((FORWARD, 0, 6 * q), (STRAFE_LEFT, 1, 2 * q)):
        state = (4 * q + q // 2, 2 * q + q // 2, 0)
        path = [state]
        for _ in range(8):
            path.append(motion.step(*path[-1], action))
        stops = [i for i in range(8) if path[i + 1] == path[i]]
        assert stops, MAZE_ACTIONS[action]
        first = stops[0]
        assert all(path[i + 1] == path[first] for i in range(first, 8))  # stays put
        edge = path[first][axis] + (motion.radius if axis == 0 else -motion.radius)
        assert abs(edge - limit) < q // 4  # stopped just short of the wall
        frames = _render(layout, path[first : first + 2])
        np.testing.assert_array_equal(frames[0], frames[1])
    assert motion.step(5 * q, 2 * q + q // 2, 0, BACK) != (5 * q, 2 * q + q // 2, 0)


def test_videos_never_enter_walls_and_follow_their_actions():
    ds = MazeWorld(12, num_frames=300, seed=11)
    blocked = 0
    for i in range(len(ds)):
        ep = ds.episode(i)
        p = ds.params
        motion = Motion(ep.layout, p.num_headings, p.move_step, p.radius)
        tr = ep.trajectory
        units = np.rint(tr.position * POSITION_UNITS).astype(np.int64)
        np.testing.assert_array_equal(units / POSITION_UNITS, tr.position)  # exact grid
        for t in range(len(tr.actions)):
            x, y, k = int(units[t, 0]), int(units[t, 1]), int(tr.heading[t])
            assert motion.free(x, y)
            if t + 1 < len(tr.actions):  # actions[t + 1] led from frame t to frame t + 1
                nxt = (int(units[t + 1, 0]), int(units[t + 1, 1]), int(tr.heading[t + 1]))
                action = int(tr.actions[t + 1])
                assert motion.step(x, y, k, action) == nxt
                blocked += motion.target(x, y, k, action) != nxt
    assert blocked > 0  # the random bursts do walk into walls


def test_video_frames_follow_the_actions():
    ds = MazeWorld(3, num_frames=300, image_size=16, seed=11)
    for i in range(3):
        ep = ds.episode(i)
        video, actions = ds.video_uint8(i)
        tr = ep.trajectory
        same = (video[1:] == video[:-1]).all(axis=(1, 2, 3))
        moved = (np.diff(tr.position, axis=0) != 0).any(axis=1) | (np.diff(tr.heading) != 0)
        np.testing.assert_array_equal(same, ~moved)  # a frame changes iff the camera moved
        turns = np.isin(actions[1:], [TURN_LEFT, TURN_RIGHT])
        assert not same[turns].any()  # turning always changes the view


def test_policy_revisits_places_and_uses_every_action():
    ds = MazeWorld(16, num_frames=300, seed=2)
    counts = np.zeros(6, dtype=np.int64)
    shares = []
    for i in range(len(ds)):
        tr = ds.episode(i).trajectory
        counts += np.bincount(tr.actions, minlength=6)
        again = revisits(tr, min_gap=30)
        shares.append(again.mean())
        assert len({tuple(c) for c in tr.cells.tolist()}) >= 5  # it does go places
    assert (counts > 0).all(), counts
    assert counts[FORWARD] > 0.3 * counts.sum()  # mostly walking, not spinning
    assert sum(s > 0 for s in shares) >= 14, shares  # (nearly) every video comes back
    assert np.mean(shares) > 0.2, shares


def test_revisits_marks_returns_not_stays():
    class Tr:
        pass

    tr = Tr()
    cells = [(1, 1)] * 40 + [(1, 2)] * 5 + [(1, 1)] * 3
    tr.cells = np.array(cells)
    out = revisits(tr, min_gap=30)
    assert not out[:45].any() and out[45:].all()


def test_atlas_and_texel_conversions():
    atlas = texture_atlas()
    assert atlas.rgb.dtype == np.uint8 and atlas.planes.shape == (3, len(atlas.rgb))
    assert atlas.num_textures % FOG_LEVELS == 0
    assert len(atlas.rgb) == atlas.num_textures * TEXTURE_SIZE**2
    texels = np.random.default_rng(0).integers(0, len(atlas.rgb), size=(2, 5, 6))
    rgb = texels_to_rgb(texels, chunk=1)
    np.testing.assert_array_equal(rgb, atlas.rgb[texels])
    np.testing.assert_array_equal(texels_to_rgb(texels), rgb)
    planes = texels_to_planes(texels, chunk=1)
    np.testing.assert_array_equal(texels_to_planes(texels), planes)
    assert planes.shape == (2, 3, 5, 6) and planes.flags.c_contiguous
    np.testing.assert_array_equal(
        planes, (rgb.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(127.5)) - 1
    )
