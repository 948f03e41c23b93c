"""Driving an imported map in the tests: shared by the SUMO (`test_maps_import.py`) and Lanelet2
(`test_lanelet2.py`) importers' checks, so both count the same outcomes the same way."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from fuyao.presets import preset
from fuyao.sim.world import World


def drive_imported_map(map_file: Path, seconds: float, worlds: int, vehicles: int) -> Counter:
    """`seconds` of the city preset on `map_file` with the rule-based pilot: totals of background crashes, the
    pilot's collisions, arrivals, red-light runs and progress, the signal phases seen in world 0, and the vehicles
    present at the start and the end."""
    from fuyao.pilots.rule_based import RuleBasedPilot

    cfg = preset("city", map=str(map_file), worlds=worlds, vehicles=vehicles)
    world = World(cfg)
    pilot = RuleBasedPilot(world)
    state = world.reset(seed=0)
    out = Counter(present_at_start=int(state.vehicles.present.sum()))
    phases = set()
    for _ in range(int(seconds * cfg.decision_hz)):
        result = world.step(state, pilot.act(None, state))
        state = result.state
        out["background_crashes"] += int(result.info["world_background_crashes"].sum())
        out["collisions"] += int(result.info["collision"].sum())
        out["arrived"] += int(result.info["arrived"].sum())
        out["red_light"] += int(result.info["red_light"].sum())
        out["progress_m"] += float(result.info["progress_m"].sum())
        phases.add(tuple(state.signals.phase[0].tolist()))
    out["phase_states"] = len(phases)
    out["present"] = int(state.vehicles.present.sum())
    return out
