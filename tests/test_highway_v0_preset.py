"""The `highway-v0` training preset's incentives (the reason its pilot once collapsed to FASTER at every decision).

Under highway-env's own reward (normalised to [0, 1] per decision, a crash ending the episode) and its gamma 0.8, a
crash costs about four decisions of reward, so pressing FASTER paid as long as the crash risk stayed under a few
percent per decision; PPO found exactly that (94 % crashes in evaluation). These tests compute discounted returns of
simple driving styles under the preset's reward and gamma, and fail for the old preset.
"""

from __future__ import annotations

import torch

from fuyao.presets import PRESETS
from fuyao.sim.config import RewardConfig
from fuyao.sim.reward import total_reward
from fuyao.train.config import TRAIN_PRESETS

DECISIONS = 40  # highway-v0's episode


def _reward(w: RewardConfig, high_speed: float, right_lane: float, crashed: bool) -> float:
    one = torch.ones(1)
    zero = torch.zeros(1)
    terms = {
        "progress": zero,
        "collision": one if crashed else zero,
        "offroad": zero,
        "route_failure": zero,
        "arrived": zero,
        "red_light": zero,
        "comfort": zero,
        "lane_change": zero,
        "high_speed": one * high_speed,
        "right_lane": one * right_lane,
        "on_road": one,
    }
    return float(total_reward(terms, w))


def _value(w: RewardConfig, gamma: float, high_speed: float, crash_per_decision: float) -> float:
    """Expected discounted return of driving at a constant `high_speed` term on the right lane when each decision
    ends in a crash with probability `crash_per_decision` (the crash decision's reward, then nothing)."""
    safe = _reward(w, high_speed, 1.0, False)
    crash = _reward(w, high_speed, 1.0, True)
    value, alive = 0.0, 1.0
    for t in range(DECISIONS):
        value += gamma**t * alive * ((1 - crash_per_decision) * safe + crash_per_decision * crash)
        alive *= 1 - crash_per_decision
    return value


def _preset(name: str):
    cfg = TRAIN_PRESETS[name]
    return cfg.sim.reward, cfg.ppo.gamma


def test_a_reckless_top_speed_is_worth_less_than_a_safe_middle_speed():
    # 2 % crash risk per decision is ~55 % crashed episodes: it must not pay, however fast.
    w, gamma = _preset("highway-v0")
    assert _value(w, gamma, 1.0, 0.02) < _value(w, gamma, 0.5, 0.0)


def test_the_old_preset_rewarded_that_recklessness():
    # highway-env's reward (the `highway-v0` world's own) with gamma 0.8: the same comparison goes the other way.
    w = PRESETS["highway-v0"].reward
    assert w.normalize and w.collision == -1.0
    assert _value(w, 0.8, 1.0, 0.02) > _value(w, 0.8, 0.5, 0.0)


def test_speed_still_pays_where_it_is_safe():
    w, gamma = _preset("highway-v0")
    slow, middle, top = (_value(w, gamma, hs, 0.0) for hs in (0.0, 0.5, 1.0))
    assert top > middle > slow
    # A crash costs more than the whole episode's speed bonus, but not so much that no speed is ever worth trying.
    crash_cost = _reward(w, 1.0, 1.0, False) - _reward(w, 1.0, 1.0, True)
    assert (top - slow) < crash_cost < 100 * (top - slow)
