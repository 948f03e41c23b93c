"""Reward terms per controlled vehicle and decision, and their weighted sum (`RewardConfig`)."""

from __future__ import annotations

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.sim.config import RewardConfig, SimConfig
from fuyao.sim.geometry import lane_attr
from fuyao.sim.state import WorldState


def reward_terms(
    road: RoadMap,
    state: WorldState,
    cfg: SimConfig,
    progress_m: torch.Tensor,
    events: dict[str, torch.Tensor],
    jerk_max: torch.Tensor,
    lat_accel_max: torch.Tensor,
    lane_changes: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Unweighted terms `[W, C]` float32. Progress is along the route, not raw speed."""
    v = state.vehicles
    c = cfg.controlled
    lane = v.lane[:, :c]
    forward_speed = v.speed[:, :c] * torch.cos(v.psi[:, :c])
    lo, hi = cfg.reward.speed_range
    from_left = lane_attr(road.lane_from_left, road, state.map_id, lane) + v.lc_dir[:, :c]
    section = lane_attr(road.lane_section_lanes, road, state.map_id, lane)
    return {
        "progress": progress_m / cfg.reward.progress_scale_m,
        "collision": events["collided"].float(),
        "offroad": events["offroad"].float(),
        "route_failure": events["route_failure"].float(),
        "arrived": events["arrived"].float(),
        "red_light": events["red_light"].float(),
        "comfort": (jerk_max / 10.0 + lat_accel_max / 4.0),
        "lane_change": lane_changes,
        "high_speed": ((forward_speed - lo) / (hi - lo)).clamp(0.0, 1.0),
        "right_lane": from_left.clamp(min=0).float() / (section - 1).clamp(min=1).float(),
        "on_road": (~events["offroad"]).float(),
    }


def total_reward(terms: dict[str, torch.Tensor], w: RewardConfig) -> torch.Tensor:
    r = (
        w.progress * terms["progress"]
        + w.collision * terms["collision"]
        + w.offroad * terms["offroad"]
        + w.route_failure * terms["route_failure"]
        + w.arrived * terms["arrived"]
        + w.red_light * terms["red_light"]
        + w.comfort * terms["comfort"]
        + w.lane_change * terms["lane_change"]
        + w.high_speed * terms["high_speed"]
        + w.right_lane * terms["right_lane"]
    )
    if w.normalize:
        # highway-env: lmap(reward, [collision, high_speed + right_lane], [0, 1]) * on_road
        lo, hi = w.collision, w.high_speed + w.right_lane
        r = (r - lo) / (hi - lo) * terms["on_road"]
    return r
