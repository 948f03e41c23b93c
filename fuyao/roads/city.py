"""Procedural cities: a grid of junctions (optionally perturbed) joined by two-way streets, every boundary
junction with a stub street that leaves the map (the entries and the destinations).

Right-hand traffic. Lanes of a street are ordered left (next to the centre line) to right. At a junction a car
arriving on lane k may go straight on to lane k of the opposite street, turn right from the rightmost lane into
the rightmost lane, and turn left from the leftmost lane into the leftmost lane; so with two lanes per
direction a car picks its lane for the next turn before the solid line (`solid_m` before the stop line, where
lane changes end). Connector centre lines are cubic Bezier curves tangent to both lanes.

Junctions are signalised (a fixed-time two-phase program: each street pair green with permissive left turns,
then yellow, then all red) or priority junctions (the east-west street is the major road; the minor approaches
give way, left turns give way to oncoming traffic), drawn per junction by `signal_fraction`.

Destinations: every stub street that leaves the map is one destination (`exit_group`), numbered
counter-clockwise from the south-west corner's southern stub; a route is any trip between two boundary points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fuyao.roads.junction import _comfortable_speed
from fuyao.roads.lanegraph import MAP_CITY, LaneGraphBuilder, MapError, RoadMap, stack_maps
from fuyao.roads.signals import Phase

EAST, NORTH, WEST, SOUTH = range(4)  # arms of a junction, counter-clockwise
ARM_DIRECTION = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
STRAIGHT, RIGHT, LEFT = "straight", "right", "left"


@dataclass(frozen=True)
class CityConfig:
    """A procedural grid city. Distances in metres, speeds in m/s, times in s."""

    rows: int = 3  # junctions north-south
    cols: int = 3  # junctions east-west
    block_m: float = 120.0  # distance between neighbouring junction centres
    lanes: int = 1  # lanes per direction, 1 or 2
    lane_width_m: float = 3.5
    speed_limit: float = 13.9  # m/s (50 km/h)
    stub_m: float = 100.0  # length of the streets that enter and leave the map at its boundary
    signal_fraction: float = 1.0  # share of junctions with signals; the others are priority junctions
    green_s: tuple[float, float] = (15.0, 30.0)  # green per street pair, drawn per map in this range
    yellow_s: float = 3.5  # ITE: 1 s + v / (2 x 3 m/s^2) at 50 km/h
    all_red_s: float = 2.0
    jitter_m: float = 0.0  # junction centres moved up to this far (irregular, non-orthogonal streets)
    drop_fraction: float = 0.0  # share of interior streets removed (T-junctions), keeping every lane reachable
    solid_m: float = 20.0  # no lane change in the last metres before a stop line
    solid_after_m: float = 10.0  # nor in the first metres of a street (after a junction, or where traffic enters)
    point_spacing_m: float = 2.0

    def __post_init__(self) -> None:
        def bad(field: str, value, allowed: str) -> MapError:
            return MapError(f"CityConfig.{field}: got {value!r}; allowed: {allowed}")

        for name in ("rows", "cols"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise bad(name, value, "an integer >= 1 (junctions along that side; a city of zero blocks has none)")
        if self.lanes not in (1, 2):
            raise bad("lanes", self.lanes, "1 or 2 per direction")
        for name in ("block_m", "lane_width_m", "speed_limit", "stub_m", "yellow_s", "point_spacing_m"):
            if not getattr(self, name) > 0:
                raise bad(name, getattr(self, name), "> 0")
        if not 0.0 <= self.signal_fraction <= 1.0:
            raise bad("signal_fraction", self.signal_fraction, "0 to 1")
        if not 0.0 <= self.drop_fraction < 0.5:
            raise bad("drop_fraction", self.drop_fraction, "0 to 0.5")
        lo, hi = self.green_s
        if not 0 < lo <= hi:
            raise bad("green_s", self.green_s, "0 < lo <= hi seconds")
        if self.all_red_s < 0:
            raise bad("all_red_s", self.all_red_s, ">= 0 s")
        if not 0.0 <= self.jitter_m <= 0.2 * self.block_m:
            raise bad("jitter_m", self.jitter_m, f"0 to {0.2 * self.block_m} m (a fifth of block_m)")
        street = self.block_m - 2 * self.junction_radius_m - 2 * self.jitter_m
        if street < self.solid_m + 10.0:
            raise bad(
                "block_m", self.block_m, f">= {self.block_m - street + self.solid_m + 10.0:.1f} m for these lanes"
            )

    @property
    def junction_radius_m(self) -> float:
        """Distance from a junction's centre to its stop lines."""
        return self.lanes * self.lane_width_m + 6.0

    # What `reset` asks of any road config: where vehicles may be placed, and the reference length.
    @property
    def spawn_window(self) -> tuple[float, float]:
        return (0.0, 1.0e9)

    @property
    def length_m(self) -> float:
        return self.block_m


