"""Background drivers: IDM car following, route-aware MOBIL lane changes, and the low-level controllers that
turn a target lane and speed into steering and acceleration (shared with the meta actions).

IDM (Treiber, Hennecke & Helbing 2000):
    a = a_max * [1 - (v / v0)^delta - (s* / s)^2],   s* = s0 + max(0, v T + v dv / (2 sqrt(a_max b)))
with `s` the bumper-to-bumper gap and `dv` the approach speed to the leader.

MOBIL (Kesting, Treiber & Helbing 2007): change to lane X when it is safe,
    a_new_follower_after >= -b_safe
and it pays, counting the politeness-weighted gain of the followers:
    (a_self_after - a_self_before) + p [(a_new_follower_after - a_new_follower_before)
                                        + (a_old_follower_after - a_old_follower_before)] > a_threshold + bias.
The route adds to this: a change toward the lanes the route needs earns a bonus that grows as the place where
the change must be done comes near; a change away from the route is not taken; and a car in a lane that ends
(an acceleration lane) brakes for a virtual stopped obstacle at its end rather than drive off it. A car that
cannot reach its exit in time drives on and re-routes, as people do, rather than stop on a through lane.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.roads.signals import FIRST_COME, YIELDS, Signal
from fuyao.sim.config import MobilRule
from fuyao.sim.geometry import lane_attr, next_lane, route_attr, wrap_angle
from fuyao.sim.neighbours import FAR, Neighbour, Surroundings
from fuyao.sim.signals import link_signal
from fuyao.sim.state import SignalClock, Vehicles

MAX_BRAKE = 8.0  # m/s^2, physical braking limit of every vehicle
SAFE_BRAKE = 4.0  # m/s^2, the most braking a lane change may impose on the new follower (MOBIL b_safe)
MOBIL_THRESHOLD = 0.2  # m/s^2, a_threshold
KEEP_RIGHT_BIAS = 0.1  # m/s^2, changes to the right need this much less gain (keep-right rule)
MIN_GAP = 1.0  # m, a lane change needs at least this gap front and back
ROUTE_BONUS = 1.0  # m/s^2, base incentive toward the route's lanes
ROUTE_URGENCY = 6.0  # m/s^2, extra incentive as the deadline comes near
ROUTE_ROOM_PER_CHANGE = 250.0  # m of road a driver wants per lane change still needed
STOP_MARGIN = 3.0  # m, where drivers who could not change stop before their deadline


@dataclass(frozen=True)
class MobilConstants:
    """One lane-change rule (`fuyao.sim.config.MobilRule`): accelerations in m/s^2."""

    safe_brake: float  # the most braking a change may impose on the new follower (b_safe)
    threshold: float  # a_threshold: the gain a change needs
    keep_right_bias: float  # changes to the right need this much less gain, to the left this much more
    own_safety: bool  # the changing car's own braking behind its new leader is held to b_safe too, with MIN_GAP
    route_aware: bool  # the route's incentives (bonus, urgency, no change away from it)
    right_first: bool  # both sides pay: highway-env keeps the last side it tries (the right), Fuyao the larger gain
    # The floor of the IDM accelerations MOBIL compares, m/s^2: highway-env's are unbounded (behind a close obstacle
    # -30 m/s^2 against -10 behind a new leader is a gain), Fuyao's the physical MAX_BRAKE.
    accel_floor: float
    # When a car reconsiders its lane, once per `SimConfig.mobil_period_s`: False, every car at the start of each
    # period (Fuyao's drivers); True, each at its own phase of the period, as highway-env's IDMVehicle does (its
    # LANE_CHANGE_DELAY timer starts at (x + y) pi mod 1 s). With every car deciding at the tick the controlled
    # vehicles act, a pilot never sees a lane change begin before it chooses its own.
    phased: bool = False


MOBIL_RULES = {
    MobilRule.FUYAO: MobilConstants(SAFE_BRAKE, MOBIL_THRESHOLD, KEEP_RIGHT_BIAS, True, True, False, MAX_BRAKE),
    # IDMVehicle.mobil: LANE_CHANGE_MAX_BRAKING_IMPOSED 2, LANE_CHANGE_MIN_ACC_GAIN 0.2, no bias, no route.
    MobilRule.HIGHWAY_ENV: MobilConstants(2.0, 0.2, 0.0, False, False, True, math.inf, phased=True),
}

# Low-level controllers, as in highway-env's ControlledVehicle.
TAU_ACC = 0.6  # s
TAU_HEADING = 0.2  # s
TAU_LATERAL = 0.6  # s
TAU_PURSUIT = 0.1  # s
MAX_STEER = math.pi / 3  # rad


@dataclass(frozen=True)
class DriverParams:
    """IDM and MOBIL parameters of the asking vehicles, `[W, N]` each."""

    desired_speed: torch.Tensor  # m/s
    headway: torch.Tensor  # s
    jam_gap: torch.Tensor  # m
    max_accel: torch.Tensor  # m/s^2
    comfort_decel: torch.Tensor  # m/s^2
    delta: torch.Tensor
    politeness: torch.Tensor

    def gather(self, slot: torch.Tensor) -> DriverParams:
        safe = slot.clamp(min=0)
        return DriverParams(*(getattr(self, f).gather(1, safe) for f in self.__dataclass_fields__))


def idm_free(speed: torch.Tensor, p: DriverParams) -> torch.Tensor:
    """IDM's free-road term `1 - (v / v0)^delta` (dimensionless)."""
    v0 = p.desired_speed.clamp(min=0.1)
    # exp(delta log r), not torch.pow: CPU pow rounds differently in the vectorised body and the scalar tail
    # of a kernel, which would make a vehicle's result depend on its slot and on the number of worlds.
    return 1.0 - torch.exp(p.delta * torch.log((speed / v0).clamp(min=0.0)))


