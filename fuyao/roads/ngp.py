"""NGP maps: navigation-guided driving from one city, along a highway, into another.

    city A  --north stub-->  merge  --link-->  on-ramp  ==== highway (east) ====  off-ramp  --link-->  fork
                                                                                            --north stub--> city B

City A is a grid city (`fuyao.roads.city`) with its south-west junction at the origin. The highway runs east, north of
it: its on-ramp is fed by the north stub street of A's north-east junction (the stub's lanes merge into the one
link lane at an unsignalised junction, the right lane with priority), and its off-ramp leads, by a second link and
a fork into every lane, into the north stub street of city B's north-west junction. City B lies east of the
off-ramp. Right-hand traffic throughout; the highway is one-way (east).

Destinations: every other boundary street of A and of B, and the highway's end, numbered without gaps: A's first,
then B's, then the highway's end. Controlled vehicles start on A's streets and are routed to B's destinations, so
every controlled trip drives city, on-ramp, highway, off-ramp and city again; background traffic drives random
trips wherever they lead (highway cars leave by the off-ramp into B or go on to the highway's end).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fuyao.roads.city import NORTH, CityConfig, _bezier, _check_strongly_connected, add_city
from fuyao.roads.highway import HighwayConfig, add_highway
from fuyao.roads.junction import _comfortable_speed
from fuyao.roads.lanegraph import MAP_NGP, LaneGraphBuilder, MapError, RoadMap, stack_maps


def _ngp_highway() -> HighwayConfig:
    # Straight (curves would turn the far city), 3 lanes, the ramps 600 m apart.
    return HighwayConfig(lanes=3, length_m=1100.0, max_curvature=0.0, on_ramp_s=300.0, off_ramp_s=900.0)


def _ngp_city() -> CityConfig:
    return CityConfig(rows=2, cols=2, lanes=2, signal_fraction=1.0, jitter_m=6.0, stub_m=60.0)


@dataclass(frozen=True)
class NgpConfig:
    """An NGP map: `city` twice (A and B, each drawn with its own seed) joined by `highway`. Metres."""

    city: CityConfig = field(default_factory=_ngp_city)
    highway: HighwayConfig = field(default_factory=_ngp_highway)
    link_m: float = 40.0  # the link's turn between a stub street and a ramp: this far along and across
    merge_m: float = 15.0  # the junction where a stub's lanes merge into (or fork from) the one link lane

    def __post_init__(self) -> None:
        def bad(name: str, value, allowed: str) -> MapError:
            return MapError(f"NgpConfig.{name}: got {value!r}; allowed: {allowed}")

        if self.highway.on_ramp_s is None or self.highway.off_ramp_s is None:
            raise bad("highway", (self.highway.on_ramp_s, self.highway.off_ramp_s), "a highway with both ramps")
        if self.highway.max_curvature != 0.0:
            raise bad("highway.max_curvature", self.highway.max_curvature, "0 (a straight highway)")
        if not self.link_m >= 20.0:
            raise bad("link_m", self.link_m, ">= 20 m")
        if not self.merge_m >= 8.0:
            raise bad("merge_m", self.merge_m, ">= 8 m")

    # What `reset` asks of any road config (`SimConfig.road_config`): the city's.
    @property
    def spawn_window(self) -> tuple[float, float]:
        return (0.0, 1.0e9)

    @property
    def length_m(self) -> float:
        return self.city.block_m


def _curve(b: LaneGraphBuilder, p0, h0, p3, h3, limit: float, width: float, **kwargs) -> int:
    """A lane from `p0` leaving along `h0` to `p3` arriving along `h3` (a cubic Bezier), its speed limit at most
    what its curvature allows comfortably."""
    pts = _bezier(np.asarray(p0, float), np.asarray(h0, float), np.asarray(p3, float), np.asarray(h3, float), n=32)
    return b.add_lane(pts, width, min(limit, _comfortable_speed(pts)), **kwargs)


def _end(b: LaneGraphBuilder, lane: int) -> tuple[np.ndarray, np.ndarray]:
    """The end point of `lane` and its heading there."""
    p = b.lanes[lane].centre
    h = p[-1] - p[-2]
    return p[-1], h / np.linalg.norm(h)


def build_ngp(cfg: NgpConfig, seed: int = 0, name: str = "") -> RoadMap:
    """One NGP map; `seed` draws both cities (jitter, signals, greens)."""
    rng = np.random.default_rng(seed)
    b = LaneGraphBuilder(spacing=cfg.city.point_spacing_m, name=name or f"ngp-{seed}")
    c, hw = cfg.city, cfg.highway
    w = c.lane_width_m
    north = np.array([0.0, 1.0])
    east = np.array([1.0, 0.0])
    south = -north

    # City A.
    city_a = add_city(b, c, rng, tag="A ")
    node_a = (c.rows - 1, c.cols - 1)
    stub_out = city_a.lanes[(node_a, NORTH, "out")]
    for lane in stub_out:
        b.lanes[lane].exit_group = -1  # the stub now goes on, to the highway
    # The merge junction: each stub lane into the one link lane, aligned with the right lane (priority).
    end_right = b.lanes[stub_out[-1]].centre[-1]
    link_start = end_right + cfg.merge_m * north
    merge = b.add_junction("A on-ramp merge")
    ramp_start = link_start + cfg.link_m * (north + east)
    origin = ramp_start + np.array([-(hw.on_ramp_s - hw.ramp_length_m), hw.lanes * hw.lane_width_m + hw.ramp_offset_m])
    link_a = _curve(b, link_start, north, ramp_start, east, hw.ramp_speed_limit, w, name="A link")
    merge_lanes = []
    for k, lane in enumerate(stub_out):
        p0, h0 = _end(b, lane)
        conn = _curve(
            b, p0, h0, link_start, north, c.speed_limit, w, kind="connector", junction=merge, name=f"A merge {k}"
        )
        b.connect(lane, conn)
        b.connect(conn, link_a)
        merge_lanes.append(conn)
    b.add_conflicts_by_geometry(merge_lanes, threshold=0.75 * w)
    for lane in merge_lanes[:-1]:
        b.set_right_of_way(lane, merge_lanes[-1], a_yields=True)

    # The highway, placed so that its on-ramp starts where the link ends (`link_m` east and north of the merge).
    highway = add_highway(b, hw, rng, origin=tuple(origin), end_exit=-1, off_ramp_exit=-1)
    b.connect(link_a, highway.on_ramp)

    # City B: its north-west junction's north stub begins `link_m` east and south of the off-ramp's end, and the
    # fork's length further south (before the jitter moves it).
    ramp_end, ramp_heading = _end(b, highway.off_ramp)
    radius = c.junction_radius_m
    node_b = (c.rows - 1, 0)
    stub_top = ramp_end + cfg.link_m * (east + south) + cfg.merge_m * south
    centre_b = stub_top + 0.5 * w * east + (radius + c.stub_m) * south
    origin_b = centre_b - np.array([0.0, node_b[0] * c.block_m])
    city_b = add_city(b, c, rng, origin=tuple(origin_b), tag="B ", exit_base=len(city_a.exit_of))
    stub_in = city_b.lanes[(node_b, NORTH, "in")]
    link_end = b.lanes[stub_in[0]].centre[0] + cfg.merge_m * north  # above lane 0's start, after the jitter
    link_b = _curve(b, ramp_end, ramp_heading, link_end, south, hw.ramp_speed_limit, w, name="B link")
    b.connect(highway.off_ramp, link_b)
    fork = b.add_junction("B off-ramp fork")
    for k, lane in enumerate(stub_in):
        conn = _curve(
            b,
            link_end,
            south,
            b.lanes[lane].centre[0],
            south,
            c.speed_limit,
            w,
            kind="connector",
            junction=fork,
            name=f"B fork {k}",
        )
        b.connect(link_b, conn)
        b.connect(conn, lane)

    # The highway's end is the last destination; number every destination without gaps.
    for lane in highway.end:
        b.lanes[lane].exit_group = len(city_a.exit_of) + len(city_b.exit_of)
    used = sorted({lane.exit_group for lane in b.lanes if lane.exit_group >= 0})
    renumber = {g: i for i, g in enumerate(used)}
    for lane in b.lanes:
        if lane.exit_group >= 0:
            lane.exit_group = renumber[lane.exit_group]
    ego_dest = sorted({renumber[g] for g in city_b.exit_of.values()})
    # Background trips: a city's streets three times as often as the far city's (most of A's traffic stays in A),
    # the highway's end as often as all of B (half of the highway's traffic takes the off-ramp).
    a_dest = {renumber[g] for g in city_a.exit_of.values() if g in renumber}
    weights = [3.0 if d in a_dest else 1.0 for d in range(len(used))]
    weights[-1] = float(len(ego_dest))
    # Controlled vehicles start on the streets into A's north-east junction: one turn onto the stub to the
    # highway, then the highway, then B (a trip of about 1.5 km, 2 to 3 minutes).
    start = {lane for arm in range(4) for lane in city_a.lanes.get((node_a, arm, "in"), [])}
    for i, lane in enumerate(b.lanes):
        lane.ego_start = i in start
    _check_strongly_connected(b)
    return b.build(spawn_window=(0.0, 1.0e9), kind=MAP_NGP, trips=True, ego_destinations=ego_dest, dest_weights=weights)


def build_ngp_bank(cfg: NgpConfig, num_maps: int, seed: int = 0) -> RoadMap:
    """`num_maps` NGP maps with seeds `seed, seed + 1, ...`, stacked into one bank."""
    if num_maps < 1:
        raise MapError(f"num_maps: got {num_maps!r}; allowed: >= 1")
    return stack_maps([build_ngp(cfg, seed + i) for i in range(num_maps)])


__all__ = ["NgpConfig", "build_ngp", "build_ngp_bank"]