def _bezier(p0, h0, p3, h3, n: int = 24) -> np.ndarray:
    """Cubic Bezier from `p0` leaving along `h0` to `p3` arriving along `h3` (handles 0.39 of the chord: a
    quarter circle for a right-angle turn)."""
    chord = float(np.linalg.norm(p3 - p0))
    c1, c2 = p0 + 0.39 * chord * h0, p3 - 0.39 * chord * h3
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t**2 * c2 + t**3 * p3


def _turn(arm_from: int, arm_to: int) -> str:
    """Arriving from `arm_from`, leaving by `arm_to`."""
    return {2: STRAIGHT, 1: RIGHT, 3: LEFT}[(arm_to - arm_from) % 4]


def _rank(turn: str, major: bool) -> int:
    """Right of way at a junction without signals (higher goes first): the major road's straight and right
    turns, then its left turns, then the minor road's right turns and straight, then its left turns."""
    if major:
        return 3 if turn != LEFT else 2
    return 1 if turn != LEFT else 0


def build_city(cfg: CityConfig, seed: int = 0, name: str = "") -> RoadMap:
    """One city map; `seed` draws the jitter, the dropped streets, which junctions have signals and the greens."""
    return build_city_named(cfg, seed, name)[0]


def build_city_named(cfg: CityConfig, seed: int = 0, name: str = "") -> tuple[RoadMap, dict[str, int]]:
    """`build_city` and the lane names (tests and scenes): streets `"in (r, c) ARM k"` / `"out (r, c) ARM k"`
    (ARM one of E N W S, k from the left), connectors `"(r, c) FROM->TO k"` (k-th connector of that turn)."""
    rng = np.random.default_rng(seed)
    b = LaneGraphBuilder(spacing=cfg.point_spacing_m, name=name or f"city-{cfg.rows}x{cfg.cols}-{seed}")
    lanes = add_city(b, cfg, rng).lanes
    _check_strongly_connected(b)
    names = {}
    arm_name = "ENWS"
    for (node, arm, way), ids in lanes.items():
        for k, lane in enumerate(ids):
            names[f"{way} ({node[0]}, {node[1]}) {arm_name[arm]} {k}"] = lane
    for i, lane in enumerate(b.lanes):
        if lane.kind == "connector":
            node, turn = lane.name.split(":")
            a_from, a_to = (arm_name[int(x)] for x in turn.split("->"))
            key = f"{node} {a_from}->{a_to}"
            k = sum(1 for n in names if n.startswith(key + " "))
            names[f"{key} {k}"] = i
    return b.build(spawn_window=(0.0, 1.0e9), kind=MAP_CITY, trips=True), names


@dataclass(frozen=True)
class CityLanes:
    """What `add_city` put into a builder: street lanes by `(node, arm, "in" | "out")` (left to right), the
    destination id of each boundary stub by `(node, arm)`, and the junction centres `[rows, cols, 2]`."""

    lanes: dict
    exit_of: dict
    centre: np.ndarray


