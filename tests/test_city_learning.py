"""Learning on a tiny city task: one signalised junction, where the pilot must wait for green and turn.

Behaviour cloning from the rule-based pilot (DAgger), through the trainer, then a closed-loop evaluation of the
learned pilot beside the rule-based pilot and an untrained network on held-out seeds. The guard for the city's
training path: a cloned pilot that crept over the stop line at red (38 runs per 512 agents x 25 s before the
junction block had its near-line features, and while the rule-based pilot labelled SLOWER where the action mask
forbids it) fails it. Measured: 0.0 red-light runs per km after 400k decisions (untrained 3.35, rule-based 0).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fuyao.evaluation.runner import evaluate
from fuyao.evaluation.suites import Scenario, Suite
from fuyao.pilots.learned import load
from fuyao.pilots.networks import Encoder, PolicyConfig
from fuyao.pilots.rule_based import RuleBasedPilot
from fuyao.presets import preset
from fuyao.roads.city import CityConfig
from fuyao.train.config import Algo, BCConfig, TrainConfig
from fuyao.train.run import train

CPU = torch.device("cpu")


def junction_task() -> object:
    """One signalised junction (four arms, one lane each way), short greens so every episode meets a red,
    random trips (two in three turn), 25 s episodes."""
    return preset(
        "city",
        city=CityConfig(rows=1, cols=1, lanes=1, signal_fraction=1.0, green_s=(6.0, 8.0), stub_m=70.0),
        worlds=256,
        vehicles=4,
        controlled=2,
        num_maps=4,
        episode_s=25.0,
    )


def suite(sim) -> Suite:
    held_out = Scenario("junction", "one signalised junction, held-out seeds", sim, seed=90_001, episodes=128)
    return Suite("junction", "test", "the tiny city task", (held_out,))


@pytest.mark.slow
def test_behaviour_cloning_learns_to_wait_for_green_and_turn(tmp_path):
    sim = junction_task()
    cfg = TrainConfig(
        preset="city-junction",
        algo=Algo.BC,
        steps=400_000,
        seed=3,
        out=tmp_path / "run",
        eval_every=0,
        eval_episodes=0,
        checkpoint_every=1000,
        threads=torch.get_num_threads(),  # the test session's share of the cores (tests/conftest.py)
        sim=sim,
        policy=PolicyConfig(encoder=Encoder.MLP, hidden=256),
        bc=BCConfig(rollout_steps=16, epochs=4, minibatches=16, teacher_iterations=40),
    )
    summary = train(cfg, CPU, evaluator=None)
    assert summary["decisions"] >= cfg.steps
    pilot = load(cfg.out / "checkpoints" / "last.pt")
    s = suite(sim)
    learned = evaluate(lambda world: pilot.for_world(world), s).summary
    teacher = evaluate(lambda world: RuleBasedPilot(world), s).summary
    untrained_cfg = dataclasses.replace(cfg, steps=1, out=tmp_path / "untrained")
    train(untrained_cfg, CPU, evaluator=None)
    untrained = evaluate(lambda world: load(untrained_cfg.out / "checkpoints" / "last.pt").for_world(world), s).summary
    print(
        {
            k: (learned[k], teacher[k], untrained[k])
            for k in ("red_light_runs_per_km", "route_completion", "arrival_rate", "collision_rate", "score")
        }
    )
    assert teacher["red_light_runs_per_km"] == 0.0
    assert untrained["red_light_runs_per_km"] > 1.0, untrained
    assert learned["red_light_runs_per_km"] < 0.1 * untrained["red_light_runs_per_km"], (learned, untrained)
    assert learned["route_completion"] > 0.8 * teacher["route_completion"], (learned, teacher)
    assert learned["collision_rate"] <= teacher["collision_rate"] + 0.02, (learned, teacher)
