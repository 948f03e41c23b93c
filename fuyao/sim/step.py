"""The step: pure functions of (state, action). One decision = `ticks_per_decision` simulation ticks.

tick:      neighbours (one sort) -> IDM / MOBIL for background traffic, controllers or held commands for
           controlled vehicles -> kinematic bicycle in lane coordinates -> lane switches (sideways) and lane
           transitions (at lane ends, by route) -> collisions.
decision:  apply the policy's action, run the ticks, score the controlled vehicles, refill traffic, auto-reset
           finished worlds by a masked select.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.roads.routing import UNREACHABLE
from fuyao.sim import traffic
from fuyao.sim.collision import at_fault_collisions, collisions
from fuyao.sim.config import ActionType, SimConfig
from fuyao.sim.constants import SimConstants, constants_or_build
from fuyao.sim.geometry import (
    lane_attr,
    lane_point_xy,
    map_to_lane,
    next_lane,
    route_attr,
    vehicle_pose_xy,
    wrap_angle,
)
from fuyao.sim.neighbours import Surroundings, surroundings
from fuyao.sim.reset import (
    CONTROLLED_CAR,
    S_INFLOW,
    S_RESPAWN,
    reset_state,
    sample_destination,
    sample_drivers,
)
from fuyao.sim.rng import uniform
from fuyao.sim.state import Vehicles, WorldState, replace, where_world

PHYSICAL_MAX_SPEED = 45.0  # m/s
REACHABLE = 0.5 * UNREACHABLE


@dataclass(frozen=True)
class TickEvents:
    """What happened to each vehicle in one tick, `[W, N]`."""

    collided: torch.Tensor  # bool, touching another vehicle (new or ongoing)
    at_fault: torch.Tensor  # bool, a controlled vehicle caused a collision that began this tick (False for others)
    offroad: torch.Tensor  # bool, centre outside the paved lanes or driven off a dead end
    arrived: torch.Tensor  # bool, left the map at its destination
    route_failure: torch.Tensor  # bool, its destination can no longer be reached (missed exit)
    lane_changed: torch.Tensor  # bool, crossed into a neighbour lane
    yaw_rate: torch.Tensor  # float32 rad/s
    lat_accel: torch.Tensor  # float32 m/s^2 (speed x yaw rate)


ANTICIPATION_DECEL = 1.5  # m/s^2, how drivers slow down for a lower speed limit on the lane ahead


def effective_limit(road: RoadMap, map_id, v: Vehicles) -> torch.Tensor:
    """The speed a driver may go now: the lane's limit, lowered ahead of a slower next lane (a turn) so that
    braking at `ANTICIPATION_DECEL` meets the next limit at the lane's end. `[W, N]` m/s."""
    limit = lane_attr(road.lane_speed_limit, road, map_id, v.lane)
    nxt = next_lane(road, map_id, v.lane, v.dest)
    next_limit = torch.where(nxt >= 0, lane_attr(road.lane_speed_limit, road, map_id, nxt), limit)
    to_end = (lane_attr(road.lane_length, road, map_id, v.lane) - v.s).clamp(min=0.0)
    return torch.minimum(limit, torch.sqrt(next_limit * next_limit + 2.0 * ANTICIPATION_DECEL * to_end))


def driver_params(v: Vehicles, limit: torch.Tensor) -> traffic.DriverParams:
    return traffic.DriverParams(
        desired_speed=torch.minimum(v.desire * limit, v.max_speed),
        headway=v.idm_headway,
        jam_gap=v.idm_gap,
        max_accel=v.idm_accel,
        comfort_decel=v.idm_decel,
        delta=v.idm_delta,
        politeness=v.politeness,
    )


def route_view(road: RoadMap, map_id, v: Vehicles, sur: Surroundings) -> traffic.RouteView:
    def at(lane, s):
        changes = route_attr(road.route.changes, road, map_id, lane, v.dest)
        remaining = route_attr(road.route.deadline, road, map_id, lane, v.dest) - s
        return changes, remaining

    changes, remaining = at(v.lane, v.s)
    lc, lr = at(sur.left_lane, sur.left_s)
    rc, rr = at(sur.right_lane, sur.right_s)
    return traffic.RouteView(changes, remaining, lc, lr, rc, rr)


