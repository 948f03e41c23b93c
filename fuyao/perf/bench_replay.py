"""`fuyao bench replay`: logged scenarios replayed in one batch (`fuyao.data.replay`), cold build and stepping.

The scenarios given are cycled up to `count` (each copy its own world and id); copies share their map, which is
built once (as scenarios cut from one log share theirs). Stepping times the world alone: the ego holds its
speed (meta action IDLE), so no pilot's cost is in the figure. Agent-ticks count every slot of every world per
tick, as `fuyao bench sim` counts vehicle-ticks; `logged_agent_ticks_per_s` counts only slots whose object the
log holds at that tick (present in the lane graph or in free space).
"""

from __future__ import annotations

import dataclasses
import time

import torch

from fuyao.data.replay import ReplayConfig, build_replay
from fuyao.perf.bench_sim import tensor_bytes
from fuyao.perf.machine import machine_info
from fuyao.sim.config import SimConfig
from fuyao.sim.step import META_IDLE
from fuyao.sim.world import World


def measure_replay(
    scenarios: list,
    sim: SimConfig,
    count: int,
    vehicles: int = 32,
    reactive: bool = True,
    device: torch.device | str = "cpu",
    repeats: int = 3,
    compile: bool = False,
) -> dict:
    """Build `count` worlds from `scenarios` (cycled) and step them through their logs `repeats` times."""
    copies = [
        dataclasses.replace(
            scenarios[i % len(scenarios)], scenario_id=f"{scenarios[i % len(scenarios)].scenario_id}#{i}"
        )
        for i in range(count)
    ]
    t0 = time.perf_counter()
    batch = build_replay(copies, sim, ReplayConfig(vehicles=vehicles, reactive=reactive), device)
    build_s = time.perf_counter() - t0
    world = World(batch.cfg, device=device, road=batch.road, spawns=False, compile="tick" if compile else False)
    action = torch.full((count, 1), META_IDLE, dtype=torch.int64, device=world.device)
    decisions = batch.cfg.decisions_per_episode
    ticks = decisions * batch.cfg.ticks_per_decision
    times, logged = [], 0
    with torch.inference_mode():
        for _ in range(repeats + 1):  # the first pass warms up (and compiles)
            state = batch.state
            if world.device.type == "cuda":
                torch.cuda.synchronize()
            t1 = time.perf_counter()
            for _ in range(decisions):
                state = world.step(state, action).state
            if world.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t1)
            logged = int(state.replay.valid[:, :, 1 : ticks + 1].sum())
    med = sorted(times[1:])[len(times[1:]) // 2]
    slots = count * vehicles * ticks
    return {
        "scenarios": count,
        "distinct_scenarios": len(scenarios),
        "maps_built": batch.summary.get("maps built", 0),
        "vehicles": vehicles,
        "agents": "reactive" if reactive else "log",
        "ticks": ticks,
        "compiled": compile,
        "first_pass_s": times[0],
        "build_s": build_s,
        "step_s_median": med,
        "step_s_all": times[1:],
        "agent_ticks_per_s": slots / med,
        "logged_agent_ticks_per_s": logged / med,
        "replay_table_mb": tensor_bytes(batch.state.replay) / 2**20,
        "device": str(world.device),
        "threads": torch.get_num_threads(),
        "machine": machine_info(world.device),
    }
