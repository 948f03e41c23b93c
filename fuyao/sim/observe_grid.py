"""Grid observations of the controlled vehicles, for convolutional policies: pure functions of (state, map).

highway-occupancy `[W, C, F, Nx, Ny]`: highway-env's `OccupancyGridObservation` (`SimConfig.occupancy`, its
defaults: features presence, vx, vy, on_road; `grid_size` [[-27.5, 27.5], [-27.5, 27.5]] m, `grid_step` [5, 5]
m, so 11 x 11 cells; world axes; clipped to [-1, 1]). As highway-env: the cell of a vehicle is
`floor((p - min) / step)` of its centre relative to the observer, in highway-env's frame (x along the road, y to
its right: y is the negated world y) or, with `align_to_vehicle_axes`, in the observer's frame (x ahead, y to
its right); every vehicle is written, the observer too, and where several share a cell the first in slot order
wins (highway-env writes `road.vehicles` in reverse, so its first vehicle wins); vx, vy are velocities relative
to the observer on world axes mapped from `velocity_range` to [-1, 1]; x, y are relative positions in metres and
cos_h, sin_h the heading's, none rescaled; empty cells are 0. `on_road` is 1 in every cell that a lane's
centre-line point falls in: highway-env samples each lane every `min(grid_step)` metres for 100 m either side
of the observer, Fuyao takes the map's own points (every 2 m), the same cells wherever a lane crosses the grid
(tests/test_observe_grid.py checks both against highway-env on highway-v0 scenes).

raster `[W, C, 9, H, H]`: a bird's-eye raster per controlled vehicle, `RasterConfig.pixels` square at
`metres_per_pixel`, centred `ahead_m` in front of the ego and turned with it (row 0 ahead, column 0 to the
left). A pixel is set where its centre lies inside a shape (sampling, no anti-aliasing). Channels
(`RASTER_CHANNELS`, one definition in `RasterLayout`):
    drivable      1 on a lane (each centre-line segment is a rectangle of the lane's width)
    lane_centre   1 within half a pixel of a lane's centre line
    lane_edge     1 within half a pixel of a lane's left or right edge (lane boundaries, dashed or solid alike)
    route         on lanes from which the ego's destination can be reached, 1 / (1 + lane changes still needed)
                  (routing tables `changes`, `cost`): 1 on the route, 1/2 one change away, 0 unreachable
    speed_limit   the lane's speed limit / 30 m/s on drivable pixels
    vehicles      1 inside the oriented boxes of the `RasterConfig.vehicles` nearest other vehicles
    ego           1 inside the ego's box
    speed         speed / 30 m/s inside every drawn box (the ego's too: one frame shows how fast)
    signals       on a signalised junction's connector lanes, how strongly its signal says stop: red 1,
                  stop-then-go 0.75, yellow 0.5, green-but-yield 0.25, priority green 0 (and 0 off junctions)

Both are batched over worlds and controlled vehicles with tensor ops only (no loop over vehicles or worlds, no
host sync): lane points come from a tile index of the map bank (`fuyao.sim.lane_tiles`, in `SimConstants`);
the raster draws the `lane_segments` nearest lane segments (straight pieces of `segment_points` map spacings) and
the ego's and its `vehicles` nearest vehicles' boxes as rotated rectangles, exactly at pixel centres, by rows:
within a raster row a rectangle covers one run of columns, solved in closed form (`_RowRuns`), and each run adds
its value to a difference array that is the raster's own buffer, summed in place (`_RowSums`). Where pixel
centres lie exactly on a shape's border they count as inside. On CPU it runs eager (`World` does not compile
it: compiled it was 11x slower, BENCHMARKS.md "Grid observations"); it compiles in one graph where wanted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.roads.signals import Signal
from fuyao.sim.config import SimConfig
from fuyao.sim.constants import SimConstants
from fuyao.sim.geometry import lane_index, route_attr, vehicle_pose_xy
from fuyao.sim.grid_config import OccupancyFeature
from fuyao.sim.lane_tiles import LaneTiles, build_lane_tiles, nearby_points
from fuyao.sim.signals import link_signal
from fuyao.sim.state import WorldState

HIGHWAY_ENV_MAX_SPEED = 40.0  # m/s, highway-env Vehicle.MAX_SPEED
UNREACHABLE_COST_M = 5.0e8  # m, route cost-to-go at or above this: the destination cannot be reached
SPEED_SCALE = 30.0  # m/s, raster speed and speed-limit channels
RASTER_CHANNELS = (
    "drivable",
    "lane_centre",
    "lane_edge",
    "route",
    "speed_limit",
    "vehicles",
    "ego",
    "speed",
    "signals",
)
SEGMENT_OVERLAP_M = 0.01  # m, each lane segment's rectangle reaches this far into the next: no seams


@dataclass(frozen=True)
class OccupancyLayout:
    """highway-occupancy `[F, Nx, Ny]`: one plane per feature, cell `[i, j]` at x index i, y index j."""

    features: tuple[str, ...]
    cells: tuple[int, int]  # (Nx, Ny)

    @staticmethod
    def of(cfg: SimConfig) -> OccupancyLayout:
        return OccupancyLayout(tuple(f.value for f in cfg.occupancy.features), cfg.occupancy.shape)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.features), *self.cells)

    def channel(self, feature: str) -> int:
        return self.features.index(feature)


@dataclass(frozen=True)
class RasterLayout:
    """raster `[channels, H, H]`, the one definition the raster is written by and the CNN encoder reads by."""

    channels: tuple[str, ...]
    pixels: int
    metres_per_pixel: float

    @staticmethod
    def of(cfg: SimConfig) -> RasterLayout:
        return RasterLayout(RASTER_CHANNELS, cfg.raster.pixels, cfg.raster.metres_per_pixel)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.channels), self.pixels, self.pixels)

    def channel(self, name: str) -> int:
        return self.channels.index(name)


def _tiles(road: RoadMap, consts: SimConstants | None, stride: int = 1) -> LaneTiles:
    """The world's tile index of every `stride`-th lane point, or (called outside `World`) one built now."""
    if consts is not None and consts.lane_tiles is not None and consts.lane_tiles.stride == stride:
        return consts.lane_tiles
    return build_lane_tiles(road, stride=stride)


