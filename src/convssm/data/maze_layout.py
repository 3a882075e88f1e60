"""MazeWorld layouts and textures: the random maze of one video and the shared texel atlas.

A maze of ``n x n`` rooms lives on a ``(2n + 1) x (2n + 1)`` grid of unit cells (row ``y``,
column ``x``): room ``(i, j)`` is cell ``(2i + 1, 2j + 1)``, the cells between rooms are
walls or openings, and the border is wall. A randomised depth-first search carves a perfect
maze; then a share (``loop_fraction``) of the remaining inner walls between two open cells is
knocked out, so there are loops and several ways back to a place.

Appearance (DMLab-like: coloured, textured walls, a tiled floor, a ceiling): the maze is cut
into ``num_zones`` zones (the open cells nearest to each of ``num_zones`` random seed cells).
Each zone has its own wall colour, base wall pattern and floor colour; a quarter of the wall
cells take another pattern, so corners and corridors look different from each other and a
place can be recognised when the agent comes back to it.

All textures live in one atlas built once per process (:func:`texture_atlas`): every texture
is ``TEXTURE_SIZE x TEXTURE_SIZE`` texels, stored at ``FOG_LEVELS`` brightness levels (light
falls off with distance) and, for walls, two sides (faces along y are darker). A rendered
pixel is then one integer index into the atlas (``texel_index``), and a frame one gather.

Grid values: 0 is an open cell; ``m + 1`` is a wall of wall material ``m``
(``m = hue * NUM_PATTERNS + pattern``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MazeLayout",
    "TextureAtlas",
    "make_layout",
    "texture_atlas",
    "heading_vectors",
    "wall_texture",
    "floor_texture",
    "ceiling_texture",
    "TEXTURE_SIZE",
    "FOG_LEVELS",
    "FOG_PER_CELL",
    "NUM_PATTERNS",
    "WALL_HUES",
    "FLOOR_COLOURS",
]

TEXTURE_SIZE = 16  # texels per side of a texture, a power of two (texel = index & 15)
TEXTURE_SHIFT = 4
FOG_LEVELS = 16  # brightness levels by distance
FOG_PER_CELL = 2  # levels per cell of distance: level = min(int(d * 2), 15)
FOG_LENGTH = 7.0  # brightness exp(-d / FOG_LENGTH) at distance d (cells)
SIDE_SHADE = 0.72  # faces hit on a y side (rays crossing a horizontal grid line)

WALL_HUES = np.array(
    [
        [200, 60, 50], [60, 150, 70], [60, 90, 200], [220, 180, 50],
        [160, 70, 180], [50, 170, 180], [230, 120, 40], [200, 200, 200],
        [130, 90, 50], [230, 110, 160], [120, 180, 40], [90, 60, 140],
    ],
    dtype=np.float64,
)  # fmt: skip
FLOOR_COLOURS = np.array(
    [[120, 110, 95], [90, 110, 90], [110, 95, 120], [130, 120, 80], [95, 105, 125], [140, 100, 85]],
    dtype=np.float64,
)
CEILING_COLOUR = np.array([150, 160, 185], dtype=np.float64)
NUM_PATTERNS = 4
NUM_WALL_MATERIALS = len(WALL_HUES) * NUM_PATTERNS


def _patterns() -> np.ndarray:
    """(NUM_PATTERNS, TS, TS) darkening masks in [0, 1]: bricks, panels, tiles, diagonals."""
    r, c = np.mgrid[0:TEXTURE_SIZE, 0:TEXTURE_SIZE]
    bricks = ((r % 4 == 0) | ((c + 4 * ((r // 4) % 2)) % 8 == 0)).astype(np.float64)
    panels = ((c % 8 == 0) | (r == 0) | (r == TEXTURE_SIZE - 1)).astype(np.float64)
    panels = np.maximum(panels, 0.35 * ((c // 4) % 2))
    tiles = 0.6 * (((r // 4) + (c // 4)) % 2)
    diagonals = 0.7 * (((r + c) // 4) % 2)
    return np.stack([bricks, panels, tiles, diagonals])


def _grain(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Fixed texel noise in [-1, 1] (part of the texture library, not of any video)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape)


def _wall_textures() -> np.ndarray:
    """(NUM_WALL_MATERIALS, TS, TS, 3) float64 RGB in [0, 255]."""
    masks = _patterns()
    grain = _grain((NUM_WALL_MATERIALS, TEXTURE_SIZE, TEXTURE_SIZE, 1), 101)
    hue = WALL_HUES[:, None, None, None, :]  # (hues, 1, 1, 1, 3)
    tex = hue * (1.0 - 0.5 * masks[None, :, :, :, None])  # (hues, patterns, TS, TS, 3)
    tex = tex.reshape(NUM_WALL_MATERIALS, TEXTURE_SIZE, TEXTURE_SIZE, 3)
    return tex + 14.0 * grain


def _floor_textures() -> np.ndarray:
    """(len(FLOOR_COLOURS), TS, TS, 3): a 2x2 checker per cell with dark grout lines."""
    r, c = np.mgrid[0:TEXTURE_SIZE, 0:TEXTURE_SIZE]
    half = TEXTURE_SIZE // 2
    mask = 0.18 * (((r // half) + (c // half)) % 2) + 0.45 * ((r == 0) | (c == 0))
    grain = _grain((len(FLOOR_COLOURS), TEXTURE_SIZE, TEXTURE_SIZE, 1), 102)
    return FLOOR_COLOURS[:, None, None, :] * (1.0 - mask[None, :, :, None]) + 8.0 * grain


def _ceiling_texture() -> np.ndarray:
    """(1, TS, TS, 3): plain panels with seams."""
    r, c = np.mgrid[0:TEXTURE_SIZE, 0:TEXTURE_SIZE]
    mask = 0.3 * ((r == 0) | (c == 0))
    grain = _grain((1, TEXTURE_SIZE, TEXTURE_SIZE, 1), 103)
    return CEILING_COLOUR[None, None, None, :] * (1.0 - mask[None, :, :, None]) + 5.0 * grain


@dataclass(frozen=True)
class TextureAtlas:
    """Every texture at every brightness, flattened to texels.

    Attributes:
        rgb: (N, 3) uint8 texel colours.
        planes: (3, N) float32 the same colours in [-1, 1] (``rgb / 127.5 - 1``), one plane
            per channel, so a (T, 3, H, W) float video is three gathers.
        num_textures: N / TEXTURE_SIZE**2.
    """

    rgb: np.ndarray
    planes: np.ndarray
    num_textures: int


def wall_texture(material, side, level):
    """Texture number of a wall of ``material`` hit on ``side`` (0: x, 1: y) at fog ``level``."""
    return (material * 2 + side) * FOG_LEVELS + level


def floor_texture(floor, level):
    """Texture number of floor colour ``floor`` at fog ``level``."""
    return (NUM_WALL_MATERIALS * 2 + floor) * FOG_LEVELS + level


def ceiling_texture(level):
    """Texture number of the ceiling at fog ``level``."""
    return (NUM_WALL_MATERIALS * 2 + len(FLOOR_COLOURS)) * FOG_LEVELS + level


@functools.lru_cache(maxsize=1)
def texture_atlas() -> TextureAtlas:
    """The process-wide atlas (built once; ~1.7 M texels, 6.7 MB as float planes)."""
    fog = np.exp(-(np.arange(FOG_LEVELS) + 0.5) / FOG_PER_CELL / FOG_LENGTH)  # (F,)
    walls = _wall_textures()[:, None] * np.array([1.0, SIDE_SHADE])[None, :, None, None, None]
    walls = walls.reshape(-1, TEXTURE_SIZE, TEXTURE_SIZE, 3)  # (materials * 2 sides, ...)
    flat = np.concatenate([walls, _floor_textures(), _ceiling_texture()])  # (K, TS, TS, 3)
    lit = flat[:, None] * fog[None, :, None, None, None]  # (K, F, TS, TS, 3)
    rgb = np.clip(np.rint(lit), 0, 255).astype(np.uint8).reshape(-1, 3)
    planes = np.ascontiguousarray((rgb.T.astype(np.float32) / np.float32(127.5)) - 1.0)
    rgb = np.ascontiguousarray(rgb)
    for array in (rgb, planes):
        array.setflags(write=False)
    return TextureAtlas(rgb=rgb, planes=planes, num_textures=len(rgb) // TEXTURE_SIZE**2)


@dataclass(frozen=True)
class MazeLayout:
    """The maze of one video.

    Attributes:
        grid: (G, G) int16; 0 open, ``m + 1`` a wall of material ``m``.
        floor: (G, G) int16 floor colour of every cell (meaningful on open cells).
        zones: (G, G) int16 zone of every cell.
    """

    grid: np.ndarray
    floor: np.ndarray
    zones: np.ndarray

    @property
    def size(self) -> int:
        return int(self.grid.shape[0])

    def is_open(self, y: int, x: int) -> bool:
        return 0 <= y < self.size and 0 <= x < self.size and self.grid[y, x] == 0

    def open_cells(self) -> np.ndarray:
        """(K, 2) (row, column) of every open cell, row-major order."""
        return np.argwhere(self.grid == 0)


def _carve(rooms: int, rng: np.random.Generator) -> np.ndarray:
    """Randomised depth-first search: (G, G) bool, True where open."""
    size = 2 * rooms + 1
    open_ = np.zeros((size, size), dtype=bool)
    start = (int(rng.integers(rooms)), int(rng.integers(rooms)))
    seen = {start}
    stack = [start]
    open_[2 * start[0] + 1, 2 * start[1] + 1] = True
    while stack:
        i, j = stack[-1]
        nbrs = [
            (i + di, j + dj)
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1))
            if 0 <= i + di < rooms and 0 <= j + dj < rooms and (i + di, j + dj) not in seen
        ]
        if not nbrs:
            stack.pop()
            continue
        ni, nj = nbrs[int(rng.integers(len(nbrs)))]
        open_[i + ni + 1, j + nj + 1] = True  # the wall cell between the two rooms
        open_[2 * ni + 1, 2 * nj + 1] = True
        seen.add((ni, nj))
        stack.append((ni, nj))
    return open_


def _knock_loops(open_: np.ndarray, fraction: float, rng: np.random.Generator) -> None:
    """Open ``fraction`` of the inner walls that separate two open cells (in place)."""
    size = open_.shape[0]
    candidates = []
    for y in range(1, size - 1):
        for x in range(1, size - 1):
            if open_[y, x]:
                continue
            if (open_[y - 1, x] and open_[y + 1, x]) or (open_[y, x - 1] and open_[y, x + 1]):
                candidates.append((y, x))
    count = int(round(fraction * len(candidates)))
    if count:
        for k in rng.choice(len(candidates), size=count, replace=False):
            open_[candidates[k]] = True


def make_layout(
    rooms: int, num_zones: int, loop_fraction: float, rng: np.random.Generator
) -> MazeLayout:
    """Draw one maze of ``rooms x rooms`` rooms, its zones, wall materials and floors."""
    open_ = _carve(rooms, rng)
    _knock_loops(open_, loop_fraction, rng)
    size = open_.shape[0]
    cells = np.argwhere(open_)
    seeds = cells[rng.choice(len(cells), size=min(num_zones, len(cells)), replace=False)]
    yy, xx = np.mgrid[0:size, 0:size]
    d2 = (yy[None] - seeds[:, 0, None, None]) ** 2 + (xx[None] - seeds[:, 1, None, None]) ** 2
    zones = np.argmin(d2, axis=0).astype(np.int16)  # ties: the lower zone
    z = len(seeds)
    hues = rng.choice(len(WALL_HUES), size=z, replace=z > len(WALL_HUES))
    base_pattern = rng.integers(0, NUM_PATTERNS, size=z)
    floors = rng.choice(len(FLOOR_COLOURS), size=z, replace=z > len(FLOOR_COLOURS))
    other = rng.random((size, size)) < 0.25
    pattern = np.where(other, rng.integers(0, NUM_PATTERNS, size=(size, size)), base_pattern[zones])
    material = hues[zones] * NUM_PATTERNS + pattern
    grid = np.where(open_, 0, material + 1).astype(np.int16)
    return MazeLayout(grid=grid, floor=floors[zones].astype(np.int16), zones=zones)


def heading_vectors(num_headings: int) -> tuple[np.ndarray, np.ndarray]:
    """(K,) cos and sin of the ``K`` headings ``2 pi k / K`` (x along columns, y along rows)."""
    angles = 2.0 * math.pi * np.arange(num_headings) / num_headings
    return np.cos(angles), np.sin(angles)
