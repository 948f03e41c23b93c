"""The merge-v0 and exit-v0 training presets: they train in the worlds they mirror, and PPO learns there.

The learning tests run PPO for a small budget from the preset itself (fewer worlds) and assert that the crash
rate of the training episodes falls and their return rises by a margin; they are `slow` (about a minute each on
one core), the preset checks are not.
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
    # Measured (seed 0, 128 worlds): crash rate 0.86 -> 0.45, return 6.7 -> 10 over 20k decisions.
    assert last["collision_rate"] < first["collision_rate"] - 0.2, (first["collision_rate"], last["collision_rate"])
    assert last["episode_return"] > first["episode_return"] + 1.5, (first["episode_return"], last["episode_return"])


@pytest.mark.slow
def test_ppo_learns_to_stop_crashing_in_exit_v0(tmp_path):
    rows = [r for r in _learn(tmp_path, "exit-v0", 20_480) if r.get("episodes", 0) > 0]
    first, last = rows[0], rows[-1]
    assert last["collision_rate"] < first["collision_rate"] - 0.3, (first["collision_rate"], last["collision_rate"])
    assert last["episode_return"] > first["episode_return"], (first["episode_return"], last["episode_return"])
