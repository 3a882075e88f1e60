"""First-person ray casting of a MazeWorld layout, vectorised over every column of every frame.

Camera (grid units, x along columns, y along rows): position ``p``, unit direction
``dir = (cos a, sin a)``, camera plane ``plane = PLANE * (-sin a, cos a)`` (field of view
``2 atan(PLANE)``: 90 degrees, DMLab's default). Column ``x`` of a ``W``-wide image casts
the ray ``r = dir + plane * ((2x + 1) / W - 1)``; larger columns look to the right of ``dir``.
Square pixels: a unit at depth ``d`` spans ``f / d`` pixels, ``f = W / (2 PLANE)``.
Walls are one cell high, the eye is half a cell above the floor.

- Walls: a DDA walk through the grid finds the first wall cell on each ray and the
  perpendicular distance ``d`` to it (distance along ``dir``). Row ``y`` (offset
  ``o = y + 0.5 - H / 2`` from the horizon) shows that wall iff ``|o| < f / (2 d)`` (a row
  span ``[top, bottom)`` per column), at texel row ``int(TS (o d / f + 1/2))`` (float32).
- Floor and ceiling (where no wall is): row ``y`` below the horizon sees the floor at
  distance ``d_y = f / (2 o)``, at the point ``p + d_y r``; the ceiling row mirrored about the
  horizon sees the ceiling above the same point.

Every pixel becomes one index into the texture atlas (``maze_layout.texture_atlas``), so a
video is one gather. :func:`render` is the fast path (numpy over all columns of 16 frames
at a time, after one DDA for all columns of all frames); :func:`render_ref` computes every
pixel with scalar Python arithmetic, the same operations in the same order, and the tests
pin the two together.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from convssm.data.maze_layout import (
    FOG_LEVELS,
    FOG_PER_CELL,
    TEXTURE_SIZE,
    MazeLayout,
    ceiling_texture,
    floor_texture,
    heading_vectors,
    texture_atlas,
    wall_texture,
)

__all__ = [
    "PLANE",
    "cast_rays",
    "cast_rays_ref",
    "floor_maps",
    "render",
    "render_ref",
    "texels_to_rgb",
    "texels_to_planes",
]

PLANE = 1.0
_FAR = 1e30
_TEXELS = TEXTURE_SIZE * TEXTURE_SIZE


def _ray_directions(
    heading: np.ndarray, num_headings: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """(T,) heading indices -> ray directions rdx, rdy of shape (T, W)."""
    cos, sin = heading_vectors(num_headings)
    c, s = cos[heading][:, None], sin[heading][:, None]
    camx = (2.0 * np.arange(width) + 1.0) / width - 1.0
    return c + (-s * PLANE) * camx, s + (c * PLANE) * camx


def cast_rays(
    grid: np.ndarray, px: np.ndarray, py: np.ndarray, rdx: np.ndarray, rdy: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """DDA for N rays at once.

    Args:
        grid: (G, G) with 0 for open cells; every ray must start in an open cell of a maze
            closed by walls.
        px, py, rdx, rdy: (N,) float64 origins and directions.
    Returns:
        perpendicular distance (N,) float64, wall value ``grid[y, x]`` (N,), side (N,) int
        (0: crossed a vertical grid line, 1: a horizontal one), wall texel column (N,) int.
    """
    n = px.shape[0]
    mx, my = px.astype(np.int64), py.astype(np.int64)
    with np.errstate(divide="ignore"):
        dx = np.where(rdx == 0.0, _FAR, np.abs(1.0 / rdx))
        dy = np.where(rdy == 0.0, _FAR, np.abs(1.0 / rdy))
    stx = np.where(rdx < 0.0, -1, 1)
    sty = np.where(rdy < 0.0, -1, 1)
    sx = np.where(rdx < 0.0, (px - mx) * dx, (mx + 1.0 - px) * dx)
    sy = np.where(rdy < 0.0, (py - my) * dy, (my + 1.0 - py) * dy)
    perp = np.empty(n)
    value = np.empty(n, dtype=grid.dtype)
    side = np.empty(n, dtype=np.int64)
    idx = np.arange(n)
    size = grid.shape[0]
    for _ in range(4 * size):
        xs = sx < sy
        mx = mx + np.where(xs, stx, 0)
        my = my + np.where(xs, 0, sty)
        hit_value = grid[my, mx]
        hit = hit_value > 0
        if hit.any():
            h = idx[hit]
            xh = xs[hit]
            perp[h] = np.where(xh, sx[hit], sy[hit])  # before this step's increment
            value[h] = hit_value[hit]
            side[h] = np.where(xh, 0, 1)
            keep = ~hit
            idx, xs, mx, my = idx[keep], xs[keep], mx[keep], my[keep]
            sx, sy, dx, dy, stx, sty = sx[keep], sy[keep], dx[keep], dy[keep], stx[keep], sty[keep]
            if not idx.size:
                break
        sx = sx + np.where(xs, dx, 0.0)
        sy = sy + np.where(xs, 0.0, dy)
    else:  # pragma: no cover - a closed maze always stops every ray
        raise ValueError("a ray left the maze: the grid must be closed by walls")
    wall_x = np.where(side == 0, py + perp * rdy, px + perp * rdx)
    u = np.minimum(((wall_x - np.floor(wall_x)) * TEXTURE_SIZE).astype(np.int64), TEXTURE_SIZE - 1)
    flip = ((side == 0) & (rdx > 0.0)) | ((side == 1) & (rdy < 0.0))
    u = np.where(flip, TEXTURE_SIZE - 1 - u, u)
    return perp, value, side, u


def cast_rays_ref(
    grid: np.ndarray, px: float, py: float, rdx: float, rdy: float
) -> tuple[float, int, int, int]:
    """One ray, scalar Python: (perpendicular distance, wall value, side, texel column)."""
    mx, my = int(px), int(py)
    dx = _FAR if rdx == 0.0 else abs(1.0 / rdx)
    dy = _FAR if rdy == 0.0 else abs(1.0 / rdy)
    stx, sx = (-1, (px - mx) * dx) if rdx < 0.0 else (1, (mx + 1.0 - px) * dx)
    sty, sy = (-1, (py - my) * dy) if rdy < 0.0 else (1, (my + 1.0 - py) * dy)
    while True:
        if sx < sy:
            mx, side, perp = mx + stx, 0, sx
            sx += dx
        else:
            my, side, perp = my + sty, 1, sy
            sy += dy
        if grid[my, mx] > 0:
            break
    wall_x = py + perp * rdy if side == 0 else px + perp * rdx
    u = min(int((wall_x - math.floor(wall_x)) * TEXTURE_SIZE), TEXTURE_SIZE - 1)
    if (side == 0 and rdx > 0.0) or (side == 1 and rdy < 0.0):
        u = TEXTURE_SIZE - 1 - u
    return perp, int(grid[my, mx]), side, u


def _fog(distance):
    """Fog level of a distance (array or scalar)."""
    if isinstance(distance, np.ndarray):
        return np.minimum((distance * FOG_PER_CELL).astype(np.int64), FOG_LEVELS - 1)
    return min(int(distance * FOG_PER_CELL), FOG_LEVELS - 1)


def _wall_rows(perp, height: int, focal: float):
    """First and one-past-last wall row of a column at distance ``perp`` (arrays or scalars).

    Row ``y`` is wall iff ``|y + 1/2 - H/2| < f / (2 perp)``.
    """
    reach = focal / (2.0 * perp)
    centre = height / 2.0 - 0.5
    top = np.floor(centre - reach) + 1.0
    bottom = np.ceil(centre + reach)
    return np.clip(top, 0, height).astype(np.int64), np.clip(bottom, 0, height).astype(np.int64)


def _wall_v(perp, height: int, focal: float):
    """float32 ``(a, b)`` with texel row ``int(y * a + b)`` of wall row ``y``.

    ``y a + b = TS ((y + 1/2 - H/2) perp / f + 1/2)``, evaluated in float32.
    """
    a = perp * (TEXTURE_SIZE / focal)
    b = (0.5 - height / 2.0) * a + TEXTURE_SIZE / 2.0
    return np.float32(a) if np.ndim(a) == 0 else a.astype(np.float32), (
        np.float32(b) if np.ndim(b) == 0 else b.astype(np.float32)
    )


def _floor_rows(height: int, focal: float) -> tuple[np.ndarray, np.ndarray]:
    """Floor rows ``H - H//2 .. H-1``: their distances (float64) and fog texel offsets."""
    offset = np.arange(height - height // 2, height) + 0.5 - height / 2.0
    dist = focal / (2.0 * offset)
    return dist, _fog(dist) * _TEXELS


def floor_maps(layout: MazeLayout) -> tuple[np.ndarray, np.ndarray]:
    """Texel index (fog level 0) of the floor and of the ceiling at every texel of the maze.

    Returns:
        two (G * TS * G * TS,) int32 arrays, index ``iy * G * TS + ix`` for the texel
        ``(ix, iy)`` (``ix = int(x * TS)``).
    """
    base = floor_texture(layout.floor.astype(np.int32), 0) * _TEXELS  # (G, G)
    cells = np.repeat(np.repeat(base, TEXTURE_SIZE, axis=0), TEXTURE_SIZE, axis=1)
    texels = _texel_grid(layout.size)
    return (cells + texels).reshape(-1), _ceiling_map(layout.size)


@functools.lru_cache(maxsize=4)
def _texel_grid(size: int) -> np.ndarray:
    """(G * TS, G * TS) int32 texel offset ``(iy % TS) * TS + ix % TS``."""
    one = np.arange(_TEXELS, dtype=np.int32).reshape(TEXTURE_SIZE, TEXTURE_SIZE)
    grid = np.tile(one, (size, size))
    grid.setflags(write=False)
    return grid


@functools.lru_cache(maxsize=4)
def _ceiling_map(size: int) -> np.ndarray:
    out = (_texel_grid(size) + ceiling_texture(0) * _TEXELS).reshape(-1)
    out.setflags(write=False)
    return out


def render(
    layout: MazeLayout,
    position: np.ndarray,
    heading: np.ndarray,
    *,
    num_headings: int,
    image_size: int,
    chunk: int = 16,
) -> np.ndarray:
    """Texel indices of every pixel of every frame.

    Args:
        layout: the maze.
        position: (T, 2) float64 camera positions (x, y) in grid units, in open cells.
        heading: (T,) int heading indices in ``[0, num_headings)``.
        chunk: frames per pass over the pixels (the result does not depend on it).
    Returns:
        (T, H, W) intp indices into ``texture_atlas()`` (H = W = ``image_size``).
    """
    t, h, w = position.shape[0], image_size, image_size
    grid = layout.grid
    focal = w / (2.0 * PLANE)
    rdx, rdy = _ray_directions(np.asarray(heading), num_headings, w)  # (T, W)
    px, py = position[:, 0], position[:, 1]
    perp, value, side, u = cast_rays(
        grid, np.repeat(px, w), np.repeat(py, w), rdx.reshape(-1), rdy.reshape(-1)
    )
    # Per column: wall texel base, wall row span, texel-row line, floor ray (float32).
    top, bottom = _wall_rows(perp, h, focal)
    a, b = _wall_v(perp, h, focal)
    base = wall_texture(value.astype(np.int64) - 1, side, _fog(perp)) * _TEXELS + u
    columns = {
        "base": base.astype(np.int32).reshape(t, 1, w),
        "top": top.astype(np.int32).reshape(t, 1, w),
        "span": (bottom - top).astype(np.uint32).reshape(t, 1, w),
        "a": a.reshape(t, 1, w),
        "b": b.reshape(t, 1, w),
        "perp": perp.astype(np.float32).reshape(t, 1, w),
        "rdx": (rdx * TEXTURE_SIZE).astype(np.float32)[:, None, :],
        "rdy": (rdy * TEXTURE_SIZE).astype(np.float32)[:, None, :],
        "px": (px * TEXTURE_SIZE).astype(np.float32)[:, None, None],
        "py": (py * TEXTURE_SIZE).astype(np.float32)[:, None, None],
    }
    maps = floor_maps(layout)
    out = np.empty((t, h, w), dtype=np.intp)  # gathers take intp indices without a copy
    for t0 in range(0, t, chunk):  # a few frames at a time: temporaries stay in cache
        part = {k: v[t0 : t0 + chunk] for k, v in columns.items()}
        _pixels(part, maps, grid.shape[0], focal, out[t0 : t0 + chunk])
    return out


def _pixels(col: dict, maps: tuple, grid_size: int, focal: float, out: np.ndarray) -> None:
    """Fill ``out`` (T, H, W) with texel indices from per-column values ``col`` (T, 1, W)."""
    h = out.shape[1]
    rows = np.arange(h, dtype=np.int32)[None, :, None]  # (1, H, 1)
    vf = rows.astype(np.float32) * col["a"]  # (T, H, W)
    vf += col["b"]
    v = vf.astype(np.int32)  # > -1 on wall rows, so truncation gives >= 0 there
    np.minimum(v, TEXTURE_SIZE - 1, out=v)
    v *= TEXTURE_SIZE
    v += col["base"]
    # top <= y < bottom as one unsigned comparison: (y - top) mod 2^32 < bottom - top.
    is_wall = (rows - col["top"]).view(np.uint32) < col["span"]
    # Floor and ceiling: the point at each floor row's distance (no further than the wall).
    half = h // 2
    dist, fog = _floor_rows(h, focal)
    d = np.minimum(dist.astype(np.float32)[None, :, None], col["perp"])  # (T, half, W)
    ix = d * col["rdx"]
    ix += col["px"]
    iy = d * col["rdy"]
    iy += col["py"]
    flat = iy.astype(np.intp)
    flat *= grid_size * TEXTURE_SIZE
    flat += ix.astype(np.intp)
    fog = fog.astype(np.intp)[None, :, None]
    np.add(maps[0][flat], fog, out=out[:, h - half :])
    np.add(maps[1][flat], fog, out=out[:, :half][:, ::-1])
    if h % 2:
        out[:, half] = 0  # the horizon row of an odd height is always wall
    np.copyto(out, v, where=is_wall)


def render_ref(
    layout: MazeLayout,
    position: np.ndarray,
    heading: np.ndarray,
    *,
    num_headings: int,
    image_size: int,
) -> np.ndarray:
    """The same as :func:`render`, pixel by pixel in scalar arithmetic (slow; for tests).

    float32 steps use numpy float32 scalars, as the fast path does on arrays.
    """
    t, h, w = len(position), image_size, image_size
    grid = layout.grid
    focal = w / (2.0 * PLANE)
    f32 = np.float32
    out = np.zeros((t, h, w), dtype=np.int64)
    cos, sin = heading_vectors(num_headings)
    for f in range(t):
        px, py = float(position[f, 0]), float(position[f, 1])
        c, s = float(cos[int(heading[f])]), float(sin[int(heading[f])])
        for x in range(w):
            camx = (2.0 * x + 1.0) / w - 1.0
            rdx, rdy = c + (-s * PLANE) * camx, s + (c * PLANE) * camx
            perp, value, side, u = cast_rays_ref(grid, px, py, rdx, rdy)
            top, bottom = _wall_rows(perp, h, focal)
            a = f32(perp * (TEXTURE_SIZE / focal))
            b = f32((0.5 - h / 2.0) * (perp * (TEXTURE_SIZE / focal)) + TEXTURE_SIZE / 2.0)
            for y in range(h):
                offset = y + 0.5 - h / 2.0
                if top <= y < bottom:  # a wall
                    v = min(max(int(f32(y) * a + b), 0), TEXTURE_SIZE - 1)
                    tex = wall_texture(value - 1, side, _fog(perp))
                    out[f, y, x] = tex * _TEXELS + v * TEXTURE_SIZE + u
                    continue
                dist = focal / (2.0 * abs(offset))
                d = min(f32(dist), f32(perp))
                ix = int(d * f32(rdx * TEXTURE_SIZE) + f32(px * TEXTURE_SIZE))
                iy = int(d * f32(rdy * TEXTURE_SIZE) + f32(py * TEXTURE_SIZE))
                texel = (iy % TEXTURE_SIZE) * TEXTURE_SIZE + ix % TEXTURE_SIZE
                if offset > 0:
                    colour = int(layout.floor[iy // TEXTURE_SIZE, ix // TEXTURE_SIZE])
                    tex = floor_texture(colour, _fog(dist))
                else:
                    tex = ceiling_texture(_fog(dist))
                out[f, y, x] = tex * _TEXELS + texel
    return out


def texels_to_rgb(texels: np.ndarray, chunk: int = 16) -> np.ndarray:
    """(T, H, W) atlas indices -> (T, H, W, 3) uint8 (gathered ``chunk`` frames at a time)."""
    rgb = texture_atlas().rgb.view("V3").reshape(-1)  # one 3-byte record per texel
    out = np.empty(texels.shape, dtype=rgb.dtype)
    for t0 in range(0, texels.shape[0], chunk):
        np.take(rgb, texels[t0 : t0 + chunk], out=out[t0 : t0 + chunk])
    return out.view(np.uint8).reshape(texels.shape + (3,))


def texels_to_planes(texels: np.ndarray, chunk: int = 16) -> np.ndarray:
    """(T, H, W) atlas indices -> (T, 3, H, W) float32 in [-1, 1] (``rgb / 127.5 - 1``)."""
    planes = texture_atlas().planes
    out = np.empty((texels.shape[0], 3) + texels.shape[1:], dtype=np.float32)
    for t0 in range(0, texels.shape[0], chunk):
        for c in range(3):
            np.take(planes[c], texels[t0 : t0 + chunk], out=out[t0 : t0 + chunk, c])
    return out
