"""`fuyao bench sim`: vehicle-ticks per second (every vehicle, every simulation tick) and decisions per
second (controlled vehicles' decisions), over batch sizes, on any device.

Each measurement: one warm-up decision (and compilation, if asked), then `repeats` timed runs of `decisions`
decisions each (the device synchronised before and after each run); the median run is reported. Beside it:
the bytes of state per world and the largest batch that fits in the device's free memory (`memory_fit`). Actions are drawn once, uniformly from the action space, so the
controlled vehicles change lanes and speeds as a policy's would; the policy's own cost is not included.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

import torch

from fuyao.perf.machine import machine_info
from fuyao.sim.config import ActionType, SimConfig
from fuyao.sim.world import World


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tensor_bytes(tree) -> int:
    """Bytes of every tensor in a (nested) dataclass of tensors."""
    if isinstance(tree, torch.Tensor):
        return tree.numel() * tree.element_size()
    if dataclasses.is_dataclass(tree):
        return sum(tensor_bytes(getattr(tree, f.name)) for f in dataclasses.fields(tree))
    return 0


def available_memory(device: torch.device) -> tuple[int, str]:
    """Free bytes on `device` and where the number comes from."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        # Memory this process's allocator holds but does not use is free for more worlds too.
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached), "torch.cuda.mem_get_info free + this process's cached, unused blocks"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "/proc/meminfo MemAvailable"
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "sysconf available physical pages"


