"""The step: pure functions of (state, action). One decision = `ticks_per_decision` simulation ticks. It
composes the concerns and holds none of them:

tick:      neighbours (`neighbours`, one sort) -> the driver model for background traffic (`traffic`: IDM,
           MOBIL, signals, yielding), controllers or held commands for controlled vehicles -> kinematic bicycle
           (`dynamics`) -> lane switches and transitions (`lanes`) -> collisions (`collision`) -> signal clocks
           (`signals`).
decision:  apply the policy's action, run the ticks, score the controlled vehicles (`reward`), refill traffic
           and respawn agents (`spawn`), auto-reset finished worlds by a masked select (`reset`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.sim import replay, traffic
from fuyao.sim.collision import at_fault_collisions, collisions
from fuyao.sim.config import SCENARIO_VEHICLES, ActionType, SimConfig
from fuyao.sim.constants import SimConstants, constants_or_build
from fuyao.sim.dynamics import PHYSICAL_MAX_SPEED, bicycle_step, limit_steer
from fuyao.sim.geometry import change_ok, lane_attr, lane_point_xy, next_lane, route_attr, vehicle_pose_xy
from fuyao.sim.lanes import REACHABLE, move_between_lanes
from fuyao.sim.neighbours import Surroundings, leaders, surroundings
from fuyao.sim.reset import reset_state
from fuyao.sim.signals import advance_clock
from fuyao.sim.spawn import inflow, respawn
from fuyao.sim.state import WorldState, put_worlds, replace, where_world

__all__ = [
    "META_FASTER",
    "META_IDLE",
    "META_LEFT",
    "META_RIGHT",
    "META_SLOWER",
    "PHYSICAL_MAX_SPEED",
    "StepResult",
    "action_mask",
    "apply_action",
    "begin_decision",
    "end_decision",
    "step",
    "tick",
    "tick_and_accumulate",
]


@dataclass(frozen=True)
class TickEvents:
    """What happened to each vehicle in one tick, `[W, N]`."""

    collided: torch.Tensor  # bool, touching another vehicle (new or ongoing)
    at_fault: torch.Tensor  # bool, a controlled vehicle caused a collision that began this tick (False for others)
    offroad: torch.Tensor  # bool, centre outside the paved lanes or driven off a dead end
    arrived: torch.Tensor  # bool, left the map at its destination
    route_failure: torch.Tensor  # bool, its destination can no longer be reached (missed exit)
    lane_changed: torch.Tensor  # bool, crossed into a neighbour lane
    red_light: torch.Tensor  # bool, entered a junction past its stop line on red
    yaw_rate: torch.Tensor  # float32 rad/s
    lat_accel: torch.Tensor  # float32 m/s^2 (speed x yaw rate)


# Phased lane-change decisions (`MobilConstants.phased`): slot k decides at ticks where (ticks + 7 k) mod period is
# 0, a fixed spread over the period's ticks (7 is prime to 15, highway-v0's ticks per second).
MOBIL_PHASE_STRIDE = 7


def tick(
    state: WorldState, road: RoadMap, cfg: SimConfig, mobil: bool, sur: Surroundings | None = None
) -> tuple[WorldState, TickEvents]:
    """Advance every world by one simulation tick of `cfg.dt` seconds. `sur`: the vehicles' surroundings in
    `state` where the caller has them already (they depend only on positions, lanes and routes)."""
    v = state.vehicles
    m = state.map_id
    dt = cfg.dt
    width = lane_attr(road.lane_width, road, m, v.lane)
    limit = traffic.effective_limit(road, m, v)
    left_ok, right_ok = change_ok(road, m, v.lane, v.s)
    if sur is None:
        sur = surroundings(road, m, v.lane, v.s, v.length, v.speed, v.present, v.dest)
    _, _, _, kappa = lane_point_xy(road, m, v.lane, v.s)

    rule = traffic.MOBIL_RULES[cfg.drivers.mobil]
    due = None
    if rule.phased:  # every tick, each car at its own phase of the period (highway-env's timers)
        every = cfg.mobil_every_ticks
        phase = (torch.arange(v.s.shape[1], device=v.s.device) * MOBIL_PHASE_STRIDE) % every
        due = (state.ticks.unsqueeze(1) + phase) % every == 0
        mobil = True
    accel_bg, lc_bg = traffic.background_control(
        road,
        m,
        v,
        sur,
        limit,
        mobil and cfg.drivers.lane_changes,
        left_ok,
        right_ok,
        state.signals,
        rule,
        due,
    )
    lc_dir = torch.where(v.controlled, v.lc_dir, lc_bg)
    width_left = lane_attr(road.lane_width, road, m, sur.left_lane)
    width_right = lane_attr(road.lane_width, road, m, sur.right_lane)
    target_d = torch.where(
        lc_dir < 0, 0.5 * (width + width_left), torch.where(lc_dir > 0, -0.5 * (width + width_right), 0.0)
    )
    if cfg.has_city:
        # The slip a car needs to follow that curvature in steady state (yaw rate v kappa = v sin(slip) / (L / 2)).
        k_steer = _steering_curvature(road, m, v, kappa)
        slip = torch.asin((k_steer * 0.5 * v.length).clamp(-0.9, 0.9))
        steer_auto = traffic.steering_control(
            v.d - target_d, v.psi, v.speed, k_steer, v.length, slip, max_heading=CITY_MAX_HEADING
        )
    else:
        # highway-env's scenario maps steer with highway-env's controller (no curvature feed-forward). highway-v0's
        # straight road has no curvature; its evaluation suite's curved roads keep Fuyao's controller.
        feed_forward = cfg.map not in SCENARIO_VEHICLES
        steer_auto = traffic.steering_control(
            v.d - target_d, v.psi, v.speed, kappa, v.length, feed_forward=feed_forward
        )
    if cfg.action is ActionType.CONTINUOUS:
        accel_ctrl, steer_ctrl = v.cmd_accel, v.cmd_steer
    else:
        # Unclipped, as highway-env's MDPVehicle (5 m/s steps over tau 0.6 s ask 8.3 m/s^2); speed is capped.
        accel_ctrl = traffic.speed_control(v.target_speed, v.speed)
        steer_ctrl = steer_auto
    accel = torch.where(v.controlled, accel_ctrl, accel_bg.clamp(max=v.idm_accel))
    steer = torch.where(v.controlled, steer_ctrl, steer_auto)
    steer = limit_steer(steer, v.steer, v.speed, v.length, cfg.max_lat_accel, cfg.max_steer_rate, dt)
    live = v.present & ~v.crashed
    accel = torch.where(live, accel, 0.0)
    steer = torch.where(live, steer, 0.0)

    motion = bicycle_step(v, accel, steer, kappa, live, dt)
    speed, psi = motion.speed, motion.psi
    clock = state.signals if road.has_signals else None
    moved_lanes = move_between_lanes(road, m, v, motion.s, motion.d, lc_dir, live, sur.left_lane, sur.right_lane, clock)
    lane, s, d, dest = moved_lanes.lane, moved_lanes.s, moved_lanes.d, moved_lanes.dest
    arrived = moved_lanes.arrived

    present = v.present & ~(arrived & ~v.controlled)
    moved = replace(
        v, lane=lane, s=s, d=d, psi=psi, speed=speed, accel=accel, steer=steer, lc_dir=moved_lanes.lc_dir, dest=dest
    )
    moved = replace(moved, present=present)
    c = cfg.controlled
    rp = state.replay
    if rp is not None:  # logged slots take the log's motion (`fuyao.sim.replay`)
        replayed = rp.replayed
        logged, rp = replay.advance(rp, v.speed, accel_bg.clamp(max=v.idm_accel), dt)

        def log_or(a, b):
            return torch.where(replayed, a, b)

        lane, s, d, psi = log_or(logged.lane, lane), log_or(logged.s, s), log_or(logged.d, d), log_or(logged.psi, psi)
        speed, present = log_or(logged.speed, speed), log_or(logged.on_lane, present)
        moved = replace(
            moved,
            lane=lane,
            s=s,
            d=d,
            psi=psi,
            speed=speed,
            accel=log_or(logged.accel, moved.accel),
            lc_dir=log_or(torch.zeros_like(moved.lc_dir), moved.lc_dir),
            present=present,
        )
    x, y, yaw = vehicle_pose_xy(road, m, lane, s, d, psi)
    candidates = [sur.lead.slot, sur.left_lead.slot, sur.left_follow.slot, sur.right_lead.slot, sur.right_follow.slot]
    if sur.conflict_slot is not None:
        candidates += list(sur.conflict_slot.unbind(-1))
    neighbours = torch.stack([slot[:, :c] for slot in [sur.follow.slot, *candidates]], -1)  # [W, C, K]
    boxes = present
    if rp is not None:
        # The logged pose itself (free-space objects included) for every replayed box; the egos are checked
        # against every slot, and logged objects never crash (the log goes on).
        x, y, yaw = log_or(logged.x, x), log_or(logged.y, y), log_or(logged.yaw, yaw)
        boxes = present | (replayed & logged.free)
        ego_hit = replay.ego_hits(x, y, yaw, v.length, v.width, boxes, c)
        every = torch.arange(v.s.shape[1], device=v.s.device).expand(v.s.shape[0], c, -1)
        neighbours = torch.cat([neighbours, every], -1)
    collided = collisions(x, y, yaw, v.length, v.width, boxes, candidates) & boxes
    if rp is not None:
        ego_hit = torch.nn.functional.pad(ego_hit.to(torch.uint8), (0, v.s.shape[1] - c)).bool()
        collided = (collided | ego_hit) & ~(replayed & ~v.controlled)
    at_fault = at_fault_collisions(
        x, y, yaw, v.length, v.width, boxes, collided & ~v.crashed, speed, d, psi, moved_lanes.width, neighbours
    )
    # [W, C] -> [W, N] (background slots are never judged); padded as uint8, see `end_decision`.
    at_fault = torch.nn.functional.pad(at_fault.to(torch.uint8), (0, v.s.shape[1] - cfg.controlled)).bool()
    moved = replace(moved, crashed=v.crashed | collided)
    # Padding slots (absent at the start of the tick) keep every field as it was. Only the fields a tick
    # writes are selected: the others are passed through untouched (no copies).
    written = ("lane", "s", "d", "psi", "speed", "accel", "steer", "lc_dir", "dest", "present", "crashed")
    # Replayed slots are written whether present or not (a logged track appears when its log begins).
    keep = v.present if rp is None else v.present | replayed
    moved = replace(moved, **{f: torch.where(keep, getattr(moved, f), getattr(v, f)) for f in written})
    events = TickEvents(
        collided=collided,
        at_fault=at_fault,
        offroad=moved_lanes.offroad,
        arrived=arrived,
        route_failure=moved_lanes.route_failure,
        lane_changed=moved_lanes.switched,
        red_light=moved_lanes.red_light & v.present,
        yaw_rate=motion.yaw_rate,
        lat_accel=v.speed * motion.yaw_rate,  # the bicycle's own: the speed its yaw rate was taken at
    )
    signals = advance_clock(state.signals, road, m, dt) if road.has_signals else state.signals
    return replace(state, vehicles=moved, ticks=state.ticks + 1, signals=signals, replay=rp), events


CITY_MAX_HEADING = 0.25  # rad: the steepest lane change in the city (about 14 degrees)
CURVATURE_PREVIEW_S = 0.3  # s: city drivers steer for the curvature this far ahead (junction turns begin abruptly)


def _steering_curvature(road: RoadMap, m, v, kappa) -> torch.Tensor:
    """The curvature the city's lateral controller feeds forward, `[W, N]` 1/m: the mean of here and
    `CURVATURE_PREVIEW_S` ahead along the route (a connector's arc starts where the straight street ends, and a
    controller that only feels the curve once on it swings wide). Highways (and the highway-env presets, whose
    controller is highway-env's) use the curvature here."""
    ahead = v.s + v.speed * CURVATURE_PREVIEW_S
    length = lane_attr(road.lane_length, road, m, v.lane)
    nxt = next_lane(road, m, v.lane, v.dest)
    beyond = (ahead > length) & (nxt >= 0)
    lane = torch.where(beyond, nxt, v.lane)
    _, _, _, k_ahead = lane_point_xy(road, m, lane, torch.where(beyond, ahead - length, ahead))
    return 0.5 * (kappa + k_ahead)


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
        left_ok, right_ok = change_ok(road, state.map_id, v.lane[:, :c], v.s[:, :c])
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
    # As highway-env's get_available_actions: a lane change is available where the lane exists (and, in a city,
    # before the solid line).
    left, right = change_ok(road, state.map_id, v.lane[:, :c], v.s[:, :c])
    speeds = constants_or_build(consts, cfg, v.s.device).target_speeds
    idx = speed_index(v.target_speed[:, :c], speeds)
    idle = torch.ones_like(left)
    return torch.stack([left, idle, right, idx < speeds.shape[0] - 1, idx > 0], dim=-1)


def cost_to_go(road: RoadMap, state: WorldState) -> torch.Tensor:
    """Route cost-to-go of every vehicle, `[W, N]` m (lane changes still needed count `LANE_CHANGE_COST_M`)."""
    v = state.vehicles
    cost = route_attr(road.route.cost, road, state.map_id, v.lane, v.dest)
    return (cost - v.s).clamp(min=0.0)


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
    red_light: torch.Tensor  # bool, entered a junction on red
    lane_change_command: torch.Tensor  # float 0/1, the decision's meta action was LANE_LEFT or LANE_RIGHT


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

    if cfg.action is ActionType.META:
        command = ((action == META_LEFT) | (action == META_RIGHT)).float()
    else:
        command = zero()
    # Distinct tensors per field (aliasing would make compiled ticks guard on identity and recompile).
    acc = DecisionAccumulator(
        no(),
        no(),
        no(),
        no(),
        no(),
        state.vehicles.accel[:, :c].contiguous(),
        zero(),
        zero(),
        zero(),
        zero(),
        zero(),
        no(),
        command,
    )
    return state, cost_before, acc


def tick_and_accumulate(
    state: WorldState,
    acc: DecisionAccumulator,
    road: RoadMap,
    cfg: SimConfig,
    mobil: bool,
    sur: Surroundings | None = None,
) -> tuple[WorldState, DecisionAccumulator]:
    """One tick, folding the controlled vehicles' events into the decision's accumulators."""
    c = cfg.controlled
    state, ev = tick(state, road, cfg, mobil, sur)
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
        red_light=acc.red_light | ev.red_light[:, :c],
        lane_change_command=acc.lane_change_command,
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
        "red_light": acc.red_light,
    }
    v = state.vehicles
    # A missed exit makes the destination unreachable (cost UNREACHABLE): that decision earns the route-failure
    # penalty, not a progress of minus a billion metres.
    cost_now = cost_to_go(road, state)[:, :c]
    cost_after = torch.where(acc.arrived, 0.0, torch.where(cost_now >= REACHABLE, cost_before, cost_now))
    terms = reward_terms(
        road,
        state,
        cfg,
        cost_before - cost_after,
        any_ev,
        acc.jerk_max,
        acc.lat_accel_max,
        acc.lane_changes,
        acc.lane_change_command,
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
        "red_light": acc.red_light & was_active,
        "active": was_active,
        **{f"reward_{k}": val for k, val in terms.items()},
        # Per world [W]: background traffic safety (towed crashed cars, and the driving time they had).
        "world_background_crashes": background_crashed.sum(dim=1),
        "world_background_vehicle_s": background_present.float() / cfg.decision_hz,
    }
    final_state = state
    if cfg.respawn and c > 1:
        state = respawn(state, road, cfg, consts)
    if state.replay is None:  # a replayed world's episode is its log: it ends, it is not reset
        state = auto_reset(state, world_done, road, cfg, consts)
    return StepResult(state, final_state, reward, terminated, truncated, world_done, info)


