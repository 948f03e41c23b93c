"""The GPU check behind `scripts/gpu_check.sh`: one step at a time, each merged into one JSON file as it ends,
so a run cut short still tells what it reached.

    python -m fuyao.perf.gpu_check STEP [--out DIR] [--rehearsal]

Steps (the script's order, most important first): `env`, `cuda_tests` (pytest -m cuda), `cpu_vs_cuda`
(episode statistics of seeded rule-based rollouts on both devices, within sampling error), `sim` (simulation
throughput from 1,024 to 65,536 worlds, plain and as a CUDA graph), `policy` (the policy forward, plain and as a
CUDA graph), `train` (training throughput), `ddp` (torchrun, one rank: NCCL on CUDA, gloo on the CPU),
`time_to_target` (compile time included when the preset compiles). `--rehearsal`: on the CPU, tiny sizes and
budgets, GPU-only parts recorded as skipped: every step runs end to end in a minute or two.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from fuyao.perf.machine import machine_info

RESULTS = "gpu_check.json"


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def record(out: Path, step: str, result: dict[str, Any]) -> None:
    """Merge `{step: result}` into `out/gpu_check.json` (written whole to a temporary file, then renamed)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS
    data = json.loads(path.read_text()) if path.exists() else {}
    data[step] = result
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


# ---------------------------------------------------------------------------------------- CPU vs CUDA


def episode_statistics(device: torch.device, preset_name: str, worlds: int, decisions: int, seed: int = 0) -> dict:
    """Seeded rule-based rollout: per-world reward, collisions and finished episodes summed over `decisions`,
    as mean and standard error over the worlds (the worlds are independent samples)."""
    from fuyao.pilots.rule_based import RuleBasedPilot
    from fuyao.presets import preset
    from fuyao.sim.world import World

    world = World(preset(preset_name, worlds=worlds), device)
    pilot = RuleBasedPilot(world)
    state = world.reset(seed)
    totals = torch.zeros(4, worlds, device=device)  # reward, collisions, ended episodes, speed
    with torch.inference_mode():
        for _ in range(decisions):
            result = world.step(state, pilot.act(None, state))
            active = result.info["active"].float()
            totals += torch.stack(
                [
                    result.reward.sum(1),
                    (result.info["collision"].float() * active).sum(1),
                    result.world_done.float(),
                    (result.info["speed"] * active).sum(1) / active.sum(1).clamp(min=1.0) / decisions,
                ]
            )
    host = totals.double().cpu()
    names = ("reward", "collisions", "episodes_ended", "speed")
    return {
        n: {"mean": float(x.mean()), "se": float(x.std() / math.sqrt(worlds))} for n, x in zip(names, host.unbind())
    }


def within_sampling_error(a: dict, b: dict, z: float = 4.0) -> dict[str, bool]:
    """Per statistic: |mean_a - mean_b| <= z x the standard error of the difference (+ 1e-9)."""
    return {k: abs(a[k]["mean"] - b[k]["mean"]) <= z * math.hypot(a[k]["se"], b[k]["se"]) + 1e-9 for k in a if k in b}


# ---------------------------------------------------------------------------------------- steps


def step_env(args, device) -> dict:
    out = {**machine_info(device), "cuda_available": torch.cuda.is_available()}
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        out.update(cuda=torch.version.cuda, gpu_memory_bytes=total, gpu_free_bytes=free)
    return out


def step_cuda_tests(args, device) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests/test_cuda.py", "-p", "no:cacheprovider"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.budget)
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
    # pytest exits 5 when every test was deselected; skipped tests exit 0.
    return {
        "returncode": proc.returncode,
        "passed": proc.returncode == 0,
        "summary": tail,
        "seconds": time.perf_counter() - t0,
    }


def step_cpu_vs_cuda(args, device) -> dict:
    worlds, decisions = (16, 10) if args.rehearsal else (1024, 60)
    cpu = episode_statistics(torch.device("cpu"), "highway-v0", worlds, decisions, seed=3)
    if device.type != "cuda":
        return {"skipped": "no CUDA device", "cpu": cpu, "worlds": worlds, "decisions": decisions}
    cuda = episode_statistics(device, "highway-v0", worlds, decisions, seed=3)
    ok = within_sampling_error(cpu, cuda)
    return {"cpu": cpu, "cuda": cuda, "within_4_se": ok, "passed": all(ok.values()), "worlds": worlds}


def step_sim(args, device) -> dict:
    from fuyao.perf.bench_sim import measure_sim
    from fuyao.presets import preset

    sizes = (8, 16) if args.rehearsal else (1024, 4096, 16384, 65536)
    rows = []
    deadline = time.monotonic() + args.budget
    for graph in (False, True) if device.type == "cuda" else (False,):
        for w in sizes:
            if time.monotonic() > deadline:
                rows.append({"worlds": w, "cuda_graph": graph, "skipped": "step budget spent"})
                continue
            try:
                r = measure_sim(preset("highway-v0", worlds=w), device, decisions=3, repeats=3, cuda_graph=graph)
            except torch.OutOfMemoryError as err:  # the largest batches may not fit beside a CUDA graph's pool
                rows.append({"worlds": w, "cuda_graph": graph, "error": str(err)[:300]})
                torch.cuda.empty_cache()
                continue
            rows.append({k: r[k] for k in ("worlds", "vehicle_ticks_per_s", "decisions_per_s", "decision_s_median",
                                           "warmup_s", "cuda_graph", "state_bytes_per_world", "bytes_per_world",
                                           "max_worlds_fit", "bytes_per_world_basis")})  # fmt: skip
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return {"preset": "highway-v0", "compiled": False, "rows": rows}