def add_city(
    b: LaneGraphBuilder,
    cfg: CityConfig,
    rng: np.random.Generator,
    origin: tuple[float, float] = (0.0, 0.0),
    tag: str = "",
    exit_base: int = 0,
) -> CityLanes:
    """Add a grid city to `b`, its south-west junction at `origin`; destinations numbered from `exit_base`,
    junction names prefixed by `tag`."""
    rows, cols = cfg.rows, cfg.cols
    centre = np.array([[(c * cfg.block_m, r * cfg.block_m) for c in range(cols)] for r in range(rows)], dtype=float)
    centre = centre + rng.uniform(-cfg.jitter_m, cfg.jitter_m, size=centre.shape) + np.asarray(origin, dtype=float)
    nodes = [(r, c) for r in range(rows) for c in range(cols)]
    step = {EAST: (0, 1), NORTH: (1, 0), WEST: (0, -1), SOUTH: (-1, 0)}

    def neighbour(node, arm):
        r, c = node[0] + step[arm][0], node[1] + step[arm][1]
        return (r, c) if 0 <= r < rows and 0 <= c < cols else None

    # Interior streets (undirected, east and north from each node); some dropped for T-junctions.
    streets = [(n, a) for n in nodes for a in (EAST, NORTH) if neighbour(n, a) is not None]
    dropped: set = set()
    if cfg.drop_fraction > 0 and streets:
        for i in rng.permutation(len(streets))[: int(cfg.drop_fraction * len(streets))]:
            n, a = streets[int(i)]
            m = neighbour(n, a)
            arms_n = sum(neighbour(n, x) is not None and (n, x) not in dropped for x in range(4))
            arms_m = sum(neighbour(m, x) is not None for x in range(4))
            if arms_n >= 3 and arms_m >= 3:  # keep every junction with two interior streets or a stub
                dropped.add((n, a))
                dropped.add((m, (a + 2) % 4))

    def arm_exists(node, arm) -> bool:
        m = neighbour(node, arm)
        return (m is None) or ((node, arm) not in dropped)

    radius = cfg.junction_radius_m
    w = cfg.lane_width_m

    def arm_dir(node, arm) -> np.ndarray:
        m = neighbour(node, arm)
        if m is None:
            return ARM_DIRECTION[arm]
        v = centre[m] - centre[node]
        return v / np.linalg.norm(v)

    # Directed streets: lanes[(node, arm, "in"|"out")] = lane ids left to right.
    lanes: dict[tuple, list[int]] = {}
    exit_id = exit_base
    boundary = []  # (node, arm) of stubs, in counter-clockwise order around the map
    for c in range(cols):
        boundary.append(((0, c), SOUTH))
    for r in range(rows):
        boundary.append(((r, cols - 1), EAST))
    for c in reversed(range(cols)):
        boundary.append(((rows - 1, c), NORTH))
    for r in reversed(range(rows)):
        boundary.append(((r, 0), WEST))
    exit_of = {}
    for key in boundary:
        exit_of[key] = exit_id
        exit_id += 1

    def add_street(a_pt, b_pt, key_out, key_in, exit_group: int, ends_at_junction: bool):
        """Lanes from point a to point b (already pulled back to the stop lines), right of the a->b line."""
        u = (b_pt - a_pt) / np.linalg.norm(b_pt - a_pt)
        right = np.array([u[1], -u[0]])
        ids = []
        length = float(np.linalg.norm(b_pt - a_pt))
        for k in range(cfg.lanes):
            off = (k + 0.5) * w
            pts = np.array([a_pt + off * right, b_pt + off * right])
            ids.append(
                b.add_lane(
                    pts,
                    w,
                    cfg.speed_limit,
                    exit_group=exit_group,
                    change_until=length - cfg.solid_m if ends_at_junction else math.inf,
                    change_from=cfg.solid_after_m,
                    name=f"{key_out}->{key_in}:{k}",
                )
            )
        for k in range(cfg.lanes - 1):
            b.neighbours(ids[k], ids[k + 1])
        if key_out is not None:
            lanes[key_out] = ids
        if key_in is not None:
            lanes[key_in] = ids

    for n in nodes:
        for arm in range(4):
            if not arm_exists(n, arm):
                continue
            m = neighbour(n, arm)
            d = arm_dir(n, arm)
            if m is None:  # a stub: out to the boundary and back in
                outer = centre[n] + (radius + cfg.stub_m) * d
                add_street(centre[n] + radius * d, outer, (n, arm, "out"), None, exit_of[(n, arm)], False)
                add_street(outer, centre[n] + radius * d, None, (n, arm, "in"), -1, True)
            elif arm in (EAST, NORTH):  # each interior street once, both directions
                back = (arm + 2) % 4
                dm = arm_dir(m, back)
                a_pt, b_pt = centre[n] + radius * d, centre[m] + radius * dm
                add_street(a_pt, b_pt, (n, arm, "out"), (m, back, "in"), -1, True)
                add_street(b_pt, a_pt, (m, back, "out"), (n, arm, "in"), -1, True)

    signalised = rng.uniform(size=len(nodes)) < cfg.signal_fraction
    for i, n in enumerate(nodes):
        arms = [a for a in range(4) if arm_exists(n, a)]
        j = b.add_junction(f"{tag}junction r{n[0]}c{n[1]}")
        links: list[tuple[int, str, int]] = []  # (lane, turn, arm_from)
        for a_from in arms:
            inc = lanes[(n, a_from, "in")]
            for a_to in arms:
                if a_to == a_from:
                    continue  # no U-turns
                turn = _turn(a_from, a_to)
                out = lanes[(n, a_to, "out")]
                pairs = {
                    STRAIGHT: list(zip(inc, out, strict=True)),
                    RIGHT: [(inc[-1], out[-1])],
                    LEFT: [(inc[0], out[0])],
                }[turn]
                for src, dst in pairs:
                    p0, p3 = b.lanes[src].centre[-1], b.lanes[dst].centre[0]
                    h0 = p0 - b.lanes[src].centre[-2]
                    h3 = b.lanes[dst].centre[1] - p3
                    pts = _bezier(p0, h0 / np.linalg.norm(h0), p3, h3 / np.linalg.norm(h3))
                    limit = cfg.speed_limit if turn == STRAIGHT else min(cfg.speed_limit, _comfortable_speed(pts))
                    lane = b.add_lane(pts, w, limit, kind="connector", junction=j, name=f"{n}:{a_from}->{a_to}")
                    b.connect(src, lane)
                    b.connect(lane, dst)
                    links.append((lane, turn, a_from))
        ids = [lk[0] for lk in links]
        before = len(b.conflicts)
        b.add_conflicts_by_geometry(ids, threshold=0.75 * w, near_lanes_m=w + 0.5)
        info = {lk[0]: lk for lk in links}
        major_arms = (EAST, WEST)
        for a, bb, _, _ in b.conflicts[before:]:
            ra = _rank(info[a][1], signalised[i] or info[a][2] in major_arms)
            rb = _rank(info[bb][1], signalised[i] or info[bb][2] in major_arms)
            if ra != rb:
                b.set_right_of_way(a, bb, a_yields=ra < rb)
        if signalised[i] and len(arms) >= 3:
            green = float(rng.uniform(*cfg.green_s))

            def state(pair: tuple[int, ...], letter_go: str, links=links) -> str:
                out = []
                for _, turn, a_from in links:
                    if a_from in pair:
                        out.append(letter_go if letter_go != "G" or turn != LEFT else "g")
                    else:
                        out.append("r")
                return "".join(out)

            phases = []
            for pair in ((EAST, WEST), (NORTH, SOUTH)):
                phases += [Phase(green, state(pair, "G")), Phase(cfg.yellow_s, state(pair, "y"))]
                if cfg.all_red_s > 0:
                    phases.append(Phase(cfg.all_red_s, "r" * len(links)))
            b.set_program(j, phases)
    return CityLanes(lanes=lanes, exit_of=exit_of, centre=centre)


