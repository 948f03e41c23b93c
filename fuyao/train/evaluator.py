"""Periodic evaluation during training: the closed-loop evaluation (`fuyao.evaluation`) of the current weights on
the training preset's suite, scaled down to `eval_episodes`, with the same metric definitions and score as
`fuyao eval`."""

from __future__ import annotations

import copy

import torch

from fuyao.pilots.learned import LearnedPilot
from fuyao.pilots.networks import ActorCritic
from fuyao.train.config import TrainConfig


class Evaluator:
    """`evaluator(model) -> summary dict` (score, collision_rate, route_completion, progress_m, ...)."""

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        from fuyao.evaluation import get_suite

        self.cfg = cfg
        self.device = device
        self.suite = get_suite(cfg.preset)

    def __call__(self, model: ActorCritic) -> dict[str, float]:
        from fuyao.evaluation import evaluate

        frozen = copy.deepcopy(model).eval()  # the pilot must not change while training goes on
        pilot = LearnedPilot(frozen, self.cfg.sim, self.cfg.policy)
        result = evaluate(
            lambda world: pilot.for_world(world), self.suite, self.device, episodes=self.cfg.eval_episodes
        )
        return dict(result.summary)
