"""Stable-Baselines3 PPO on Fuyao beside SB3 PPO on highway-env, in one run.

Both sides run the same learner with the same settings (highway-env's documented PPO for highway-fast-v0,
`bench_train.highway_doc_ppo_kwargs`): the only difference is the environment. Fuyao's highway-v0 enters SB3 as
one `FuyaoSB3VecEnv` (every sub-env a world of one batched simulator, in SB3's process); highway-fast-v0 as SB3's
`SubprocVecEnv` of highway-env processes (`bench_train.sb3_highway_fast`). decisions/s = timesteps / wall-clock of
`learn` (rollouts and updates), SB3's policy on the CPU in both. Needs `fuyao[compare]`.

    python -m fuyao.perf.bench_sb3 --timesteps 4096 --worlds 16 --peer-timesteps 2048

(`fuyao bench` does not run this yet.)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fuyao.perf.bench_train import highway_doc_ppo_kwargs, sb3_highway_fast
from fuyao.perf.machine import machine_info


def sb3_on_fuyao(
    timesteps: int, worlds: int, device: torch.device, preset: str = "highway-v0", seed: int = 0
) -> dict[str, Any]:
    """SB3 PPO on a Fuyao preset through `FuyaoSB3VecEnv` (one controlled vehicle per world)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from fuyao.envs.sb3 import make_sb3_vec_env

    env = VecMonitor(make_sb3_vec_env(preset, device=device, worlds=worlds))
    model = PPO("MlpPolicy", env, seed=seed, verbose=0, device="cpu", **highway_doc_ppo_kwargs(worlds))
    t0 = time.perf_counter()
    model.learn(total_timesteps=timesteps)
    seconds = time.perf_counter() - t0
    env.close()
    return {
        "env": f"fuyao {preset}",
        "n_envs": worlds,
        "timesteps": model.num_timesteps,
        "seconds": seconds,
        "decisions_per_s": model.num_timesteps / seconds,
    }


def measure_sb3(
    timesteps: int = 4096,
    worlds: int = 16,
    device: torch.device | str = "cpu",
    peer_timesteps: int | None = 2048,
    peer_envs: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """SB3 PPO decisions/s on Fuyao's highway-v0 and, unless `peer_timesteps` is None, on highway-env's
    highway-fast-v0 (`peer_envs` processes, one per core by default), with their ratio."""
    device = torch.device(device)
    out: dict[str, Any] = {"fuyao": sb3_on_fuyao(timesteps, worlds, device, seed=seed)}
    if peer_timesteps:
        out["highway_env"] = sb3_highway_fast(peer_timesteps, peer_envs)
        out["speedup"] = out["fuyao"]["decisions_per_s"] / out["highway_env"]["decisions_per_s"]
    out["machine"] = machine_info(device)
    return out


@dataclass(frozen=True)
class Args:
    timesteps: int = 4096  # SB3 timesteps (decisions) on Fuyao
    worlds: int = 16
    device: str = "cpu"
    peer_timesteps: int = 2048  # on highway-fast-v0; 0 skips the peer
    peer_envs: int | None = None  # highway-env processes; None: one per core
    seed: int = 0
    out: Path | None = None  # write the result as JSON


def main(args: Args) -> dict[str, Any]:
    result = measure_sb3(
        args.timesteps, args.worlds, args.device, args.peer_timesteps or None, args.peer_envs, args.seed
    )
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Args))