def memory_fit(world: World, state, device: torch.device, peak_bytes: int | None = None) -> dict:
    """Bytes of `WorldState` per world and the largest batch that fits now.

    On CUDA `peak_bytes` (the allocator's peak during a decision, map bank and every temporary included) gives
    the bytes a world needs while it steps; on the CPU there is no allocator peak to read, and the estimate
    divides by the state alone: an upper bound (a decision's temporaries and the previous state are not
    counted). The map bank is shared by every world and counted once.
    """
    worlds = state.num_worlds
    state_bytes = tensor_bytes(state) / worlds
    road_bytes = tensor_bytes(world.road)
    free, source = available_memory(device)
    if peak_bytes is not None:
        per_world = max((peak_bytes - road_bytes) / worlds, state_bytes)
        basis = "peak device memory of one decision per world (state, temporaries, result)"
        usable = free + peak_bytes - road_bytes  # what this batch holds at its peak is usable again
    else:
        per_world = state_bytes
        basis = "WorldState bytes per world only (upper bound: a decision's temporaries not counted)"
        usable = free
    return {
        "state_bytes_per_world": state_bytes,
        "map_bank_bytes": road_bytes,
        "bytes_per_world": per_world,
        "bytes_per_world_basis": basis,
        "free_memory_bytes": free,
        "free_memory_source": source,
        "max_worlds_fit": int(usable // per_world),
    }


def random_actions(cfg: SimConfig, device: torch.device, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if cfg.action is ActionType.META:
        return torch.randint(0, 5, (cfg.worlds, cfg.controlled), generator=g).to(device)
    return (torch.rand(cfg.worlds, cfg.controlled, 2, generator=g) * 2 - 1).to(device)


def measure_sim(
    cfg: SimConfig,
    device: torch.device,
    decisions: int = 5,
    repeats: int = 5,
    compile: bool | str = False,
    cuda_graph: bool = False,
) -> dict:
    """One batch size's throughput; `cuda_graph`: the decision replayed as a CUDA graph (CUDA only)."""
    world = World(cfg, device=device, compile=compile, cuda_graph=cuda_graph)
    state = world.reset(seed=0)
    action = random_actions(cfg, device)
    t0 = time.perf_counter()
    state = world.step(state, action).state
    _sync(device)
    warmup_s = time.perf_counter() - t0
    peak = None
    if device.type == "cuda":  # one more decision, for the allocator's peak
        torch.cuda.reset_peak_memory_stats(device)
        state = world.step(state, action).state
        _sync(device)
        peak = torch.cuda.max_memory_allocated(device)
    memory = memory_fit(world, state, device, peak)
    runs = []
    present = torch.zeros((), device=device)  # vehicles present after each decision, summed (read once)
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(decisions):
            state = world.step(state, action).state
            present += state.vehicles.present.sum()
        _sync(device)
        runs.append((time.perf_counter() - t0) / decisions)
    per_decision = statistics.median(runs)
    ticks = cfg.ticks_per_decision
    mean_present = float(present) / (repeats * decisions)
    return {
        "worlds": cfg.worlds,
        "vehicles": cfg.vehicles,
        "controlled": cfg.controlled,
        "ticks_per_decision": ticks,
        "decision_s_median": per_decision,
        "decision_s_runs": runs,
        # As SUMO counts running vehicles: only vehicles present (slots standing empty after trips end are not).
        "vehicle_ticks_per_s": mean_present * ticks / per_decision,
        "slot_ticks_per_s": cfg.worlds * cfg.vehicles * ticks / per_decision,
        "mean_present_vehicles": mean_present,
        "decisions_per_s": cfg.worlds * cfg.controlled / per_decision,
        "warmup_s": warmup_s,
        "compiled": compile,
        "cuda_graph": world._graphed is not None,  # False where it does not apply or capture failed
        **memory,
        **machine_info(device),
    }


def sweep(cfg: SimConfig, worlds: tuple[int, ...], device: torch.device, **kwargs) -> list[dict]:
    return [measure_sim(dataclasses.replace(cfg, worlds=w), device, **kwargs) for w in worlds]


def measure_traffic_safety(
    cfg: SimConfig, device: torch.device, decisions: int = 120, seed: int = 0, sim_minutes: float | None = None
) -> dict:
    """Background crashes per vehicle-hour under the rule-based pilot (every crashed background vehicle counts;
    a crash between two background cars counts two), and the share of worlds gridlocked at the end: a world is
    gridlocked when the mean speed of its vehicles stayed under `GRIDLOCK_SPEED` for the last `GRIDLOCK_S`
    seconds. `sim_minutes` (if given) replaces `decisions` by that much simulated time."""
    from fuyao.pilots.rule_based import RuleBasedPilot

    if sim_minutes is not None:
        decisions = int(round(sim_minutes * 60.0 * cfg.decision_hz))
    world = World(cfg, device=device)
    pilot = RuleBasedPilot(world)
    state = world.reset(seed=seed)
    crashes = torch.zeros((), device=device)
    vehicle_s = torch.zeros((), device=device)
    ego_collisions = torch.zeros((), device=device)
    red_light = torch.zeros((), device=device)
    episodes = torch.zeros((), device=device)
    window = max(1, int(GRIDLOCK_S * cfg.decision_hz))
    recent_max_speed = torch.zeros(cfg.worlds, device=device)  # over the last `window` decisions
    for k in range(decisions):
        result = world.step(state, pilot.act(None, state))
        state = result.state
        crashes += result.info["world_background_crashes"].sum()
        vehicle_s += result.info["world_background_vehicle_s"].sum()
        ego_collisions += result.info["collision"].sum()
        red_light += result.info["red_light"].sum()
        episodes += result.world_done.sum()
        v = state.vehicles
        mean_speed = (v.speed * v.present).sum(1) / v.present.sum(1).clamp(min=1)
        if k >= decisions - window:
            recent_max_speed = torch.maximum(recent_max_speed, mean_speed)
    hours = float(vehicle_s) / 3600.0
    gridlocked = recent_max_speed < GRIDLOCK_SPEED
    return {
        "worlds": cfg.worlds,
        "vehicles": cfg.vehicles,
        "decisions": decisions,
        "sim_seconds": decisions / cfg.decision_hz,
        "background_vehicle_hours": hours,
        "background_crashed_vehicles": int(crashes),
        "background_crashes_per_vehicle_hour": float(crashes) / max(hours, 1e-9),
        "gridlocked_worlds_fraction": float(gridlocked.float().mean()),
        "gridlock_rule": f"mean vehicle speed < {GRIDLOCK_SPEED} m/s throughout the last {GRIDLOCK_S:.0f} s",
        "rule_based_ego_collisions": int(ego_collisions),
        "rule_based_red_light_runs": int(red_light),
        "episodes_ended": int(episodes),
        **machine_info(device),
    }


GRIDLOCK_SPEED = 0.5  # m/s
GRIDLOCK_S = 60.0  # s