def idm_interaction(
    speed: torch.Tensor, gap: torch.Tensor, lead_speed: torch.Tensor, has_lead: torch.Tensor, p: DriverParams
) -> torch.Tensor:
    """IDM's interaction term `(s* / s)^2` for one leader (0 where there is none)."""
    dv = speed - lead_speed
    brake_term = speed * dv / (2.0 * torch.sqrt(p.max_accel * p.comfort_decel))
    s_star = p.jam_gap + (speed * p.headway + brake_term).clamp(min=0)
    return torch.where(has_lead, (s_star / gap.clamp(min=0.1)) ** 2, torch.zeros_like(speed))


def idm_combine(
    free: torch.Tensor, interaction: torch.Tensor, p: DriverParams, floor: float = MAX_BRAKE
) -> torch.Tensor:
    """`a [free - interaction]`, floored at -`floor` (MAX_BRAKE). The acceleration falls as the interaction grows,
    so the most constraining of several leaders is the largest interaction: one combine serves them all."""
    accel = (p.max_accel * (free - interaction)).clamp(min=-floor)
    # A desired speed of 0 means standing still: never accelerate (v0 was clamped to 0.1 m/s above).
    return torch.where(p.desired_speed <= 0.0, accel.clamp(max=0.0), accel)


def idm_acceleration(
    speed: torch.Tensor,
    gap: torch.Tensor,
    lead_speed: torch.Tensor,
    has_lead: torch.Tensor,
    p: DriverParams,
    floor: float = MAX_BRAKE,
) -> torch.Tensor:
    """IDM acceleration `[...]` m/s^2 for a follower at `speed` behind a leader `gap` m ahead moving at `lead_speed`,
    floored at -`floor`."""
    return idm_combine(idm_free(speed, p), idm_interaction(speed, gap, lead_speed, has_lead, p), p, floor)


def _idm_behind(nb: Neighbour, p: DriverParams, speed, floor: float = MAX_BRAKE) -> torch.Tensor:
    return idm_acceleration(speed, nb.gap, nb.speed, nb.exists, p, floor)


def route_stop_interaction(speed, remaining, needs_change, length, p: DriverParams) -> torch.Tensor:
    """IDM interaction with a virtual stopped obstacle where a route's lane changes must be done."""
    gap = (remaining - 0.5 * length - STOP_MARGIN).clamp(min=0.1)
    return idm_interaction(speed, gap, torch.zeros_like(speed), needs_change, p)


@dataclass(frozen=True)
class RouteView:
    """What a vehicle's route asks of it, `[W, N]` each."""

    changes: torch.Tensor  # int64, signed lane changes still needed (negative: left)
    remaining: torch.Tensor  # m, until the place where they must be done
    left_changes: torch.Tensor  # int64, the same if it were in its left lane
    left_remaining: torch.Tensor  # m
    right_changes: torch.Tensor
    right_remaining: torch.Tensor


