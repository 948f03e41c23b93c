"""`fuyao bench transfer ENV`: a pilot trained in Fuyao, driven in highway-env's own environment, unchanged.

The pilot (a checkpoint of a preset whose observation and actions mirror `ENV`) reads highway-env's observation
as it comes out of `env.step` and its action goes straight back in; nothing of Fuyao runs but the network.
Episodes use fixed seeds `seed, seed + 1, ...` (`env.reset(seed=...)`), are split over one process per core
(highway-env is single-threaded Python), and are reduced to:

- `crash_rate`   share of episodes in which the ego crashed (`info["crashed"]`, which ends the episode);
- `mean_speed`   the ego's forward speed after each decision, m/s, averaged over every decision of every episode
                 (highway-env's own reward reads speed the same way);
- `mean_return`  highway-env's episode return (its own reward, undiscounted);
- `mean_length`  decisions per episode (40 when nothing ends it early in `highway-v0`, 18 in `exit-v0`; a
                 `merge-v0` episode ends once the ego is past x = 370 m).

Optionally the same seeds are driven by a Stable-Baselines3 agent trained on highway-env for a wall-clock
budget in the same command (`sb3_seconds`), the reference a highway-env user would otherwise train.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np

from fuyao.presets import HIGHWAY_ENV_MIRRORS

# highway-env ids this module can drive, each with the Fuyao preset whose observation and actions mirror it.
MIRRORED_ENVS = HIGHWAY_ENV_MIRRORS
# `--pilot kinematics-planner`: the highway-v0 preset's teacher itself (`fuyao.pilots.kinematics_planner`), which
# reads highway-env's Kinematics observation as a checkpoint does.
PLANNER = "kinematics-planner"


def _check_env(env_id: str) -> None:
    if env_id not in MIRRORED_ENVS:
        raise ValueError(
            f"bench transfer: env {env_id!r} is not mirrored by any Fuyao preset; allowed: {', '.join(MIRRORED_ENVS)}"
        )


def _import_env():
    try:
        import gymnasium
        import highway_env  # noqa: F401  (registers highway-env's ids)
    except ImportError as err:
        raise ImportError("bench transfer needs highway-env: pip install 'fuyao[compare]'") from err
    return gymnasium


def _episodes(env, act, seeds: list[int]) -> list[dict]:
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        crashed, ret, speeds = False, 0.0, []
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(act(obs))
            ret += float(reward)
            speeds.append(float(info["speed"]))
            crashed = crashed or bool(info["crashed"])
            done = terminated or truncated
        out.append({"seed": seed, "crashed": crashed, "return": ret, "speed_sum": sum(speeds), "length": len(speeds)})
    return out


def _worker(job: tuple[str, str, str, list[int]]) -> list[dict]:
    kind, pilot, env_id, seeds = job
    import torch

    torch.set_num_threads(1)
    gymnasium = _import_env()
    env = gymnasium.make(env_id)
    if kind == "fuyao" and pilot == PLANNER:
        from fuyao.pilots.kinematics_planner import KinematicsPlanner

        planner = KinematicsPlanner()

        def act(obs):
            return int(planner.act(torch.as_tensor(np.asarray(obs, dtype=np.float32))[None])[0])

    elif kind == "fuyao":
        from fuyao.pilots.learned import load

        learned = load(pilot, "cpu")

        def act(obs):
            return int(learned.act(np.asarray(obs, dtype=np.float32)[None])[0])

    else:
        from stable_baselines3 import DQN

        model = DQN.load(pilot, device="cpu")

        def act(obs):
            return int(model.predict(obs, deterministic=True)[0])

    try:
        return _episodes(env, act, seeds)
    finally:
        env.close()


def _drive(kind: str, pilot: str, env_id: str, episodes: int, seed: int, processes: int) -> dict:
    seeds = list(range(seed, seed + episodes))
    chunks = [seeds[i::processes] for i in range(processes) if seeds[i::processes]]
    t0 = time.perf_counter()
    if len(chunks) == 1:
        rows = _worker((kind, pilot, env_id, chunks[0]))
    else:
        with multiprocessing.get_context("spawn").Pool(len(chunks)) as pool:
            rows = [r for part in pool.map(_worker, [(kind, pilot, env_id, c) for c in chunks]) for r in part]
    rows.sort(key=lambda r: r["seed"])
    decisions = sum(r["length"] for r in rows)
    return {
        "pilot": pilot,
        "episodes": len(rows),
        "crashes": sum(r["crashed"] for r in rows),
        "crash_rate": sum(r["crashed"] for r in rows) / len(rows),
        "mean_speed": sum(r["speed_sum"] for r in rows) / max(decisions, 1),
        "mean_return": sum(r["return"] for r in rows) / len(rows),
        "mean_length": decisions / len(rows),
        "wall_s": time.perf_counter() - t0,
    }


def train_sb3(env_id: str, seconds: float, out: Path, seed: int = 0) -> Path:
    """SB3 DQN on highway-env's `env_id` for about `seconds` of wall time, with the hyper-parameters of
    highway-env's own DQN example (scripts/sb3_highway_dqn.py); returns the saved model's path."""
    gymnasium = _import_env()
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    class Deadline(BaseCallback):
        def __init__(self, until: float) -> None:
            super().__init__()
            self.until = until

        def _on_step(self) -> bool:
            return time.perf_counter() < self.until

    torch.set_num_threads(1)
    env = gymnasium.make(env_id)
    model = DQN(
        "MlpPolicy",
        env,
        policy_kwargs={"net_arch": [256, 256]},
        learning_rate=5e-4,
        buffer_size=15_000,
        learning_starts=200,
        batch_size=32,
        gamma=0.8,
        train_freq=1,
        gradient_steps=1,
        target_update_interval=50,
        exploration_fraction=0.7,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    model.learn(total_timesteps=10**9, callback=Deadline(time.perf_counter() + seconds))
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    env.close()
    return out.with_suffix(".zip")


def measure_transfer(
    env_id: str,
    pilot: str | Path,
    episodes: int = 200,
    seed: int = 10_000,
    processes: int | None = None,
    sb3_seconds: float = 0.0,
    sb3_out: Path = Path("runs/bench-transfer/sb3_dqn"),
) -> dict:
    """Drive `pilot` (a Fuyao checkpoint) in highway-env's `env_id` over `episodes` fixed seeds from `seed`.

    Returns one object: `env`, `episodes`, `seed`, `crash_rate`, `mean_speed`, `mean_return`, `mean_length`,
    `crashes`, `wall_s` for the Fuyao pilot, and the same under `sb3` when `sb3_seconds > 0` (an SB3 DQN trained
    on highway-env for that long in this command, `sb3["train_s"]`).
    """
    _check_env(env_id)
    _import_env()
    if episodes < 1:
        raise ValueError(f"bench transfer: episodes = {episodes!r}; allowed: an integer >= 1")
    if str(pilot) == PLANNER and env_id != "highway-v0":
        raise ValueError(f"bench transfer: pilot {PLANNER!r} drives only 'highway-v0', not {env_id!r}")
    if str(pilot) != PLANNER and not Path(pilot).is_file():
        raise FileNotFoundError(
            f"bench transfer: pilot {str(pilot)!r} is not a file (expected a Fuyao checkpoint or {PLANNER!r})"
        )
    processes = processes or os.cpu_count() or 1
    out = {"env": env_id, "seed": seed, **_drive("fuyao", str(pilot), env_id, episodes, seed, processes)}
    if sb3_seconds > 0:
        t0 = time.perf_counter()
        path = train_sb3(env_id, sb3_seconds, Path(sb3_out))
        train_s = time.perf_counter() - t0
        out["sb3"] = {
            "algo": "DQN",
            "train_s": train_s,
            **_drive("sb3", str(path), env_id, episodes, seed, processes),
        }
    return out
