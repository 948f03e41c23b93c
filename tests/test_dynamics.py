"""What a car can do (issue 14, item 13): lateral acceleration bounded by tyre friction and a finite steering rate
in the native presets; highway-env's controllers, unbounded, where its presets mirror them."""

from __future__ import annotations

import math

import pytest
import torch

from fuyao.pilots.rule_based import RuleBasedPilot
from fuyao.presets import preset
from fuyao.sim.config import ConfigError
from fuyao.sim.dynamics import limit_steer
from fuyao.sim.world import World


def test_limit_steer_bounds_the_lateral_acceleration_and_the_steering_rate():
    speed = torch.tensor([30.0, 30.0, 5.0, 0.0])
    length = torch.full((4,), 5.0)
    prev = torch.tensor([0.0, 0.0, 0.0, 0.5])
    want = torch.tensor([0.3, -0.3, 0.3, -1.0])
    steer = limit_steer(want, prev, speed, length, 8.0, None, 1 / 15)
    beta = torch.atan(0.5 * torch.tan(steer))
    lat = speed * speed * torch.sin(beta) / (0.5 * length)
    assert lat.abs().max() <= 8.0 + 1e-4
    assert torch.isclose(lat[0], torch.tensor(8.0), atol=1e-3) and torch.isclose(lat[1], torch.tensor(-8.0), atol=1e-3)
    assert steer[2] == want[2]  # 5 m/s: 0.3 rad is within what the tyres hold (about 2.4 m/s^2)
    assert steer[3] == want[3]  # standing still: any wheel angle
    rated = limit_steer(want, prev, speed, length, None, 1.5, 0.1)
    assert torch.allclose(rated, torch.tensor([0.15, -0.15, 0.15, 0.35]))
    assert torch.equal(limit_steer(want, prev, speed, length, None, None, 0.1), want)


@pytest.mark.parametrize("name", ["highway", "city", "ngp"])
def test_the_rule_based_pilot_stays_within_tyre_friction_and_the_steering_rate(name):
    """Lane changes at 30 m/s through highway-env's controller asked for 37 m/s^2 (near 4 g), city turns and
    lane changes for 26: the bound holds every tick, for the pilot and for background traffic."""
    cfg = preset(name, worlds=4, inflow=False)  # no slot is refilled with a new car (whose wheel starts straight)
    world = World(cfg, "cpu")
    state = world.reset(3)
    pilot = RuleBasedPilot(world)
    dt = 1.0 / cfg.sim_hz
    peak, steps = 0.0, 30 if cfg.decision_hz == 1 else 120
    for _ in range(steps):
        before = state.vehicles
        result = world.step(state, pilot.act(None, state))
        peak = max(peak, float(result.info["lat_accel_max"].max()))
        after = result.final_state.vehicles
        # Every vehicle that drove through the decision's last tick turned its wheel at most the rate allows (a
        # decision holds several ticks: the bound over all of them).
        live = before.present & after.present & ~after.crashed & ~result.world_done[:, None]
        ticks = cfg.sim_hz // cfg.decision_hz
        assert ((after.steer - before.steer).abs()[live] <= cfg.max_steer_rate * dt * ticks + 1e-5).all()
        state = result.state
    assert peak <= cfg.max_lat_accel + 1e-3
    assert peak > 0.5 * cfg.max_lat_accel  # lane changes and turns happened and used the grip they had


def test_the_highway_env_presets_keep_highway_envs_unbounded_controllers():
    for name in ("highway-v0", "merge-v0", "exit-v0"):
        cfg = preset(name)
        assert cfg.max_lat_accel is None and cfg.max_steer_rate is None


@pytest.mark.parametrize("field", ["max_lat_accel", "max_steer_rate"])
@pytest.mark.parametrize("value", [0.0, -1.0, math.nan])
def test_a_bound_that_is_not_positive_is_refused(field, value):
    with pytest.raises(ConfigError, match=rf"SimConfig.{field}: got {value!r}"):
        preset("highway", **{field: value})