def mobil_decision(
    sur: Surroundings,
    speed: torch.Tensor,
    length: torch.Tensor,
    params: DriverParams,
    all_params: DriverParams,
    route: RouteView,
    left_ok: torch.Tensor,
    right_ok: torch.Tensor,
    rule: MobilConstants = MOBIL_RULES[MobilRule.FUYAO],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Route-aware MOBIL for every vehicle. Returns `(direction [W, N] int64 in {-1, 0, 1}, safe_left, safe_right)`.

    `params` are each vehicle's own parameters, `all_params` the same table (gathered for followers). `rule`:
    the constants and which tests apply (`MOBIL_RULES`; static, chosen by the config).
    """
    floor = rule.accel_floor
    follow_p = all_params.gather(sur.follow.slot)
    self_old = _idm_behind(sur.lead, params, speed, floor)
    of_old = idm_acceleration(sur.follow.speed, sur.follow.gap, speed, sur.follow.exists, follow_p, floor)
    of_new = idm_acceleration(
        sur.follow.speed, sur.follow.gap + length + sur.lead.gap, sur.lead.speed, sur.lead.exists, follow_p, floor
    )
    need = torch.sign(route.changes)

    def side(lead: Neighbour, follow: Neighbour, ok, direction: int, changes_x, remaining_x):
        nf_p = all_params.gather(follow.slot)
        self_new = _idm_behind(lead, params, speed, floor)
        nf_old = idm_acceleration(follow.speed, follow.gap + length + lead.gap, lead.speed, lead.exists, nf_p, floor)
        nf_new = idm_acceleration(follow.speed, follow.gap, speed, follow.exists, nf_p, floor)
        # No new follower: nobody to impose braking on, and no follower terms (not slot 0's free-road accel).
        nf_ok = ~follow.exists | (nf_new >= -rule.safe_brake)
        safe = ok & nf_ok
        if rule.own_safety:
            safe = safe & (self_new >= -rule.safe_brake) & (lead.gap > MIN_GAP) & (follow.gap > MIN_GAP)
        nf_gain = torch.where(follow.exists, nf_new - nf_old, 0.0)
        of_gain = torch.where(sur.follow.exists, of_new - of_old, 0.0)
        gain = self_new - self_old + params.politeness * (nf_gain + of_gain)
        gain = gain + (rule.keep_right_bias if direction > 0 else -rule.keep_right_bias)
        if not rule.route_aware:
            return safe & (gain >= rule.threshold), gain, safe
        needed = route.changes.abs().clamp(min=1).float()
        urgency = (1.0 - (route.remaining - 100.0) / (ROUTE_ROOM_PER_CHANGE * needed)).clamp(0.0, 1.0)
        toward = need == direction
        gain = gain + torch.where(toward, ROUTE_BONUS + ROUTE_URGENCY * urgency, 0.0)
        room = remaining_x > ROUTE_ROOM_PER_CHANGE * changes_x.abs().float() + 400.0
        keeps_route = (changes_x.abs() <= route.changes.abs()) | room
        want = safe & keeps_route & (need != -direction) & (gain > rule.threshold)
        return want, gain, safe

    want_l, gain_l, safe_l = side(sur.left_lead, sur.left_follow, left_ok, -1, route.left_changes, route.left_remaining)
    want_r, gain_r, safe_r = side(
        sur.right_lead, sur.right_follow, right_ok, 1, route.right_changes, route.right_remaining
    )
    if rule.right_first:
        go_right = want_r
        go_left = want_l & ~want_r
    else:
        go_left = want_l & (~want_r | (gain_l > gain_r))
        go_right = want_r & ~go_left
    direction = torch.where(go_left, -1, torch.where(go_right, 1, 0))
    return direction, safe_l, safe_r


def cut_in_interaction(sur: Surroundings, lc_dir: torch.Tensor, speed, params: DriverParams) -> torch.Tensor:
    """IDM interaction with the nearest car ahead in a neighbour lane that is changing into this lane.

    `lc_dir [W, N]` is every vehicle's lane-change direction (all slots, which `sur`'s slots index; `sur`, `speed`
    and `params` may be a subset of the slots, `first_slots`); a left-lane leader moving right (+1) or a
    right-lane leader moving left (-1) is treated as a leader already."""

    def from_side(lead: Neighbour, toward: int):
        cutting = lead.exists & (lc_dir.gather(1, lead.slot.clamp(min=0)) == toward)
        return idm_interaction(speed, lead.gap, lead.speed, cutting, params)

    return torch.maximum(from_side(sur.left_lead, 1), from_side(sur.right_lead, -1))


YIELD_HORIZON_M = 100.0  # m: cars further from a conflict point than this are not yielded to
YIELD_CLEARANCE_M = 2.5  # m: where a yielding car stops, before the conflict point (plus half its length)
CRITICAL_GAP_S = 2.5  # s: a car that must give way goes only if the other reaches the conflict this much after it
COMMITTED_SPEED = 2.0  # m/s: a car inside the junction moving at least this fast will not stop for anyone
OCCUPY_MARGIN_M = 2.5  # m: a car inside the junction whose front is this close to a conflict point occupies it
STOP_LINE_MARGIN_M = 1.0  # m between a stopped car's front bumper and its stop line
YELLOW_DECEL = 3.0  # m/s^2: at yellow, a driver stops if this much braking is enough, else drives on
YELLOW_COMMITTED_DECEL = 6.0  # m/s^2: ... and one already braking for the line stops if this much is enough


def signal_priority(code: torch.Tensor) -> torch.Tensor:
    """Priority of a movement by its `Signal` code (higher goes first; equal: the static table, then first
    come): red 0 (not moving), green-but-yield and stop-then-go 1, no signal 2 (the static table decides),
    yellow and priority green 3 (a yellow car is clearing the junction). Arithmetic, not a table: no constant
    tensor to build per call."""
    off, red = code == int(Signal.OFF), code == int(Signal.RED)
    clearing = (code == int(Signal.YELLOW)) | (code == int(Signal.GREEN))
    return torch.where(off, 2, torch.where(red, 0, torch.where(clearing, 3, 1)))


def has_right_of_way(my_signal, their_signal, static) -> torch.Tensor:
    """Whether the other lane's movement goes before this one: its signal ranks higher (`signal_priority`), or the
    same and the static table (`RoadMap.conflict_yield`, from this lane's side) says this one yields."""
    my_p, their_p = signal_priority(my_signal), signal_priority(their_signal)
    return (their_p > my_p) | ((their_p == my_p) & (static == YIELDS))


def exit_blocked(exit_room, length, jam_gap) -> torch.Tensor:
    """The street after the junction ahead (`Surroundings.exit_room` m free) has no room for a car of `length` m
    and its jam gap (`[W, ...]`)."""
    return exit_room < length + jam_gap + 1.0


def time_to_reach(dist, speed, max_accel) -> torch.Tensor:
    """Seconds to cover `dist` m from `speed` m/s accelerating at `max_accel` m/s^2 (a waiting car starting)."""
    a = max_accel.clamp(min=0.5)
    d = dist.clamp(min=0.0)
    return (torch.sqrt(speed * speed + 2.0 * a * d) - speed) / a


def conflict_yield_interaction(
    sur: Surroundings, speed, length, params: DriverParams, my_signal, their_signal, all_speed=None, all_length=None
) -> torch.Tensor | None:
    """Right of way at junctions, as gap acceptance. For each conflict point ahead, a car gives way (brakes for
    a virtual stopped obstacle at its stop line, or short of the point once inside the junction) to the car
    approaching that point on the other lane when:
    - the other has priority (its signal ranks higher: `SIGNAL_PRIORITY`, or the same and the static table says
      so) and reaches the point less than `CRITICAL_GAP_S` after this car could (starting from its speed at its
      own acceleration);
    - or neither has priority and the other arrives first (first come, first served; ties to the lower slot);
    - or the other is already inside the junction, moving, and arrives first (nobody drives into a car that
      has committed).
    Cars stopped at a red line are no threat; cars beyond `YIELD_HORIZON_M` are not considered.
    `my_signal [W, N]`, `their_signal [W, N, C]` signal codes; `priority` the `SIGNAL_PRIORITY` table as a
    tensor. IDM interaction `[W, N]`, or None on maps without conflicts. `all_speed`, `all_length` `[W, N]`: every
    slot's, which the conflict slots index, where `sur`, `speed`, `length` and `params` are the first slots only
    (`first_slots`; slot `i` of the subset is slot `i` of the world); by default `speed` and `length`."""
    if sur.conflict_slot is None:
        return None
    other = sur.conflict_slot
    w, n, c = other.shape
    safe = other.clamp(min=0).view(w, -1)
    their_speed = (speed if all_speed is None else all_speed).gather(1, safe).view(w, n, c)
    their_len = (length if all_length is None else all_length).gather(1, safe).view(w, n, c)
    my_t = time_to_reach(sur.conflict_my_dist, speed.unsqueeze(-1), params.max_accel.unsqueeze(-1))
    their_t = sur.conflict_their_dist.clamp(min=0.0) / their_speed.clamp(min=1.0)
    slot_ids = torch.arange(n, device=speed.device).view(1, n, 1)
    first = (their_t < my_t) | ((their_t == my_t) & (other < slot_ids))
    static = sur.conflict_rule
    they_rank = has_right_of_way(my_signal.unsqueeze(-1), their_signal, static)
    neither = (signal_priority(their_signal) == signal_priority(my_signal).unsqueeze(-1)) & (static == FIRST_COME)
    # Inside the junction: moving through and arriving first, or standing on the conflict point (a left turner
    # waiting for its own gap may stand across another stream's path).
    occupying = sur.conflict_their_dist < 0.5 * their_len + OCCUPY_MARGIN_M
    committed = sur.conflict_other_inside & (((their_speed > COMMITTED_SPEED) & first) | occupying)
    threat = (their_signal != int(Signal.RED)) | sur.conflict_other_inside
    gives_way = (they_rank & (their_t < my_t + CRITICAL_GAP_S)) | (neither & first) | committed
    not_passed = (sur.conflict_my_dist > -0.5 * length.unsqueeze(-1)) & (sur.conflict_their_dist > -0.5 * their_len)
    yields = (other >= 0) & threat & gives_way & not_passed & (sur.conflict_their_dist < YIELD_HORIZON_M)
    # Wait at the stop line (the connector's start) if not yet on it, else just short of the conflict point. On a
    # permissive green (`g`) a car pulls into the junction and waits short of the point, as drivers turning left
    # across oncoming traffic do: when the light changes it is over the line and clears the junction while the
    # oncoming stream stops (waiting at the line, no left turner ever got through a steady oncoming stream).
    entry = sur.conflict_entry_dist.unsqueeze(-1)
    half = 0.5 * length.unsqueeze(-1)
    at_line = (entry > 0) & (my_signal != int(Signal.GREEN_YIELD)).unsqueeze(-1)
    gap = torch.where(at_line, entry - half - 1.0, sur.conflict_my_dist - half - YIELD_CLEARANCE_M).clamp(min=0.1)
    p = DriverParams(*(getattr(params, f).unsqueeze(-1) for f in params.__dataclass_fields__))
    stop = idm_interaction(speed.unsqueeze(-1), gap, torch.zeros_like(gap), yields, p)
    # At a merge, a car that is past the merge point and ahead of this one (nearer the common street) is a
    # leader: follow it by the difference of the two distances to the point.
    merged_gap = sur.conflict_my_dist - sur.conflict_their_dist - 0.5 * (length.unsqueeze(-1) + their_len)
    ahead = (
        (other >= 0) & sur.conflict_merge & sur.conflict_other_inside & (sur.conflict_their_dist < sur.conflict_my_dist)
    )
    follow = idm_interaction(speed.unsqueeze(-1), merged_gap, their_speed, ahead, p)
    return torch.maximum(stop, follow).max(dim=-1).values


def stop_line_interaction(sur: Surroundings, my_signal, speed, accel, length, params: DriverParams) -> torch.Tensor:
    """IDM interaction `[W, N]` with a virtual stopped car at the stop line of the connector ahead when the
    driver must stop there: red (and stop-then-go until stopped at the line), yellow when braking at
    `YELLOW_DECEL` or less stops the car in time (else it drives through: the dilemma zone; a driver already
    braking for the line, `accel` m/s^2 of the last tick, keeps stopping if `YELLOW_COMMITTED_DECEL` is enough),
    and whenever the street after the junction has no room for it (nobody enters a junction it cannot leave:
    no gridlock). A car whose front is over the line goes on."""
    entry = sur.conflict_entry_dist
    front_to_line = entry - 0.5 * length
    approaching = (sur.upcoming >= 0) & (front_to_line > 0)
    braking = accel < -1.0
    decel = torch.where(braking, YELLOW_COMMITTED_DECEL, YELLOW_DECEL)
    can_stop = speed * speed <= 2.0 * decel * front_to_line.clamp(min=0.0)
    stopped_at_line = (speed < 0.5) & (front_to_line < STOP_LINE_MARGIN_M + 3.0)
    red = (my_signal == int(Signal.RED)) | ((my_signal == int(Signal.STOP_GO)) & ~stopped_at_line)
    yellow = (my_signal == int(Signal.YELLOW)) & can_stop
    blocked = exit_blocked(sur.exit_room, length, params.jam_gap)
    must_stop = approaching & (red | yellow | blocked)
    # The IDM stops a jam gap short of its obstacle: put the obstacle that far past the margin before the line.
    gap = (front_to_line - STOP_LINE_MARGIN_M + params.jam_gap).clamp(min=0.1)
    return idm_interaction(speed, gap, torch.zeros_like(speed), must_stop, params)


def resolve_lane_claims(
    lc_dir: torch.Tensor,
    lateral_d: torch.Tensor,
    target_lane: torch.Tensor,
    target_s: torch.Tensor,
    length: torch.Tensor,
    speed: torch.Tensor,
) -> torch.Tensor:
    """Cancel lane changes that would meet another car entering the same lane from the other side.

    Claims are sorted by (target lane, position); neighbours in that order closer than their half-lengths
    plus one second of travel conflict. The car further along its change keeps the claim (ties: the car moving
    right, which is leaving the faster lane). Returns the lane-change direction `[W, N]`.
    """
    claiming = lc_dir != 0
    key = torch.where(claiming, target_lane.double() * 1.0e6 + target_s.double(), 1.0e12)
    _, order = torch.sort(key, dim=1)
    n = lc_dir.shape[1]
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=order.device).expand_as(order))
    progress = lateral_d * -lc_dir.float()  # metres moved toward the target lane

    def conflict_with(offset: int) -> torch.Tensor:
        other = order.gather(1, (ranks + offset).clamp(0, n - 1))
        in_range = (ranks + offset >= 0) & (ranks + offset < n)
        same_lane = target_lane.gather(1, other) == target_lane
        reach = 0.5 * (length + length.gather(1, other)) + torch.maximum(speed, speed.gather(1, other)) * 1.0
        close = (target_s.gather(1, other) - target_s).abs() < reach
        opposite = lc_dir.gather(1, other) == -lc_dir
        other_progress = progress.gather(1, other)
        loses = (other_progress > progress) | ((other_progress == progress) & (lc_dir < 0))
        return in_range & same_lane & close & opposite & claiming & loses

    cancel = conflict_with(1) | conflict_with(-1)
    return torch.where(cancel, 0, lc_dir)


