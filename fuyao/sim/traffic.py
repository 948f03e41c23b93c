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

import math
from dataclasses import dataclass

import torch

from fuyao.sim.geometry import wrap_angle
from fuyao.sim.neighbours import Neighbour, Surroundings

MAX_BRAKE = 8.0  # m/s^2, physical braking limit of every vehicle
SAFE_BRAKE = 4.0  # m/s^2, the most braking a lane change may impose on the new follower (MOBIL b_safe)
MOBIL_THRESHOLD = 0.2  # m/s^2, a_threshold
KEEP_RIGHT_BIAS = 0.1  # m/s^2, changes to the right need this much less gain (keep-right rule)
MIN_GAP = 1.0  # m, a lane change needs at least this gap front and back
ROUTE_BONUS = 1.0  # m/s^2, base incentive toward the route's lanes
ROUTE_URGENCY = 6.0  # m/s^2, extra incentive as the deadline comes near
ROUTE_ROOM_PER_CHANGE = 250.0  # m of road a driver wants per lane change still needed
STOP_MARGIN = 3.0  # m, where drivers who could not change stop before their deadline

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


def idm_combine(free: torch.Tensor, interaction: torch.Tensor, p: DriverParams) -> torch.Tensor:
    """`a [free - interaction]`, floored at -MAX_BRAKE. The acceleration falls as the interaction grows, so
    the most constraining of several leaders is the largest interaction: one combine serves them all."""
    accel = (p.max_accel * (free - interaction)).clamp(min=-MAX_BRAKE)
    # A desired speed of 0 means standing still: never accelerate (v0 was clamped to 0.1 m/s above).
    return torch.where(p.desired_speed <= 0.0, accel.clamp(max=0.0), accel)


def idm_acceleration(
    speed: torch.Tensor,
    gap: torch.Tensor,
    lead_speed: torch.Tensor,
    has_lead: torch.Tensor,
    p: DriverParams,
) -> torch.Tensor:
    """IDM acceleration `[...]` m/s^2 for a follower at `speed` behind a leader `gap` m ahead moving at `lead_speed`."""
    return idm_combine(idm_free(speed, p), idm_interaction(speed, gap, lead_speed, has_lead, p), p)