def following_accel(road: RoadMap, map_id, v: Vehicles, sur: Surroundings, params, route) -> torch.Tensor:
    """IDM acceleration `[W, N]` m/s^2 that respects every leader a driver must: the own-lane leader, the
    leader in the target lane during a lane change, cars cutting in from either side, the end of a lane
    that ends (when the route still needs a change out of it), and cars to yield to at junctions. The
    free-road term is computed once; the most constraining leader is the largest interaction term."""
    free = traffic.idm_free(v.speed, params)
    inter = traffic.idm_interaction(v.speed, sur.lead.gap, sur.lead.speed, sur.lead.exists, params)
    must_leave = (route.changes != 0) & lane_attr(road.lane_leads_to_dead_end, road, map_id, v.lane)
    inter = torch.maximum(inter, traffic.route_stop_interaction(v.speed, route.remaining, must_leave, v.length, params))
    target_lead_gap = torch.where(v.lc_dir < 0, sur.left_lead.gap, sur.right_lead.gap)
    target_lead_speed = torch.where(v.lc_dir < 0, sur.left_lead.speed, sur.right_lead.speed)
    target_has_lead = torch.where(v.lc_dir < 0, sur.left_lead.exists, sur.right_lead.exists) & (v.lc_dir != 0)
    inter = torch.maximum(
        inter, traffic.idm_interaction(v.speed, target_lead_gap, target_lead_speed, target_has_lead, params)
    )
    inter = torch.maximum(inter, traffic.cut_in_interaction(sur, v.lc_dir, v.speed, params))
    yield_inter = traffic.conflict_yield_interaction(sur, v.speed, v.length, params)
    if yield_inter is not None:
        inter = torch.maximum(inter, yield_inter)
    return traffic.idm_combine(free, inter, params)


def background_control(road, map_id, v: Vehicles, sur: Surroundings, limit, mobil: bool, left_ok, right_ok):
    """IDM acceleration `[W, N]` and (on MOBIL ticks) the new lane-change direction of every vehicle."""
    params = driver_params(v, limit)
    route = route_view(road, map_id, v, sur)
    accel = following_accel(road, map_id, v, sur, params, route)
    lc_dir = v.lc_dir
    if mobil:
        direction, safe_l, safe_r = traffic.mobil_decision(
            sur, v.speed, v.length, params, params, route, left_ok, right_ok
        )
        start = (v.lc_dir == 0) & (v.speed > 1.0)
        lc_dir = torch.where(start, direction, v.lc_dir)
        # Abort a change whose target lane became unsafe while the car has not yet left its lane.
        unsafe = ((v.lc_dir < 0) & ~safe_l) | ((v.lc_dir > 0) & ~safe_r)
        lc_dir = torch.where(unsafe & (v.d.abs() < 0.5), 0, lc_dir)
    # Every tick: two cars entering one lane from both sides must not meet there.
    target_lane = torch.where(lc_dir < 0, sur.left_lane, torch.where(lc_dir > 0, sur.right_lane, -1))
    target_s = torch.where(lc_dir < 0, sur.left_s, sur.right_s)
    resolved = traffic.resolve_lane_claims(lc_dir, v.d, target_lane, target_s, v.length, v.speed)
    return accel, torch.where(v.controlled, v.lc_dir, resolved)


