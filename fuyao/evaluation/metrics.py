"""Closed-loop driving metrics from the per-step terms the world emits (`StepResult.info`), one definition shared
by evaluation and training.

Three layers, all pure tensor code on the step's device (no host transfer until `MetricAccumulator.summary`):

    sums = EpisodeSums.zeros(E, device)                    # running per-episode sums, [E] each
    sums = fold(sums, info, mask, decision_s)              # after every decision (info tensors [W, C] or [E])
    m = episode_metrics(sums)                              # per-episode metrics [E] (and the score, `score.py`)
    summarize(m, episodes_mask)                            # -> dict[str, Tensor []] over the chosen episodes

`E` counts episodes of controlled vehicles: `info` tensors `[W, C]` are flattened world-major (`e = w * C + c`).

For training (episodes end at different steps and worlds auto-reset):

    stats = MetricAccumulator(num=W * C, device=device, decision_s=1 / cfg.decision_hz)
    for t in range(T):                                     # inside the rollout; never syncs with the host
        result = world.step(state, action)
        stats.update(result.info, result.terminated | result.truncated)
    log(stats.summary())                                   # one host transfer; episodes finished since last call

`update(info, done, mask=None)`: folds the step's terms into the running sums where `info["active"]` (and
`mask`) hold; where `done [E]` the episode is finished: its metrics are added to the totals and its sums reset.
`summary() -> dict[str, float]`: the `SUMMARY_KEYS` over episodes finished since the last call, plus
`episodes` (their count); every value is NaN when no episode finished.

Per-episode metrics (`episode_metrics`), `[E]` float32:

    collision, collision_at_fault, offroad, route_failure, arrived   0/1: happened at any decision
    progress_m            route cost-to-go removed (m; lane changes the route needs count as distance)
    route_length_m        cost-to-go at the episode's start
    route_completion      progress_m / route_length_m in [0, 1]; 1 if arrived
    reference_m           the speed limit driven for the episode's duration, capped by the route (m)
    progress_ratio        progress_m / reference_m in [0, 1]; 1 if arrived (the score's progress term)
    mean_speed_mps, overspeed_mean_mps   time averages at decision ends (overspeed: max(0, speed - limit))
    speed_limit_compliance               nuPlan's 1 - overspeed_mean / 2.23 m/s, floored at 0
    lon_accel_max, lat_accel_max, jerk_max, yaw_rate_max   largest magnitudes over every tick (m/s^2, m/s^3, rad/s)
    comfort               fraction of decisions with every comfort bound held (`score.comfortable`)
    min_ttc_s             smallest time-to-collision with the leader at decision ends (1000 = never closing)
    ttc_ok                1 if min_ttc_s >= 0.95 s
    lane_changes, lane_changes_per_km   count, and per km of progress (per 1 m when progress < 1 m)
    wrong_way_max_m       most metres driven against the lane direction in one decision
    red_light_runs        decisions in which the ego entered against a red light
    duration_s            decisions x decision_s
    score and its parts   see `score.closed_loop_score`
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from fuyao.evaluation.score import WRONG_WAY_OK_M, closed_loop_score, comfortable, speed_limit_score

NEVER_CLOSING_TTC_S = 1.0e3  # s, the world's TTC when the ego does not close in on its leader

# The info terms `fold` reads; `World.step` emits them all.
REQUIRED_TERMS = (
    "active",
    "collision",
    "collision_at_fault",
    "offroad",
    "route_failure",
    "arrived",
    "progress_m",
    "cost_to_go_m",
    "speed",
    "speed_limit",
    "lon_accel_max",
    "lat_accel_max",
    "jerk_max",
    "yaw_rate_max",
    "lane_changes",
    "ttc_s",
    "wrong_way",
    "red_light",
)


@dataclass(frozen=True)
class EpisodeSums:
    """Running per-episode sums, `[E]` float32 each (events as 0/1)."""

    steps: torch.Tensor  # decisions taken in the episode
    collision: torch.Tensor  # 0/1
    collision_at_fault: torch.Tensor  # 0/1
    offroad: torch.Tensor  # 0/1
    route_failure: torch.Tensor  # 0/1
    arrived: torch.Tensor  # 0/1
    progress_m: torch.Tensor  # m
    route_length_m: torch.Tensor  # m, cost-to-go before the first decision
    reference_m: torch.Tensor  # m, sum of speed limit x decision_s
    speed_sum: torch.Tensor  # m/s summed over decisions
    overspeed_sum: torch.Tensor  # m/s summed over decisions
    comfortable_steps: torch.Tensor  # decisions with every comfort bound held
    lon_accel_max: torch.Tensor  # m/s^2
    lat_accel_max: torch.Tensor  # m/s^2
    jerk_max: torch.Tensor  # m/s^3
    yaw_rate_max: torch.Tensor  # rad/s
    min_ttc_s: torch.Tensor  # s
    lane_changes: torch.Tensor  # count
    wrong_way_max_m: torch.Tensor  # m in one decision
    red_light_runs: torch.Tensor  # count
    decision_s: float = 1.0  # s per decision

    @staticmethod
    def zeros(num: int, device: torch.device | str = "cpu", decision_s: float = 1.0) -> EpisodeSums:
        """Empty sums for `num` episodes; `decision_s` is the decision period (1 / `SimConfig.decision_hz`)."""
        if not decision_s > 0:
            raise ValueError(f"EpisodeSums.decision_s: got {decision_s!r}; allowed: > 0 s")
        fields = {
            f.name: torch.zeros(num, device=device) for f in dataclasses.fields(EpisodeSums) if f.name != "decision_s"
        }
        fields["min_ttc_s"] = torch.full((num,), NEVER_CLOSING_TTC_S, device=device)
        return EpisodeSums(**fields, decision_s=float(decision_s))

    def reset(self, where: torch.Tensor) -> EpisodeSums:
        """These sums with the episodes `where [E]` emptied."""
        empty = EpisodeSums.zeros(self.steps.shape[0], self.steps.device, self.decision_s)
        return _select(where, empty, self)


def _tensor_fields(sums: EpisodeSums) -> list[str]:
    return [f.name for f in dataclasses.fields(sums) if f.name != "decision_s"]


def _select(where: torch.Tensor, a: EpisodeSums, b: EpisodeSums) -> EpisodeSums:
    return dataclasses.replace(b, **{k: torch.where(where, getattr(a, k), getattr(b, k)) for k in _tensor_fields(a)})


def check_info(info: dict[str, torch.Tensor]) -> None:
    """Raise a clear error if `info` lacks a term the metrics need."""
    missing = [k for k in REQUIRED_TERMS if k not in info]
    if missing:
        raise KeyError(f"metrics: info lacks {missing}; the world's StepResult.info has them all ({REQUIRED_TERMS})")


def fold(sums: EpisodeSums, info: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> EpisodeSums:
    """Fold one decision's terms into the running sums where `info["active"]` (and `mask`, any shape with E
    elements) hold. `info` tensors are `[W, C]` or `[E]`."""

    def flat(name: str) -> torch.Tensor:
        return info[name].reshape(-1)

    on = flat("active").bool()
    if mask is not None:
        on = on & mask.reshape(-1).bool()
    dt = sums.decision_s
    speed, limit = flat("speed").float(), flat("speed_limit").float()
    lon, lat, jerk, yaw = (
        flat(k).float().abs() for k in ("lon_accel_max", "lat_accel_max", "jerk_max", "yaw_rate_max")
    )
    progress = flat("progress_m").float()
    first = sums.steps == 0

    def add(old: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return torch.where(on, old + value, old)

    def either(old: torch.Tensor, name: str) -> torch.Tensor:
        return torch.where(on, torch.maximum(old, flat(name).float()), old)

    def most(old: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return torch.where(on, torch.maximum(old, value), old)

    return EpisodeSums(
        steps=add(sums.steps, 1.0),
        collision=either(sums.collision, "collision"),
        collision_at_fault=either(sums.collision_at_fault, "collision_at_fault"),
        offroad=either(sums.offroad, "offroad"),
        route_failure=either(sums.route_failure, "route_failure"),
        arrived=either(sums.arrived, "arrived"),
        progress_m=add(sums.progress_m, progress),
        route_length_m=torch.where(on & first, progress + flat("cost_to_go_m").float(), sums.route_length_m),
        reference_m=add(sums.reference_m, limit * dt),
        speed_sum=add(sums.speed_sum, speed),
        overspeed_sum=add(sums.overspeed_sum, (speed - limit).clamp(min=0.0)),
        comfortable_steps=add(sums.comfortable_steps, comfortable(lon, lat, jerk, yaw).float()),
        lon_accel_max=most(sums.lon_accel_max, lon),
        lat_accel_max=most(sums.lat_accel_max, lat),
        jerk_max=most(sums.jerk_max, jerk),
        yaw_rate_max=most(sums.yaw_rate_max, yaw),
        min_ttc_s=torch.where(on, torch.minimum(sums.min_ttc_s, flat("ttc_s").float()), sums.min_ttc_s),
        lane_changes=add(sums.lane_changes, flat("lane_changes").float()),
        wrong_way_max_m=most(sums.wrong_way_max_m, flat("wrong_way").float() * speed * dt),
        red_light_runs=add(sums.red_light_runs, flat("red_light").float()),
        decision_s=dt,
    )


def episode_metrics(sums: EpisodeSums) -> dict[str, torch.Tensor]:
    """Per-episode metrics `[E]` float32 (see the module docstring) and the closed-loop score's parts."""
    steps = sums.steps.clamp(min=1.0)
    arrived = sums.arrived > 0
    route = sums.route_length_m.clamp(min=1e-3)
    completion = torch.where(arrived, 1.0, (sums.progress_m / route).clamp(0.0, 1.0))
    reference = torch.minimum(sums.reference_m, sums.route_length_m).clamp(min=1e-3)
    ratio = torch.where(arrived, 1.0, (sums.progress_m / reference).clamp(0.0, 1.0))
    overspeed = sums.overspeed_sum / steps
    m = {
        "collision": sums.collision,
        "collision_at_fault": sums.collision_at_fault,
        "offroad": sums.offroad,
        "route_failure": sums.route_failure,
        "arrived": sums.arrived,
        "progress_m": sums.progress_m,
        "route_length_m": sums.route_length_m,
        "route_completion": completion,
        "reference_m": reference,
        "progress_ratio": ratio,
        "mean_speed_mps": sums.speed_sum / steps,
        "overspeed_mean_mps": overspeed,
        "speed_limit_compliance": speed_limit_score(overspeed),
        "lon_accel_max": sums.lon_accel_max,
        "lat_accel_max": sums.lat_accel_max,
        "jerk_max": sums.jerk_max,
        "yaw_rate_max": sums.yaw_rate_max,
        "comfort": sums.comfortable_steps / steps,
        "min_ttc_s": sums.min_ttc_s,
        "lane_changes": sums.lane_changes,
        "lane_changes_per_km": 1000.0 * sums.lane_changes / sums.progress_m.clamp(min=1.0),
        "wrong_way_max_m": sums.wrong_way_max_m,
        "red_light_runs": sums.red_light_runs,
        "duration_s": sums.steps * sums.decision_s,
    }
    m.update(closed_loop_score(m))
    return m


