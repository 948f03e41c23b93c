"""Regenerate tests/golden/smoke_rollout.json: a seeded short CPU rollout reduced to a few scalars.

Run only when a change to the simulation is meant to change rollouts:  python scripts/make_golden.py
"""

from __future__ import annotations

import json
from pathlib import Path

from fuyao.pilots import RuleBasedPilot
from fuyao.presets import preset
from fuyao.sim.world import World

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden" / "smoke_rollout.json"


def rollout_summary() -> dict:
    world = World(preset("smoke", worlds=8))
    pilot = RuleBasedPilot(world)
    state = world.reset(seed=2026)
    total_reward = 0.0
    progress = 0.0
    ended = 0
    for _ in range(12):
        result = world.step(state, pilot.act(world.observe(state), state))
        state = result.state
        total_reward += float(result.reward.double().sum())
        progress += float(result.info["progress_m"].double().sum())
        ended += int(result.world_done.sum())
    v = state.vehicles
    return {
        "total_reward": round(total_reward, 4),
        "progress_m": round(progress, 3),
        "episodes_ended": ended,
        "sum_s": round(float(v.s.double().sum()), 3),
        "sum_speed": round(float(v.speed.double().sum()), 4),
        "present": int(v.present.sum()),
    }


if __name__ == "__main__":
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(rollout_summary(), indent=2) + "\n")
    print(GOLDEN.read_text())
