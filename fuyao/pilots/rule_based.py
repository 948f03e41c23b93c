"""The rule-based pilot: IDM + route-aware MOBIL, the same models that drive background traffic, acting on
controlled vehicles through the same action spaces a learned policy uses. The baseline to beat."""

from __future__ import annotations

import dataclasses

import torch

from fuyao.sim import traffic
from fuyao.sim.config import ActionType, MobilRule
from fuyao.sim.geometry import change_ok, lane_attr, lane_point
from fuyao.sim.neighbours import FAR, Neighbour, Surroundings
from fuyao.sim.state import Vehicles, WorldState, first_slots
from fuyao.sim.step import META_FASTER, META_IDLE, META_LEFT, META_RIGHT, META_SLOWER, speed_index
from fuyao.sim.traffic import DriverParams, driver_params, effective_limit, following_accel, route_view
from fuyao.sim.world import World

BRAKE_THRESHOLD = -0.5  # m/s^2: IDM asks for more braking than this -> slow down
SPEED_UP_THRESHOLD = 0.3  # m/s^2: IDM allows this much acceleration -> speed up
ROUTE_ALIGN_M = 300.0  # m per lane change still needed: closer than this, line up with a gap in the target lane
ALIGN_GAIN = 0.3  # 1/s: speed offset per metre between the car and where it fits in the gap
ALIGN_MAX_DV = 5.0  # m/s: the most it drives faster or slower than the gap to line up with it
ALIGN_SLACK_M = 20.0  # m: room beyond what a side needs that still pulls the car toward the gap's middle
PASS_MARGIN = 2.0  # m/s: a target-lane leader this much slower than the car's desired speed can be overtaken
# The last stretch before a change the route needs (a deceleration lane is 150 m): the pilot accepts a gap in which
# the new follower (a background IDM driver) or the pilot itself must brake up to this hard, as drivers squeeze
# into a dense exit lane rather than miss the exit. Below `traffic.MAX_BRAKE`.
ROUTE_SQUEEZE_M = 150.0  # m per lane change still needed
SQUEEZE_BRAKE = 6.0  # m/s^2
MOBIL_SQUEEZE = dataclasses.replace(traffic.MOBIL_RULES[MobilRule.FUYAO], safe_brake=SQUEEZE_BRAKE)


def gap_room(speed: torch.Tensor, p: DriverParams, brake: torch.Tensor | float) -> torch.Tensor:
    """Gap `[...]` m a follower at `speed` needs behind a leader at the same speed for MOBIL's safety test (IDM
    braking no harder than `brake` m/s^2)."""
    s_star = p.jam_gap + speed * p.headway
    free = torch.exp(p.delta * torch.log((speed / p.desired_speed.clamp(min=0.1)).clamp(min=1e-6)))
    allowed = (1.0 + brake / p.max_accel.clamp(min=0.1) - free).clamp(min=0.5)
    return s_star / torch.sqrt(allowed)