def tick(state: WorldState, road: RoadMap, cfg: SimConfig, mobil: bool) -> tuple[WorldState, TickEvents]:
    """Advance every world by one simulation tick of `cfg.dt` seconds."""
    v = state.vehicles
    m = state.map_id
    dt = cfg.dt
    lane_len = lane_attr(road.lane_length, road, m, v.lane)
    width = lane_attr(road.lane_width, road, m, v.lane)
    limit = effective_limit(road, m, v)
    left_ok = lane_attr(road.lane_change_left_ok, road, m, v.lane)
    right_ok = lane_attr(road.lane_change_right_ok, road, m, v.lane)
    sur = surroundings(road, m, v.lane, v.s, v.length, v.speed, v.present, v.dest)
    _, _, _, kappa = lane_point_xy(road, m, v.lane, v.s)

    accel_bg, lc_bg = background_control(road, m, v, sur, limit, mobil, left_ok, right_ok)
    lc_dir = torch.where(v.controlled, v.lc_dir, lc_bg)
    width_left = lane_attr(road.lane_width, road, m, sur.left_lane)
    width_right = lane_attr(road.lane_width, road, m, sur.right_lane)
    target_d = torch.where(
        lc_dir < 0, 0.5 * (width + width_left), torch.where(lc_dir > 0, -0.5 * (width + width_right), 0.0)
    )
    steer_auto = traffic.steering_control(v.d - target_d, v.psi, v.speed, kappa, v.length)
    if cfg.action is ActionType.CONTINUOUS:
        accel_ctrl, steer_ctrl = v.cmd_accel, v.cmd_steer
    else:
        # Unclipped, as highway-env's MDPVehicle (5 m/s steps over tau 0.6 s ask 8.3 m/s^2); speed is capped.
        accel_ctrl = traffic.speed_control(v.target_speed, v.speed)
        steer_ctrl = steer_auto
    accel = torch.where(v.controlled, accel_ctrl, accel_bg.clamp(max=v.idm_accel))
    steer = torch.where(v.controlled, steer_ctrl, steer_auto)
    live = v.present & ~v.crashed
    accel = torch.where(live, accel, 0.0)
    steer = torch.where(live, steer, 0.0)

    # Kinematic bicycle (reference at the centre, as highway-env) in the lane's Frenet frame; explicit Euler.
    beta = torch.atan(0.5 * torch.tan(steer))
    heading = v.psi + beta
    s_dot = v.speed * torch.cos(heading) / (1.0 - kappa * v.d).clamp(min=0.1)
    d_dot = v.speed * torch.sin(heading)
    yaw_rate = v.speed * torch.sin(beta) / (0.5 * v.length)
    psi_dot = yaw_rate - kappa * s_dot
    speed = torch.minimum((v.speed + accel * dt).clamp(min=0.0), torch.full_like(v.speed, PHYSICAL_MAX_SPEED))
    speed = torch.where(live, speed, 0.0)
    s = torch.where(live, v.s + s_dot * dt, v.s)
    d = torch.where(live, v.d + d_dot * dt, v.d)
    psi = torch.where(live, wrap_angle(v.psi + psi_dot * dt), v.psi)

    # Sideways: crossing half the lane width moves the car into the neighbour lane (or off the road).
    left_lane, right_lane = sur.left_lane, sur.right_lane
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

    # Lengthwise: past the lane end, continue on the successor the route picks; a destination lane's end is
    # arrival; any other dead end is driving off the road.
    past = live & (s >= lane_len)
    nxt = next_lane(road, m, lane, v.dest)
    arrived = past & (lane_attr(road.lane_exit_group, road, m, lane) == v.dest)
    dead_end = past & ~arrived & (nxt < 0)
    transition = past & ~arrived & (nxt >= 0)
    s = torch.where(transition, s - lane_len, torch.where(dead_end, lane_len, s))
    lane = torch.where(transition, nxt, lane)
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

    present = v.present & ~(arrived & ~v.controlled)
    moved = replace(v, lane=lane, s=s, d=d, psi=psi, speed=speed, accel=accel, steer=steer, lc_dir=lc_dir, dest=dest)
    moved = replace(moved, present=present)
    x, y, yaw = vehicle_pose_xy(road, m, lane, s, d, psi)
    candidates = [sur.lead.slot, sur.left_lead.slot, sur.left_follow.slot, sur.right_lead.slot, sur.right_follow.slot]
    if sur.conflict_slot is not None:
        candidates += list(sur.conflict_slot.unbind(-1))
    collided = collisions(x, y, yaw, v.length, v.width, present, candidates) & present
    c = cfg.controlled
    neighbours = torch.stack([slot[:, :c] for slot in [sur.follow.slot, *candidates]], -1)  # [W, C, K]
    at_fault = at_fault_collisions(
        x, y, yaw, v.length, v.width, present, collided & ~v.crashed, speed, d, psi, width, neighbours
    )
    # [W, C] -> [W, N] (background slots are never judged); padded as uint8, see `end_decision`.
    at_fault = torch.nn.functional.pad(at_fault.to(torch.uint8), (0, v.s.shape[1] - cfg.controlled)).bool()
    moved = replace(moved, crashed=v.crashed | collided)
    # Padding slots (absent at the start of the tick) keep every field as it was. Only the fields a tick
    # writes are selected: the others are passed through untouched (no copies).
    written = ("lane", "s", "d", "psi", "speed", "accel", "steer", "lc_dir", "dest", "present", "crashed")
    moved = replace(moved, **{f: torch.where(v.present, getattr(moved, f), getattr(v, f)) for f in written})
    events = TickEvents(
        collided=collided,
        at_fault=at_fault,
        offroad=offroad,
        arrived=arrived,
        route_failure=route_failure,
        lane_changed=switched,
        yaw_rate=yaw_rate,
        lat_accel=speed * yaw_rate,
    )
    return replace(state, vehicles=moved, ticks=state.ticks + 1), events


