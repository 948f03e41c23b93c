"""The merge-v0 and exit-v0 training presets: they train in the worlds they mirror, and PPO learns there.

The learning tests run PPO for a small budget (20k decisions) from the preset itself (128 worlds) and assert that
the crash rate of the training episodes falls and their return rises by a margin. merge-v0's takes about 64 s on
one core (`slow`), exit-v0's about 13 s (5 Hz ticks).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from fuyao.presets import PRESETS
from fuyao.sim.world import World
from fuyao.train.config import TRAIN_PRESETS
from fuyao.train.run import train

CPU = torch.device("cpu")


@pytest.mark.parametrize("name", ["merge-v0", "exit-v0"])
def test_training_presets_train_in_the_mirrored_world(name):
    cfg = TRAIN_PRESETS[name]
    world = PRESETS[name]
    assert cfg.preset == name
    # Everything the pilot sees and does in highway-env is the mirrored world's; only the batch and (exit-v0) the
    # training reward differ.
    same = dataclasses.replace(cfg.sim, worlds=world.worlds, reward=world.reward)
    assert same == world
    assert World(cfg.sim).observation_shape == World(world).observation_shape
    if name == "merge-v0":
        assert cfg.sim.reward == world.reward  # highway-env's own reward
    else:
        assert cfg.sim.reward.goal == world.reward.goal and cfg.sim.reward.high_speed == world.reward.high_speed


def _learn(tmp_path, name: str, steps: int) -> list[dict]:
    base = TRAIN_PRESETS[name]
    cfg = dataclasses.replace(
        base,
        steps=steps,
        seed=0,
        out=tmp_path / name,
        eval_every=0,
        eval_episodes=0,
        checkpoint_every=1000,
        threads=1,
        compile=False,
        sim=dataclasses.replace(base.sim, worlds=128),
    )
    train(cfg, CPU, evaluator=None)
    return [json.loads(line) for line in open(cfg.out / "metrics.jsonl") if '"episodes"' in line]


@pytest.mark.slow
def test_ppo_learns_to_merge_without_crashing(tmp_path):
    rows = [r for r in _learn(tmp_path, "merge-v0", 20_480) if r.get("episodes", 0) > 0]
    first, last = rows[0], rows[-1]
    # (A 256-world run of the preset: crash rate 0.86 -> 0.50, return 6.7 -> 9.7 over its first 20k decisions.)
    assert last["collision_rate"] < first["collision_rate"] - 0.2, (first["collision_rate"], last["collision_rate"])
    assert last["episode_return"] > first["episode_return"] + 1.5, (first["episode_return"], last["episode_return"])


def test_ppo_learns_to_stop_crashing_in_exit_v0(tmp_path):
    rows = [r for r in _learn(tmp_path, "exit-v0", 20_480) if r.get("episodes", 0) > 0]
    first, last = rows[0], rows[-1]
    assert last["collision_rate"] < first["collision_rate"] - 0.3, (first["collision_rate"], last["collision_rate"])
    assert last["episode_return"] > first["episode_return"], (first["episode_return"], last["episode_return"])
