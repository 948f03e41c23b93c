"""Procedural highways: 2 to 6 lanes, curves, on-ramps with an acceleration lane that ends, off-ramps that split.

The road is a reference line (the centre of the leftmost lane) built from a seeded curvature profile; every
lane is an exact parallel offset of it, so neighbouring lanes share their start and end cross-sections and a
lane change maps arc length proportionally. Ramps are lanes whose lateral offset from the reference line
eases in or out with a smooth profile, so they follow the road's curves.

Sections along the road, split where ramps attach:
    [start, on-ramp)  [acceleration lane]  [...]  [deceleration lane]  [off-ramp split, end]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fuyao.roads.lanegraph import LaneGraphBuilder, MapError, RoadMap, stack_maps


@dataclass(frozen=True)
class HighwayConfig:
    """A procedural highway. Distances in metres along the road's reference line, speeds in m/s."""

    lanes: int = 3
    length_m: float = 2000.0
    lane_width_m: float = 4.0
    speed_limit: float = 30.0  # m/s on the through lanes
    ramp_speed_limit: float = 25.0  # m/s
    max_curvature: float = 1.0 / 800.0  # 1/m; 0 gives a straight road
    curve_segment_m: float = 400.0  # length of each constant-curvature piece
    on_ramp_s: float | None = 400.0  # where the acceleration lane begins; None: no on-ramp
    off_ramp_s: float | None = 1300.0  # where the off-ramp splits away; None: no off-ramp
    ramp_length_m: float = 150.0  # the curved ramp itself
    accel_lane_m: float = 200.0  # acceleration lane after the on-ramp
    decel_lane_m: float = 150.0  # deceleration lane before the off-ramp
    ramp_offset_m: float = 20.0  # how far to the side the ramp starts or ends
    point_spacing_m: float = 2.0
    spawn_window: tuple[float, float] = (0.0, 1200.0)  # where vehicles are placed at reset

    def __post_init__(self) -> None:
        def bad(field: str, value, allowed: str) -> MapError:
            return MapError(f"HighwayConfig.{field}: got {value!r}; allowed: {allowed}")

        if not 2 <= self.lanes <= 6 or int(self.lanes) != self.lanes:
            raise bad("lanes", self.lanes, "an integer from 2 to 6")
        if self.length_m <= 0:
            raise bad("length_m", self.length_m, "> 0 m")
        if self.lane_width_m <= 0:
            raise bad("lane_width_m", self.lane_width_m, "> 0 m")
        if self.speed_limit <= 0 or self.ramp_speed_limit <= 0:
            raise bad("speed_limit", (self.speed_limit, self.ramp_speed_limit), "> 0 m/s")
        if self.max_curvature < 0 or self.max_curvature * self.lanes * self.lane_width_m * 4 > 1.0:
            raise bad("max_curvature", self.max_curvature, f"0 to {1.0 / (4 * self.lanes * self.lane_width_m):.4f} 1/m")
        for name in ("ramp_length_m", "accel_lane_m", "decel_lane_m", "ramp_offset_m", "curve_segment_m"):
            if getattr(self, name) <= 0:
                raise bad(name, getattr(self, name), "> 0 m")
        if self.on_ramp_s is not None:
            if self.ramp_length_m + self.accel_lane_m > self.length_m:
                raise bad(
                    "ramp_length_m",
                    self.ramp_length_m,
                    f"ramp_length_m + accel_lane_m <= length_m = {self.length_m} (the ramp is longer than the road)",
                )
            lo, hi = self.ramp_length_m, self.length_m - self.accel_lane_m - 1.0
            if not lo <= self.on_ramp_s <= hi:
                raise bad("on_ramp_s", self.on_ramp_s, f"{lo} to {hi} m (ramp and acceleration lane on the road)")
        if self.off_ramp_s is not None:
            if self.ramp_length_m + self.decel_lane_m > self.length_m:
                raise bad(
                    "ramp_length_m",
                    self.ramp_length_m,
                    f"ramp_length_m + decel_lane_m <= length_m = {self.length_m} (the ramp is longer than the road)",
                )
            lo, hi = self.decel_lane_m + 1.0, self.length_m - 1.0
            if not lo <= self.off_ramp_s <= hi:
                raise bad("off_ramp_s", self.off_ramp_s, f"{lo} to {hi} m")
            if self.on_ramp_s is not None and self.off_ramp_s - self.decel_lane_m < self.on_ramp_s + self.accel_lane_m:
                raise bad(
                    "off_ramp_s",
                    self.off_ramp_s,
                    f">= on_ramp_s + accel_lane_m + decel_lane_m = "
                    f"{self.on_ramp_s + self.accel_lane_m + self.decel_lane_m} m (the ramps may not overlap)",
                )
        if self.spawn_window[0] >= self.spawn_window[1]:
            raise bad("spawn_window", self.spawn_window, "(start, end) with start < end")