def speed_index(speed: torch.Tensor, speeds: torch.Tensor) -> torch.Tensor:
    """highway-env's MDPVehicle.speed_to_index: nearest of uniformly spaced target speeds."""
    x = (speed - speeds[0]) / (speeds[-1] - speeds[0])
    return torch.round(x * (speeds.shape[0] - 1)).clamp(0, speeds.shape[0] - 1).long()


META_LEFT, META_IDLE, META_RIGHT, META_FASTER, META_SLOWER = range(5)


def apply_action(
    state: WorldState, action: torch.Tensor, road: RoadMap, cfg: SimConfig, consts: SimConstants | None = None
) -> WorldState:
    """Write the policy's action for the controlled slots `[:, :C]`. Meta: `[W, C]` int64; continuous:
    `[W, C, 2]` in [-1, 1] (acceleration, steering), clipped."""
    v = state.vehicles
    c = cfg.controlled
    if cfg.action is ActionType.META:
        a = action.long()
        speeds = constants_or_build(consts, cfg, v.s.device).target_speeds
        lane = v.lane[:, :c]
        left_ok = lane_attr(road.lane_change_left_ok, road, state.map_id, lane)
        right_ok = lane_attr(road.lane_change_right_ok, road, state.map_id, lane)
        lc = v.lc_dir[:, :c]
        lc = torch.where(a == META_LEFT, torch.where(lc > 0, 0, torch.where(left_ok, -1, lc)), lc)
        lc = torch.where(a == META_RIGHT, torch.where(lc < 0, 0, torch.where(right_ok, 1, lc)), lc)
        idx = speed_index(v.speed[:, :c], speeds)
        idx = torch.where(a == META_FASTER, idx + 1, torch.where(a == META_SLOWER, idx - 1, idx))
        new_target = speeds[idx.clamp(0, speeds.shape[0] - 1)]
        target = torch.where((a == META_FASTER) | (a == META_SLOWER), new_target, v.target_speed[:, :c])
        here = v.present[:, :c]  # a controlled car that has left the road takes no more commands
        lc_dir = torch.cat([torch.where(here, lc, v.lc_dir[:, :c]), v.lc_dir[:, c:]], dim=1)
        target_speed = torch.cat([torch.where(here, target, v.target_speed[:, :c]), v.target_speed[:, c:]], dim=1)
        return replace(state, vehicles=replace(v, lc_dir=lc_dir, target_speed=target_speed))
    a = action.float().clamp(-1.0, 1.0)
    lo, hi = cfg.accel_range
    acc = lo + (a[..., 0] + 1.0) * 0.5 * (hi - lo)
    lo, hi = cfg.steer_range
    steer = lo + (a[..., 1] + 1.0) * 0.5 * (hi - lo)
    here = v.present[:, :c]
    cmd_accel = torch.cat([torch.where(here, acc, v.cmd_accel[:, :c]), v.cmd_accel[:, c:]], dim=1)
    cmd_steer = torch.cat([torch.where(here, steer, v.cmd_steer[:, :c]), v.cmd_steer[:, c:]], dim=1)
    return replace(state, vehicles=replace(v, cmd_accel=cmd_accel, cmd_steer=cmd_steer))


