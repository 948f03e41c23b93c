"""One closed-loop score per episode, in the manner of nuPlan's closed-loop score (CLS).

    score = at_fault_collision x drivable_area x making_progress x driving_direction x traffic_light
            x (5 progress + 5 ttc + 4 speed_limit + 2 comfort) / 16

Multipliers (each 0, 0.5 or 1) gate the score; the weighted average grades the driving that is left. Every
threshold and weight is nuPlan's (`nuplan/planning/script/config/simulation/metric/` and the metric classes
in `nuplan/planning/metrics/evaluation_metrics/common/`), except where `docs/evaluation.md` says otherwise:

multipliers
    at_fault_collision   0 if the ego caused a collision (`collision_at_fault`), else 1. nuPlan gives 0.5 for a
                         collision with a static object only; Fuyao's highways have no static objects.
    drivable_area        0 if the ego ever left the paved lanes (`offroad`), else 1.
    making_progress      1 if `progress_ratio >= MIN_PROGRESS_RATIO` (0.2) and the route did not fail, else 0
                         (a missed exit leaves no way to the destination: no more progress can be made).
    traffic_light        0 if the ego ran a red light (its front bumper crossed a stop line on red), else 1: NAVSIM's
                         traffic-light compliance gate (nuPlan has none; highways have no signals, so 1 there).
    driving_direction    1 if the most the ego drove against its lane's direction in one decision is under
                         2 m, 0.5 if under 6 m, else 0 (nuPlan: the same distances over a 1 s window; Fuyao's
                         decisions are 1 s at the default 1 Hz).
weighted
    progress      5   `progress_ratio` in [0, 1] (nuPlan: ego progress over the expert's; Fuyao: over driving the
                      speed limit for the episode, capped by the route; see `metrics.episode_metrics`).
    ttc           5   1 if the smallest time-to-collision with the leader stayed >= `MIN_TTC_S` (0.95 s), else 0.
    speed_limit   4   max(0, 1 - mean overspeed / `MAX_OVERSPEED_MPS` (2.23 m/s)).
    comfort       2   the fraction of decisions in which every comfort bound held (nuPlan: 1 if all held over
                      the whole episode, else 0; see the docs for why Fuyao grades per decision).

All functions are pure and take per-episode metric tensors `[E]` (E episodes), on any device.
"""

from __future__ import annotations

import torch

# Multiplier thresholds.
MIN_PROGRESS_RATIO = 0.2  # nuPlan ego_is_making_progress: min_progress_threshold
WRONG_WAY_OK_M = 2.0  # m against the lane's direction within one decision: full marks (nuPlan 2 m)
WRONG_WAY_HALF_M = 6.0  # m: half marks below this, zero above (nuPlan 6 m)

# Weighted terms.
MIN_TTC_S = 0.95  # s, nuPlan time_to_collision_within_bound: least_min_ttc
MAX_OVERSPEED_MPS = 2.23  # m/s, nuPlan speed_limit_compliance: max_overspeed_value_threshold
WEIGHTS: dict[str, float] = {"progress": 5.0, "ttc": 5.0, "speed_limit": 4.0, "comfort": 2.0}

# Comfort bounds (nuPlan ego_is_comfortable and its sub-metrics), magnitudes.
MAX_LON_ACCEL = 4.89  # m/s^2 (nuPlan: -4.05 to 2.40 m/s^2; Fuyao bounds |a| by nuPlan's larger lateral figure)
MAX_LAT_ACCEL = 4.89  # m/s^2
MAX_JERK = 8.37  # m/s^3, nuPlan max_abs_mag_jerk
MAX_YAW_RATE = 0.95  # rad/s, nuPlan max_abs_yaw_rate


def comfortable(
    lon_accel: torch.Tensor, lat_accel: torch.Tensor, jerk: torch.Tensor, yaw_rate: torch.Tensor
) -> torch.Tensor:
    """Whether every comfort bound held. Inputs are magnitudes of any matching shape (m/s^2, m/s^2, m/s^3,
    rad/s); returns bool of that shape."""
    return (lon_accel <= MAX_LON_ACCEL) & (lat_accel <= MAX_LAT_ACCEL) & (jerk <= MAX_JERK) & (yaw_rate <= MAX_YAW_RATE)


def driving_direction_multiplier(wrong_way_max_m: torch.Tensor) -> torch.Tensor:
    """`[E]` float32 in {0, 0.5, 1} from the most metres driven against the lane's direction in one decision."""
    ok = wrong_way_max_m < WRONG_WAY_OK_M
    half = wrong_way_max_m < WRONG_WAY_HALF_M
    return torch.where(ok, 1.0, torch.where(half, 0.5, 0.0))


def speed_limit_score(overspeed_mean_mps: torch.Tensor) -> torch.Tensor:
    """`[E]` in [0, 1]: nuPlan's speed_limit_compliance, 1 - (time-averaged overspeed) / 2.23 m/s, floored at 0."""
    return (1.0 - overspeed_mean_mps / MAX_OVERSPEED_MPS).clamp(min=0.0)


def closed_loop_score(m: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The multipliers, the weighted terms and the score of each episode.

    `m` holds per-episode metrics `[E]` (as `metrics.episode_metrics` returns them): `collision_at_fault`,
    `offroad`, `route_failure` (0/1), `progress_ratio`, `wrong_way_max_m`, `min_ttc_s`, `overspeed_mean_mps`, `comfort`.
    Returns `[E]` float32 tensors: `multiplier_at_fault_collision`, `multiplier_drivable_area`,
    `multiplier_making_progress`, `multiplier_driving_direction`, `multiplier_traffic_light`, `ttc_ok`, `speed_limit_compliance`,
    `weighted_average` and `score`, all in [0, 1].
    """
    no_fault = 1.0 - m["collision_at_fault"].float()
    obeys_lights = (m["red_light_runs"] < 0.5).float() if "red_light_runs" in m else torch.ones_like(no_fault)
    on_road = 1.0 - m["offroad"].float()
    progressing = ((m["progress_ratio"] >= MIN_PROGRESS_RATIO) & (m["route_failure"] < 0.5)).float()
    direction = driving_direction_multiplier(m["wrong_way_max_m"])
    ttc_ok = (m["min_ttc_s"] >= MIN_TTC_S).float()
    speed = speed_limit_score(m["overspeed_mean_mps"])
    terms = {"progress": m["progress_ratio"], "ttc": ttc_ok, "speed_limit": speed, "comfort": m["comfort"]}
    weighted = sum(WEIGHTS[k] * terms[k].float() for k in WEIGHTS) / sum(WEIGHTS.values())
    return {
        "multiplier_at_fault_collision": no_fault,
        "multiplier_drivable_area": on_road,
        "multiplier_making_progress": progressing,
        "multiplier_driving_direction": direction,
        "multiplier_traffic_light": obeys_lights,
        "ttc_ok": ttc_ok,
        "speed_limit_compliance": speed,
        "weighted_average": weighted,
        "score": no_fault * on_road * progressing * direction * obeys_lights * weighted,
    }
