"""Stable-Baselines3 PPO on Fuyao's highway-v0, straight through `FuyaoSB3VecEnv` (no Gymnasium env per process,
no SubprocVecEnv: every sub-env is a slot of one batched simulator).

    pip install 'fuyao[sb3]'
    python examples/sb3_ppo.py --timesteps 100000 --worlds 16

PPO's settings are highway-env's documented ones for highway-fast-v0 (scripts/sb3_highway_ppo.py), as
`fuyao.perf.bench_train.sb3_highway_fast` runs them: MlpPolicy 256x256, batch 64, 10 epochs, lr 5e-4, gamma 0.8,
n_steps = batch * 12 / n_envs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import tyro
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor

from fuyao.envs.sb3 import make_sb3_vec_env
from fuyao.perf.bench_train import highway_doc_ppo_kwargs


@dataclass(frozen=True)
class Args:
    timesteps: int = 100_000  # decisions in all (SB3's total_timesteps)
    worlds: int = 16  # sub-envs: one controlled vehicle per world
    preset: str = "highway-v0"
    n_steps: int | None = None  # per sub-env and rollout; None: highway-env's batch * 12 / worlds
    device: str = "cpu"  # where the worlds run ("cuda" for a GPU); SB3's policy stays on its own default
    seed: int = 0
    save: Path | None = None  # where to write the trained model (.zip)


def main(args: Args) -> dict:
    env = VecMonitor(make_sb3_vec_env(args.preset, device=args.device, worlds=args.worlds))
    kwargs = highway_doc_ppo_kwargs(args.worlds)
    if args.n_steps is not None:
        kwargs["n_steps"] = args.n_steps
    model = PPO("MlpPolicy", env, seed=args.seed, verbose=0, **kwargs)
    t0 = time.perf_counter()
    model.learn(total_timesteps=args.timesteps)
    seconds = time.perf_counter() - t0
    episodes = list(model.ep_info_buffer)
    mean_return = sum(e["r"] for e in episodes) / len(episodes) if episodes else float("nan")
    out = {
        "timesteps": model.num_timesteps,
        "seconds": round(seconds, 2),
        "decisions_per_s": round(model.num_timesteps / seconds, 1),
        "episodes": len(episodes),
        "mean_episode_return": round(float(mean_return), 3),
    }
    print(out)
    if args.save is not None:
        model.save(args.save)
    env.close()
    return out


if __name__ == "__main__":
    main(tyro.cli(Args))
