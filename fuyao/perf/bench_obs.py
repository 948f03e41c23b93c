"""What an observation costs beside a decision: `python -m fuyao.perf.bench_obs --preset highway-v0 --worlds 1024`.

For each observation type: one warm-up, then `repeats` timed calls of `World.observe` and of `World.step` (one
decision, random meta actions drawn once), the device synchronised around each; medians in ms. `--profile`
prints torch.profiler's table of the observation's operators. `--compile`: both compiled (`World(compile=True)`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from fuyao.perf.machine import machine_info
from fuyao.presets import preset
from fuyao.sim.world import World

OBSERVATIONS = ("native", "highway-kinematics", "highway-occupancy", "raster")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times)


def measure(
    preset_name: str, observation: str, worlds: int, repeats: int, device: torch.device, compile: bool = False
) -> dict:
    """Median ms of one observation and of one decision, `worlds` worlds of `preset_name`."""
    world = World(preset(preset_name, worlds=worlds, observation=observation), device, compile=compile)
    state = world.reset(0)
    g = torch.Generator(device="cpu").manual_seed(0)
    action = torch.randint(0, 5, (worlds, world.cfg.controlled), generator=g).to(device)
    for _ in range(2):  # warm-up (and compilation)
        state = world.step(state, action).state
        world.observe(state)
    obs_ms = _median_ms(lambda: world.observe(state), repeats, device)
    step_ms = _median_ms(lambda: world.step(state, action), repeats, device)
    shape = tuple(world.observation_shape)
    return {
        "preset": preset_name,
        "observation": observation,
        "worlds": worlds,
        "compiled": compile,
        "shape": shape,
        "observe_ms": round(obs_ms, 2),
        "decision_ms": round(step_ms, 2),
        "ratio": round(obs_ms / step_ms, 3),
    }


def profile(preset_name: str, observation: str, worlds: int, device: torch.device, rows: int = 20) -> str:
    """torch.profiler's operator table (self CPU time) for 3 calls of the observation."""
    world = World(preset(preset_name, worlds=worlds, observation=observation), device)
    state = world.reset(0)
    world.observe(state)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            world.observe(state)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="highway-v0")
    ap.add_argument("--worlds", type=int, default=1024)
    ap.add_argument("--observations", nargs="+", default=list(OBSERVATIONS), choices=OBSERVATIONS)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.profile:
        for obs in args.observations:
            print(f"== {obs}, {args.preset} x {args.worlds}")
            print(profile(args.preset, obs, args.worlds, device))
        return
    rows = [measure(args.preset, o, args.worlds, args.repeats, device, args.compile) for o in args.observations]
    print(json.dumps({"machine": machine_info(device), "threads": torch.get_num_threads(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
