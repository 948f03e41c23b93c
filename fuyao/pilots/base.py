"""The one interface every pilot has: batched `act(obs) -> action`."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from fuyao.sim.state import WorldState


@runtime_checkable
class Pilot(Protocol):
    """Something that drives the controlled vehicles.

    `obs` is `[W, C, *obs_shape]` (or `[batch, *obs_shape]`); the result is `[W, C]` int64 meta actions or
    `[W, C, 2]` continuous actions. A pilot that plans from the full scene (the rule-based one, nuPlan-style
    planners) also reads the frozen `state`; learned pilots ignore it.
    """

    def act(self, obs: torch.Tensor, state: WorldState | None = None) -> torch.Tensor: ...