def _lane_points(road: RoadMap, map_id: torch.Tensor, ids: torch.Tensor):
    """World `(x, y)` of tile ids `lane * P + point` `[W, ...]` (clamped to 0 where -1), and their flat lane."""
    p = road.lane_xy.shape[2]
    ids = ids.clamp(min=0)
    flat_lane = lane_index(road, map_id, ids // p).long()
    point = flat_lane * p + ids % p
    xy = road.lane_xy.reshape(-1, 2)
    return xy[point, 0], xy[point, 1], point, flat_lane


def highway_occupancy(
    state: WorldState, road: RoadMap, cfg: SimConfig, consts: SimConstants | None = None
) -> torch.Tensor:
    """highway-env's OccupancyGrid for every controlled vehicle: `[W, C, F, Nx, Ny]` float32 (module docstring)."""
    occ = cfg.occupancy
    v = state.vehicles
    m = state.map_id
    c, n = cfg.controlled, v.s.shape[1]
    nx, ny = occ.shape
    (x_min, x_max), (y_min, y_max) = occ.grid_size
    step_x, step_y = occ.grid_step
    x, y, yaw = vehicle_pose_xy(road, m, v.lane, v.s, v.d, v.psi)  # [W, N]
    hx, hy = x, -y  # highway-env frame: y to the road's right
    hvx, hvy = v.speed * torch.cos(yaw), -v.speed * torch.sin(yaw)
    ex, ey = hx[:, :c].unsqueeze(-1), hy[:, :c].unsqueeze(-1)  # [W, C, 1]
    cos_e, sin_e = torch.cos(-yaw[:, :c]).unsqueeze(-1), torch.sin(-yaw[:, :c]).unsqueeze(-1)

    def cell_of(dx: torch.Tensor, dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell index (flat, `nx * ny` where outside) of positions relative to the observer, highway-env frame."""
        if occ.align_to_vehicle_axes:
            dx, dy = cos_e * dx + sin_e * dy, -sin_e * dx + cos_e * dy
        ix = torch.floor((dx - x_min) / step_x).long()
        iy = torch.floor((dy - y_min) / step_y).long()
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        return torch.where(inside, ix * ny + iy, nx * ny), inside

    dx, dy = hx.unsqueeze(1) - ex, hy.unsqueeze(1) - ey  # [W, C, N]
    cell, inside = cell_of(dx, dy)
    cell = torch.where(inside & v.present.unsqueeze(1), cell, nx * ny)
    # The vehicle written last in highway-env (its first in road order) wins a shared cell: the lowest slot here.
    slot = torch.arange(n, device=v.s.device).expand_as(cell)
    winner = torch.full((*cell.shape[:2], nx * ny + 1), n, device=v.s.device, dtype=torch.long)
    winner = winner.scatter_reduce(-1, cell, slot, reduce="amin")[..., : nx * ny]  # [W, C, cells], n = empty
    filled = winner < n
    pick = winner.clamp(max=n - 1)
    lo, hi = occ.velocity_range
    planes = []
    for feature in occ.features:
        if feature is OccupancyFeature.ON_ROAD:
            planes.append(_on_road(road, m, x[:, :c], y[:, :c], ey, cell_of, occ, consts))
            continue
        if feature is OccupancyFeature.PRESENCE:
            value = torch.ones_like(dx)
        elif feature is OccupancyFeature.X:
            value = dx
        elif feature is OccupancyFeature.Y:
            value = dy
        elif feature is OccupancyFeature.VX:
            value = 2.0 * (hvx.unsqueeze(1) - hvx[:, :c].unsqueeze(-1) - lo) / (hi - lo) - 1.0
        elif feature is OccupancyFeature.VY:
            value = 2.0 * (hvy.unsqueeze(1) - hvy[:, :c].unsqueeze(-1) - lo) / (hi - lo) - 1.0
        elif feature is OccupancyFeature.COS_H:
            value = torch.cos(yaw).unsqueeze(1).expand_as(dx)
        else:  # SIN_H
            value = -torch.sin(yaw).unsqueeze(1).expand_as(dx)
        planes.append((value.gather(2, pick), filled))
    grid = torch.stack([p for p, _ in planes], dim=2)  # [W, C, F, cells]
    written = torch.stack([f for _, f in planes], dim=2)
    if occ.clip:
        grid = grid.clamp(-1.0, 1.0)
    if occ.as_image:
        grid = torch.floor((grid.clamp(-1.0, 1.0) + 1.0) / 2.0 * 255.0)
    grid = torch.where(written, grid, 0.0)
    return grid.unflatten(-1, (nx, ny)) * state.active[..., None, None, None]


def _on_road(road, m, ego_x, ego_y, ey_he, cell_of, occ, consts):
    """highway-env's `on_road` layer: cells that a lane centre-line point falls in. `[W, C, cells]`, mask."""
    (x_min, x_max), (y_min, y_max) = occ.grid_size
    reach = max(abs(x_min), abs(x_max), abs(y_min), abs(y_max))
    if occ.align_to_vehicle_axes:
        reach = math.hypot(max(abs(x_min), abs(x_max)), max(abs(y_min), abs(y_max)))
    ids = nearby_points(_tiles(road, consts), m, ego_x, ego_y, reach)  # [W, C, Q]
    px, py, _, _ = _lane_points(road, m, ids)
    cell, inside = cell_of(px - ego_x.unsqueeze(-1), -py - ey_he)
    nx, ny = occ.shape
    cell = torch.where(inside & (ids >= 0), cell, nx * ny)
    hit = torch.zeros((*cell.shape[:2], nx * ny + 1), device=cell.device)
    hit = hit.scatter(-1, cell, 1.0)[..., : nx * ny]
    return hit, torch.ones_like(hit, dtype=torch.bool)


def _span(offset: torch.Tensor, inv_slope: torch.Tensor, lo, hi) -> tuple[torch.Tensor, torch.Tensor]:
    """The `t` with `offset + t * slope` in `[lo, hi]`, as `(t_min, t_max)`; `inv_slope` is finite (slopes near 0
    are nudged to 1e-6, which puts the interval at +-1e6 m where it should be empty or everything)."""
    t1, t2 = (lo - offset) * inv_slope, (hi - offset) * inv_slope
    return torch.minimum(t1, t2), torch.maximum(t1, t2)


def _safe_inverse(x: torch.Tensor) -> torch.Tensor:
    return 1.0 / torch.where(x.abs() < 1.0e-6, 1.0e-6, x)


class _RowRuns:
    """Rasterise rotated rectangles exactly at pixel centres, one row at a time.

    Rectangles `[W, C, K]` sit at continuous raster coordinates `(row, col)` with axis `(cos_a, sin_a)` in the ego
    frame (x ahead, y left) and cover `along` in `[-half_along, half_along]` about their centre; `radius_m` bounds
    their extent (static). Within one raster row the pixel centres inside a band `lat` in `[lat_lo, lat_hi]` form
    one run of columns, solved in closed form (`columns`): the work is per rectangle and row, not per pixel."""

    def __init__(self, row, col, cos_a, sin_a, half_along, radius_m: float, px: float, pixels: int) -> None:
        h = int(math.ceil(radius_m / px + 0.5))
        steps = torch.arange(-h, h + 1, device=row.device)
        self.r = torch.floor(row).long().unsqueeze(-1) + steps  # [W, C, K, R] raster rows around the centre
        df = (row.unsqueeze(-1) - self.r - 0.5) * px  # m, each row's pixel centres ahead of the centre
        ca, sa = cos_a.unsqueeze(-1), sin_a.unsqueeze(-1)
        # A pixel centre dl metres left of the centre: along = df ca + dl sa, lat = -df sa + dl ca.
        ha = half_along.unsqueeze(-1)
        a_min, a_max = _span(df * ca, _safe_inverse(sa), -ha, ha)
        on = (self.r >= 0) & (self.r < pixels)  # rows off the raster get empty runs
        self.a_min, self.a_max = torch.where(on, a_min, math.inf), torch.where(on, a_max, -math.inf)
        self.lat_offset, self.inv_ca = -df * sa, _safe_inverse(ca)
        self.c = (col - 0.5).unsqueeze(-1)
        self.px, self.pixels = px, pixels

    def columns(self, lat_lo: torch.Tensor, lat_hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """First and last column `[W, C, K, R]` int64 of the runs inside the band `[W, C, K]` (m), `0 <= j0 <= H`
        and `j1 <= H - 1`; an empty run has `j1 = j0 - 1`, so that it adds and removes at one cell."""
        l_min, l_max = _span(self.lat_offset, self.inv_ca, lat_lo.unsqueeze(-1), lat_hi.unsqueeze(-1))
        dl_min = torch.maximum(self.a_min, l_min)
        dl_max = torch.minimum(self.a_max, l_max)
        # Column j's pixel centre lies dl = (col - j - 0.5) px left of the centre.
        j0 = torch.ceil(self.c - dl_max / self.px)
        j1 = torch.maximum(torch.floor(self.c - dl_min / self.px), j0 - 1.0)
        return j0.clamp(0, self.pixels).long(), j1.clamp(-1, self.pixels - 1).long()


class _RowSums:
    """The raster itself, `[E, planes, H, H]` (flat, plus one spare cell at the end), first as a difference array
    over the whole buffer read as one sequence: a run `[j0, j1]` of a row adds `+value` at its first cell and
    `-value` at the cell after its last (the next row's first where it reaches the row's end), and one cumulative
    sum over the buffer gives every pixel the sum of the values of the runs covering it (with `value = 1`: how
    many). An empty run adds and removes at one cell. Values are multiples of 1/1024 (`_quantised`), so every
    partial sum is exact in float32: runs cancel exactly past their end and pixels no run covers stay 0."""

    def __init__(self, planes: int, egos: int, pixels: int, device: torch.device) -> None:
        self.shape = (egos, planes, pixels, pixels)
        self.size = math.prod(self.shape)
        self.buf = torch.zeros(self.size + 1, device=device)
        self.egos, self.planes, self.pixels = egos, planes, pixels

    def rows(self, runs: _RowRuns) -> torch.Tensor:
        """Flat index of column 0 of each of `runs`' rows in plane 0, `[W, C, K, R]` (rows off the raster, whose
        runs are empty, clamped onto it)."""
        w, c = runs.r.shape[:2]
        p = self.pixels
        ego = torch.arange(self.egos, device=runs.r.device).view(w, c, 1, 1)
        return (ego * (self.planes * p) + runs.r.clamp(0, p - 1)) * p

    def add(self, planes: tuple[int, ...], rows, j0: torch.Tensor, j1: torch.Tensor, values=(None,)) -> None:
        """Add `values[i]` (`[W, C, K]`; None: 1) into `planes[i]` over the runs `[j0, j1]` `[W, C, K, R]` of
        `rows`."""
        start = rows + j0
        stop = rows + j1 + 1
        for plane, value in zip(planes, values, strict=True):
            offset = plane * self.pixels * self.pixels
            if value is None:
                v = torch.ones(start.numel(), device=start.device)
            else:
                v = _quantised(value).unsqueeze(-1).expand(j0.shape).flatten()
            self.buf.scatter_add_(0, (start + offset).flatten(), v)
            self.buf.scatter_add_(0, (stop + offset).flatten(), -v)

    def sums(self) -> torch.Tensor:
        """`[E, planes, H, H]`: per pixel, the sum of the values of the runs covering it (in place)."""
        return self.buf.cumsum_(0)[: self.size].view(self.shape)


def _stop_value(code: torch.Tensor) -> torch.Tensor:
    """The signals channel's value of a `Signal` code: red 1, stop-then-go 0.75, yellow 0.5, green-but-yield 0.25,
    priority green and off 0 (arithmetic on the codes: no constant tensor per call)."""
    red, yellow, green_yield, stop_go = (code == int(Signal.RED), code == int(Signal.YELLOW), code == 4, code == 5)
    return red.float() + 0.75 * stop_go.float() + 0.5 * yellow.float() + 0.25 * green_yield.float()


def _quantised(x: torch.Tensor) -> torch.Tensor:
    """`x` rounded to a multiple of 1/1024: sums of a few such values below 2^13 are exact in float32."""
    return torch.round(x * 1024.0) / 1024.0


def raster(state: WorldState, road: RoadMap, cfg: SimConfig, consts: SimConstants | None = None) -> torch.Tensor:
    """The bird's-eye raster of every controlled vehicle: `[W, C, 9, H, H]` float32 (module docstring)."""
    rc = cfg.raster
    tiles = _tiles(road, consts, rc.segment_points)
    v = state.vehicles
    m = state.map_id
    w, c = v.s.shape[0], cfg.controlled
    egos = w * c
    h, px = rc.pixels, rc.metres_per_pixel
    half = 0.5 * rc.extent_m
    top = rc.ahead_m + half  # m ahead of the ego at the raster's top edge
    far = -4.0 * h  # a raster row no rectangle reaches from: where shapes not drawn are put
    x, y, yaw = vehicle_pose_xy(road, m, v.lane, v.s, v.d, v.psi)  # [W, N]
    ex, ey, eyaw = x[:, :c], y[:, :c], yaw[:, :c]
    ce, se = torch.cos(eyaw).unsqueeze(-1), torch.sin(eyaw).unsqueeze(-1)  # [W, C, 1]
    active = state.active.unsqueeze(-1)  # [W, C, 1]: inactive agents see an all-zero raster

    def to_pixels(wx: torch.Tensor, wy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """World points `[W, C, K]` -> continuous (row, col) in the raster."""
        rx, ry = wx - ex.unsqueeze(-1), wy - ey.unsqueeze(-1)
        f, lat = rx * ce + ry * se, -rx * se + ry * ce
        return (top - f) / px, (half - lat) / px

    # Lane segments (from every `segment_points`-th centre-line point to the next such point, or the lane's end):
    # candidates from the tiles around the raster's centre, the nearest `lane_segments` drawn.
    cx, cy = ex + rc.ahead_m * ce.squeeze(-1), ey + rc.ahead_m * se.squeeze(-1)
    seg_m = tiles.stride * tiles.max_spacing_m
    reach = half * math.sqrt(2.0) + seg_m + tiles.max_width_m
    ids = nearby_points(tiles, m, cx, cy, reach)  # [W, C, Q]
    x0, y0, point, flat_lane = _lane_points(road, m, ids)
    p = road.lane_xy.shape[2]
    last = (road.lane_length / road.lane_ds).round().long().reshape(-1)[flat_lane]  # the lane's last point
    xy = road.lane_xy.reshape(-1, 2)
    nxt = flat_lane * p + torch.minimum(point % p + tiles.stride, last)
    x1, y1 = xy[nxt, 0], xy[nxt, 1]
    seg_len = torch.hypot(x1 - x0, y1 - y0)
    row, col = to_pixels(0.5 * (x0 + x1), 0.5 * (y0 + y1))
    key = torch.maximum((row - 0.5 * h).abs(), (col - 0.5 * h).abs())
    key = torch.where((ids >= 0) & (seg_len > 0) & active, key, math.inf)
    k = min(rc.lane_segments, key.shape[-1])
    near_key, sel = torch.topk(key, k, dim=-1, largest=False, sorted=False)  # [W, C, S]

    def segs(t: torch.Tensor) -> torch.Tensor:
        return t.gather(-1, sel)

    row = torch.where(torch.isfinite(near_key), segs(row), far)
    col, seg_len, flat_lane = segs(col), segs(seg_len), segs(flat_lane)
    dxs, dys = segs(x1 - x0), segs(y1 - y0)
    inv = 1.0 / seg_len.clamp(min=1e-6)
    cos_a = (dxs * ce + dys * se) * inv
    sin_a = (-dxs * se + dys * ce) * inv
    hw = 0.5 * road.lane_width.reshape(-1)[flat_lane]
    limit = road.lane_speed_limit.reshape(-1)[flat_lane]
    lane_local = flat_lane - m.long().view(-1, 1, 1) * road.max_lanes
    dest = v.dest[:, :c].unsqueeze(-1)
    changes = route_attr(road.route.changes, road, m, lane_local, dest).abs()
    reachable = route_attr(road.route.cost, road, m, lane_local, dest) < UNREACHABLE_COST_M
    on_route = torch.where(reachable, 1.0 / (1.0 + changes.float()), 0.0)
    e = 0.5 * px  # lines are a pixel wide
    radius = math.hypot(0.5 * seg_m + SEGMENT_OVERLAP_M, 0.5 * tiles.max_width_m + e)  # the edge lines' reach
    runs = _RowRuns(row, col, cos_a, sin_a, 0.5 * seg_len + SEGMENT_OVERLAP_M, radius, px, h)
    sums = _RowSums(len(RASTER_CHANNELS), egos, h, x.device)  # the planes in RASTER_CHANNELS order
    ch = {name: i for i, name in enumerate(RASTER_CHANNELS)}
    rows = sums.rows(runs)
    j0, j1 = runs.columns(-hw, hw)
    # How many lanes cover each pixel, and the sums of their route, speed-limit and signal values.
    stop = _stop_value(link_signal(road, m, state.signals, lane_local))
    sums.add(
        (ch["drivable"], ch["route"], ch["speed_limit"], ch["signals"]),
        rows,
        j0,
        j1,
        (None, on_route, limit / SPEED_SCALE, stop),
    )
    sums.add((ch["lane_centre"],), rows, *runs.columns(torch.full_like(hw, -e), torch.full_like(hw, e)))
    sums.add((ch["lane_edge"],), rows, *runs.columns(hw - e, hw + e))  # left edge
    sums.add((ch["lane_edge"],), rows, *runs.columns(-hw - e, -hw + e))  # right edge

    # Vehicles: the ego and its `vehicles` nearest others, as oriented boxes.
    n = v.s.shape[1]
    dist = torch.hypot(x.unsqueeze(1) - ex.unsqueeze(-1), y.unsqueeze(1) - ey.unsqueeze(-1))  # [W, C, N]
    self_mask = torch.eye(c, n, dtype=torch.bool, device=x.device).unsqueeze(0)
    dist = torch.where(v.present.unsqueeze(1) & ~self_mask, dist, math.inf)
    kv = min(rc.vehicles, n - 1)
    near_d, near = torch.topk(dist, kv, dim=-1, largest=False, sorted=False)
    ego_slot = torch.arange(c, device=x.device).view(1, c, 1).expand(w, -1, -1)
    slots = torch.cat([ego_slot, near], dim=-1)  # [W, C, 1 + kv]
    drawn = torch.cat([torch.ones_like(ego_slot, dtype=torch.bool), torch.isfinite(near_d)], dim=-1) & active

    def pick(t: torch.Tensor) -> torch.Tensor:
        return t.unsqueeze(1).expand(-1, c, -1).gather(2, slots)

    vrow, vcol = to_pixels(pick(x), pick(y))
    vrow = torch.where(drawn, vrow, far)
    rel = pick(yaw) - eyaw.unsqueeze(-1)
    half_wid = 0.5 * pick(v.width)
    box_runs = _RowRuns(
        vrow, vcol, torch.cos(rel), torch.sin(rel), 0.5 * pick(v.length), 0.5 * rc.vehicle_window_m, px, h
    )
    rows = sums.rows(box_runs)
    j0, j1 = box_runs.columns(-half_wid, half_wid)
    is_ego = (torch.arange(1 + kv, device=x.device) == 0).float().expand_as(vrow)
    sums.add(
        (ch["ego"], ch["vehicles"], ch["speed"]), rows, j0, j1, (is_ego, 1.0 - is_ego, pick(v.speed) / SPEED_SCALE)
    )
    # From sums to values, in place: the raster is the difference arrays' buffer (no further copy).
    out = sums.sums()  # [E, 9, H, H]
    plane = {name: out[:, i] for i, name in enumerate(RASTER_CHANNELS)}
    per_lane = plane["drivable"].clamp(min=1.0)  # where lanes overlap (a shared edge), the mean of their values
    plane["route"].div_(per_lane)
    plane["speed_limit"].div_(per_lane)
    plane["signals"].div_(per_lane)
    per_box = (plane["ego"] + plane["vehicles"]).clamp_(min=1.0)
    plane["speed"].div_(per_box)  # the mean where boxes overlap
    for name in ("drivable", "lane_centre", "lane_edge", "vehicles", "ego"):
        plane[name].clamp_(max=1.0)  # counts -> presence
    return out.view(w, c, len(RASTER_CHANNELS), h, h)
