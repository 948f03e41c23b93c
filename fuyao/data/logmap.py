"""A log's vector lanes as a Fuyao `RoadMap`, through `LaneGraphBuilder`.

Real maps do not meet the builder's rules everywhere: successors whose ends lie more than 0.5 m apart,
neighbours that run the other way or do not span each other, links to lanes left out. Such a link is skipped
and counted in the returned `LogMapSummary`; the map still builds. The rules:

- lanes: the vehicle lanes of the map (`VectorMap.kind` in `LogMapConfig.lane_kinds`); unknown widths and speed
  limits take the config's defaults; intersection lanes are `connector`s, others `road`s.
- successors: `connect(a, b)` for each listed successor; ends apart by more than the builder allows are skipped
  (`successor_gap`).
- neighbours: where the source gives them, both lanes run the same way (mean headings within 45 degrees) and
  span each other (start and end cross-sections within `span_tolerance_m` along the lane), else skipped.
- conflicts: from geometry among the intersection lanes (`add_conflicts_by_geometry`).
- destinations: every sink (a lane with no successor left) is an exit; with more than `max_destinations` sinks
  they are grouped by the direction in which they leave the map's centre (sectors of equal angle). A map
  without a sink (a ring) gets its longest lane as the one destination.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from fuyao.data.scenario import ScenarioError, VectorMap
from fuyao.roads.lanegraph import LaneGraphBuilder, MapError, RoadMap


@dataclass(frozen=True)
class LogMapConfig:
    spacing_m: float = 2.0  # centre-line resampling
    default_width_m: float = 3.5  # where the log has none
    default_speed_limit: float = 13.9  # m/s (50 km/h) where the log has none
    lane_kinds: tuple[str, ...] = ("vehicle", "bus")
    span_tolerance_m: float = 3.0  # how far apart neighbours' start and end cross-sections may lie
    conflict_threshold_m: float = 1.0
    max_destinations: int = 32

    def __post_init__(self) -> None:
        for name in ("spacing_m", "default_width_m", "default_speed_limit", "span_tolerance_m", "conflict_threshold_m"):
            if not getattr(self, name) > 0:
                raise ScenarioError(f"LogMapConfig.{name}: got {getattr(self, name)!r}; must be > 0")
        if self.max_destinations < 1:
            raise ScenarioError(f"LogMapConfig.max_destinations: got {self.max_destinations!r}; must be >= 1")


@dataclass
class LogMapSummary:
    lanes: int = 0
    successors: int = 0
    neighbours: int = 0
    conflicts: int = 0
    destinations: int = 0
    lane_index: dict[int, int] = field(default_factory=dict)  # VectorMap lane -> RoadMap lane
    skipped: Counter = field(default_factory=Counter)


def vector_map_to_roadmap(
    vmap: VectorMap, name: str = "log", cfg: LogMapConfig | None = None
) -> tuple[RoadMap, LogMapSummary]:
    """Build a one-map `RoadMap` from `vmap`. Returns it and what was built and skipped."""
    cfg = cfg or LogMapConfig()
    summary = LogMapSummary()
    builder = LaneGraphBuilder(spacing=cfg.spacing_m, name=name)
    keep = [i for i in range(vmap.num_lanes) if vmap.kind[i] in cfg.lane_kinds]
    for i in range(vmap.num_lanes):
        if vmap.kind[i] not in cfg.lane_kinds:
            summary.skipped[f"{vmap.kind[i]} lane"] += 1
    index: dict[int, int] = {}
    for i in keep:
        pts = vmap.centre(i)
        if np.linalg.norm(np.diff(pts, axis=0), axis=1).sum() < 1e-3:
            summary.skipped["lane of zero length"] += 1
            continue
        width = vmap.width[i] if np.isfinite(vmap.width[i]) and vmap.width[i] > 0 else cfg.default_width_m
        limit = (
            vmap.speed_limit[i]
            if np.isfinite(vmap.speed_limit[i]) and vmap.speed_limit[i] > 0
            else cfg.default_speed_limit
        )
        kind = "connector" if vmap.is_intersection[i] else "road"
        index[i] = builder.add_lane(pts, float(width), float(limit), kind=kind, name=vmap.lane_ids[i])
    if not index:
        raise MapError(f"{name}: no lane of kinds {list(cfg.lane_kinds)} in the log's map ({vmap.num_lanes} lanes)")
    summary.lane_index = index
    for i, a in index.items():
        for j in vmap.successors[i]:
            if j not in index:
                summary.skipped["successor to a lane left out"] += 1
                continue
            try:
                builder.connect(a, index[j])
            except MapError:
                summary.skipped["successor_gap (ends > 0.5 m apart)"] += 1
            else:
                summary.successors += 1
    done = set()
    for i, a in index.items():
        for j, side in ((vmap.left[i], "left"), (vmap.right[i], "right")):
            if j < 0:
                continue
            if j not in index:
                summary.skipped["neighbour left out"] += 1
                continue
            left, right = (index[j], a) if side == "left" else (a, index[j])
            if (left, right) in done:
                continue
            done.add((left, right))
            why = _neighbour_problem(builder, left, right, cfg.span_tolerance_m)
            if why is None and (
                builder.lanes[left].right not in (-1, right) or builder.lanes[right].left not in (-1, left)
            ):
                why = "neighbour taken by another lane"
            if why is not None:
                summary.skipped[why] += 1
                continue
            builder.neighbours(left, right)
            summary.neighbours += 1
    junction = [index[i] for i in index if vmap.is_intersection[i]]
    before = len(builder.conflicts)
    builder.add_conflicts_by_geometry(junction, threshold=cfg.conflict_threshold_m)
    summary.conflicts = len(builder.conflicts) - before
    summary.destinations = _assign_destinations(builder, cfg.max_destinations, summary)
    summary.lanes = len(builder.lanes)
    return builder.build(), summary


def _mean_heading(points: np.ndarray) -> np.ndarray:
    d = points[-1] - points[0]
    n = np.linalg.norm(d)
    return d / n if n > 0 else np.array([1.0, 0.0])


def _neighbour_problem(builder: LaneGraphBuilder, left: int, right: int, tol: float) -> str | None:
    pl, pr = builder.lanes[left].centre, builder.lanes[right].centre
    hl, hr = _mean_heading(pl), _mean_heading(pr)
    if float(hl @ hr) < math.cos(math.radians(45)):
        return "neighbour running the other way"
    # Start and end cross-sections: the offset between the lanes' ends, measured along the lane direction.
    if abs(float((pl[0] - pr[0]) @ hr)) > tol or abs(float((pl[-1] - pr[-1]) @ hr)) > tol:
        return "neighbour not spanning the lane"
    # `left` must lie on the left (positive cross product with the direction of `right`).
    offset = pl[len(pl) // 2] - pr[len(pr) // 2]
    if hr[0] * offset[1] - hr[1] * offset[0] <= 0:
        return "neighbour on the wrong side"
    return None


def _assign_destinations(builder: LaneGraphBuilder, max_groups: int, summary: LogMapSummary) -> int:
    sinks = [i for i, lane in enumerate(builder.lanes) if not lane.successors]
    if not sinks:
        longest = int(np.argmax([lane.length for lane in builder.lanes]))
        builder.lanes[longest].exit_group = 0
        summary.skipped["map without a sink (longest lane made the destination)"] += 1
        return 1
    if len(sinks) <= max_groups:
        for g, i in enumerate(sinks):
            builder.lanes[i].exit_group = g
        return len(sinks)
    ends = np.array([builder.lanes[i].centre[-1] for i in sinks])
    centre = np.array([p for lane in builder.lanes for p in lane.centre]).mean(axis=0)
    angle = np.arctan2(ends[:, 1] - centre[1], ends[:, 0] - centre[0])
    sector = np.floor((angle + np.pi) / (2 * np.pi) * max_groups).astype(int).clip(0, max_groups - 1)
    used = {s: g for g, s in enumerate(sorted(set(sector.tolist())))}  # numbered 0, 1, ... without gaps
    for i, s in zip(sinks, sector):
        builder.lanes[i].exit_group = used[int(s)]
    return len(used)
