"""The reference point for `fuyao bench`: how fast highway-env itself runs, one environment on one CPU core.

highway-env steps one Python object per vehicle, so its throughput is counted the way Fuyao's is: decisions per
second (one ego decision per `env.step`) and vehicle-ticks per second (every vehicle on the road, every
simulation tick: `len(road.vehicles) x simulation_frequency / policy_frequency` per decision). Actions are drawn
uniformly from the action space; episodes that end are reset (with the next seed) inside the timed loop, as
Fuyao's worlds auto-reset inside its step. Needs the optional dependency: `pip install 'fuyao[compare]'`.
"""

from __future__ import annotations

import time
from importlib import metadata


def _import_highway_env():
    try:
        import gymnasium
        import highway_env
    except ImportError as err:
        raise ImportError(
            "measure_highway_env needs highway-env, the reference simulator it times; "
            "install it with: pip install 'fuyao[compare]'"
        ) from err
    return gymnasium, highway_env


def _version(module) -> str:
    version = getattr(module, "__version__", None)
    if version:
        return str(version)
    try:
        return metadata.version("highway-env")
    except metadata.PackageNotFoundError:
        return "unknown"


def measure_highway_env(env_id: str = "highway-v0", seconds: float = 20.0, seed: int = 0) -> dict:
    """Step highway-env `env_id` (default config) with random actions for about `seconds` of wall time.

    Returns `env_id`, `decisions` (env steps), `episodes` (ended and reset), `wall_s`, `decisions_per_s`,
    `vehicles` (len(road.vehicles) per decision, averaged), `ticks_per_decision`, `vehicle_ticks_per_s`,
    `highway_env_version`.
    """
    if seconds <= 0:
        raise ValueError(f"measure_highway_env: seconds = {seconds!r}; allowed: > 0")
    gymnasium, highway_env = _import_highway_env()
    env = gymnasium.make(env_id)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    sim = env.unwrapped
    # As AbstractEnv._simulate: this many ticks of 1 / simulation_frequency s per env.step.
    ticks_per_decision = int(sim.config["simulation_frequency"] // sim.config["policy_frequency"])
    decisions = episodes = vehicle_sum = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        vehicle_sum += len(sim.road.vehicles)  # the cars simulated during this step
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        decisions += 1
        if terminated or truncated:
            episodes += 1
            env.reset(seed=seed + episodes)
    wall_s = time.perf_counter() - start
    env.close()
    return {
        "env_id": env_id,
        "decisions": decisions,
        "episodes": episodes,
        "wall_s": wall_s,
        "decisions_per_s": decisions / wall_s,
        "vehicles": vehicle_sum / max(decisions, 1),
        "ticks_per_decision": ticks_per_decision,
        "vehicle_ticks_per_s": vehicle_sum * ticks_per_decision / wall_s,
        "highway_env_version": _version(highway_env),
    }
