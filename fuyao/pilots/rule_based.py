"""The rule-based pilot: IDM + route-aware MOBIL, the same models that drive background traffic, acting on
controlled vehicles through the same action spaces a learned policy uses. The baseline to beat."""

from __future__ import annotations

import torch

from fuyao.sim import traffic
from fuyao.sim.config import ActionType
from fuyao.sim.geometry import change_ok, lane_attr, lane_point
from fuyao.sim.neighbours import surroundings
from fuyao.sim.state import WorldState
from fuyao.sim.step import META_FASTER, META_IDLE, META_LEFT, META_RIGHT, META_SLOWER, speed_index
from fuyao.sim.traffic import driver_params, effective_limit, following_accel, route_view
from fuyao.sim.world import World

BRAKE_THRESHOLD = -0.5  # m/s^2: IDM asks for more braking than this -> slow down
SPEED_UP_THRESHOLD = 0.3  # m/s^2: IDM allows this much acceleration -> speed up


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
        sur = surroundings(road, m, v.lane, v.s, v.length, v.speed, v.present, v.dest)
        params = driver_params(v, limit)
        route = route_view(road, m, v, sur)
        accel = following_accel(road, m, v, sur, params, route, state.signals)[:, :c]
        left_ok, right_ok = change_ok(road, m, v.lane, v.s)
        direction, _, _ = traffic.mobil_decision(sur, v.speed, v.length, params, params, route, left_ok, right_ok)
        changing = v.lc_dir != 0
        # Lane changes are reconsidered as often as background drivers reconsider theirs (`mobil_period_s`):
        # deciding at 10 Hz, MOBIL's choice flickers and the pilot weaves. At the highway's 1 Hz decisions
        # every decision is such a tick.
        reconsider = (state.ticks % cfg.mobil_every_ticks == 0).unsqueeze(1)
        direction = torch.where(changing | (v.speed <= 1.0) | ~reconsider, 0, direction)[:, :c]

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
        action = torch.where(accel < BRAKE_THRESHOLD, META_SLOWER, action)
        # Cruising above what the lane allows: slow down.
        too_fast = v.target_speed[:, :c] > desired + 1e-3
        action = torch.where(too_fast & (direction == 0), META_SLOWER, action)
        return action
