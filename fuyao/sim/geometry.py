"""Lane-frame to world-frame geometry: every look-up is a gather into the map bank."""

from __future__ import annotations

import torch

from fuyao.roads.lanegraph import RoadMap


def lane_index(road: RoadMap, map_id: torch.Tensor, lane: torch.Tensor) -> torch.Tensor:
    """Flat index of `(map_id [W], lane [W, ...])` into `[M * L]` tables. Lanes < 0 map to lane 0.

    int32 (half the vector width of int64 in compiled CPU kernels; a compiled highway-v0 tick 18.3 -> 17.1 ms):
    `RoadMap` refuses tables with 2^31 entries or more, so no index here overflows."""
    view = map_id.view(-1, *([1] * (lane.dim() - 1))).int()
    return view * road.max_lanes + lane.clamp(min=0).int()


def lane_attr(table: torch.Tensor, road: RoadMap, map_id: torch.Tensor, lane: torch.Tensor) -> torch.Tensor:
    """Gather a per-lane table `[M, L]` at `lane [W, ...]`."""
    return table.reshape(-1)[lane_index(road, map_id, lane)]


def route_attr(table: torch.Tensor, road: RoadMap, map_id: torch.Tensor, lane: torch.Tensor, dest: torch.Tensor):
    """Gather a routing table `[M, L, D]` at `(lane, dest)`, both `[W, ...]`."""
    num_dest = table.shape[2]
    return table.reshape(-1)[lane_index(road, map_id, lane) * num_dest + dest.clamp(min=0).int()]


def next_lane(road: RoadMap, map_id: torch.Tensor, lane: torch.Tensor, dest: torch.Tensor) -> torch.Tensor:
    """The lane a vehicle continues on past the end of `lane`: the successor its route to `dest` takes, else
    the first successor; -1 where there is none or `lane < 0`. `[W, ...]` int64."""
    routed = route_attr(road.route.best_succ, road, map_id, lane, dest)
    first = lane_attr(road.lane_succ[..., 0], road, map_id, lane)
    return torch.where(lane < 0, -1, torch.where(routed >= 0, routed, first))


def change_ok(road: RoadMap, map_id: torch.Tensor, lane: torch.Tensor, s: torch.Tensor):
    """Whether a vehicle at arc length `s` of `lane` (both `[W, ...]`) may start a lane change to the left and to
    the right: the marking allows it and the vehicle is between the solid lines after and before junctions
    (`RoadMap.lane_change_from`, `lane_change_until`)."""
    left = lane_attr(road.lane_change_left_ok, road, map_id, lane)
    right = lane_attr(road.lane_change_right_ok, road, map_id, lane)
    if not road.has_change_limits:  # a static flag: highways skip the two gathers
        return left, right
    before_line = s < lane_attr(road.lane_change_until, road, map_id, lane)
    change_from = lane_attr(road.lane_change_from, road, map_id, lane)
    before_line = before_line & ((change_from <= 0.0) | (s >= change_from))  # (s may be a hair below 0)
    return left & before_line, right & before_line


def lane_point(road: RoadMap, map_id: torch.Tensor, lane: torch.Tensor, s: torch.Tensor):
    """Centre-line point at arc length `s` of `lane`, both `[W, ...]`.

    Returns `(xy [W, ..., 2] m, yaw [W, ...] rad, kappa [W, ...] 1/m)`; `s` outside the lane extrapolates along
    its first or last segment.
    """
    x, y, yaw, kappa = lane_point_xy(road, map_id, lane, s)
    return torch.stack([x, y], dim=-1), yaw, kappa