def steering_control(
    d_error, psi, speed, kappa, length, slip=None, max_heading: float = math.pi / 4, feed_forward: bool = True
) -> torch.Tensor:
    """Steer toward the target lateral offset (highway-env's cascaded lateral controller, in lane coordinates).

    `d_error` m: lateral offset minus target offset; `psi` rad relative to the lane; returns a wheel angle rad.
    `slip` rad (optional): the body's slip angle, so that the controller steers the direction of travel
    (`psi + slip`) rather than the body's heading. highway-env steers the body, which in a tight turn (slip of
    0.2-0.3 rad) cuts the inside of the curve by most of a metre; the city presets pass it. `max_heading` rad:
    the largest heading to the lane a lane change may take (highway-env's pi/4; at city speeds that is a
    45-degree swerve across the next lane, so the city passes less). `feed_forward`: add the lane's yaw rate
    (speed x curvature) to the heading-rate command, which holds a car on the centre of a curve; highway-env's
    controller has only the pursuit term, and on its curves (exit-v0's exit) drifts to the outside: the
    highway-env presets leave it out.
    """
    if slip is not None:
        psi = psi + slip
    v = speed.clamp(min=1.0)
    lateral_speed_cmd = -d_error / TAU_LATERAL
    heading_cmd = torch.asin((lateral_speed_cmd / v).clamp(-1.0, 1.0)).clamp(-max_heading, max_heading)
    heading_ref = heading_cmd + kappa * speed * TAU_PURSUIT
    heading_rate = wrap_angle(heading_ref - psi) / TAU_HEADING
    if feed_forward:
        heading_rate = heading_rate + speed * kappa
    # slip = asin(x), steer = atan(2 tan(slip)); tan(asin(x)) = x / sqrt(1 - x^2), kept finite (float32 asin(1)
    # rounds past pi/2, where tan flips sign).
    x = (0.5 * length / v * heading_rate).clamp(-0.999, 0.999)
    return torch.atan(2.0 * x / torch.sqrt(1.0 - x * x)).clamp(-MAX_STEER, MAX_STEER)


