"""Typed configuration of the grid observations (`fuyao.sim.observe_grid`): highway-env's occupancy grid and the
bird's-eye raster. Lengths in metres, speeds in m/s. Kept apart from `fuyao.sim.config` so that module only
names them."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


def _bad(owner: str, name: str, value, allowed: str) -> ValueError:
    from fuyao.sim.config import ConfigError  # here: `fuyao.sim.config` imports this module

    return ConfigError(f"{owner}.{name}: got {value!r}; allowed: {allowed}")


class OccupancyFeature(enum.Enum):
    """highway-env `OccupancyGridObservation` features (`Vehicle.to_dict` keys, and its `on_road` layer)."""

    PRESENCE = "presence"
    X = "x"  # m, relative to the observer (highway-env frame: y to the road's right)
    Y = "y"
    VX = "vx"  # m/s, relative to the observer, world axes
    VY = "vy"
    COS_H = "cos_h"
    SIN_H = "sin_h"
    ON_ROAD = "on_road"  # 1 where a lane's centre line passes through the cell


@dataclass(frozen=True)
class OccupancyGridConfig:
    """highway-env's `OccupancyGrid` observation config, with its defaults.

    `grid_size` `[[x_min, x_max], [y_min, y_max]]` m around the observer, `grid_step` `[dx, dy]` m per cell: the
    grid has `floor((max - min) / step)` cells per axis. `velocity_range`: highway-env's default `features_range`
    for vx and vy (`[-2 MAX_SPEED, 2 MAX_SPEED]`, mapped to [-1, 1]); the other features are not rescaled (as in
    highway-env). `absolute` coordinates are not offered: highway-env raises NotImplementedError for them."""

    features: tuple[OccupancyFeature, ...] = (
        OccupancyFeature.PRESENCE,
        OccupancyFeature.VX,
        OccupancyFeature.VY,
        OccupancyFeature.ON_ROAD,
    )
    grid_size: tuple[tuple[float, float], tuple[float, float]] = ((-27.5, 27.5), (-27.5, 27.5))  # m
    grid_step: tuple[float, float] = (5.0, 5.0)  # m
    velocity_range: tuple[float, float] = (-80.0, 80.0)  # m/s -> [-1, 1]
    align_to_vehicle_axes: bool = False
    clip: bool = True
    as_image: bool = False  # (clip(x) + 1) / 2 * 255, truncated (highway-env's uint8 image, as float32)

    def __post_init__(self) -> None:
        owner = "OccupancyGridConfig"
        feats = []
        for f in self.features:
            try:
                feats.append(OccupancyFeature(f))
            except ValueError:
                raise _bad(owner, "features", f, ", ".join(repr(m.value) for m in OccupancyFeature)) from None
        if not feats or len(set(feats)) != len(feats):
            raise _bad(owner, "features", self.features, "one or more distinct features")
        object.__setattr__(self, "features", tuple(feats))
        size = tuple(tuple(float(v) for v in axis) for axis in self.grid_size)
        step = tuple(float(v) for v in self.grid_step)
        if len(size) != 2 or any(len(a) != 2 or not a[0] < a[1] for a in size):
            raise _bad(owner, "grid_size", self.grid_size, "((x_min, x_max), (y_min, y_max)) with min < max, m")
        if len(step) != 2 or any(not s > 0 for s in step):
            raise _bad(owner, "grid_step", self.grid_step, "(dx, dy) > 0 m")
        if any(math.floor((a[1] - a[0]) / s) < 1 for a, s in zip(size, step, strict=True)):
            raise _bad(owner, "grid_step", self.grid_step, f"at most the grid's extent {size}")
        lo, hi = self.velocity_range
        if not lo < hi:
            raise _bad(owner, "velocity_range", self.velocity_range, "(lo, hi) with lo < hi, m/s")
        object.__setattr__(self, "grid_size", size)
        object.__setattr__(self, "grid_step", step)

    @property
    def shape(self) -> tuple[int, int]:
        """Cells along x and along y."""
        return tuple(int(math.floor((a[1] - a[0]) / s)) for a, s in zip(self.grid_size, self.grid_step, strict=True))


@dataclass(frozen=True)
class RasterConfig:
    """The bird's-eye raster: `pixels` x `pixels` of `metres_per_pixel`, centred `ahead_m` in front of the ego
    and turned with it (row 0 ahead, column 0 to the left).

    `lane_segments`: the nearest lane segments (straight pieces of `segment_points` centre-line spacings) drawn
    per ego; more than fit in the raster wastes time, fewer drops the farthest. `vehicles`: the nearest other
    vehicles drawn (boxes of up to `vehicle_window_m` along their diagonal are drawn whole: it bounds the raster
    rows each box is solved for)."""

    pixels: int = 64
    metres_per_pixel: float = 1.0
    ahead_m: float = 16.0  # m from the ego to the raster's centre, along its heading
    lane_segments: int = 56
    # Each lane segment spans this many centre-line spacings: 4 is 8 m on 2 m maps, 1 cm off the arc of the
    # tightest highway curve (800 m); on tight turns (junction connectors of 10 m radius, 0.8 m off) use 1.
    segment_points: int = 4
    vehicles: int = 12
    vehicle_window_m: float = 17.0  # m; a 16 m x 2.6 m truck's diagonal is 16.2 m

    def __post_init__(self) -> None:
        owner = "RasterConfig"
        for name in ("pixels", "lane_segments", "segment_points", "vehicles"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise _bad(owner, name, value, "an integer >= 1")
        for name in ("metres_per_pixel", "vehicle_window_m"):
            if not getattr(self, name) > 0:
                raise _bad(owner, name, getattr(self, name), "> 0 m")
        if not abs(self.ahead_m) < 0.5 * self.pixels * self.metres_per_pixel:
            raise _bad(owner, "ahead_m", self.ahead_m, "|ahead_m| < half the raster's extent, m")

    @property
    def extent_m(self) -> float:
        return self.pixels * self.metres_per_pixel