def _check_strongly_connected(b: LaneGraphBuilder) -> None:
    """Every street lane must reach every destination: the road lanes form one strongly connected component
    once the exits are joined back to the entries (a trip may start and end at any boundary point)."""
    n = len(b.lanes)
    src, dst = [], []
    for i, lane in enumerate(b.lanes):
        for j in lane.successors:
            src.append(i)
            dst.append(j)
        for j in (lane.left, lane.right):
            if j >= 0:
                src.append(i)
                dst.append(j)
    sinks = [i for i, lane in enumerate(b.lanes) if not lane.successors]
    sources = [i for i, lane in enumerate(b.lanes) if not lane.predecessors]
    for i in sinks:
        for j in sources:
            src.append(i)
            dst.append(j)
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    count, _ = connected_components(graph, directed=True, connection="strong")
    if count != 1:
        raise MapError(f"{b.name}: the streets fall into {count} parts that cannot reach each other")


def build_city_bank(cfg: CityConfig, num_maps: int, seed: int = 0) -> RoadMap:
    """`num_maps` cities drawn from `cfg` with seeds `seed, seed + 1, ...`, stacked into one bank."""
    return stack_maps([build_city(cfg, seed + i) for i in range(num_maps)])


__all__ = ["CityConfig", "CityLanes", "add_city", "build_city", "build_city_bank"]