def speed_control(target_speed, speed) -> torch.Tensor:
    """Proportional cruise control, m/s^2."""
    return (target_speed - speed) / TAU_ACC


# The driver model as the step and the pilots use it: limits, parameters, route, and the acceleration that
# respects every leader, signal and junction.

ANTICIPATION_DECEL = 1.5  # m/s^2, how drivers slow down for a lower speed limit on the lane ahead


def effective_limit(road: RoadMap, map_id, v: Vehicles) -> torch.Tensor:
    """The speed a driver may go now: the lane's limit, lowered ahead of a slower next lane (a turn) so that
    braking at `ANTICIPATION_DECEL` meets the next limit at the lane's end. `[W, N]` m/s."""
    limit = lane_attr(road.lane_speed_limit, road, map_id, v.lane)
    nxt = next_lane(road, map_id, v.lane, v.dest)
    next_limit = torch.where(nxt >= 0, lane_attr(road.lane_speed_limit, road, map_id, nxt), limit)
    to_end = (lane_attr(road.lane_length, road, map_id, v.lane) - v.s).clamp(min=0.0)
    return torch.minimum(limit, torch.sqrt(next_limit * next_limit + 2.0 * ANTICIPATION_DECEL * to_end))


def driver_params(v: Vehicles, limit: torch.Tensor) -> DriverParams:
    return DriverParams(
        desired_speed=torch.minimum(v.desire * limit, v.max_speed),
        headway=v.idm_headway,
        jam_gap=v.idm_gap,
        max_accel=v.idm_accel,
        comfort_decel=v.idm_decel,
        delta=v.idm_delta,
        politeness=v.politeness,
    )


