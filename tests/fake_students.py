"""A student for loss tests: its logits are its parameters, so a loss's gradient reads straight off them."""

from __future__ import annotations

from types import SimpleNamespace

import torch


class LogitsStudent(torch.nn.Module):
    """`forward(obs) -> (logits [rows, 5], value 0)`, the logits being the parameter `logits`, from `init`."""

    log_std = None  # meta actions

    def __init__(self, init: torch.Tensor) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(init.clone())

    def forward(self, obs):
        return self.logits, torch.zeros(obs.shape[0])


def as_learner(student: torch.nn.Module) -> SimpleNamespace:
    """What `fuyao.train.bc.bc_loss` reads of a `Learner`: the network, the model and the precision."""
    return SimpleNamespace(net=student, model=student, bf16=False)