def _reference_line(cfg: HighwayConfig, rng: np.random.Generator, extra: float) -> np.ndarray:
    """Points `[Q, 3]` (x, y, yaw) every 0.5 m along a piecewise-constant-curvature line."""
    step = 0.5
    n = int(math.ceil((cfg.length_m + extra) / step)) + 1
    s = np.arange(n) * step
    pieces = int(math.ceil(s[-1] / cfg.curve_segment_m)) + 1
    kappa_piece = rng.uniform(-cfg.max_curvature, cfg.max_curvature, size=pieces)
    kappa_piece[0] = 0.0  # start straight
    kappa_piece[rng.random(pieces) < 0.35] = 0.0
    kappa = kappa_piece[(s // cfg.curve_segment_m).astype(int)]
    yaw = np.concatenate([[0.0], np.cumsum(kappa[:-1] * step)])
    x = np.concatenate([[0.0], np.cumsum(np.cos(yaw[:-1]) * step)])
    y = np.concatenate([[0.0], np.cumsum(np.sin(yaw[:-1]) * step)])
    return np.stack([x, y, yaw], axis=1)


def _along(ref: np.ndarray, s0: float, s1: float, lateral) -> np.ndarray:
    """World points of the curve `lateral(s)` metres left of the reference line for s in [s0, s1]."""
    step = 0.5
    s = np.linspace(s0, s1, max(2, int(math.ceil((s1 - s0) / step)) + 1))
    idx = np.clip(np.round(s / step).astype(int), 0, len(ref) - 1)
    base, yaw = ref[idx, :2], ref[idx, 2]
    normal = np.stack([-np.sin(yaw), np.cos(yaw)], axis=1)
    return base + np.asarray(lateral(s))[:, None] * normal


def _ease(t: np.ndarray) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(t, 0.0, 1.0))


def build_highway(cfg: HighwayConfig, seed: int = 0, name: str | None = None) -> RoadMap:
    """Build one highway map. Lane 0 of every section is the leftmost lane."""
    rng = np.random.default_rng(seed)
    b = LaneGraphBuilder(spacing=cfg.point_spacing_m, name=name or f"highway-{cfg.lanes}l-seed{seed}")
    add_highway(b, cfg, rng)
    return b.build(spawn_window=cfg.spawn_window)


@dataclass(frozen=True)
class HighwayLanes:
    """What `add_highway` put into a builder: the on-ramp's first lane and the off-ramp's lane (-1: none) and
    the through lanes of the last section (left to right)."""

    on_ramp: int
    off_ramp: int
    end: list[int]


def add_highway(
    b: LaneGraphBuilder,
    cfg: HighwayConfig,
    rng: np.random.Generator,
    origin: tuple[float, float] = (0.0, 0.0),
    end_exit: int = 0,
    off_ramp_exit: int = 1,
) -> HighwayLanes:
    """Add a highway to `b`, its reference line starting at `origin` heading east. Driving off its end reaches
    destination `end_exit`, off the off-ramp `off_ramp_exit` (-1: neither is a destination, for roads that go on)."""
    ref = _reference_line(cfg, rng, extra=cfg.ramp_length_m + 10.0)
    ref[:, :2] += np.asarray(origin, dtype=float)
    w = cfg.lane_width_m
    on_ramp_lane = off_ramp_lane = -1
    # Section boundaries along the reference line, and which extra (rightmost) lane each section has.
    cuts = {0.0, cfg.length_m}
    if cfg.on_ramp_s is not None:
        cuts |= {cfg.on_ramp_s, cfg.on_ramp_s + cfg.accel_lane_m}
    if cfg.off_ramp_s is not None:
        cuts |= {cfg.off_ramp_s - cfg.decel_lane_m, cfg.off_ramp_s}
    bounds = sorted(cuts)
    prev_main: list[int] = []
    prev_extra = -1
    for s0, s1 in zip(bounds[:-1], bounds[1:], strict=True):
        main = []
        for i in range(cfg.lanes):
            pts = _along(ref, s0, s1, lambda s, i=i: np.full_like(s, -i * w))
            lane = b.add_lane(pts, w, cfg.speed_limit, kind="road", road_s0=s0, name=f"main{i}@{s0:.0f}")
            main.append(lane)
        for i in range(cfg.lanes - 1):
            b.neighbours(main[i], main[i + 1])
        for a, c in zip(prev_main, main, strict=False):
            b.connect(a, c)
        extra = -1
        is_accel = cfg.on_ramp_s is not None and abs(s0 - cfg.on_ramp_s) < 1e-6
        is_decel = cfg.off_ramp_s is not None and abs(s1 - cfg.off_ramp_s) < 1e-6
        if is_accel or is_decel:
            pts = _along(ref, s0, s1, lambda s: np.full_like(s, -cfg.lanes * w))
            kind = "accel" if is_accel else "decel"
            extra = b.add_lane(pts, w, cfg.ramp_speed_limit, kind="ramp", road_s0=s0, name=f"{kind}@{s0:.0f}")
            # Merging cars may only move left out of the acceleration lane; exiting cars only move right into
            # the deceleration lane (and may still abort back to the left).
            b.neighbours(main[-1], extra, to_right_ok=is_decel, to_left_ok=True)
        if is_accel:
            ramp_s0 = s0 - cfg.ramp_length_m
            ramp = b.add_lane(
                _along(
                    ref,
                    ramp_s0,
                    s0,
                    lambda s, a=ramp_s0: -cfg.lanes * w - cfg.ramp_offset_m * (1 - _ease((s - a) / cfg.ramp_length_m)),
                ),
                w,
                cfg.ramp_speed_limit,
                kind="ramp",
                road_s0=ramp_s0,
                name="on-ramp",
            )
            b.connect(ramp, extra)
            on_ramp_lane = ramp
        if prev_extra >= 0 and cfg.off_ramp_s is not None and abs(s0 - cfg.off_ramp_s) < 1e-6:
            ramp = b.add_lane(
                _along(
                    ref,
                    s0,
                    s0 + cfg.ramp_length_m,
                    lambda s, a=s0: -cfg.lanes * w - cfg.ramp_offset_m * _ease((s - a) / cfg.ramp_length_m),
                ),
                w,
                cfg.ramp_speed_limit,
                kind="ramp",
                road_s0=s0,
                name="off-ramp",
                exit_group=off_ramp_exit,
            )
            b.connect(prev_extra, ramp)
            off_ramp_lane = ramp
        prev_main, prev_extra = main, extra
    for lane in prev_main:
        b.lanes[lane].exit_group = end_exit  # the end of the highway, any lane (destination 0 of a highway map)
    return HighwayLanes(on_ramp=on_ramp_lane, off_ramp=off_ramp_lane, end=list(prev_main))


def build_highway_bank(cfg: HighwayConfig, num_maps: int, seed: int = 0) -> RoadMap:
    """A bank of `num_maps` highways that differ in their curves (seeds `seed .. seed + num_maps - 1`)."""
    if num_maps < 1:
        raise MapError(f"num_maps: got {num_maps!r}; allowed: >= 1")
    return stack_maps([build_highway(cfg, seed + i) for i in range(num_maps)])