def route_view(road: RoadMap, map_id, v: Vehicles, sur: Surroundings) -> RouteView:
    def at(lane, s):
        changes = route_attr(road.route.changes, road, map_id, lane, v.dest)
        remaining = route_attr(road.route.deadline, road, map_id, lane, v.dest) - s
        return changes, remaining

    changes, remaining = at(v.lane, v.s)
    lc, lr = at(sur.left_lane, sur.left_s)
    rc, rr = at(sur.right_lane, sur.right_s)
    return RouteView(changes, remaining, lc, lr, rc, rr)


def following_accel(
    road: RoadMap,
    map_id,
    v: Vehicles,
    sur: Surroundings,
    params,
    route,
    clock: SignalClock,
    route_stop: bool = True,
    everyone: Vehicles | None = None,
) -> torch.Tensor:
    """IDM acceleration `[W, N]` m/s^2 that respects every leader a driver must: the own-lane leader, the
    leader in the target lane during a lane change, cars cutting in from either side, the end of a lane
    that ends (when the route still needs a change out of it; `route_stop`), the stop line at red, at yellow or before a
    junction it could not leave, and cars to give way to at junctions. The free-road term is computed once;
    the most constraining leader is the largest interaction term. `everyone`: all the world's vehicles, which the
    neighbour slots index, where `v`, `sur`, `params` and `route` are the first slots only (`first_slots`: a
    pilot driving the controlled vehicles); by default `v`."""
    everyone = v if everyone is None else everyone
    free = idm_free(v.speed, params)
    inter = idm_interaction(v.speed, sur.lead.gap, sur.lead.speed, sur.lead.exists, params)
    if route_stop:  # (highway-env's drivers know no route: they brake only for what stands in their lane)
        must_leave = (route.changes != 0) & lane_attr(road.lane_leads_to_dead_end, road, map_id, v.lane)
        inter = torch.maximum(inter, route_stop_interaction(v.speed, route.remaining, must_leave, v.length, params))
    target_lead_gap = torch.where(v.lc_dir < 0, sur.left_lead.gap, sur.right_lead.gap)
    target_lead_speed = torch.where(v.lc_dir < 0, sur.left_lead.speed, sur.right_lead.speed)
    target_has_lead = torch.where(v.lc_dir < 0, sur.left_lead.exists, sur.right_lead.exists) & (v.lc_dir != 0)
    inter = torch.maximum(inter, idm_interaction(v.speed, target_lead_gap, target_lead_speed, target_has_lead, params))
    inter = torch.maximum(inter, cut_in_interaction(sur, everyone.lc_dir, v.speed, params))
    if sur.conflict_slot is not None:
        my_signal = link_signal(road, map_id, clock, sur.upcoming)
        their_signal = link_signal(road, map_id, clock, sur.conflict_lane)
        inter = torch.maximum(inter, stop_line_interaction(sur, my_signal, v.speed, v.accel, v.length, params))
        yield_inter = conflict_yield_interaction(
            sur, v.speed, v.length, params, my_signal, their_signal, everyone.speed, everyone.length
        )
        inter = torch.maximum(inter, yield_inter)
    return idm_combine(free, inter, params)