def action_mask(state: WorldState, road: RoadMap, cfg: SimConfig, consts: SimConstants | None = None) -> torch.Tensor:
    """Meta actions a controlled vehicle can take now, `[W, C, 5]` bool (highway-env's available actions)."""
    v = state.vehicles
    c = cfg.controlled
    lane = v.lane[:, :c]
    # As highway-env's get_available_actions: a lane change is available where the lane exists.
    left = lane_attr(road.lane_change_left_ok, road, state.map_id, lane)
    right = lane_attr(road.lane_change_right_ok, road, state.map_id, lane)
    speeds = constants_or_build(consts, cfg, v.s.device).target_speeds
    idx = speed_index(v.target_speed[:, :c], speeds)
    idle = torch.ones_like(left)
    return torch.stack([left, idle, right, idx < speeds.shape[0] - 1, idx > 0], dim=-1)


def cost_to_go(road: RoadMap, state: WorldState) -> torch.Tensor:
    """Route cost-to-go of every vehicle, `[W, N]` m (lane changes still needed count `LANE_CHANGE_COST_M`)."""
    v = state.vehicles
    cost = route_attr(road.route.cost, road, state.map_id, v.lane, v.dest)
    return (cost - v.s).clamp(min=0.0)


def _entry_spawn(state: WorldState, road: RoadMap, cfg: SimConfig, free: torch.Tensor, stream: int):
    """Which of the slots `free [W, N]` enter the map this decision: each draws an entry lane (a source lane that
    is not a junction connector); per entry lane the lowest such slot spawns at s = 0 if the lane is clear for
    `spawn_gap_m`. Returns `spawn [W, N]`, the drawn `lane`, the speed of the first car on that lane (1e6 if
    none: a new car is never faster) and a uniform draw `[W, N]` for the destination."""
    v = state.vehicles
    w, n = v.s.shape
    num_lanes = road.max_lanes
    source = road.lane_is_source[state.map_id] & road.lane_valid[state.map_id] & (road.lane_kind[state.map_id] != 2)
    u = uniform(state.seed, state.ticks, (n, 2), stream)
    cdf = torch.cumsum(source.float(), dim=1)
    cdf = cdf / cdf[:, -1:].clamp(min=1.0)
    lane = torch.searchsorted(cdf, u[..., 0].contiguous(), right=True).clamp(max=num_lanes - 1)
    free = free & source.any(dim=1, keepdim=True)
    big = torch.full((w, num_lanes), 1.0e6, device=v.s.device)
    occupied_s = torch.where(v.present, v.s - 0.5 * v.length, 1.0e6)
    first_s = big.scatter_reduce(1, v.lane.clamp(min=0), occupied_s, reduce="amin")
    # The new car is no faster than the first car on its entry lane.
    is_first = v.present & (occupied_s <= first_s.gather(1, v.lane.clamp(min=0)))
    lane_speed = torch.full((w, num_lanes), 1.0e6, device=v.s.device).scatter_reduce(
        1, v.lane.clamp(min=0), torch.where(is_first, v.speed, 1.0e6), reduce="amin"
    )
    clear = first_s.gather(1, lane) > cfg.spawn_gap_m
    slot_ids = torch.arange(n, device=v.s.device).expand(w, n)
    candidate = free & clear
    winner_slot = torch.full((w, num_lanes), n, dtype=torch.int64, device=v.s.device).scatter_reduce(
        1, lane, torch.where(candidate, slot_ids, n), reduce="amin"
    )
    spawn = candidate & (winner_slot.gather(1, lane) == slot_ids)
    return spawn, lane, lane_speed.gather(1, lane), u[..., 1]


def _entered(v: Vehicles, spawn: torch.Tensor, lane: torch.Tensor, **fields: torch.Tensor) -> Vehicles:
    """`v` with the slots `spawn` replaced by a car at the start (s = 0) of `lane`, at rest laterally."""
    zeros = torch.zeros_like(v.s)
    fresh = dict(
        lane=lane,
        s=zeros,
        d=zeros,
        psi=zeros,
        accel=zeros,
        steer=zeros,
        lc_dir=torch.zeros_like(lane),
        present=torch.ones_like(v.present),
        crashed=torch.zeros_like(v.present),
        **fields,
    )
    return replace(v, **{k: torch.where(spawn, val, getattr(v, k)) for k, val in fresh.items()})