# Summary name -> per-episode metric averaged over episodes. `lane_changes_per_km` and `red_light_runs_per_km`
# are ratios of sums (total count over total progress), not averages of per-episode ratios.
SUMMARY_MEANS: dict[str, str] = {
    "score": "score",
    "collision_rate": "collision",
    "at_fault_collision_rate": "collision_at_fault",
    "offroad_rate": "offroad",
    "route_failure_rate": "route_failure",
    "arrival_rate": "arrived",
    "route_completion": "route_completion",
    "progress_m": "progress_m",
    "progress_ratio": "progress_ratio",
    "mean_speed_mps": "mean_speed_mps",
    "speed_limit_compliance": "speed_limit_compliance",
    "ttc_ok": "ttc_ok",
    "comfort": "comfort",
    "lon_accel_max": "lon_accel_max",
    "lat_accel_max": "lat_accel_max",
    "jerk_max": "jerk_max",
    "yaw_rate_max": "yaw_rate_max",
    "wrong_way_rate": "wrong_way_max_m",  # share of episodes with >= WRONG_WAY_OK_M against traffic
    "multiplier_making_progress": "multiplier_making_progress",
    "multiplier_driving_direction": "multiplier_driving_direction",
    "duration_s": "duration_s",
}
SUMMARY_KEYS = (*SUMMARY_MEANS, "lane_changes_per_km", "red_light_runs_per_km", "episodes")
SUM_EXTRAS = ("lane_changes", "red_light_runs", "progress_km", "episodes")


