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


def noisy_action(action: torch.Tensor, mask: torch.Tensor | None, p: float, g: torch.Generator) -> torch.Tensor:
    """`action` perturbed for DART (Laskey et al. 2017): meta actions (`mask` `[..., 5]` of the available ones)
    are replaced, each with probability `p`, by one drawn uniformly from the available actions; continuous ones
    (`mask` None) get Gaussian noise of standard deviation `p`, clipped to [-1, 1]. Drawn from `g`."""
    if mask is None:  # continuous
        return (action + p * torch.randn(action.shape, generator=g, device=action.device)).clamp(-1.0, 1.0)
    scores = torch.rand(mask.shape, generator=g, device=mask.device).masked_fill(~mask, -1.0)
    drawn = scores.argmax(-1)  # uniform over the available actions
    swap = torch.rand(action.shape, generator=g, device=action.device) < p
    return torch.where(swap, drawn, action.long())
