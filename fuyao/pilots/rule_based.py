"""The rule-based pilot: IDM + route-aware MOBIL, the same models that drive background traffic, acting on
controlled vehicles through the same action spaces a learned policy uses. The baseline to beat."""

from __future__ import annotations

import torch

from fuyao.sim import traffic
from fuyao.sim.config import ActionType
from fuyao.sim.geometry import change_ok, lane_attr, lane_point
from fuyao.sim.state import WorldState
from fuyao.sim.step import META_FASTER, META_IDLE, META_LEFT, META_RIGHT, META_SLOWER, speed_index
from fuyao.sim.traffic import driver_params, effective_limit, following_accel, route_view
from fuyao.sim.world import World

BRAKE_THRESHOLD = -0.5  # m/s^2: IDM asks for more braking than this -> slow down
SPEED_UP_THRESHOLD = 0.3  # m/s^2: IDM allows this much acceleration -> speed up
ROUTE_DROP_BACK_M = 200.0  # m per lane change still needed: closer than this, drop back behind a blocking leader


class RuleBasedPilot:
    """IDM + MOBIL + route. Needs the world's state (it plans from the whole scene, as background drivers do)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def act(self, obs: torch.Tensor | None, state: WorldState | None = None) -> torch.Tensor:
        if state is None:
            raise ValueError("RuleBasedPilot.act: needs the world state (act(obs, state)); got state=None")
        road, cfg = self.world.road, self.world.cfg
        v = state.vehicles
        m = state.map_id
        c = cfg.controlled
        limit = effective_limit(road, m, v)
        sur = self.world.surroundings(state)
        params = driver_params(v, limit)
        route = route_view(road, m, v, sur)
        accel = following_accel(road, m, v, sur, params, route, state.signals)
        left_ok, right_ok = change_ok(road, m, v.lane, v.s)
        direction, safe_l, safe_r = traffic.mobil_decision(
            sur, v.speed, v.length, params, params, route, left_ok, right_ok
        )
        # A change the route needs before a solid line (a turn lane in town) that has no gap yet: stop short of
        # the line and wait for one, as background drivers do before a lane that ends; passing the line in the
        # wrong lane misses the turn.
        needs = torch.sign(route.changes)
        limited = lane_attr(road.lane_change_until, road, m, v.lane) < lane_attr(road.lane_length, road, m, v.lane)
        wait = (needs != 0) & limited
        stop_at_line = traffic.route_stop_interaction(v.speed, route.remaining, wait, v.length, params)
        stop = traffic.idm_combine(traffic.idm_free(v.speed, params), stop_at_line, params)
        accel = torch.minimum(accel, torch.where(wait, stop, accel))[:, :c]
        # ... and one the target lane's leader blocks (it is close and slower: braking behind it would exceed what
        # MOBIL allows) with little road left: drop back behind that leader instead of driving past the exit.
        target_lead = torch.where(needs < 0, sur.left_lead.speed, sur.right_lead.speed)
        target_has = torch.where(needs < 0, sur.left_lead.exists, sur.right_lead.exists)
        unsafe = torch.where(needs < 0, ~safe_l, ~safe_r)
        urgent = route.remaining < ROUTE_DROP_BACK_M * route.changes.abs().float()
        drop_back = ((needs != 0) & unsafe & target_has & urgent & (v.target_speed > target_lead - 1.0))[:, :c]
        changing = v.lc_dir != 0
        # Lane changes are reconsidered as often as background drivers reconsider theirs (`mobil_period_s`):
        # deciding at 10 Hz, MOBIL's choice flickers and the pilot weaves. At the highway's 1 Hz decisions
        # every decision is such a tick.
        # A change the route needs is taken at any decision (it does not flicker: the route asks for one direction).
        reconsider = (state.ticks % cfg.mobil_every_ticks == 0).unsqueeze(1)
        for_route = (direction != 0) & (direction == torch.sign(route.changes))
        # (A stopped car may start a change its route needs: it waits at the line for exactly that.)
        direction = torch.where(changing | ((v.speed <= 1.0) & ~for_route) | ~(reconsider | for_route), 0, direction)
        direction = direction[:, :c]
        for_route = for_route[:, :c] & (direction != 0)

        if cfg.action is ActionType.CONTINUOUS:
            lane_dir = torch.where(changing[:, :c], v.lc_dir[:, :c], direction)
            width = lane_attr(road.lane_width, road, m, v.lane)[:, :c]
            w_left = lane_attr(road.lane_width, road, m, sur.left_lane)[:, :c]
            w_right = lane_attr(road.lane_width, road, m, sur.right_lane)[:, :c]
            target_d = torch.where(
                lane_dir < 0, 0.5 * (width + w_left), torch.where(lane_dir > 0, -0.5 * (width + w_right), 0.0)
            )
            _, _, kappa = lane_point(road, m, v.lane[:, :c], v.s[:, :c])
            steer = traffic.steering_control(
                v.d[:, :c] - target_d, v.psi[:, :c], v.speed[:, :c], kappa, v.length[:, :c]
            )
            lo, hi = cfg.accel_range
            a = 2.0 * (accel.clamp(lo, hi) - lo) / (hi - lo) - 1.0
            lo, hi = cfg.steer_range
            st = 2.0 * (steer.clamp(lo, hi) - lo) / (hi - lo) - 1.0
            return torch.stack([a, st], dim=-1)

        speeds = self.world.consts.target_speeds
        idx = speed_index(v.speed[:, :c], speeds)
        desired = params.desired_speed[:, :c]
        can_faster = (idx + 1 < speeds.shape[0]) & (speeds[(idx + 1).clamp(max=speeds.shape[0] - 1)] <= desired + 1e-3)
        action = torch.full_like(idx, META_IDLE)
        action = torch.where((accel > SPEED_UP_THRESHOLD) & can_faster, META_FASTER, action)
        action = torch.where(direction < 0, META_LEFT, torch.where(direction > 0, META_RIGHT, action))
        # Braking wins over a lane change, except over one the route needs (MOBIL found it safe): braking first, a
        # driver in a slowing queue never takes the gap to its exit or turn lane and misses it.
        action = torch.where((accel < BRAKE_THRESHOLD) & ~for_route, META_SLOWER, action)
        action = torch.where(drop_back & (direction == 0) & (idx > 0), META_SLOWER, action)
        # Cruising above what the lane allows: slow down.
        too_fast = v.target_speed[:, :c] > desired + 1e-3
        action = torch.where(too_fast & (direction == 0), META_SLOWER, action)
        # SLOWER with the target already at the lowest speed is not available (`action_mask`): IDLE keeps it
        # there. (SLOWER would set the target one step under the current speed, raising it while the car still
        # rolls; and a pilot cloned from labels the mask forbids learns nothing about what to do instead: at red
        # it crept over the line.)
        lowest = speed_index(v.target_speed[:, :c], speeds) == 0
        return torch.where((action == META_SLOWER) & lowest, META_IDLE, action)
