"""Lane transitions: sideways into a neighbour lane (a lane change crossing the boundary), lengthwise onto the
successor the route picks at a lane's end, arrival at a destination, driving off a dead end, and re-routing."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.roads.routing import UNREACHABLE
from fuyao.roads.signals import Signal
from fuyao.sim.geometry import lane_attr, map_to_lane, next_lane, route_attr
from fuyao.sim.signals import link_signal
from fuyao.sim.state import SignalClock, Vehicles

REACHABLE = 0.5 * UNREACHABLE
CONNECTOR_KIND = 2  # `RoadMap.lane_kind` of junction connector lanes


@dataclass(frozen=True)
class LaneMove:
    """Where every vehicle is after the tick's lane transitions, and what happened, `[W, N]`."""

    lane: torch.Tensor  # int64
    s: torch.Tensor  # m
    d: torch.Tensor  # m
    lc_dir: torch.Tensor  # int64, the lane change still under way
    dest: torch.Tensor  # int64, after re-routing
    switched: torch.Tensor  # bool, crossed into a neighbour lane
    width: torch.Tensor  # m, width of the lane after a sideways switch (before a lengthwise transition)
    offroad: torch.Tensor  # bool, outside the paved lanes or driven off a dead end
    arrived: torch.Tensor  # bool, left the map at its destination, or (controlled) entered a finish lane
    route_failure: torch.Tensor  # bool, a controlled car's destination can no longer be reached
    red_light: torch.Tensor  # bool, entered a junction past its stop line on red


def move_between_lanes(
    road: RoadMap, m, v: Vehicles, s, d, lc_dir, live, left_lane, right_lane, clock: SignalClock | None
) -> LaneMove:
    """Sideways: crossing half the lane width moves the car into the neighbour lane (or off the road).
    Lengthwise: past the lane end, continue on the successor the route picks; a destination lane's end is
    arrival; any other dead end is driving off the road. `clock`: the signals (None on maps without any)."""
    width = lane_attr(road.lane_width, road, m, v.lane)
    lane_len = lane_attr(road.lane_length, road, m, v.lane)
    to_left = live & (d > 0.5 * width) & (left_lane >= 0)
    to_right = live & (d < -0.5 * width) & (right_lane >= 0)
    side_lane = torch.where(to_left, left_lane, right_lane)
    side_len = lane_attr(road.lane_length, road, m, side_lane)
    switched = to_left | to_right
    side_s, side_d = map_to_lane(road, m, v.lane, s, d, torch.where(switched, side_lane, v.lane))
    s = torch.where(switched, side_s, s)
    d = torch.where(switched, side_d, d)
    lane = torch.where(switched, side_lane, v.lane)
    lc_dir = torch.where(switched, 0, lc_dir)
    width = torch.where(switched, lane_attr(road.lane_width, road, m, lane), width)
    offroad = live & (d.abs() > 0.5 * width) & ~switched
    lane_len = torch.where(switched, side_len, lane_len)

    past = live & (s >= lane_len)
    nxt = next_lane(road, m, lane, v.dest)
    arrived = past & (lane_attr(road.lane_exit_group, road, m, lane) == v.dest)
    dead_end = past & ~arrived & (nxt < 0)
    transition = past & ~arrived & (nxt >= 0)
    if clock is not None:
        # A red-light run: the front bumper crossing the stop line (the end of a street before a connector) on red.
        half = 0.5 * v.length
        crossed = live & ~switched & (v.s + half < lane_len) & (s + half >= lane_len)
        into_junction = crossed & (lane_attr(road.lane_kind, road, m, lane) != CONNECTOR_KIND)
        red_light = into_junction & (link_signal(road, m, clock, nxt) == int(Signal.RED))
    else:
        red_light = torch.zeros_like(past)
    # A controlled car entering a finish lane has completed its episode (merge-v0: past x = 370 m).
    finished = transition & v.controlled & lane_attr(road.lane_finish, road, m, nxt)
    s = torch.where(transition, s - lane_len, torch.where(dead_end, lane_len, s))
    lane = torch.where(transition, nxt, lane)
    arrived = arrived | finished
    offroad = offroad | dead_end
    # A lane change in progress continues only if the new lane has that neighbour.
    has_left = lane_attr(road.lane_left, road, m, lane) >= 0
    has_right = lane_attr(road.lane_right, road, m, lane) >= 0
    lc_dir = torch.where(((lc_dir < 0) & ~has_left) | ((lc_dir > 0) & ~has_right), 0, lc_dir)

    # Route: a controlled car that can no longer reach its destination has failed its route; background
    # drivers re-route to the nearest destination they can still reach.
    reachable = route_attr(road.route.cost, road, m, lane, v.dest) < REACHABLE
    route_failure = live & ~reachable & v.controlled
    rerouted = lane_attr(road.route.default_dest, road, m, lane)
    dest = torch.where(~reachable & ~v.controlled, rerouted, v.dest)
    return LaneMove(
        lane=lane,
        s=s,
        d=d,
        lc_dir=lc_dir,
        dest=dest,
        switched=switched,
        width=width,
        offroad=offroad,
        arrived=arrived,
        route_failure=route_failure,
        red_light=red_light,
    )


__all__ = ["CONNECTOR_KIND", "LaneMove", "REACHABLE", "move_between_lanes"]