def auto_reset(
    state: WorldState, world_done: torch.Tensor, road: RoadMap, cfg: SimConfig, consts: SimConstants | None = None
) -> WorldState:
    """Worlds `world_done [W]` begin their next episode. Under `torch.compile`, and on accelerators (CUDA graphs),
    a masked select of a full batch of fresh worlds: fixed shapes, no host sync. Eagerly on the CPU, only the done
    worlds are reset and written back (with 10 Hz decisions a full reset per decision costs as much as a tick;
    BENCHMARKS.md): the same values, since a world's reset depends only on its own key and counters."""
    if state.device.type != "cpu" or torch.compiler.is_compiling():
        fresh = reset_state(road, cfg, state.seed, state.episode + 1, state.ticks, consts)
        return where_world(world_done, fresh, state)
    idx = world_done.nonzero().squeeze(1)
    if idx.numel() == 0:
        return state
    fresh = reset_state(road, cfg, state.seed[idx], state.episode[idx] + 1, state.ticks[idx], consts)
    return put_worlds(state, idx, fresh)


def step(
    state: WorldState,
    action: torch.Tensor,
    road: RoadMap,
    cfg: SimConfig,
    parts: tuple | None = None,
    consts: SimConstants | None = None,
    sur: Surroundings | None = None,
) -> StepResult:
    """One decision: apply `action`, run `cfg.ticks_per_decision` ticks, score, refill, auto-reset.

    `parts` optionally replaces `(begin_decision, tick_and_accumulate, end_decision)` with compiled versions
    of themselves (`World(compile=True)`); the Python loop over ticks stays outside the compiled graphs so
    each graph is small and compiles once. `consts`: the config's tensors (`World` builds them once; without,
    they are built here, once per decision). `sur`: the surroundings of every vehicle in `state`, where the
    caller has them (the observation and the rule-based pilot asked for them): the first tick uses them, since
    an action changes no position, lane or route.
    """
    begin, advance, end = parts if parts is not None else (begin_decision, tick_and_accumulate, end_decision)
    consts = constants_or_build(consts, cfg, state.device)
    was_active = state.active
    state, cost_before, acc = begin(state, action, road, cfg, consts)
    every = min(cfg.mobil_every_ticks, cfg.ticks_per_decision)
    for t in range(cfg.ticks_per_decision):
        if t == 0 and sur is not None:
            state, acc = advance(state, acc, road, cfg, t % every == 0, sur)
        else:
            state, acc = advance(state, acc, road, cfg, t % every == 0)
    return end(state, was_active, cost_before, acc, road, cfg, consts)


def _leader_gap(road: RoadMap, state: WorldState) -> tuple[torch.Tensor, torch.Tensor]:
    """Gap `[W, C]` m to the leader of each controlled vehicle and the closing speed m/s."""
    v = state.vehicles
    c = state.active.shape[1]
    lead = leaders(road, state.map_id, v.lane, v.s, v.length, v.speed, v.present, v.dest)
    return lead.gap[:, :c], (v.speed - lead.speed)[:, :c]
