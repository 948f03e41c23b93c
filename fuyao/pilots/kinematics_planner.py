"""A model-predictive pilot that sees only highway-env's Kinematics observation.

`KinematicsPlanner` is the teacher of the `highway-v0` training preset. It reads nothing but the observation a
learned pilot reads (`[..., 5, 5]`: the ego's row, then the four nearest vehicles, highway-env's normalisation), so
a network can copy it exactly, and it drives highway-env's own `highway-v0` unchanged (`fuyao bench transfer
highway-v0 --pilot kinematics-planner`).

Each decision it scores every sequence of `horizon` meta actions (5^3 = 125 by default) by rolling a model of the
next seconds forward in `dt` steps, all sequences and all observations at once:

- the ego follows highway-env's MDPVehicle: FASTER and SLOWER move the target speed one step of `target_speeds`
  from the index nearest the current speed, the speed approaches its target with highway-env's time constant
  (`TAU_ACC` 0.6 s), and a lane change moves the ego's lateral position towards the target lane's centre
  (first order, `tau_lateral`);
- every other vehicle keeps its speed, and one already moving sideways goes on to the lane it is heading for;
- a sequence is dangerous where a box of the ego's (plus `margin_m` ahead and behind, `lateral_margin_m` to the
  sides) meets another's. Vehicles that were behind the ego in its own lane at the start are left out while the ego
  stays in that lane: they follow it by IDM and brake for it;
- at the end of the horizon the ego must be able to slow to the speed of whoever is ahead in its lane
  (`terminal_headway_s` per m/s of closing speed).

The cost of a sequence is `crash_cost` per dangerous step (earlier steps weigh more), minus the mean speed over
the horizon (m/s), plus `lane_change_cost` per lane change; the pilot takes the first action of the cheapest.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from fuyao.sim.config import ActionType, ConfigError, MapKind, ObservationType, SimConfig
from fuyao.sim.observe import HIGHWAY_ENV_LANE_WIDTH
from fuyao.sim.observe_grid import HIGHWAY_ENV_MAX_SPEED
from fuyao.sim.state import WorldState

# highway-env's meta actions, in DiscreteMetaAction's order.
LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER = range(5)

# highway-env's Kinematics normalisation, as `fuyao.sim.observe.highway_kinematics` writes it: x in [-5, 5] x
# MAX_SPEED, y in [-1, 1] x its 4 m lane width x lanes, vx and vy in [-2, 2] x MAX_SPEED.
X_RANGE_M = 5.0 * HIGHWAY_ENV_MAX_SPEED
V_RANGE = 2.0 * HIGHWAY_ENV_MAX_SPEED
# Tie-breaking cost per first action, indexed by action: IDLE < FASTER < SLOWER < LANE_LEFT < LANE_RIGHT.
TIE_BREAK = torch.tensor([3e-4, 0.0, 4e-4, 1e-4, 2e-4])


@dataclass(frozen=True)
class PlannerConfig:
    horizon: int = 3
    dt: float = 0.25
    decision_s: float = 1.0
    target_speeds: tuple[float, ...] = (20.0, 25.0, 30.0)
    lanes: int = 4
    lane_width_m: float = 4.0
    length_m: float = 5.0
    width_m: float = 2.0
    tau_speed: float = 0.6
    tau_lateral: float = 0.9
    margin_m: float = 2.0
    lateral_margin_m: float = 0.6
    terminal_headway_s: float = 1.2
    crash_cost: float = 100.0
    lane_change_cost: float = 0.3

    @staticmethod
    def of(sim: SimConfig, **changes) -> PlannerConfig:
        """The planner for a world: highway-env's Kinematics observation (5 features) and meta actions on a
        straight highway; its target speeds, lanes, lane width and decision period are the world's."""
        if sim.observation is not ObservationType.HIGHWAY_KINEMATICS:
            raise ConfigError(
                f"kinematics-planner: sim.observation is {sim.observation.value!r}; it reads only 'highway-kinematics'"
            )
        if sim.action is not ActionType.META:
            raise ConfigError(f"kinematics-planner: sim.action is {sim.action.value!r}; it chooses only 'meta' actions")
        if sim.map is not MapKind.HIGHWAY:
            raise ConfigError(f"kinematics-planner: sim.map is {sim.map.value!r}; it drives only 'highway' maps")
        return PlannerConfig(
            decision_s=1.0 / sim.decision_hz,
            target_speeds=tuple(sim.target_speeds),
            lanes=sim.road.lanes,
            lane_width_m=sim.road.lane_width_m,
            **changes,
        )