def lane_bound_surroundings(sur: Surroundings, v: Vehicles) -> Surroundings:
    """The surroundings as highway-env's drivers perceive them (`Road.neighbour_vehicles`): leaders and followers
    on the lane itself only, none on the lane before or after it (a car on merge-v0's sine bend does not see the
    obstacle at the end of the acceleration lane that follows)."""

    def own(nb: Neighbour, lane: torch.Tensor) -> Neighbour:
        on_lane = nb.exists & (v.lane.gather(1, nb.slot.clamp(min=0)) == lane)
        return Neighbour(
            slot=torch.where(on_lane, nb.slot, -1),
            gap=torch.where(on_lane, nb.gap, FAR),
            speed=torch.where(on_lane, nb.speed, v.speed),
        )

    return dataclasses.replace(
        sur,
        lead=own(sur.lead, v.lane),
        follow=own(sur.follow, v.lane),
        left_lead=own(sur.left_lead, sur.left_lane),
        left_follow=own(sur.left_follow, sur.left_lane),
        right_lead=own(sur.right_lead, sur.right_lane),
        right_follow=own(sur.right_follow, sur.right_lane),
    )


def background_control(
    road,
    map_id,
    v: Vehicles,
    sur: Surroundings,
    limit,
    mobil: bool,
    left_ok,
    right_ok,
    clock,
    rule: MobilConstants = MOBIL_RULES[MobilRule.FUYAO],
    due: torch.Tensor | None = None,
):
    """IDM acceleration `[W, N]` and (on MOBIL ticks; `mobil` False: never) the new lane-change direction of
    every vehicle, by `rule`. `due` `[W, N]`: where given, only these vehicles may start a change this tick
    (`MobilConstants.phased`)."""
    if not rule.route_aware:
        sur = lane_bound_surroundings(sur, v)
    params = driver_params(v, limit)
    route = route_view(road, map_id, v, sur)
    accel = following_accel(road, map_id, v, sur, params, route, clock, route_stop=rule.route_aware)
    lc_dir = v.lc_dir
    if mobil:
        direction, safe_l, safe_r = mobil_decision(
            sur, v.speed, v.length, params, params, route, left_ok, right_ok, rule
        )
        start = (v.lc_dir == 0) & (v.speed > 1.0)
        if due is not None:
            start = start & due
        lc_dir = torch.where(start, direction, v.lc_dir)
        # Abort a change whose target lane became unsafe while the car has not yet left its lane.
        unsafe = ((v.lc_dir < 0) & ~safe_l) | ((v.lc_dir > 0) & ~safe_r)
        lc_dir = torch.where(unsafe & (v.d.abs() < 0.5), 0, lc_dir)
    # Every tick: two cars entering one lane from both sides must not meet there.
    target_lane = torch.where(lc_dir < 0, sur.left_lane, torch.where(lc_dir > 0, sur.right_lane, -1))
    target_s = torch.where(lc_dir < 0, sur.left_s, sur.right_s)
    resolved = resolve_lane_claims(lc_dir, v.d, target_lane, target_s, v.length, v.speed)
    return accel, torch.where(v.controlled, v.lc_dir, resolved)


__all__ = [
    "MOBIL_RULES",
    "DriverParams",
    "MobilConstants",
    "background_control",
    "conflict_yield_interaction",
    "driver_params",
    "effective_limit",
    "exit_blocked",
    "following_accel",
    "has_right_of_way",
    "route_view",
    "signal_priority",
    "stop_line_interaction",
    "RouteView",
    "idm_acceleration",
    "idm_combine",
    "idm_free",
    "idm_interaction",
    "lane_bound_surroundings",
    "mobil_decision",
    "route_stop_interaction",
    "speed_control",
    "steering_control",
]