def lane_point_xy(road: RoadMap, map_id: torch.Tensor, lane: torch.Tensor, s: torch.Tensor):
    """`lane_point` with the point as two tensors `(x, y, yaw, kappa)`, each `[W, ...]`. The hot path uses this
    form: a trailing dimension of 2 keeps compiled CPU kernels from vectorising over vehicles."""
    num_points = road.lane_xy.shape[2]
    flat = lane_index(road, map_id, lane)
    ds = road.lane_ds.reshape(-1)[flat]
    last = (road.lane_length.reshape(-1)[flat] / ds).round().int()
    pos = s / ds
    i0 = pos.floor().int().clamp(min=0)
    i0 = torch.minimum(i0, (last - 1).clamp(min=0))
    frac = pos - i0.to(pos.dtype)
    point = flat * num_points + i0
    xy_table = road.lane_xy.reshape(-1)  # (x, y) interleaved
    x0, y0 = xy_table[2 * point], xy_table[2 * point + 1]
    x1, y1 = xy_table[2 * point + 2], xy_table[2 * point + 3]
    x = x0 + (x1 - x0) * frac
    y = y0 + (y1 - y0) * frac
    yaw = road.lane_yaw.reshape(-1)[point]
    kappa = road.lane_kappa.reshape(-1)[point]
    return x, y, yaw, kappa


def vehicle_pose(road: RoadMap, map_id: torch.Tensor, lane, s, d, psi):
    """World pose of vehicles in lane coordinates. Returns `(xy [W, N, 2] m, yaw [W, N] rad)`."""
    x, y, yaw = vehicle_pose_xy(road, map_id, lane, s, d, psi)
    return torch.stack([x, y], dim=-1), yaw


def vehicle_pose_xy(road: RoadMap, map_id: torch.Tensor, lane, s, d, psi):
    """`vehicle_pose` as `(x, y, yaw)`, each `[W, N]`."""
    x, y, yaw, _ = lane_point_xy(road, map_id, lane, s)
    return x + d * -torch.sin(yaw), y + d * torch.cos(yaw), wrap_angle(yaw + psi)


def wrap_angle(a: torch.Tensor) -> torch.Tensor:
    """Wrap radians to [-pi, pi)."""
    return torch.remainder(a + torch.pi, 2 * torch.pi) - torch.pi


def box_corners(xy: torch.Tensor, yaw: torch.Tensor, length: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Corners `[..., 4, 2]` of oriented boxes centred at `xy [..., 2]`."""
    c, s = torch.cos(yaw), torch.sin(yaw)
    hl, hw = 0.5 * length, 0.5 * width
    local = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0]], device=xy.device, dtype=xy.dtype)
    lx = local[:, 0] * hl.unsqueeze(-1)
    ly = local[:, 1] * hw.unsqueeze(-1)
    x = xy[..., 0:1] + lx * c.unsqueeze(-1) - ly * s.unsqueeze(-1)
    y = xy[..., 1:2] + lx * s.unsqueeze(-1) + ly * c.unsqueeze(-1)
    return torch.stack([x, y], dim=-1)


def map_to_lane(road: RoadMap, map_id: torch.Tensor, lane_a, s, d, lane_b):
    """Frenet coordinates on `lane_b` of the point `(s, d)` on `lane_a` (neighbouring lanes, `[W, ...]`).

    Start from the proportional arc length (exact where both lanes curve alike) and take one Newton step
    along `lane_b`'s tangent, which makes it exact to second order where straights and curves mix.
    Returns `(s_b, d_b)`.
    """
    len_a = lane_attr(road.lane_length, road, map_id, lane_a)
    len_b = lane_attr(road.lane_length, road, map_id, lane_b)
    px, py, _ = vehicle_pose_xy(road, map_id, lane_a, s, d, torch.zeros_like(s))
    s_est = s * len_b / len_a
    cx, cy, yaw_b, _ = lane_point_xy(road, map_id, lane_b, s_est)
    dx, dy = px - cx, py - cy
    cos_b, sin_b = torch.cos(yaw_b), torch.sin(yaw_b)
    s_b = s_est + dx * cos_b + dy * sin_b
    d_b = -dx * sin_b + dy * cos_b
    return s_b, d_b
