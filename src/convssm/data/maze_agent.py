"""MazeWorld's agent: the six actions, collisions, and a policy that keeps coming back.

State: a position ``(x, y)`` held as integers in ``1 / POSITION_UNITS`` of a cell (so moves
are exact and undoing one returns the very same position) and a heading index ``k`` of
``K`` (angle ``2 pi k / K``; ``K`` a multiple of 4).

Actions (``ACTIONS``); ``actions[t]`` is the action that led from frame ``t - 1`` to frame ``t``
(TECO's convention for its DMLab data; the action of frame 0 led to it from a starting state
that is not shown):

====  ==============  ==========================================================
code  name            effect
====  ==============  ==========================================================
0     forward         move ``move_step`` cells along the heading
1     back            move ``move_step`` cells against the heading
2     turn_left       ``k -> k - 1`` (the view pans left by ``360 / K`` degrees)
3     turn_right      ``k -> k + 1``
4     strafe_left     move ``move_step`` cells to the left (heading ``k - K/4``)
5     strafe_right    move ``move_step`` cells to the right (heading ``k + K/4``)
====  ==============  ==========================================================

A move is quantised once per heading (the same vector every time) and is refused as a
whole when the agent's square of half-side ``radius`` would overlap a wall cell: the agent
then stays where it is (walking into a wall does not move it).

Policy: the agent starts on a random open cell and patrols a route of ``num_waypoints``
cells near its start, out and back (``w0 w1 w0 w2 w0 w1 ...``), walking cell centre to
cell centre along shortest paths, turning in place at corners; it sometimes looks around
at a waypoint (a full turn) and now and then takes a short burst of one random action.
So every video comes back to places it has already seen, from several directions.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from convssm.data.maze_layout import MazeLayout, heading_vectors

__all__ = [
    "ACTIONS",
    "POSITION_UNITS",
    "Motion",
    "Trajectory",
    "run_policy",
    "revisits",
    "bfs_distances",
]

ACTIONS = ("forward", "back", "turn_left", "turn_right", "strafe_left", "strafe_right")
FORWARD, BACK, TURN_LEFT, TURN_RIGHT, STRAFE_LEFT, STRAFE_RIGHT = range(6)
POSITION_UNITS = 128


class Motion:
    """The physics of one maze: applies actions to ``(x, y, k)`` states (integer units)."""

    def __init__(
        self, layout: MazeLayout, num_headings: int, move_step: float, radius: float
    ) -> None:
        self.layout = layout
        self.open = layout.grid == 0
        self.num_headings = num_headings
        cos, sin = heading_vectors(num_headings)
        q = POSITION_UNITS
        self.moves = [
            (round(move_step * q * c), round(move_step * q * s))
            for c, s in zip(cos.tolist(), sin.tolist(), strict=True)
        ]
        self.radius = round(radius * q)
        self._rows = self.open.tolist()  # Python lists: fast scalar reads in the policy loop

    def free(self, x: int, y: int) -> bool:
        """Whether the agent's square at ``(x, y)`` (units) touches only open cells."""
        q, r = POSITION_UNITS, self.radius
        x0, x1, y0, y1 = (x - r) // q, (x + r) // q, (y - r) // q, (y + r) // q
        size = len(self._rows)
        if x0 < 0 or y0 < 0 or x1 >= size or y1 >= size:
            return False
        rows = self._rows
        return rows[y0][x0] and rows[y0][x1] and rows[y1][x0] and rows[y1][x1]

    def target(self, x: int, y: int, k: int, action: int) -> tuple[int, int, int]:
        """Where ``action`` would take the agent if nothing were in the way."""
        n = self.num_headings
        if action == TURN_LEFT:
            return x, y, (k - 1) % n
        if action == TURN_RIGHT:
            return x, y, (k + 1) % n
        offset = {FORWARD: 0, BACK: n // 2, STRAFE_LEFT: -(n // 4), STRAFE_RIGHT: n // 4}
        if action not in offset:
            raise ValueError(f"action must be in [0, {len(ACTIONS)}), got {action!r}")
        dx, dy = self.moves[(k + offset[action]) % n]
        return x + dx, y + dy, k

    def step(self, x: int, y: int, k: int, action: int) -> tuple[int, int, int]:
        """Apply ``action``; a move into a wall leaves the agent where it was."""
        nx, ny, nk = self.target(x, y, k, action)
        if (nx, ny) != (x, y) and not self.free(nx, ny):
            return x, y, k
        return nx, ny, nk


def bfs_distances(open_: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """(G, G) shortest path lengths in cells from ``start`` (row, col); -1 where unreachable."""
    rows = open_.tolist()
    size = len(rows)
    dist = [[-1] * size for _ in range(size)]
    dist[start[0]][start[1]] = 0
    queue = deque([start])
    while queue:
        y, x = queue.popleft()
        d = dist[y][x] + 1
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if rows[ny][nx] and dist[ny][nx] < 0:
                dist[ny][nx] = d
                queue.append((ny, nx))
    return np.array(dist, dtype=np.int64)


@dataclass(frozen=True)
class Trajectory:
    """One video's camera path.

    Attributes:
        position: (T, 2) float64 (x, y) in cells, exact multiples of 1 / POSITION_UNITS.
        heading: (T,) int64 heading index of every frame.
        actions: (T,) int64; ``actions[t]`` led from frame ``t - 1`` to frame ``t`` (and to
            frame 0 from the unseen starting state).
        waypoints: (W, 2) (row, col) of the patrolled cells, the start first.
    """

    position: np.ndarray
    heading: np.ndarray
    actions: np.ndarray
    waypoints: np.ndarray

    @property
    def cells(self) -> np.ndarray:
        """(T, 2) (row, col) of the cell the camera is in at every frame."""
        return np.floor(self.position[:, ::-1]).astype(np.int64)


def _pick_waypoints(
    open_: np.ndarray, count: int, radius: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    cells = np.argwhere(open_)
    start = tuple(int(v) for v in cells[rng.integers(len(cells))])
    dist = bfs_distances(open_, start)
    near = np.argwhere((dist >= (radius + 1) // 2) & (dist <= radius))
    if len(near) < count - 1:
        near = np.argwhere(dist >= 1)
    picks = rng.choice(len(near), size=min(count - 1, len(near)), replace=False)
    return [start] + [tuple(int(v) for v in near[i]) for i in picks]


def run_policy(
    motion: Motion,
    num_frames: int,
    rng: np.random.Generator,
    *,
    num_waypoints: int = 3,
    waypoint_radius: int = 10,
    random_action_prob: float = 0.06,
    look_around_prob: float = 0.35,
) -> Trajectory:
    """Run the patrolling policy for ``num_frames`` frames (see the module docstring)."""
    open_ = motion.open
    q, n = POSITION_UNITS, motion.num_headings
    waypoints = _pick_waypoints(open_, num_waypoints, waypoint_radius, rng)
    route = [c for w in waypoints[1:] for c in (w, waypoints[0])] or waypoints[:1]
    distances = {w: bfs_distances(open_, w).tolist() for w in waypoints}
    rows = open_.tolist()
    y0, x0 = waypoints[0]
    x, y, k = x0 * q + q // 2, y0 * q + q // 2, int(rng.integers(n))
    leg, burst, burst_action = 0, 0, FORWARD
    arrive = 0.3 * q  # "at a waypoint": within 0.3 cells of its centre
    on_axis = 0.25 * q
    pos = np.empty((num_frames, 2), dtype=np.int64)
    heading = np.empty(num_frames, dtype=np.int64)
    actions = np.empty(num_frames, dtype=np.int64)
    for t in range(num_frames):
        if burst == 0 and rng.random() < random_action_prob:
            burst, burst_action = int(rng.integers(1, 5)), int(rng.integers(len(ACTIONS)))
        if not burst:
            cy, cx = y // q, x // q
            centre = (cx * q + q // 2, cy * q + q // 2)
            if (cy, cx) == route[leg % len(route)] and _dist(centre, x, y) <= arrive:
                leg += 1
                if rng.random() < look_around_prob:  # a full turn on the spot
                    burst, burst_action = n, int(rng.choice([TURN_LEFT, TURN_RIGHT]))
        if burst:
            action, burst = burst_action, burst - 1
        else:
            goal = route[leg % len(route)]
            aim = centre
            if (cy, cx) != goal:
                nxt = _next_centre((cy, cx), distances[goal], rows, q)
                # Head for the next cell once on the axis joining the two centres (so the
                # straight walk there clears the corners); else first back to the axis.
                lateral = abs(y - centre[1]) if nxt[1] == centre[1] else abs(x - centre[0])
                if lateral <= on_axis:
                    aim = nxt
            action = _towards(motion, x, y, k, *aim)
        x, y, k = motion.step(x, y, k, action)
        pos[t] = x, y
        heading[t] = k
        actions[t] = action
    return Trajectory(
        position=pos.astype(np.float64) / q,
        heading=heading,
        actions=actions,
        waypoints=np.array(waypoints, dtype=np.int64),
    )


def _dist(point: tuple[int, int], x: int, y: int) -> float:
    return math.hypot(point[0] - x, point[1] - y)


def _next_centre(
    cell: tuple[int, int], dist: list[list[int]], rows: list[list[bool]], q: int
) -> tuple[int, int]:
    """Centre (x, y units) of the neighbour of ``cell`` one step closer to the goal."""
    cy, cx = cell
    for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
        if rows[ny][nx] and dist[ny][nx] == dist[cy][cx] - 1:
            return nx * q + q // 2, ny * q + q // 2
    return cx * q + q // 2, cy * q + q // 2  # the goal itself


def _towards(motion: Motion, x: int, y: int, k: int, ax: float, ay: float) -> int:
    """Turn towards ``(ax, ay)`` until within 3/4 of a heading step, then walk there.

    (A tolerance above half a step stops the agent from zig-zagging between the two
    headings on either side of the aim.)
    """
    n = motion.num_headings
    step = 2.0 * math.pi / n
    error = math.remainder(math.atan2(ay - y, ax - x) - k * step, 2.0 * math.pi)
    if error < -0.75 * step:
        return TURN_LEFT
    if error > 0.75 * step:
        return TURN_RIGHT
    if motion.step(x, y, k, FORWARD)[:2] != (x, y):
        return FORWARD
    # Blocked (off the corridor's axis after a random burst): side-step towards the aim.
    cross = math.cos(2 * math.pi * k / n) * (ay - y) - math.sin(2 * math.pi * k / n) * (ax - x)
    side = STRAFE_RIGHT if cross > 0 else STRAFE_LEFT
    if motion.step(x, y, k, side)[:2] != (x, y):
        return side
    return BACK


def revisits(trajectory: Trajectory, min_gap: int = 30) -> np.ndarray:
    """(T,) bool: the camera is in a cell it first entered at least ``min_gap`` frames ago
    and has left in between (a return to a place, not standing still)."""
    cells = trajectory.cells
    first: dict[tuple[int, int], int] = {}
    out = np.zeros(len(cells), dtype=bool)
    previous = None
    stay_start = 0
    for t, c in enumerate(map(tuple, cells.tolist())):
        if c != previous:
            stay_start, previous = t, c
        seen = first.setdefault(c, t)
        out[t] = seen < stay_start and t - seen >= min_gap
    return out