def step_policy(args, device) -> dict:
    """The policy forward at the rollout's batch, plain and replayed as a CUDA graph."""
    from fuyao.pilots.networks import ActorCritic
    from fuyao.sim.graphs import GraphedCall
    from fuyao.sim.world import World
    from fuyao.train.config import train_preset

    cfg = train_preset("highway")
    agents = 64 if args.rehearsal else cfg.sim.worlds * cfg.sim.controlled * 4
    model = ActorCritic(cfg.sim, cfg.policy).to(device).eval()
    obs = torch.randn(agents, *World(dataclasses.replace(cfg.sim, worlds=1)).observation_shape, device=device)

    def forward(x):
        return model(x)

    def timed(fn, n: int = 20) -> float:
        fn(obs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            fn(obs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / n

    out: dict[str, Any] = {"agents": agents}
    with torch.no_grad():
        out["plain_s"] = timed(forward)
        if device.type != "cuda":
            out["cuda_graph"] = "skipped: no CUDA device"
            return out
        graphed = GraphedCall(forward)
        try:
            out["cuda_graph_s"] = timed(graphed)
            a, b = forward(obs), graphed(obs)
            out["cuda_graph_max_abs_diff"] = max(float((x - y).abs().max()) for x, y in zip(a, b))
        except Exception as err:  # noqa: BLE001 (recorded: the fallback is the plain forward)
            out["cuda_graph"] = f"capture failed, plain forward kept: {type(err).__name__}: {str(err)[:300]}"
    return out


def step_train(args, device) -> dict:
    from fuyao.perf.bench_train import training_throughput

    out = Path(args.out) / "train"
    if args.rehearsal:
        return training_throughput("smoke", device, 2, out / "smoke", compile=False, worlds=4)
    rows = {}
    for w in (1024, 8192):
        rows[str(w)] = training_throughput("highway", device, 3, out / f"w{w}", compile=False, worlds=w)
    return rows


def step_ddp(args, device) -> dict:
    out = Path(args.out) / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
        "-m", "fuyao.cli", "train", "--preset", "smoke", "--out", str(out), "--device", device.type,
        "--eval-every", "0", "--eval-episodes", "0", "--steps", "64" if args.rehearsal else "3000",
        "--sim.worlds", "4" if args.rehearsal else "256",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.budget)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    # Under torchrun a process group forms with one rank too: DistributedDataParallel's all-reduce runs on NCCL.
    grouped = bool(summary.get("process_group"))
    return {
        "backend": "nccl" if device.type == "cuda" else "gloo",
        "returncode": proc.returncode,
        "passed": proc.returncode == 0 and summary.get("decisions", 0) > 0 and grouped,
        "processes": summary.get("processes"),
        "decisions": summary.get("decisions"),
        "process_group": grouped,
        "tail": (proc.stdout + proc.stderr).strip().splitlines()[-8:],
    }


def step_time_to_target(args, device) -> dict:
    from fuyao.perf.bench_train import time_to_target

    out = Path(args.out) / "ttt"
    if args.rehearsal:
        r = time_to_target("smoke", device, 15.0, 4, 1, out, compile=False)
    else:
        r = time_to_target("highway", device, min(args.budget - 30.0, 240.0), 100, 6, out)
    # Wall-clock from the start of training: the first calls of compiled graphs (compiling) happen inside it.
    r["compile_time_included"] = bool(r["compile"])
    r.pop("curve", None)
    return r


STEPS = {
    "env": step_env,
    "cuda_tests": step_cuda_tests,
    "cpu_vs_cuda": step_cpu_vs_cuda,
    "sim": step_sim,
    "policy": step_policy,
    "train": step_train,
    "ddp": step_ddp,
    "time_to_target": step_time_to_target,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuyao.perf.gpu_check")
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--out", default=os.environ.get("OUT", "runs/gpu_check"))
    parser.add_argument("--rehearsal", action="store_true", help="tiny sizes (CPU rehearsal)")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds this step may take")
    args = parser.parse_args(argv)
    device = pick_device()
    # A step killed by its time limit leaves this behind: the file says where the run stopped.
    record(Path(args.out), args.step, {"started": True, "budget_s": args.budget, "device": str(device)})
    t0 = time.perf_counter()
    try:
        result = STEPS[args.step](args, device)
    except Exception as err:  # noqa: BLE001 (recorded, and the next step still runs)
        result = {"error": f"{type(err).__name__}: {str(err)[:1000]}"}
    result = {**result, "step_seconds": time.perf_counter() - t0, "device": str(device)}
    record(Path(args.out), args.step, result)
    print(json.dumps({args.step: result}, default=str)[:2000])
    return 1 if "error" in result or result.get("passed") is False else 0


if __name__ == "__main__":
    sys.exit(main())