def inflow(state: WorldState, road: RoadMap, cfg: SimConfig) -> WorldState:
    """Refill free background slots at the map's entry lanes, one car per entry lane and decision, where the
    entry is clear for `spawn_gap_m`."""
    v = state.vehicles
    w, n = v.s.shape
    spawn, lane, lane_speed, u_dest = _entry_spawn(state, road, cfg, ~v.present & ~v.controlled, S_INFLOW)
    drivers = sample_drivers(cfg, state.seed, state.ticks, (w, n), v.s.device)
    limit = lane_attr(road.lane_speed_limit, road, state.map_id, lane)
    desired = torch.minimum(drivers["desire"] * limit, drivers["max_speed"])
    speed = torch.minimum(desired * drivers.pop("init_fraction"), lane_speed)
    dest = sample_destination(road, cfg, state.map_id, lane, u_dest, cfg.drivers.exit_fraction)
    v = _entered(v, spawn, lane, speed=speed, dest=dest, target_speed=desired, **drivers)
    return replace(state, vehicles=v)


def respawn(state: WorldState, road: RoadMap, cfg: SimConfig, consts: SimConstants | None = None) -> WorldState:
    """Controlled slots whose agent is out of its episode (crashed, off the road, arrived, missed its exit) enter
    again as a new agent, as MetaDrive's multi-agent environments respawn theirs: the old car is towed away, and
    the new one starts at an entry lane clear for `spawn_gap_m` (at most one car per entry lane and decision;
    a slot whose entry is blocked waits, inactive, for a later decision) with the controlled car's parameters, at
    `ego_speed` (no faster than the lane's limit and its first car), on a route drawn like a reset's
    (`ego_exit_fraction`)."""
    v = state.vehicles
    w, n = v.s.shape
    c = state.active.shape[1]
    ended = v.controlled[:, :c] & ~state.active
    # Padded as uint8, as in `end_decision` (Inductor's CPU vectoriser and padded bools).
    out = torch.nn.functional.pad(ended.to(torch.uint8), (0, n - c)).bool()
    v = replace(v, present=v.present & ~out)
    state = replace(state, vehicles=v)
    spawn, lane, lane_speed, u_dest = _entry_spawn(state, road, cfg, out, S_RESPAWN)
    m = state.map_id
    limit = lane_attr(road.lane_speed_limit, road, m, lane)
    speed = torch.minimum(torch.minimum(torch.full_like(limit, cfg.ego_speed), limit), lane_speed)
    speeds = constants_or_build(consts, cfg, v.s.device).target_speeds
    target = speeds[(speed.unsqueeze(-1) - speeds).abs().argmin(-1)]
    dest = sample_destination(road, cfg, m, lane, u_dest, cfg.ego_exit_fraction)
    fields = {k: torch.full_like(v.s, value) for k, value in CONTROLLED_CAR.items()}
    fields.update(
        speed=speed, dest=dest, target_speed=target, cmd_accel=torch.zeros_like(v.s), cmd_steer=torch.zeros_like(v.s)
    )
    v = _entered(v, spawn, lane, **fields)
    return replace(state, vehicles=v, active=state.active | spawn[:, :c])


@dataclass(frozen=True)
class StepResult:
    """One decision's outcome for the controlled vehicles."""

    state: WorldState  # after auto-reset
    final_state: WorldState  # before auto-reset (what the episode ended in)
    reward: torch.Tensor  # [W, C] float32
    terminated: torch.Tensor  # [W, C] bool (crash, off-road, missed route, arrived)
    truncated: torch.Tensor  # [W, C] bool (time limit)
    world_done: torch.Tensor  # [W] bool, the world was reset
    info: dict[str, torch.Tensor]  # per-step metric terms, [W, C] each ("world_*": [W])


@dataclass(frozen=True)
class DecisionAccumulator:
    """What the controlled vehicles did during one decision's ticks, `[W, C]` each."""

    collided: torch.Tensor  # bool
    at_fault: torch.Tensor  # bool, caused a collision (`collision.at_fault_collisions`)
    offroad: torch.Tensor  # bool
    arrived: torch.Tensor  # bool
    route_failure: torch.Tensor  # bool
    prev_accel: torch.Tensor  # m/s^2, at the previous tick (jerk)
    lon_accel_max: torch.Tensor  # m/s^2, largest |longitudinal acceleration| over the ticks
    jerk_max: torch.Tensor  # m/s^3
    lat_accel_max: torch.Tensor  # m/s^2
    yaw_rate_max: torch.Tensor  # rad/s
    lane_changes: torch.Tensor  # count