class KinematicsPlanner:
    """Batched: `act(obs)` takes `[..., 5, 5]` Kinematics observations and returns `[...]` int64 meta actions."""

    def __init__(self, world=None, cfg: PlannerConfig | None = None) -> None:
        """`world`: a `World` whose spaces the planner checks and takes its road from (a pilot factory, as
        `RuleBasedPilot` is); `cfg`: the planner's settings outright (highway-env's `highway-v0` by default)."""
        if cfg is None:
            cfg = PlannerConfig.of(world.cfg) if world is not None else PlannerConfig()
        self.cfg = cfg
        seqs = torch.tensor(list(itertools.product(range(5), repeat=cfg.horizon)), dtype=torch.int64)
        self._seqs = seqs  # [S, H]
        self._constants: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    def _on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The sequences, target speeds and each sequence's tie-break, copied to `device` once (teachers run
        every decision of a rollout)."""
        if device not in self._constants:
            seqs = self._seqs.to(device)
            speeds = torch.tensor(self.cfg.target_speeds, device=device)
            self._constants[device] = (seqs, speeds, TIE_BREAK.to(device)[seqs[:, 0]])
        return self._constants[device]

    def act(self, obs: torch.Tensor, state: WorldState | None = None) -> torch.Tensor:
        return self.action_costs(obs).argmin(-1).reshape(obs.shape[:-2])

    def teach(self, obs: torch.Tensor, state: WorldState | None = None, temperature: float = 1.0):
        """`(actions [...], logits [..., 5])`: the action it takes and `-(cost - least cost) / temperature` of
        each first action, for imitation against the whole ranking (`BCConfig.soft_temperature`)."""
        cost = self.action_costs(obs)
        logits = -(cost - cost.amin(-1, keepdim=True)) / temperature
        return cost.argmin(-1).reshape(obs.shape[:-2]), logits.reshape(*obs.shape[:-2], 5)

    def action_costs(self, obs: torch.Tensor) -> torch.Tensor:
        """`[N, 5]`: per first action, the least cost of the sequences that begin with it."""
        cost = self.costs(obs)  # [N, S], sequences in lexicographic order: first action major
        return cost.view(cost.shape[0], 5, -1).amin(-1)

    def costs(self, obs: torch.Tensor) -> torch.Tensor:
        """`[N, S]`: the cost of every action sequence for each of the N flattened observations."""
        cfg = self.cfg
        o = obs.reshape(-1, obs.shape[-2], obs.shape[-1]).float()
        dev = o.device
        seqs, speeds, tie_break = self._on(dev)  # [S, H], [K], [S]
        S, H = seqs.shape
        road_half = HIGHWAY_ENV_LANE_WIDTH * cfg.lanes
        k_max = len(cfg.target_speeds) - 1
        step = speeds[1] - speeds[0]

        # The ego (absolute y and velocity in row 0).
        ego_y = o[:, 0, 2] * road_half  # [N]
        ego_vx = o[:, 0, 3] * V_RANGE
        ego_vy = o[:, 0, 4] * V_RANGE
        lane_now = torch.round(ego_y / cfg.lane_width_m).clamp(0, cfg.lanes - 1)
        lane_target = torch.round((ego_y + cfg.tau_speed * ego_vy) / cfg.lane_width_m).clamp(0, cfg.lanes - 1)

        # The others, relative to the ego.
        present = o[:, 1:, 0] > 0.5  # [N, K]
        ox = o[:, 1:, 1] * X_RANGE_M
        oy = ego_y[:, None] + o[:, 1:, 2] * road_half
        ovx = ego_vx[:, None] + o[:, 1:, 3] * V_RANGE
        ovy = o[:, 1:, 4] * V_RANGE
        o_lane_target = torch.round((oy + cfg.tau_speed * ovy) / cfg.lane_width_m).clamp(0, cfg.lanes - 1)
        o_target_y = o_lane_target * cfg.lane_width_m
        # Behind the ego in its own lane at the start: it follows the ego (IDM) as long as the ego stays there.
        follower = present & (ox < 0) & (torch.round(oy / cfg.lane_width_m) == lane_now[:, None])

        N = o.shape[0]
        steps_per_decision = round(cfg.decision_s / cfg.dt)
        x = torch.zeros(N, S, device=dev)
        v = ego_vx[:, None].expand(N, S).clone()
        y = ego_y[:, None].expand(N, S).clone()
        lane = lane_target[:, None].expand(N, S).clone()
        left_lane = torch.zeros(N, S, dtype=torch.bool, device=dev)  # the ego has left its lane of the start
        danger = torch.zeros(N, S, device=dev)
        speed_sum = torch.zeros(N, S, device=dev)
        lane_changes = torch.zeros(N, S, device=dev)
        invalid = torch.zeros(N, S, device=dev)
        a_speed = math.exp(-cfg.dt / cfg.tau_speed)
        a_lat = math.exp(-cfg.dt / cfg.tau_lateral)
        t = 0.0
        n_steps = H * steps_per_decision
        for i in range(n_steps):
            if i % steps_per_decision == 0:
                a = seqs[:, i // steps_per_decision][None, :].expand(N, S)
                k_cur = torch.round((v - speeds[0]) / step).clamp(0, k_max)
                if i == 0:
                    k = k_cur  # the target speed index, from the speed (highway-env's speed_to_index)
                k = torch.where(a == FASTER, (k_cur + 1).clamp(max=k_max), k)
                k = torch.where(a == SLOWER, (k_cur - 1).clamp(min=0), k)
                new_lane = lane + (a == LANE_RIGHT).float() - (a == LANE_LEFT).float()
                # What the action mask refuses (a lane that is not there, a speed step past either end) is never
                # planned: in highway-env it would be an IDLE, and a student copying it would be masked.
                noop = (new_lane < 0) | (new_lane > cfg.lanes - 1)
                noop = noop | ((a == FASTER) & (k_cur >= k_max)) | ((a == SLOWER) & (k_cur <= 0))
                invalid = invalid + noop.float()
                new_lane = new_lane.clamp(0, cfg.lanes - 1)
                lane_changes = lane_changes + (new_lane != lane).float()
                lane = new_lane
            target_v = speeds[0] + k * step
            v_next = target_v + (v - target_v) * a_speed
            x = x + 0.5 * (v + v_next) * cfg.dt
            v = v_next
            y = lane * cfg.lane_width_m + (y - lane * cfg.lane_width_m) * a_lat
            t += cfg.dt
            speed_sum = speed_sum + v
            left_lane = left_lane | (torch.round(y / cfg.lane_width_m) != lane_now[:, None])
            # Others at this time.
            oxt = ox + ovx * t  # [N, K]
            oyt = o_target_y + (oy - o_target_y) * (math.exp(-t / cfg.tau_lateral))
            dx = oxt[:, None, :] - x[:, :, None]  # [N, S, K]
            dy = (oyt[:, None, :] - y[:, :, None]).abs()
            hit = (dx.abs() < cfg.length_m + cfg.margin_m) & (dy < cfg.width_m + cfg.lateral_margin_m)
            ignore = follower[:, None, :] & ~left_lane[:, :, None]
            hit = hit & present[:, None, :] & ~ignore
            weight = 1.0 + (n_steps - i) / n_steps
            danger = danger + weight * hit.any(-1).float()

        # Terminal (the others where the last step left them): room to slow to the speed of whoever is ahead in the
        # final lane.
        same = (oyt[:, None, :] - lane[:, :, None] * cfg.lane_width_m).abs() < cfg.lane_width_m / 2
        ahead = present[:, None, :] & same & (oxt[:, None, :] > x[:, :, None])
        gap = oxt[:, None, :] - x[:, :, None] - cfg.length_m
        closing = (v[:, :, None] - ovx[:, None, :]).clamp(min=0)
        short = ahead & (gap < cfg.margin_m + cfg.terminal_headway_s * closing)
        danger = danger + short.any(-1).float()

        mean_speed = speed_sum / n_steps
        cost = cfg.crash_cost * danger - mean_speed + cfg.lane_change_cost * lane_changes + 10.0 * invalid
        # Equal costs go to the calmer first action (IDLE, then FASTER, SLOWER, LANE_LEFT, LANE_RIGHT), so that the
        # teacher is one function of the observation.
        return cost + tie_break