def gap_alignment(
    sur: Surroundings,
    v: Vehicles,
    params: DriverParams,
    needs: torch.Tensor,
    brake: torch.Tensor,
    everyone: tuple[Surroundings, Vehicles, DriverParams] | None = None,
) -> torch.Tensor:
    """The speed `[W, N]` m/s at which a car that must change lanes toward `needs` (-1 left, +1 right) lines up
    with a gap in that lane, as a driver before an exit does: the gap it is beside if it is long enough for it
    (MOBIL's safety test with braking up to `brake` m/s^2, at equal speeds), else the one behind the target lane's
    follower (drop back) or the one ahead of its leader (pull ahead), whichever it reaches sooner. It drives at the
    gap's speed, faster or slower by `ALIGN_GAIN` per metre it is off the place where both sides have the room they
    need. (Riding level with a car of the target lane at its speed, the change never becomes safe.)

    `everyone`: the surroundings, vehicles and parameters of all the world's slots, which the neighbour slots
    index, where `sur`, `v`, `params` and `needs` are the first slots only (`first_slots`); by default the same."""
    all_sur, all_v, all_params = (sur, v, params) if everyone is None else everyone
    left = needs < 0

    def pick(a: Neighbour, b: Neighbour) -> Neighbour:
        return Neighbour(*(torch.where(left, x, y) for x, y in ((a.slot, b.slot), (a.gap, b.gap), (a.speed, b.speed))))

    lead, follow = pick(sur.left_lead, sur.right_lead), pick(sur.left_follow, sur.right_follow)
    lead_slot, follow_slot = lead.slot.clamp(min=0), follow.slot.clamp(min=0)
    lead_len, follow_len = all_v.length.gather(1, lead_slot), all_v.length.gather(1, follow_slot)
    # The cars beyond them in the target lane: the leader's own leader, the follower's own follower.
    lead2_gap = torch.where(
        lead.exists & (all_sur.lead.slot.gather(1, lead_slot) >= 0), all_sur.lead.gap.gather(1, lead_slot), FAR
    )
    follow2_gap = torch.where(
        follow.exists & (all_sur.follow.slot.gather(1, follow_slot) >= 0),
        all_sur.follow.gap.gather(1, follow_slot),
        FAR,
    )
    desired = params.desired_speed
    need_front = gap_room(v.speed, params, brake)  # behind the new leader
    need_back = gap_room(follow.speed, all_params.gather(follow.slot), brake)  # the new follower behind the car
    fits = lead.gap + follow.gap >= need_front + need_back
    # Metres to gain on the leader (or lose on the follower) to be past it, over the speed difference it can take.
    pass_s = (lead.gap + lead_len + v.length) / (desired.minimum(lead.speed + ALIGN_MAX_DV) - lead.speed).clamp(min=0.1)
    drop_s = (follow.gap + follow_len + v.length) / ALIGN_MAX_DV
    # Room ahead in its own lane: its own leader stays clear of where the car must get to (the leader's room ahead
    # of the target lane's leader), counting what the own leader pulls away from it meanwhile. (Riding level at
    # the speed of a leader in its own lane, the car can never pull ahead: it must drop back.)
    to_gain = lead.gap + lead_len + v.length + need_back
    pulls_away = (sur.lead.speed - lead.speed).clamp(min=0.0) * pass_s
    room_ahead = ~sur.lead.exists | (sur.lead.gap + pulls_away > to_gain + need_front)
    ahead = (
        ~fits & lead.exists & ((pass_s < drop_s) | ~follow.exists) & (lead.speed + PASS_MARGIN < desired) & room_ahead
    )
    behind = ~fits & ~ahead & follow.exists
    # Gaps from the car's front to the front end of the gap it lines up with, and from its rear to the gap's back
    # end (negative: that car is beside or beyond it). The car's own length counts once, between the two.
    front_gap = torch.where(
        ahead,
        lead.gap + lead_len + lead2_gap,
        torch.where(behind, -(follow.gap + follow_len + v.length), lead.gap),
    )
    back_gap = torch.where(
        ahead,
        -(lead.gap + lead_len + v.length),
        torch.where(behind, follow.gap + follow_len + follow2_gap, follow.gap),
    )
    # The gap moves at its cars' mean speed (one of them: the other is missing, or the car goes beyond it).
    both = torch.where(
        lead.exists & follow.exists,
        0.5 * (lead.speed + follow.speed),
        torch.where(lead.exists, lead.speed, follow.speed),
    )
    gap_speed = torch.where(ahead, lead.speed, torch.where(behind, follow.speed, both))
    slack_front = (front_gap - need_front).clamp(max=ALIGN_SLACK_M)
    slack_back = (back_gap - need_back).clamp(max=ALIGN_SLACK_M)
    offset = 0.5 * (slack_front - slack_back)  # m the car is behind where it fits
    dv = (ALIGN_GAIN * offset).clamp(-ALIGN_MAX_DV, ALIGN_MAX_DV)
    return (gap_speed + dv).clamp(min=0.0).minimum(desired)