def summary_sums(m: dict[str, torch.Tensor], include: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Sums over the episodes `include [E]` (all if None) from which `finish_summary` makes the summary: a
    0-dim tensor per `SUMMARY_MEANS` name, plus `lane_changes`, `red_light_runs`, `progress_km`, `episodes`."""
    w = torch.ones_like(m["score"]) if include is None else include.reshape(-1).float()
    sums = {}
    for name, key in SUMMARY_MEANS.items():
        value = (m[key] >= WRONG_WAY_OK_M).float() if name == "wrong_way_rate" else m[key]
        sums[name] = (value * w).sum()
    sums["lane_changes"] = (m["lane_changes"] * w).sum()
    sums["red_light_runs"] = (m["red_light_runs"] * w).sum()
    sums["progress_km"] = (m["progress_m"].clamp(min=0.0) * w).sum() / 1000.0
    sums["episodes"] = w.sum()
    return sums


def finish_summary(sums: dict[str, float]) -> dict[str, float]:
    """Host-side: averages from `summary_sums` (already moved to the host as floats)."""
    n = sums["episodes"]
    nan = float("nan")
    out = {name: (sums[name] / n if n > 0 else nan) for name in SUMMARY_MEANS}
    km = sums["progress_km"]
    out["lane_changes_per_km"] = sums["lane_changes"] / km if km > 0 else nan
    out["red_light_runs_per_km"] = sums["red_light_runs"] / km if km > 0 else nan
    out["episodes"] = int(round(n))
    return out


def summarize(m: dict[str, torch.Tensor], include: torch.Tensor | None = None) -> dict[str, float]:
    """The summary (`SUMMARY_KEYS`) of per-episode metrics `m` over the episodes `include [E]` (all if None).
    One host transfer."""
    sums = summary_sums(m, include)
    names = list(sums)
    values = torch.stack([sums[k].float() for k in names]).double().cpu().tolist()
    return finish_summary(dict(zip(names, values)))


class MetricAccumulator:
    """Per-episode metrics accumulated on the device during rollouts; `summary()` reduces the episodes finished
    since the previous call with one host transfer. See the module docstring for the protocol."""

    def __init__(self, num: int, device: torch.device | str = "cpu", decision_s: float = 1.0) -> None:
        if not isinstance(num, int) or num < 1:
            raise ValueError(f"MetricAccumulator.num: got {num!r}; allowed: an integer >= 1 (worlds x controlled)")
        self.num = num
        self.device = torch.device(device)
        self.sums = EpisodeSums.zeros(num, self.device, decision_s)
        self._totals: dict[str, torch.Tensor] | None = None

    def update(self, info: dict[str, torch.Tensor], done: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Fold one decision (`info` tensors `[W, C]` or `[E]`); finish the episodes where `done` (any shape
        with E elements, bool: terminated | truncated)."""
        self.sums = fold(self.sums, info, mask)
        finished = done.reshape(-1).bool() & (self.sums.steps > 0)
        sums = summary_sums(episode_metrics(self.sums), finished)
        self._totals = sums if self._totals is None else {k: self._totals[k] + v for k, v in sums.items()}
        self.sums = self.sums.reset(finished)

    def summary(self) -> dict[str, float]:
        """`SUMMARY_KEYS` over the episodes finished since the last call (NaN and `episodes` 0 if none)."""
        if self._totals is None:
            return finish_summary(dict.fromkeys((*SUMMARY_MEANS, *SUM_EXTRAS), 0.0))
        names = list(self._totals)
        values = torch.stack([self._totals[k].float() for k in names]).double().cpu().tolist()
        self._totals = None
        return finish_summary(dict(zip(names, values)))
