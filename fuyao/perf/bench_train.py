"""Training benchmarks behind `fuyao bench train`.

time to target   train a preset until the learned pilot matches the rule-based pilot on the validation twin of
                 the preset's suite (`Suite.validation()`), scaled to `eval_episodes` (the same episodes for
                 both pilots): route progress at least the rule-based pilot's, at-fault collisions and red-light
                 runs at most its rates (`fuyao.train.evaluator`). Wall-clock from the start of training,
                 periodic evaluations included. Then the chosen checkpoint and the rule-based pilot run the
                 suite's own episodes (`confirmation`), which only report.
throughput       decisions per second including learning (PPO iterations: rollout + GAE + update), with every
                 vehicle of the world driven by the policy (self-play); median over iterations after the first.
SB3 reference    Stable-Baselines3 PPO on highway-env's highway-fast-v0 with the settings of highway-env's
                 documentation (scripts/sb3_highway_ppo.py: MlpPolicy 256x256 for pi and vf, n_steps =
                 batch_size * 12 / n_envs, batch_size 64, 10 epochs, lr 5e-4, gamma 0.8, SubprocVecEnv), one
                 env process per core; decisions/s = timesteps / wall-clock of `learn` (needs `fuyao[compare]`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from fuyao.perf.machine import machine_info
from fuyao.train.config import train_preset


def time_to_target(
    preset: str,
    device: torch.device,
    time_limit_s: float,
    eval_episodes: int,
    eval_every: int,
    out: Path,
    seed: int = 0,
    compile: bool | None = None,
    precision: str | None = None,
    respawn: bool | None = None,
) -> dict[str, Any]:
    from fuyao.evaluation import evaluate, get_suite
    from fuyao.pilots import RuleBasedPilot
    from fuyao.pilots.learned import load
    from fuyao.train.evaluator import TARGET_CRITERIA, Evaluator, grouped_summary, target_met
    from fuyao.train.run import train

    # `steps` stays the preset's own: the learning-rate schedule's horizon, as `fuyao run` and `fuyao train` see
    # it (the `highway` preset's 12M is not reached in minutes, so the time limit or the target ends the run).
    base = train_preset(preset)
    cfg = dataclasses.replace(
        base,
        out=out,
        seed=seed,
        time_budget=time_limit_s,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        compile=base.compile if compile is None else compile,
        precision=precision or base.precision,
        sim=dataclasses.replace(base.sim, respawn=base.sim.respawn if respawn is None else respawn),
    )
    # The target is the rule-based pilot on the validation episodes; training stops on them, never on the suite's.
    evaluator = Evaluator(cfg, device)
    t0 = time.perf_counter()
    reference = evaluator.reference
    reference_s = time.perf_counter() - t0
    criteria = [name for name, _, _ in TARGET_CRITERIA]
    target = {k: v for k, v in reference.items() if k.rsplit("/", 1)[-1] in criteria}
    summary = train(cfg, device, evaluator=evaluator, stop_when=lambda m: m.get("target_met") == 1.0)
    curve = summary["curve"]
    hit = next((row for row in curve if row.get("eval_target_met") == 1.0), None)
    # Then the suite itself reports, on its own episodes: the pilot that reached the target (or the best one).
    checkpoints = out / "checkpoints"
    chosen = checkpoints / ("best.pt" if (checkpoints / "best.pt").exists() else "last.pt")
    suite = get_suite(preset)
    pilot = load(chosen, device)
    learned_suite = grouped_summary(
        evaluate(pilot.for_world, suite, device, episodes=eval_episodes, workers=cfg.eval_workers)
    )
    rule_suite = grouped_summary(
        evaluate(RuleBasedPilot, suite, device, episodes=eval_episodes, workers=cfg.eval_workers)
    )
    base_keys = (
        "score",
        "collision_rate",
        "at_fault_collision_rate",
        "progress_m",
        "route_completion",
        "red_light_runs_per_km",
    )
    # Per group (`Suite.groups`: the `ngp` suite's highway, city and NGP trips) as `group/metric` too.
    keys = (*base_keys, *(f"{g}/{k}" for g in suite.groups for k in base_keys))
    return {
        "preset": preset,
        "suite": f"{suite.name}@{suite.version}",
        "reached": hit is not None,
        "time_to_target_s": hit["elapsed_s"] if hit else None,
        "decisions": int(hit["decisions"]) if hit else int(summary["decisions"]),
        "time_limit_s": time_limit_s,
        "eval_episodes": eval_episodes,
        "eval_every": eval_every,
        "compile": cfg.compile,
        "precision": cfg.precision,
        "respawn": cfg.sim.respawn,
        "target": target,
        "validation": f"{evaluator.suite.name}@{evaluator.suite.version}",
        "rule_based": {k: reference[k] for k in keys},
        "rule_based_eval_s": reference_s,
        "final": {k: summary.get(f"eval_{k}") for k in keys},
        "confirmation": {
            "suite": f"{suite.name}@{suite.version}",
            "checkpoint": chosen.name,
            "learned": {k: learned_suite[k] for k in keys},
            "rule_based": {k: rule_suite[k] for k in keys},
            "target_met": target_met(learned_suite, rule_suite),
        },
        "curve": [
            {
                "decisions": int(r["decisions"]),
                "elapsed_s": r["elapsed_s"],
                **{
                    k: r.get(f"eval_{k}")
                    for k in (
                        "score",
                        "collision_rate",
                        "at_fault_collision_rate",
                        "progress_m",
                        "red_light_runs_per_km",
                        "target_met",
                    )
                },
            }
            for r in curve
        ],
        "device": str(device),
        "machine": machine_info(device),
    }


def training_throughput(
    preset: str,
    device: torch.device,
    iterations: int,
    out: Path,
    compile: bool | None = None,
    worlds: int | None = None,
    encoder: str | None = None,
    hidden: int | None = None,
    precision: str | None = None,
    respawn: bool | None = None,
) -> dict[str, Any]:
    """PPO decisions/s including learning, every vehicle driven by the policy and agents respawning (unless
    `respawn=False`); `iterations` PPO iterations of the preset (optionally another network or precision), the
    first not counted."""
    from fuyao.pilots.networks import PolicyConfig
    from fuyao.train import ppo
    from fuyao.train.distributed import Dist
    from fuyao.train.session import build_session

    base = train_preset(preset)
    compile = base.compile if compile is None else compile
    sim = dataclasses.replace(
        base.sim,
        controlled=base.sim.vehicles,
        worlds=worlds or base.sim.worlds,
        # Every vehicle is the policy's, as in MetaDrive's multi-agent environments, which respawn their agents:
        # without it ~78% of the slots idle once their cars crash or arrive (`active_fraction`).
        respawn=True if respawn is None else respawn,
    )
    policy = PolicyConfig(encoder=encoder or base.policy.encoder, hidden=hidden or base.policy.hidden)
    cfg = dataclasses.replace(
        base,
        sim=sim,
        policy=policy,
        out=out,
        bc_warm_start=0,
        eval_every=0,
        checkpoint_every=10**9,
        compile=compile,
        precision=precision or base.precision,
    )
    learner, worlds, book = build_session(cfg, Dist(), device, None)
    try:
        for _ in range(iterations):
            ppo.train(cfg, learner, worlds, book, until=book.progress.decisions + 1)  # exactly one iteration
    finally:
        book.close()
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")][-iterations:]
    timed = rows[1:] or rows
    # Decisions count agents that were driving; slots idle between an agent's episode and its respawn (or its
    # world's reset) cost the same compute and count nothing.
    slots = sim.worlds * sim.controlled * cfg.ppo.rollout_steps
    done_before = [0.0] + [r["decisions"] for r in rows[:-1]]
    active = [(r["decisions"] - d) / slots for r, d in zip(rows, done_before)][1:] or [rows[0]["decisions"] / slots]
    return {
        "preset": preset,
        "self_play": True,
        "worlds": sim.worlds,
        "vehicle_slots_per_world": sim.controlled,
        "encoder": policy.encoder.value,
        "hidden": policy.hidden,
        "iterations_timed": len(timed),
        "decisions_per_s": statistics.median(r["decisions_per_s"] for r in timed),
        "active_fraction": statistics.median(active),
        "respawn": sim.respawn,
        "time_fractions": {k: statistics.median(r[f"time_{k}_frac"] for r in timed) for k in ("sim", "act", "learn")},
        "compile": compile,
        "precision": cfg.precision,
        "bf16": learner.bf16,
        "device": str(device),
        "machine": machine_info(device),
    }


def highway_doc_ppo_kwargs(n_envs: int) -> dict[str, Any]:
    """SB3 PPO's settings in highway-env's documentation (scripts/sb3_highway_ppo.py), for `n_envs` sub-envs."""
    batch_size = 64
    return {
        "policy_kwargs": dict(net_arch=dict(pi=[256, 256], vf=[256, 256])),
        "n_steps": max(1, batch_size * 12 // n_envs),
        "batch_size": batch_size,
        "n_epochs": 10,
        "learning_rate": 5e-4,
        "gamma": 0.8,
    }


def sb3_highway_fast(timesteps: int, n_envs: int | None = None) -> dict[str, Any]:
    """Stable-Baselines3 PPO on highway-fast-v0 as highway-env's documentation trains it."""
    try:
        import highway_env  # noqa: F401 (registers the environments)
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import SubprocVecEnv
    except ImportError as err:
        from fuyao.sim.config import ConfigError

        raise ConfigError(
            f"--sb3-timesteps: needs highway-env and stable-baselines3 ({err}); pip install 'fuyao[compare]'"
        ) from None
    n_envs = n_envs or max(1, os.cpu_count() or 1)
    # fork: the workers inherit highway-env's registration of its ids
    env = make_vec_env(
        "highway-fast-v0", n_envs=n_envs, vec_env_cls=SubprocVecEnv, vec_env_kwargs={"start_method": "fork"}
    )
    model = PPO("MlpPolicy", env, verbose=0, **highway_doc_ppo_kwargs(n_envs))
    t0 = time.perf_counter()
    model.learn(total_timesteps=timesteps)
    seconds = time.perf_counter() - t0
    done = model.num_timesteps
    env.close()
    return {
        "env_id": "highway-fast-v0",
        "n_envs": n_envs,
        "timesteps": done,
        "seconds": seconds,
        "decisions_per_s": done / seconds,
    }