class RuleBasedPilot:
    """IDM + MOBIL + route. Needs the world's state (it plans from the whole scene, as background drivers do)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def act(self, obs: torch.Tensor | None, state: WorldState | None = None) -> torch.Tensor:
        if state is None:
            raise ValueError("RuleBasedPilot.act: needs the world state (act(obs, state)); got state=None")
        road, cfg = self.world.road, self.world.cfg
        m = state.map_id
        c = cfg.controlled
        # Every quantity of the pilot's own cars is computed for the controlled slots (the first `c`) only; the
        # tables its neighbours' slots index (`every_*`) hold all of them. (Computed for all 48 slots of a city
        # world and cut to 8 afterwards, the pilot cost 0.4-0.46 of the world's step; now 0.2: BENCHMARKS.md.)
        every_v = state.vehicles
        every_sur = self.world.surroundings(state)
        every_params = driver_params(every_v, effective_limit(road, m, every_v))
        v, sur, params = first_slots(every_v, c), first_slots(every_sur, c), first_slots(every_params, c)
        route = route_view(road, m, v, sur)
        accel = following_accel(road, m, v, sur, params, route, state.signals, everyone=every_v)
        left_ok, right_ok = change_ok(road, m, v.lane, v.s)
        direction, _, _ = traffic.mobil_decision(sur, v.speed, v.length, params, every_params, route, left_ok, right_ok)
        needs = torch.sign(route.changes)
        squeeze_dir, _, _ = traffic.mobil_decision(
            sur, v.speed, v.length, params, every_params, route, left_ok, right_ok, MOBIL_SQUEEZE
        )
        # A change the route needs before a solid line (a turn lane in town) that has no gap yet: stop short of
        # the line and wait for one, as background drivers do before a lane that ends; passing the line in the
        # wrong lane misses the turn. There the pilot waits instead of squeezing in (on 120 m city streets the
        # squeeze's stretch would be nearly every street): squeezing is for lanes that end without a line to wait
        # at, the highway's deceleration lanes and acceleration lanes.
        limited = lane_attr(road.lane_change_until, road, m, v.lane) < lane_attr(road.lane_length, road, m, v.lane)
        squeeze = (needs != 0) & ~limited & (route.remaining < ROUTE_SQUEEZE_M * route.changes.abs().float())
        direction = torch.where(squeeze & (direction == 0) & (squeeze_dir == needs), squeeze_dir, direction)
        wait = (needs != 0) & limited
        stop_at_line = traffic.route_stop_interaction(v.speed, route.remaining, wait, v.length, params)
        stop = traffic.idm_combine(traffic.idm_free(v.speed, params), stop_at_line, params)
        accel = torch.minimum(accel, torch.where(wait, stop, accel))
        # ... and one MOBIL does not take (no safe gap, or one it would brake hard in) with little road left: line
        # up with a gap in the target lane (drop back or pull ahead) instead of riding level with the car beside
        # and driving past the exit.
        changing = v.lc_dir != 0
        side_ok = torch.where(needs < 0, left_ok, right_ok)
        urgent = route.remaining < ROUTE_ALIGN_M * route.changes.abs().float()
        align = (needs != 0) & side_ok & (direction != needs) & urgent & ~changing
        brake = torch.where(squeeze, SQUEEZE_BRAKE, traffic.SAFE_BRAKE)
        align_speed = gap_alignment(sur, v, params, needs, brake, everyone=(every_sur, every_v, every_params))
        # Lane changes are reconsidered as often as background drivers reconsider theirs (`mobil_period_s`):
        # deciding at 10 Hz, MOBIL's choice flickers and the pilot weaves. At the highway's 1 Hz decisions
        # every decision is such a tick.
        # A change the route needs is taken at any decision (it does not flicker: the route asks for one direction).
        reconsider = (state.ticks % cfg.mobil_every_ticks == 0).unsqueeze(1)
        for_route = (direction != 0) & (direction == torch.sign(route.changes))
        # (A stopped car may start a change its route needs: it waits at the line for exactly that.)
        direction = torch.where(changing | ((v.speed <= 1.0) & ~for_route) | ~(reconsider | for_route), 0, direction)
        for_route = for_route & (direction != 0)

        if cfg.action is ActionType.CONTINUOUS:
            lane_dir = torch.where(changing, v.lc_dir, direction)
            width = lane_attr(road.lane_width, road, m, v.lane)
            w_left = lane_attr(road.lane_width, road, m, sur.left_lane)
            w_right = lane_attr(road.lane_width, road, m, sur.right_lane)
            target_d = torch.where(
                lane_dir < 0, 0.5 * (width + w_left), torch.where(lane_dir > 0, -0.5 * (width + w_right), 0.0)
            )
            _, _, kappa = lane_point(road, m, v.lane, v.s)
            steer = traffic.steering_control(v.d - target_d, v.psi, v.speed, kappa, v.length)
            accel = torch.where(align, torch.minimum(accel, traffic.speed_control(align_speed, v.speed)), accel)
            lo, hi = cfg.accel_range
            a = 2.0 * (accel.clamp(lo, hi) - lo) / (hi - lo) - 1.0
            lo, hi = cfg.steer_range
            st = 2.0 * (steer.clamp(lo, hi) - lo) / (hi - lo) - 1.0
            return torch.stack([a, st], dim=-1)

        speeds = self.world.consts.target_speeds
        idx = speed_index(v.speed, speeds)
        desired = params.desired_speed
        can_faster = (idx + 1 < speeds.shape[0]) & (speeds[(idx + 1).clamp(max=speeds.shape[0] - 1)] <= desired + 1e-3)
        action = torch.full_like(idx, META_IDLE)
        action = torch.where((accel > SPEED_UP_THRESHOLD) & can_faster, META_FASTER, action)
        action = torch.where(direction < 0, META_LEFT, torch.where(direction > 0, META_RIGHT, action))
        # Braking wins over a lane change, except over one the route needs (MOBIL found it safe): braking first, a
        # driver in a slowing queue never takes the gap to its exit or turn lane and misses it.
        action = torch.where((accel < BRAKE_THRESHOLD) & ~for_route, META_SLOWER, action)
        # Lining up with a gap: the speed it asks for, held (not IDM's speed-up, which kept the car level with the
        # target lane's traffic); IDM's braking still wins.
        half_step = 0.5 * (speeds[1] - speeds[0])
        align_faster = (align_speed > v.target_speed + half_step) & can_faster & (accel > 0.0)
        align_action = torch.where(
            align_speed < v.target_speed - half_step,
            META_SLOWER,
            torch.where(align_faster, META_FASTER, META_IDLE),
        )
        lines_up = align & (direction == 0) & (accel >= BRAKE_THRESHOLD)
        action = torch.where(lines_up, align_action, action)
        # Cruising above what the lane allows: slow down.
        too_fast = v.target_speed > desired + 1e-3
        action = torch.where(too_fast & (direction == 0), META_SLOWER, action)
        # SLOWER with the target already at the lowest speed is not available (`action_mask`): IDLE keeps it
        # there. (SLOWER would set the target one step under the current speed, raising it while the car still
        # rolls; and a pilot cloned from labels the mask forbids learns nothing about what to do instead: at red
        # it crept over the line.)
        lowest = speed_index(v.target_speed, speeds) == 0
        return torch.where((action == META_SLOWER) & lowest, META_IDLE, action)