def _idm_behind(nb: Neighbour, p: DriverParams, speed) -> torch.Tensor:
    return idm_acceleration(speed, nb.gap, nb.speed, nb.exists, p)


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
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Route-aware MOBIL for every vehicle. Returns `(direction [W, N] int64 in {-1, 0, 1}, safe_left, safe_right)`.

    `params` are each vehicle's own parameters, `all_params` the same table (gathered for followers).
    """
    follow_p = all_params.gather(sur.follow.slot)
    self_old = _idm_behind(sur.lead, params, speed)
    of_old = idm_acceleration(sur.follow.speed, sur.follow.gap, speed, sur.follow.exists, follow_p)
    of_new = idm_acceleration(
        sur.follow.speed, sur.follow.gap + length + sur.lead.gap, sur.lead.speed, sur.lead.exists, follow_p
    )
    need = torch.sign(route.changes)

    def side(lead: Neighbour, follow: Neighbour, ok, direction: int, changes_x, remaining_x):
        nf_p = all_params.gather(follow.slot)
        self_new = _idm_behind(lead, params, speed)
        nf_old = idm_acceleration(follow.speed, follow.gap + length + lead.gap, lead.speed, lead.exists, nf_p)
        nf_new = idm_acceleration(follow.speed, follow.gap, speed, follow.exists, nf_p)
        # No new follower: nobody to impose braking on, and no follower terms (not slot 0's free-road accel).
        nf_ok = ~follow.exists | (nf_new >= -SAFE_BRAKE)
        safe = ok & nf_ok & (self_new >= -SAFE_BRAKE) & (lead.gap > MIN_GAP) & (follow.gap > MIN_GAP)
        nf_gain = torch.where(follow.exists, nf_new - nf_old, 0.0)
        of_gain = torch.where(sur.follow.exists, of_new - of_old, 0.0)
        gain = self_new - self_old + params.politeness * (nf_gain + of_gain)
        gain = gain + (KEEP_RIGHT_BIAS if direction > 0 else -KEEP_RIGHT_BIAS)
        needed = route.changes.abs().clamp(min=1).float()
        urgency = (1.0 - (route.remaining - 100.0) / (ROUTE_ROOM_PER_CHANGE * needed)).clamp(0.0, 1.0)
        toward = need == direction
        gain = gain + torch.where(toward, ROUTE_BONUS + ROUTE_URGENCY * urgency, 0.0)
        room = remaining_x > ROUTE_ROOM_PER_CHANGE * changes_x.abs().float() + 400.0
        keeps_route = (changes_x.abs() <= route.changes.abs()) | room
        want = safe & keeps_route & (need != -direction) & (gain > MOBIL_THRESHOLD)
        return want, gain, safe

    want_l, gain_l, safe_l = side(sur.left_lead, sur.left_follow, left_ok, -1, route.left_changes, route.left_remaining)
    want_r, gain_r, safe_r = side(
        sur.right_lead, sur.right_follow, right_ok, 1, route.right_changes, route.right_remaining
    )
    go_left = want_l & (~want_r | (gain_l > gain_r))
    go_right = want_r & ~go_left
    direction = torch.where(go_left, -1, torch.where(go_right, 1, 0))
    return direction, safe_l, safe_r


def cut_in_interaction(sur: Surroundings, lc_dir: torch.Tensor, speed, params: DriverParams) -> torch.Tensor:
    """IDM interaction with the nearest car ahead in a neighbour lane that is changing into this lane.

    `lc_dir [W, N]` is every vehicle's lane-change direction; a left-lane leader moving right (+1) or a
    right-lane leader moving left (-1) is treated as a leader already."""

    def from_side(lead: Neighbour, toward: int):
        cutting = lead.exists & (lc_dir.gather(1, lead.slot.clamp(min=0)) == toward)
        return idm_interaction(speed, lead.gap, lead.speed, cutting, params)

    return torch.maximum(from_side(sur.left_lead, 1), from_side(sur.right_lead, -1))


YIELD_HORIZON_M = 60.0  # m: cars further from a conflict point than this are not yielded to
YIELD_CLEARANCE_M = 2.5  # m: where a yielding car stops, before the conflict point (plus half its length)


def conflict_yield_interaction(sur: Surroundings, speed, length, params: DriverParams) -> torch.Tensor | None:
    """At junctions, first come first served: a car yields (brakes for a virtual stopped obstacle before the
    conflict point) to a car on a crossing or merging connector that will reach the point sooner; ties go
    to the lower slot. IDM interaction `[W, N]`, or None on maps without conflicts."""
    if sur.conflict_slot is None:
        return None
    other = sur.conflict_slot
    w, n, c = other.shape
    safe = other.clamp(min=0).view(w, -1)
    their_speed = speed.gather(1, safe).view(w, n, c)
    their_len = length.gather(1, safe).view(w, n, c)
    my_t = sur.conflict_my_dist / speed.clamp(min=1.0).unsqueeze(-1)
    their_t = sur.conflict_their_dist / their_speed.clamp(min=1.0)
    slot_ids = torch.arange(n, device=speed.device).view(1, n, 1)
    first = (their_t < my_t) | ((their_t == my_t) & (other < slot_ids))
    not_passed = (sur.conflict_my_dist > -0.5 * length.unsqueeze(-1)) & (sur.conflict_their_dist > -0.5 * their_len)
    yields = (other >= 0) & first & not_passed & (sur.conflict_their_dist < YIELD_HORIZON_M)
    # Wait at the stop line (the connector's start) if not yet on it, else just short of the conflict point.
    entry = sur.conflict_entry_dist.unsqueeze(-1)
    half = 0.5 * length.unsqueeze(-1)
    gap = torch.where(entry > 0, entry - half - 1.0, sur.conflict_my_dist - half - YIELD_CLEARANCE_M).clamp(min=0.1)
    p = DriverParams(*(getattr(params, f).unsqueeze(-1) for f in params.__dataclass_fields__))
    stop = idm_interaction(speed.unsqueeze(-1), gap, torch.zeros_like(gap), yields, p)
    return stop.max(dim=-1).values


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


def steering_control(d_error, psi, speed, kappa, length) -> torch.Tensor:
    """Steer toward the target lateral offset (highway-env's cascaded lateral controller, in lane coordinates).

    `d_error` m: lateral offset minus target offset; `psi` rad relative to the lane; returns a wheel angle rad.
    """
    v = speed.clamp(min=1.0)
    lateral_speed_cmd = -d_error / TAU_LATERAL
    heading_cmd = torch.asin((lateral_speed_cmd / v).clamp(-1.0, 1.0)).clamp(-math.pi / 4, math.pi / 4)
    heading_ref = heading_cmd + kappa * speed * TAU_PURSUIT
    heading_rate = wrap_angle(heading_ref - psi) / TAU_HEADING + speed * kappa
    # slip = asin(x), steer = atan(2 tan(slip)); tan(asin(x)) = x / sqrt(1 - x^2), kept finite (float32 asin(1)
    # rounds past pi/2, where tan flips sign).
    x = (0.5 * length / v * heading_rate).clamp(-0.999, 0.999)
    return torch.atan(2.0 * x / torch.sqrt(1.0 - x * x)).clamp(-MAX_STEER, MAX_STEER)


def speed_control(target_speed, speed) -> torch.Tensor:
    """Proportional cruise control, m/s^2."""
    return (target_speed - speed) / TAU_ACC


__all__ = [
    "DriverParams",
    "RouteView",
    "idm_acceleration",
    "idm_combine",
    "idm_free",
    "idm_interaction",
    "mobil_decision",
    "route_stop_interaction",
    "speed_control",
    "steering_control",
]