def begin_decision(
    state: WorldState, action: torch.Tensor, road: RoadMap, cfg: SimConfig, consts: SimConstants | None = None
):
    """Apply the action; return the state, the route cost-to-go before the decision and empty accumulators."""
    c = cfg.controlled
    state = apply_action(state, action, road, cfg, consts)
    cost_before = cost_to_go(road, state)[:, :c]

    def no():
        return torch.zeros_like(state.active)

    def zero():
        return torch.zeros_like(cost_before)

    # Distinct tensors per field (aliasing would make compiled ticks guard on identity and recompile).
    acc = DecisionAccumulator(
        no(), no(), no(), no(), no(), state.vehicles.accel[:, :c].contiguous(), zero(), zero(), zero(), zero(), zero()
    )
    return state, cost_before, acc


def tick_and_accumulate(
    state: WorldState, acc: DecisionAccumulator, road: RoadMap, cfg: SimConfig, mobil: bool
) -> tuple[WorldState, DecisionAccumulator]:
    """One tick, folding the controlled vehicles' events into the decision's accumulators."""
    c = cfg.controlled
    state, ev = tick(state, road, cfg, mobil)
    accel = state.vehicles.accel[:, :c]
    acc = DecisionAccumulator(
        collided=acc.collided | ev.collided[:, :c],
        at_fault=acc.at_fault | ev.at_fault[:, :c],
        offroad=acc.offroad | ev.offroad[:, :c],
        arrived=acc.arrived | ev.arrived[:, :c],
        route_failure=acc.route_failure | ev.route_failure[:, :c],
        prev_accel=accel.contiguous(),
        lon_accel_max=torch.maximum(acc.lon_accel_max, accel.abs()),
        jerk_max=torch.maximum(acc.jerk_max, ((accel - acc.prev_accel) / cfg.dt).abs()),
        lat_accel_max=torch.maximum(acc.lat_accel_max, ev.lat_accel[:, :c].abs()),
        yaw_rate_max=torch.maximum(acc.yaw_rate_max, ev.yaw_rate[:, :c].abs()),
        lane_changes=acc.lane_changes + ev.lane_changed[:, :c].float(),
    )
    return state, acc


