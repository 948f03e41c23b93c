"""Reward terms per controlled vehicle and decision, and their weighted sum (`RewardConfig`).

highway-env's scenarios read some terms differently (`RewardShape`): HighwayEnv scores the forward speed and the
target lane over the number of lanes, MergeEnv the plain speed and the current lane index, ExitEnv the speed
(clipped) and the target lane; each normalises in its own way.
"""

from __future__ import annotations

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.sim.config import RewardConfig, RewardShape, SimConfig
from fuyao.sim.geometry import lane_attr
from fuyao.sim.state import WorldState

RAMP_KIND = 1  # `RoadMap.lane_kind` of ramp lanes

# Terms with a weight of the same name in `RewardConfig`, summed by `total_reward`.
WEIGHTED_TERMS = (
    "progress",
    "collision",
    "offroad",
    "route_failure",
    "arrived",
    "red_light",
    "comfort",
    "lane_change",
    "high_speed",
    "right_lane",
    "merging_speed",
    "goal",
    "lane_change_command",
)


def merging_speed(road: RoadMap, state: WorldState) -> torch.Tensor:
    """MergeEnv's altruistic term `[W]`: the sum over moving-minded vehicles on an acceleration lane (a ramp lane
    beside the road that ends: the merging lane) of (target speed - speed) / target speed. A vehicle whose target
    speed is 0 (the obstacle at the lane's end) is not counted, as highway-env counts vehicles, not objects."""
    v = state.vehicles
    m = state.map_id.unsqueeze(1)
    merging_lane = (
        (lane_attr(road.lane_kind, road, m, v.lane) == RAMP_KIND)
        & (lane_attr(road.lane_left, road, m, v.lane) >= 0)
        & lane_attr(road.lane_leads_to_dead_end, road, m, v.lane)
    )
    counted = v.present & merging_lane & (v.target_speed > 0.0)
    deficit = (v.target_speed - v.speed) / v.target_speed.clamp(min=1.0e-3)
    return torch.where(counted, deficit, 0.0).sum(dim=1)


def reward_terms(
    road: RoadMap,
    state: WorldState,
    cfg: SimConfig,
    progress_m: torch.Tensor,
    events: dict[str, torch.Tensor],
    jerk_max: torch.Tensor,
    lat_accel_max: torch.Tensor,
    lane_changes: torch.Tensor,
    lane_change_command: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Unweighted terms `[W, C]` float32. Progress is along the route, not raw speed. `lane_change_command`: 1
    where the decision's meta action asked for a lane change (None: 0)."""
    v = state.vehicles
    c = cfg.controlled
    m = state.map_id
    lane = v.lane[:, :c]
    shape = cfg.reward.shape
    lo, hi = cfg.reward.speed_range
    from_left = lane_attr(road.lane_from_left, road, m, lane)
    target_from_left = from_left + v.lc_dir[:, :c]
    section = lane_attr(road.lane_section_lanes, road, m, lane)
    if shape is RewardShape.HIGHWAY:
        high_speed = ((v.speed[:, :c] * torch.cos(v.psi[:, :c]) - lo) / (hi - lo)).clamp(0.0, 1.0)
        right_lane = target_from_left.clamp(min=0).float() / (section - 1).clamp(min=1).float()
    elif shape is RewardShape.MERGE:
        high_speed = (v.speed[:, :c] - lo) / (hi - lo)
        right_lane = from_left.float()
    else:
        high_speed = ((v.speed[:, :c] - lo) / (hi - lo)).clamp(0.0, 1.0)
        right_lane = target_from_left.clamp(min=0).float()
    target_lane = torch.where(
        v.lc_dir[:, :c] < 0,
        lane_attr(road.lane_left, road, m, lane),
        torch.where(v.lc_dir[:, :c] > 0, lane_attr(road.lane_right, road, m, lane), lane),
    )
    goal = lane_attr(road.lane_goal, road, m, torch.where(target_lane >= 0, target_lane, lane))
    command = lane_change_command if lane_change_command is not None else torch.zeros_like(progress_m)
    return {
        "progress": progress_m / cfg.reward.progress_scale_m,
        "collision": events["collided"].float(),
        "offroad": events["offroad"].float(),
        "route_failure": events["route_failure"].float(),
        "arrived": events["arrived"].float(),
        "red_light": events["red_light"].float(),
        "comfort": (jerk_max / 10.0 + lat_accel_max / 4.0),
        "lane_change": lane_changes,
        "high_speed": high_speed,
        "right_lane": right_lane,
        "merging_speed": merging_speed(road, state).unsqueeze(1).expand(-1, c),
        "goal": goal.float(),
        "lane_change_command": command,
        "on_road": (~events["offroad"]).float(),
    }


def total_reward(terms: dict[str, torch.Tensor], w: RewardConfig) -> torch.Tensor:
    """The weighted sum of `WEIGHTED_TERMS` (terms of weight 0 are not read), normalised as `w.shape` says when
    `w.normalize`."""
    r = torch.zeros_like(terms["collision"])
    for name in WEIGHTED_TERMS:
        weight = getattr(w, name)
        if weight:
            r = r + weight * terms[name]
    if not w.normalize:
        return r
    if w.shape is RewardShape.HIGHWAY:
        # highway-env: lmap(reward, [collision, high_speed + right_lane], [0, 1]) * on_road
        lo, hi = w.collision, w.high_speed + w.right_lane
        return (r - lo) / (hi - lo) * terms["on_road"]
    if w.shape is RewardShape.MERGE:
        # MergeEnv: lmap(reward, [collision + merging_speed, high_speed + right_lane], [0, 1])
        lo, hi = w.collision + w.merging_speed, w.high_speed + w.right_lane
        return (r - lo) / (hi - lo)
    # ExitEnv: clip(lmap(reward, [collision, goal], [0, 1]), 0, 1)
    lo, hi = w.collision, w.goal
    return ((r - lo) / (hi - lo)).clamp(0.0, 1.0)
