"""The lane graph: lanes as resampled centre-line polylines with links, built on the host, then packed as tensors.

A map is built once (numpy, Python lists are fine here: this is not a hot path) and packed into a `RoadMap`
of fixed-shape tensors. Many maps are stacked into a `MapBank` `[M maps, L lanes, P points, ...]` so that
every question the step asks of the road is a gather.

Frames: world `x, y` in metres, `yaw` in radians counter-clockwise from +x. A lane's lateral offset `d` is
positive to the left of its driving direction. Lanes in a road section are ordered left (index 0) to right,
as highway-env orders them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from fuyao.roads.routing import UNREACHABLE, RoutingTables, build_routing_tables
from fuyao.roads.signals import FIRST_COME, HAS_PRIORITY, YIELDS, Phase, Signal, parse_phase

INT32_MAX = 2**31 - 1  # table entries a bank may have: `fuyao.sim.geometry` indexes them in int32
JUNCTION_SPAWN_CLEAR_M = 40.0  # m before a junction's stop line where reset places no vehicle
MAP_HIGHWAY, MAP_CITY, MAP_NGP = range(3)  # `RoadMap.map_kind`: the generator of each map in a bank


class MapError(ValueError):
    """A road map that cannot be built: the message names the field, its value and what is allowed."""


@dataclass
class Lane:
    """One lane of a map under construction (host side)."""

    centre: np.ndarray  # [P, 2] m, resampled at the builder's spacing
    width: float  # m
    speed_limit: float  # m/s
    kind: str = "road"  # road | ramp | connector
    successors: list[int] = field(default_factory=list)
    predecessors: list[int] = field(default_factory=list)
    left: int = -1  # lane id of the left neighbour, -1 none
    right: int = -1
    change_left_ok: bool = False
    change_right_ok: bool = False
    road_s0: float = 0.0  # m, where the lane starts along the map's reference line (spawning, rendering)
    exit_group: int = -1  # destination id reached by driving off its end (-1: not an exit; a dead end if a sink)
    name: str = ""
    # Lane changes out of this lane are allowed only before this arc length (the solid line before a stop bar).
    change_until: float = math.inf
    change_from: float = 0.0  # ... and only after this one (just past a junction, where cars pour in from connectors)
    junction: int = -1  # the junction a connector lane belongs to (-1: not in a junction)
    ego_start: bool = True  # controlled vehicles may start on this lane (road lanes only; `RoadMap.lane_ego_start`)
    # Whether inflow enters the map here; None: wherever the lane has no predecessor. An imported lane that
    # begins where a road widens has none either, but is reached by changing lanes, not entered from outside.
    entry: bool | None = None
    goal: bool = False  # reaching this lane is the scenario's goal (exit-v0's exit lanes: the `goal` reward term)
    finish: bool = False  # a controlled vehicle entering this lane has finished its episode (merge-v0: x > 370 m)

    @property
    def length(self) -> float:
        seg = np.diff(self.centre, axis=0)
        return float(np.linalg.norm(seg, axis=1).sum())


@dataclass
class Junction:
    """A junction under construction: its connector lanes (SUMO's links, in link-index order) and, if it is
    signalised, its program."""

    name: str
    links: list[int] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)


def resample(points: np.ndarray, spacing: float) -> np.ndarray:
    """Resample a polyline `[Q, 2]` at a uniform arc-length spacing (last point kept exactly). Returns `[P, 2]`."""
    points = np.asarray(points, dtype=np.float64)
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    keep = np.concatenate([[True], seg > 1e-9])
    points = points[keep]
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    length = cum[-1]
    n = max(2, int(math.ceil(length / spacing)) + 1)
    s = np.linspace(0.0, length, n)
    x = np.interp(s, cum, points[:, 0])
    y = np.interp(s, cum, points[:, 1])
    return np.stack([x, y], axis=1)


def offset_polyline(points: np.ndarray, offset: float) -> np.ndarray:
    """Shift a polyline `[P, 2]` sideways by `offset` metres (positive = left of its direction)."""
    tangent = np.gradient(points, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    return points + offset * normal


class LaneGraphBuilder:
    """Collects lanes and links, checks them, and packs them into a `RoadMap`."""

    def __init__(self, spacing: float = 2.0, name: str = "map") -> None:
        if spacing <= 0:
            raise MapError(f"lane point spacing: got {spacing!r}; must be > 0 metres")
        self.spacing = spacing
        self.name = name
        self.lanes: list[Lane] = []
        self.conflicts: list[tuple[int, int, float, float]] = []  # (lane a, lane b, s on a, s on b)
        self.right_of_way: dict[tuple[int, int], int] = {}  # (a, b) -> YIELDS / HAS_PRIORITY / FIRST_COME for a
        self.junctions: list[Junction] = []

    def add_junction(self, name: str = "") -> int:
        """A new junction; its connector lanes join it by `add_lane(..., junction=j)` (their link order)."""
        self.junctions.append(Junction(name=name or f"junction {len(self.junctions)}"))
        return len(self.junctions) - 1

    def set_program(self, junction: int, phases: list[Phase]) -> None:
        """Signalise `junction` with a fixed-time cycle of `phases` (one state letter per link, in link order)."""
        j = self.junctions[junction]
        for i, ph in enumerate(phases):
            try:
                parse_phase(f"{self.name}: {j.name}", i, ph, len(j.links))
            except ValueError as err:
                raise MapError(str(err)) from None
        j.phases = list(phases)

    def set_right_of_way(self, a: int, b: int, a_yields: bool) -> None:
        """Static right of way between conflicting lanes `a` and `b` (unsignalised, or both green-but-yield):
        `a_yields` True: a gives way to b; False: b gives way to a."""
        self.right_of_way[(a, b)] = YIELDS if a_yields else HAS_PRIORITY
        self.right_of_way[(b, a)] = HAS_PRIORITY if a_yields else YIELDS

    def add_lane(self, points: np.ndarray, width: float, speed_limit: float, **kwargs) -> int:
        if width <= 0:
            raise MapError(f"lane width: got {width!r}; must be > 0 metres")
        if speed_limit <= 0:
            raise MapError(f"lane speed_limit: got {speed_limit!r}; must be > 0 m/s")
        centre = resample(points, self.spacing)
        self.lanes.append(Lane(centre=centre, width=float(width), speed_limit=float(speed_limit), **kwargs))
        junction = kwargs.get("junction", -1)
        if junction >= 0:
            if junction >= len(self.junctions):
                raise MapError(f"{self.name}: lane {len(self.lanes) - 1} junction: got {junction}; no such junction")
            self.junctions[junction].links.append(len(self.lanes) - 1)
        return len(self.lanes) - 1

    def connect(self, a: int, b: int) -> None:
        """Lane `b` continues lane `a` (end of `a` meets start of `b`)."""
        gap = np.linalg.norm(self.lanes[a].centre[-1] - self.lanes[b].centre[0])
        if gap > 0.5:
            raise MapError(f"{self.name}: lane {a} -> {b}: end and start are {gap:.2f} m apart; must be <= 0.5 m")
        self.lanes[a].successors.append(b)
        self.lanes[b].predecessors.append(a)

    def neighbours(self, left: int, right: int, to_right_ok: bool = True, to_left_ok: bool = True) -> None:
        """`left` lies directly left of `right` over their whole length (same start and end cross-section).
        `to_right_ok`: a car on `left` may change into `right`; `to_left_ok`: the other way."""
        self.lanes[left].right = right
        self.lanes[right].left = left
        self.lanes[left].change_right_ok = to_right_ok
        self.lanes[right].change_left_ok = to_left_ok

    def add_conflicts_by_geometry(self, lanes: list[int], threshold: float = 1.0, near_lanes_m: float = 0.0) -> None:
        """Record where each pair of the given (connector) lanes cross or merge: the closest point pair, if closer
        than `threshold` metres. Lanes that share a successor merge; their conflict is where they first come
        closer than `threshold`. Lanes that end in neighbouring lanes conflict where they come closest if that is
        under `near_lanes_m`."""
        for i, a in enumerate(lanes):
            for b in lanes[i + 1 :]:
                pa, pb = self.lanes[a].centre, self.lanes[b].centre
                if set(self.lanes[a].predecessors) & set(self.lanes[b].predecessors):
                    continue  # a fork: cars on both come from one lane in order, car following keeps them apart
                dist = np.linalg.norm(pa[:, None, :] - pb[None, :, :], axis=-1)
                ia, ib = np.unravel_index(np.argmin(dist), dist.shape)
                if set(self.lanes[a].successors) & set(self.lanes[b].successors):
                    # A merge: the lanes meet at their ends but touch from where they first come closer than
                    # `threshold`; that is where a car must give way.
                    close = np.nonzero((dist < threshold).any(axis=1))[0]
                    if len(close):
                        ia = int(close[0])
                        ib = int(np.argmin(dist[ia]))
                succ_a, succ_b = self.lanes[a].successors, self.lanes[b].successors

                def beside(xs, ys):
                    return any(self.lanes[x].left == y or self.lanes[x].right == y for x in xs for y in ys)

                # (Not lanes that also start side by side: parallel movements of one approach stay in lane.)
                pred_a, pred_b = self.lanes[a].predecessors, self.lanes[b].predecessors
                side_by_side = beside(succ_a, succ_b) and not beside(pred_a, pred_b)
                # Connectors that end in neighbouring lanes (a left and a right turn into a two-lane street) come
                # within a lane width of each other where they end: a turning car's box sweeps across that gap.
                limit = max(threshold, near_lanes_m) if side_by_side else threshold
                if dist[ia, ib] < limit:
                    sa = ia * self.lanes[a].length / (len(pa) - 1)
                    sb = ib * self.lanes[b].length / (len(pb) - 1)
                    self.conflicts.append((a, b, float(sa), float(sb)))

    def build(
        self,
        spawn_window: tuple[float, float] = (0.0, math.inf),
        kind: int = MAP_HIGHWAY,
        trips: bool = False,
        ego_destinations: list[int] | None = None,
        dest_weights: list[float] | None = None,
    ) -> RoadMap:
        """Pack the lanes. `kind`: `MAP_HIGHWAY`, `MAP_CITY` or `MAP_NGP` (per-map reporting). `trips`: routes go to
        any destination alike (a city), else to destination 0 or, by the config's exit fraction, another (a
        highway). `ego_destinations`: the destinations controlled vehicles' routes may take (None: all).
        `dest_weights`: how often background trips choose each destination, relative (None: alike)."""
        if not self.lanes:
            raise MapError(f"{self.name}: a map needs at least one lane; got 0")
        for i, lane in enumerate(self.lanes):
            for j in (lane.left, lane.right):
                if j >= len(self.lanes):
                    raise MapError(f"{self.name}: lane {i} neighbour {j} does not exist")
        self._check_programs()
        road = RoadMap.from_lanes(
            self.lanes, self.conflicts, self.name, spawn_window, self.junctions, self.right_of_way
        )
        num_dest = road.dest_valid.shape[1]
        ego_dest = torch.ones(1, num_dest, dtype=torch.bool)
        if ego_destinations is not None:
            bad = [d for d in ego_destinations if not 0 <= d < num_dest]
            if bad or not ego_destinations:
                raise MapError(
                    f"{self.name}: ego_destinations: got {ego_destinations!r}; allowed: a non-empty list of "
                    f"destination ids 0 to {num_dest - 1}"
                )
            ego_dest = torch.zeros(1, num_dest, dtype=torch.bool)
            ego_dest[0, ego_destinations] = True
        weight = torch.ones(1, num_dest)
        if dest_weights is not None:
            if len(dest_weights) != num_dest or min(dest_weights) < 0 or not sum(dest_weights) > 0:
                raise MapError(
                    f"{self.name}: dest_weights: got {dest_weights!r}; allowed: {num_dest} weights >= 0, not all 0"
                )
            weight = torch.tensor([dest_weights], dtype=torch.float32)
        # Controlled vehicles start only where a route to one of their destinations exists.
        reach = (road.route.cost[0][:, ego_dest[0]] < 0.5 * UNREACHABLE).any(dim=1)
        return dataclasses.replace(
            road,
            lane_ego_start=road.lane_ego_start & reach.unsqueeze(0),
            map_kind=torch.tensor([kind], dtype=torch.int64),
            map_trips=torch.tensor([trips]),
            dest_ego=ego_dest,
            dest_weight=weight,
        )

    def _check_programs(self) -> None:
        """Refuse a phase in which two conflicting links both have priority green (neither would yield)."""
        for a, b, _, _ in self.conflicts:
            ja, jb = self.lanes[a].junction, self.lanes[b].junction
            if ja < 0 or ja != jb or not self.junctions[ja].phases:
                continue
            j = self.junctions[ja]
            ia, ib = j.links.index(a), j.links.index(b)
            for k, ph in enumerate(j.phases):
                if ph.state[ia] == "G" and ph.state[ib] == "G":
                    raise MapError(
                        f"{self.name}: {j.name} phase {k} state {ph.state!r}: links {ia} (lane {a}) and {ib} "
                        f"(lane {b}) conflict and are both 'G' (priority green); one of them must yield ('g') or "
                        "be red"
                    )


@dataclass(frozen=True)
class RoadMap:
    """One map, or a bank of maps stacked on a leading axis. Lane ids are local to their map; -1 means none.

    Shapes below are for a bank `[M, ...]`; a single map has the same fields with M = 1.
    """

    lane_xy: torch.Tensor  # [M, L, P, 2] m, centre-line points (padded by repeating the last point)
    lane_yaw: torch.Tensor  # [M, L, P] rad, heading of the segment starting at each point
    lane_kappa: torch.Tensor  # [M, L, P] 1/m, signed curvature (positive turns left)
    lane_ds: torch.Tensor  # [M, L] m, spacing between consecutive points of this lane
    lane_length: torch.Tensor  # [M, L] m
    lane_width: torch.Tensor  # [M, L] m
    lane_speed_limit: torch.Tensor  # [M, L] m/s
    lane_valid: torch.Tensor  # [M, L] bool
    lane_kind: torch.Tensor  # [M, L] int64: 0 road, 1 ramp, 2 connector
    lane_left: torch.Tensor  # [M, L] int64
    lane_right: torch.Tensor  # [M, L] int64
    lane_change_left_ok: torch.Tensor  # [M, L] bool
    lane_change_right_ok: torch.Tensor  # [M, L] bool
    lane_succ: torch.Tensor  # [M, L, S] int64, -1 padded
    lane_pred: torch.Tensor  # [M, L] int64, the first predecessor (follower look-ups), -1 none
    lane_road_s0: torch.Tensor  # [M, L] m
    lane_spawn_lo: torch.Tensor  # [M, L] m, spawn interval on the lane (lo >= hi: no spawning)
    lane_spawn_hi: torch.Tensor  # [M, L] m
    lane_is_source: torch.Tensor  # [M, L] bool, no predecessor: inflow enters here
    lane_is_sink: torch.Tensor  # [M, L] bool, no successor
    lane_from_left: torch.Tensor  # [M, L] int64, how many lanes lie to the left (0 = leftmost)
    lane_section_lanes: torch.Tensor  # [M, L] int64, lanes side by side here, this one included
    lane_exit_group: torch.Tensor  # [M, L] int64, destination reached by leaving its end, -1 none
    lane_leads_to_dead_end: torch.Tensor  # [M, L] bool, following successors ends where no road goes on
    dest_valid: torch.Tensor  # [M, D] bool, which destination ids exist in each map
    conflict_lane: torch.Tensor  # [M, L, C] int64, lanes this lane crosses or merges with, -1 padded
    conflict_s: torch.Tensor  # [M, L, C] m, where on this lane
    conflict_s_other: torch.Tensor  # [M, L, C] m, where on the other lane
    conflict_yield: torch.Tensor  # [M, L, C] int64, static right of way from this lane's side (`roads.signals`)
    conflict_merge: torch.Tensor  # [M, L, C] bool, the two lanes merge (share a successor) rather than cross
    lane_change_until: torch.Tensor  # [M, L] m, lane changes out of the lane only before this arc length
    lane_change_from: torch.Tensor  # [M, L] m, ... and only after this one
    lane_junction: torch.Tensor  # [M, L] int64, junction of a connector lane, -1 none
    lane_signal: torch.Tensor  # [M, L, Ph] int64, `Signal` of the lane in each phase of its junction's program
    junction_phase_s: torch.Tensor  # [M, J, Ph] float32 s, phase durations (0: no such phase)
    junction_num_phases: torch.Tensor  # [M, J] int64, phases in the cycle (0: unsignalised or no junction)
    lane_ego_start: torch.Tensor  # [M, L] bool, controlled vehicles may start here
    dest_ego: torch.Tensor  # [M, D] bool, destinations controlled vehicles' routes may take
    dest_weight: torch.Tensor  # [M, D] float32, relative frequency of each destination in background trips
    map_kind: torch.Tensor  # [M] int64, MAP_HIGHWAY / MAP_CITY / MAP_NGP: which generator (for reports)
    map_trips: torch.Tensor  # [M] bool, routes to any destination alike (cities), else the highway rule
    lane_goal: torch.Tensor  # [M, L] bool, a goal lane of the scenario (`Lane.goal`)
    lane_finish: torch.Tensor  # [M, L] bool, entering it ends a controlled vehicle's episode (`Lane.finish`)
    route: RoutingTables
    names: tuple[str, ...] = ()
    has_conflicts: bool = False  # any connector lanes that cross or merge (a static flag: no host sync)
    has_signals: bool = False  # any signalised junction (a static flag)
    has_change_limits: bool = False  # any lane with solid lines over part of its length (`lane_change_until/from`)

    def __post_init__(self) -> None:
        # `fuyao.sim.geometry` indexes these tables in int32; checked on shapes only, once per bank.
        if max(self.lane_xy.numel(), self.route.cost.numel()) > INT32_MAX:
            raise MapError(
                f"RoadMap: lane_xy has {self.lane_xy.numel():,} and route tables {self.route.cost.numel():,} entries; "
                f"allowed: at most {INT32_MAX:,} (int32 indices): use fewer maps per bank or fewer points per lane"
            )

    @property
    def num_maps(self) -> int:
        return self.lane_xy.shape[0]

    @property
    def max_lanes(self) -> int:
        return self.lane_xy.shape[1]

    def to(self, device: torch.device | str) -> RoadMap:
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return dataclasses.replace(self, route=self.route.to(device), **moved)

    @property
    def device(self) -> torch.device:
        return self.lane_xy.device

    @staticmethod
    def from_lanes(
        lanes: list[Lane],
        conflicts: list[tuple[int, int, float, float]],
        name: str,
        spawn_window: tuple[float, float],
        junctions: list[Junction] | None = None,
        right_of_way: dict[tuple[int, int], int] | None = None,
    ) -> RoadMap:
        junctions = junctions or []
        right_of_way = right_of_way or {}
        num_lanes = len(lanes)
        num_points = max(len(lane.centre) for lane in lanes)
        max_succ = max(1, max(len(lane.successors) for lane in lanes))
        xy = np.zeros((num_lanes, num_points, 2))
        yaw = np.zeros((num_lanes, num_points))
        kappa = np.zeros((num_lanes, num_points))
        succ = -np.ones((num_lanes, max_succ), dtype=np.int64)
        for i, lane in enumerate(lanes):
            p = lane.centre
            n = len(p)
            xy[i, :n] = p
            xy[i, n:] = p[-1]
            seg = np.diff(p, axis=0)
            seg_yaw = np.arctan2(seg[:, 1], seg[:, 0])
            yaw[i, : n - 1] = seg_yaw
            yaw[i, n - 1 :] = seg_yaw[-1]
            if n > 2:
                # Curvature from the heading change over a window of up to 2 segments each side: resampled
                # chords of a finer polyline make single-segment estimates noisy.
                turn = np.unwrap(seg_yaw)
                k = min(2, n - 2)
                idx = np.arange(n)
                lo = np.clip(idx - k, 0, n - 2)
                hi = np.clip(idx + k - 1, 0, n - 2)
                seg_len = np.linalg.norm(seg, axis=1)
                cum = np.concatenate([[0.0], np.cumsum(seg_len)])
                span = (cum[hi + 1] + cum[hi]) / 2 - (cum[lo + 1] + cum[lo]) / 2
                kappa[i, :n] = np.where(span > 1e-9, (turn[hi] - turn[lo]) / np.maximum(span, 1e-9), 0.0)
                kappa[i, n:] = kappa[i, n - 1]
            succ[i, : len(lane.successors)] = lane.successors
        per_lane_conflicts: list[list[tuple[int, float, float]]] = [[] for _ in lanes]
        for a, b, sa, sb in conflicts:
            per_lane_conflicts[a].append((b, sa, sb))
            per_lane_conflicts[b].append((a, sb, sa))
        max_conf = max(1, max(len(c) for c in per_lane_conflicts))
        conf_lane = -np.ones((num_lanes, max_conf), dtype=np.int64)
        conf_s = np.zeros((num_lanes, max_conf))
        conf_so = np.zeros((num_lanes, max_conf))
        conf_yield = np.full((num_lanes, max_conf), FIRST_COME, dtype=np.int64)
        conf_merge = np.zeros((num_lanes, max_conf), dtype=bool)
        for i, cs in enumerate(per_lane_conflicts):
            for j, (b, sa, sb) in enumerate(cs):
                conf_lane[i, j], conf_s[i, j], conf_so[i, j] = b, sa, sb
                conf_yield[i, j] = right_of_way.get((i, b), FIRST_COME)
                conf_merge[i, j] = bool(set(lanes[i].successors) & set(lanes[b].successors))
        # Signal programs: each link's state per phase, the phases' durations per junction.
        num_j = max(1, len(junctions))
        num_ph = max(1, max((len(j.phases) for j in junctions), default=0))
        lane_signal = np.full((num_lanes, num_ph), int(Signal.OFF), dtype=np.int64)
        phase_s = np.zeros((num_j, num_ph))
        num_phases = np.zeros(num_j, dtype=np.int64)
        for jid, j in enumerate(junctions):
            num_phases[jid] = len(j.phases)
            for k, ph in enumerate(j.phases):
                phase_s[jid, k] = ph.duration_s
                for link, sig in zip(j.links, ph.signals(), strict=True):
                    lane_signal[link, k] = int(sig)
        lengths = np.array([lane.length for lane in lanes])
        road_s0 = np.array([lane.road_s0 for lane in lanes])
        kinds = np.array([{"road": 0, "ramp": 1, "connector": 2}[lane.kind] for lane in lanes])
        # Spawn on road and ramp lanes (never inside a junction) within the window along the reference line.
        lo = np.clip(spawn_window[0] - road_s0, 0.0, lengths)
        hi = np.clip(spawn_window[1] - road_s0, 0.0, lengths)
        hi = np.where(kinds == 2, lo, hi)
        # Before a junction: not in the last stretch, where a car placed at speed could not stop at a red line.
        feeds_junction = np.array([any(lanes[j].kind == "connector" for j in lane.successors) for lane in lanes])
        hi = np.where(
            feeds_junction & (kinds != 2), np.maximum(lo, np.minimum(hi, lengths - JUNCTION_SPAWN_CLEAR_M)), hi
        )
        # Dead ends (an acceleration lane): only their first third, so that cars placed there can still merge.
        dead_end = np.array([not lane.successors and lane.exit_group < 0 for lane in lanes])
        hi = np.where(dead_end, np.minimum(hi, lo + 0.3 * (lengths - lo)), hi)
        succ_lists = [lane.successors for lane in lanes]
        left = [lane.left for lane in lanes]
        right = [lane.right for lane in lanes]
        left_ok = [lane.change_left_ok and lane.left >= 0 for lane in lanes]
        right_ok = [lane.change_right_ok and lane.right >= 0 for lane in lanes]
        groups = [lane.exit_group for lane in lanes]
        if max(groups) < 0:
            raise MapError(f"{name}: no lane has an exit_group; a map needs at least one destination")
        if sorted(set(g for g in groups if g >= 0)) != list(range(max(groups) + 1)):
            raise MapError(f"{name}: exit groups {sorted(set(groups))} must number 0, 1, ... without gaps")
        until = np.array([lane.change_until for lane in lanes])
        in_junction = np.array([lane.junction >= 0 for lane in lanes])
        route = build_routing_tables(lengths, succ_lists, left, right, left_ok, right_ok, groups, until, in_junction)

        from_left, section = [], []
        for i in range(num_lanes):
            n_left, j = 0, left[i]
            while j >= 0:
                n_left, j = n_left + 1, left[j]
            n_right, j = 0, right[i]
            while j >= 0:
                n_right, j = n_right + 1, right[j]
            from_left.append(n_left)
            section.append(n_left + n_right + 1)

        dead = [not lane.successors and lane.exit_group < 0 for lane in lanes]
        for _ in range(num_lanes):  # until nothing changes (at most the longest chain of dead lanes)
            grown = [
                dead[i] or (bool(lanes[i].successors) and all(dead[j] for j in lanes[i].successors))
                for i in range(num_lanes)
            ]
            if grown == dead:
                break
            dead = grown

        def t(a, dtype=torch.float32):
            return torch.as_tensor(np.asarray(a), dtype=dtype).unsqueeze(0)

        return RoadMap(
            lane_xy=t(xy),
            lane_yaw=t(yaw),
            lane_kappa=t(kappa),
            lane_ds=t(lengths / np.array([len(lane.centre) - 1 for lane in lanes])),
            lane_length=t(lengths),
            lane_width=t([lane.width for lane in lanes]),
            lane_speed_limit=t([lane.speed_limit for lane in lanes]),
            lane_valid=t(np.ones(num_lanes), torch.bool),
            lane_kind=t(kinds, torch.int64),
            lane_left=t(left, torch.int64),
            lane_right=t(right, torch.int64),
            lane_change_left_ok=t(left_ok, torch.bool),
            lane_change_right_ok=t(right_ok, torch.bool),
            lane_succ=t(succ, torch.int64),
            lane_pred=t([lane.predecessors[0] if lane.predecessors else -1 for lane in lanes], torch.int64),
            lane_road_s0=t(road_s0),
            lane_spawn_lo=t(lo),
            lane_spawn_hi=t(hi),
            lane_is_source=t(
                [not lane.predecessors if lane.entry is None else lane.entry for lane in lanes], torch.bool
            ),
            lane_is_sink=t([not lane.successors for lane in lanes], torch.bool),
            lane_from_left=t(from_left, torch.int64),
            lane_section_lanes=t(section, torch.int64),
            lane_exit_group=t(groups, torch.int64),
            lane_leads_to_dead_end=t(dead, torch.bool),
            dest_valid=t(np.ones(max(groups) + 1), torch.bool),
            conflict_lane=t(conf_lane, torch.int64),
            conflict_s=t(conf_s),
            conflict_s_other=t(conf_so),
            conflict_yield=t(conf_yield, torch.int64),
            conflict_merge=t(conf_merge, torch.bool),
            lane_change_until=t([min(lane.change_until, 1.0e6) for lane in lanes]),
            lane_change_from=t([lane.change_from for lane in lanes]),
            lane_junction=t([lane.junction for lane in lanes], torch.int64),
            lane_signal=t(lane_signal, torch.int64),
            junction_phase_s=t(phase_s),
            junction_num_phases=t(num_phases, torch.int64),
            lane_ego_start=t([lane.ego_start and lane.kind == "road" for lane in lanes], torch.bool),
            dest_ego=t(np.ones(max(groups) + 1), torch.bool),
            dest_weight=t(np.ones(max(groups) + 1)),
            map_kind=torch.tensor([MAP_HIGHWAY], dtype=torch.int64),
            map_trips=torch.tensor([False]),
            lane_goal=t([lane.goal for lane in lanes], torch.bool),
            lane_finish=t([lane.finish for lane in lanes], torch.bool),
            route=route,
            names=(name,),
            has_conflicts=bool(conflicts),
            has_signals=bool(num_phases.any()),
            has_change_limits=any(lane.change_until < 1.0e6 or lane.change_from > 0 for lane in lanes),
        )


def _pad_to(x: torch.Tensor, shape: tuple[int, ...], fill: float | int | bool) -> torch.Tensor:
    out = torch.full(shape, fill, dtype=x.dtype)
    out[tuple(slice(0, n) for n in x.shape)] = x
    return out


def stack_maps(maps: list[RoadMap]) -> RoadMap:
    """Stack single maps into one bank, padding lanes, points, successors and conflicts.

    Padded points repeat each lane's last point, padded lanes are invalid with no links.
    """
    if not maps:
        raise MapError("map bank: got an empty list of maps; need at least one")
    num_lanes = max(m.max_lanes for m in maps)
    num_points = max(m.lane_xy.shape[2] for m in maps)
    max_succ = max(m.lane_succ.shape[2] for m in maps)
    max_conf = max(m.conflict_lane.shape[2] for m in maps)
    fills = {
        "lane_left": -1,
        "lane_right": -1,
        "lane_succ": -1,
        "lane_pred": -1,
        "conflict_lane": -1,
        "lane_exit_group": -1,
        "lane_section_lanes": 1,
        "lane_length": 1.0,
        "lane_ds": 1.0,
        "lane_width": 1.0,
        "lane_speed_limit": 1.0,
        "lane_junction": -1,
        "lane_change_until": 1.0e6,
    }
    num_ph = max(m.lane_signal.shape[2] for m in maps)
    num_j = max(m.junction_phase_s.shape[1] for m in maps)
    out = {}
    for f in dataclasses.fields(RoadMap):
        first = getattr(maps[0], f.name)
        if not isinstance(first, torch.Tensor):
            continue
        parts = []
        for m in maps:
            x = getattr(m, f.name)[0]
            if f.name in ("lane_xy", "lane_yaw", "lane_kappa"):
                # Pad points by repeating each lane's last point so interpolation beyond the end stays put.
                pad = num_points - x.shape[1]
                if pad > 0:
                    x = torch.cat([x, x[:, -1:].expand(-1, pad, *x.shape[2:])], dim=1)
                shape = (num_lanes, num_points, *x.shape[2:])
            elif f.name == "lane_succ":
                shape = (num_lanes, max_succ)
            elif f.name.startswith("conflict"):
                shape = (num_lanes, max_conf)
            elif f.name == "lane_signal":
                shape = (num_lanes, num_ph)
            elif f.name == "junction_phase_s":
                shape = (num_j, num_ph)
            elif f.name == "junction_num_phases":
                shape = (num_j,)
            elif f.name in ("dest_valid", "dest_ego", "dest_weight"):
                shape = (max(m.dest_valid.shape[1] for m in maps),)
            elif f.name in ("map_kind", "map_trips"):
                shape = ()
            else:
                shape = (num_lanes,)
            parts.append(_pad_to(x, shape, fills.get(f.name, 0)))
        out[f.name] = torch.stack(parts)
    route = RoutingTables.stack([m.route for m in maps], num_lanes)
    names = tuple(n for m in maps for n in m.names)
    return RoadMap(
        route=route,
        names=names,
        has_conflicts=any(m.has_conflicts for m in maps),
        has_signals=any(m.has_signals for m in maps),
        has_change_limits=any(m.has_change_limits for m in maps),
        **out,
    )