def end_decision(
    state: WorldState,
    was_active: torch.Tensor,
    cost_before: torch.Tensor,
    acc: DecisionAccumulator,
    road: RoadMap,
    cfg: SimConfig,
    consts: SimConstants | None = None,
) -> StepResult:
    """Score the decision, tow crashed cars away, refill traffic, respawn agents (`cfg.respawn`), auto-reset
    finished worlds."""
    from fuyao.sim.reward import reward_terms, total_reward

    c = cfg.controlled
    any_ev = {
        "collided": acc.collided,
        "offroad": acc.offroad,
        "arrived": acc.arrived,
        "route_failure": acc.route_failure,
    }
    v = state.vehicles
    # A missed exit makes the destination unreachable (cost UNREACHABLE): that decision earns the route-failure
    # penalty, not a progress of minus a billion metres.
    cost_now = cost_to_go(road, state)[:, :c]
    cost_after = torch.where(acc.arrived, 0.0, torch.where(cost_now >= REACHABLE, cost_before, cost_now))
    terms = reward_terms(
        road, state, cfg, cost_before - cost_after, any_ev, acc.jerk_max, acc.lat_accel_max, acc.lane_changes
    )
    reward = torch.where(was_active, total_reward(terms, cfg.reward), 0.0)

    offroad_end = acc.offroad if cfg.offroad_terminal else torch.zeros_like(acc.offroad)
    terminal = acc.collided | offroad_end | acc.route_failure | acc.arrived
    terminated = was_active & terminal
    active = was_active & ~terminal
    decisions = state.decisions + 1
    time_up = decisions >= cfg.decisions_per_episode
    truncated = active & time_up.unsqueeze(1)
    world_done = ~active.any(dim=1) | time_up

    # Crashed background cars are towed away at the decision's end; controlled cars that left their episode
    # (arrived, or crashed in self-play) leave the road.
    # Padded as uint8: Inductor's CPU vectoriser miscompiles a padded bool (VecMask int/float mismatch).
    left_episode = (~active & was_active & ~acc.collided).to(torch.uint8)
    ctrl_gone = torch.nn.functional.pad(left_episode, (0, v.s.shape[1] - c)).bool()
    background_crashed = v.crashed & ~v.controlled & v.present
    background_present = (v.present & ~v.controlled).sum(dim=1)
    gone = background_crashed | ctrl_gone
    v = replace(v, present=v.present & ~gone)
    state = replace(state, vehicles=v, active=active, decisions=decisions, time_s=state.time_s + 1.0 / cfg.decision_hz)
    if cfg.inflow:
        state = inflow(state, road, cfg)

    limit = lane_attr(road.lane_speed_limit, road, state.map_id, v.lane[:, :c])
    lead_gap, closing = _leader_gap(road, state)
    ttc = torch.where(closing > 0.1, lead_gap.clamp(min=0.0) / closing.clamp(min=0.1), torch.full_like(lead_gap, 1.0e3))
    info = {
        "collision": acc.collided & was_active,
        "collision_at_fault": acc.at_fault & was_active,
        "offroad": acc.offroad & was_active,
        "route_failure": acc.route_failure & was_active,
        "arrived": acc.arrived & was_active,
        "progress_m": torch.where(was_active, cost_before - cost_after, 0.0),
        "cost_to_go_m": cost_after,
        "speed": v.speed[:, :c],
        "speed_limit": limit,
        "accel": v.accel[:, :c],
        "lon_accel_max": acc.lon_accel_max,
        "jerk_max": acc.jerk_max,
        "lat_accel_max": acc.lat_accel_max,
        "yaw_rate_max": acc.yaw_rate_max,
        "lane_changes": acc.lane_changes,
        "ttc_s": ttc,
        "wrong_way": v.psi[:, :c].abs() > torch.pi / 2,
        "red_light": torch.zeros_like(was_active),  # no signals on highways; the city fills this term
        "active": was_active,
        **{f"reward_{k}": val for k, val in terms.items()},
        # Per world [W]: background traffic safety (towed crashed cars, and the driving time they had).
        "world_background_crashes": background_crashed.sum(dim=1),
        "world_background_vehicle_s": background_present.float() / cfg.decision_hz,
    }
    final_state = state
    if cfg.respawn and c > 1:
        state = respawn(state, road, cfg, consts)
    fresh = reset_state(road, cfg, state.seed, state.episode + 1, state.ticks, consts)
    state = where_world(world_done, fresh, state)
    return StepResult(state, final_state, reward, terminated, truncated, world_done, info)


def step(
    state: WorldState,
    action: torch.Tensor,
    road: RoadMap,
    cfg: SimConfig,
    parts: tuple | None = None,
    consts: SimConstants | None = None,
) -> StepResult:
    """One decision: apply `action`, run `cfg.ticks_per_decision` ticks, score, refill, auto-reset.

    `parts` optionally replaces `(begin_decision, tick_and_accumulate, end_decision)` with compiled versions
    of themselves (`World(compile=True)`); the Python loop over ticks stays outside the compiled graphs so
    each graph is small and compiles once. `consts`: the config's tensors (`World` builds them once; without,
    they are built here, once per decision).
    """
    begin, advance, end = parts if parts is not None else (begin_decision, tick_and_accumulate, end_decision)
    consts = constants_or_build(consts, cfg, state.device)
    was_active = state.active
    state, cost_before, acc = begin(state, action, road, cfg, consts)
    every = min(cfg.mobil_every_ticks, cfg.ticks_per_decision)
    for t in range(cfg.ticks_per_decision):
        state, acc = advance(state, acc, road, cfg, t % every == 0)
    return end(state, was_active, cost_before, acc, road, cfg, consts)


def _leader_gap(road: RoadMap, state: WorldState) -> tuple[torch.Tensor, torch.Tensor]:
    """Gap `[W, C]` m to the leader of each controlled vehicle and the closing speed m/s."""
    v = state.vehicles
    c = state.active.shape[1]
    sur = surroundings(road, state.map_id, v.lane, v.s, v.length, v.speed, v.present, v.dest)
    return sur.lead.gap[:, :c], (v.speed - sur.lead.speed)[:, :c]
