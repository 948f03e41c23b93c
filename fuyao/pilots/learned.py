"""Learned pilots and the checkpoint file they live in.

A checkpoint is one `torch.save` file (loaded with `weights_only=True`: no pickled code runs):

    format   "fuyao-checkpoint"        version  CHECKPOINT_VERSION
    sim      JSON of the SimConfig the policy was trained on (observation and action spaces follow from it)
    policy   JSON of the PolicyConfig (network shape)
    model    the ActorCritic state dict
    train    JSON of the resolved training config (for `--resume`; absent in exported pilots)
    resume   optimizer, world state, random generator state and counters (for `--resume`)
    summary  JSON of the run's counters and latest evaluation

`load(path)` returns a `LearnedPilot`; anything missing, truncated, corrupt or inconsistent raises
`CheckpointError` naming the file and what is wrong, before any weight is copied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from fuyao.configio import from_dict
from fuyao.pilots.networks import ActorCritic, PolicyConfig, deterministic_action, distribution
from fuyao.sim.config import ActionType, ConfigError, SimConfig
from fuyao.sim.observe import observation_shape
from fuyao.sim.state import WorldState

CHECKPOINT_FORMAT = "fuyao-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, truncated, corrupt, or made for another configuration."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dict, with `sim` and `policy` parsed to configs. Raises `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a truncated zip or a foreign file
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a Fuyao checkpoint (field 'format' is not {CHECKPOINT_FORMAT!r})")
    if data.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: field 'version': got {data.get('version')!r}; this Fuyao reads version {CHECKPOINT_VERSION}"
        )
    for key in ("sim", "policy", "model"):
        if key not in data:
            raise CheckpointError(f"{path}: field {key!r} is missing")
    try:
        data["sim"] = from_dict(SimConfig, json.loads(data["sim"]), f"{path}: sim")
        data["policy"] = from_dict(PolicyConfig, json.loads(data["policy"]), f"{path}: policy")
    except (ConfigError, json.JSONDecodeError, TypeError) as err:
        raise CheckpointError(f"{path}: incompatible configuration: {err}") from None
    return data


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Refuse (before copying anything) a state dict whose keys, shapes or dtypes differ from `model`'s."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{where}: weights do not fit the network: missing {missing}, unexpected {unexpected}")
    for key, tensor in own.items():
        other = state[key]
        if not isinstance(other, torch.Tensor) or other.shape != tensor.shape or other.dtype != tensor.dtype:
            got = tuple(other.shape) if isinstance(other, torch.Tensor) else type(other).__name__
            raise CheckpointError(f"{where}: weight {key!r}: got {got}; the network needs {tuple(tensor.shape)}")
        if tensor.is_floating_point() and not torch.isfinite(other).all():
            raise CheckpointError(f"{where}: weight {key!r} holds NaN or inf")


def observation_space(sim: SimConfig) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, observation_shape(sim), np.float32)


def action_space(sim: SimConfig) -> spaces.Space:
    if sim.action is ActionType.META:
        return spaces.Discrete(5)
    return spaces.Box(-1.0, 1.0, (2,), np.float32)


class LearnedPilot:
    """A trained network as a pilot. `act(obs)` takes `[batch, *obs_shape]` or `[W, C, *obs_shape]` float32
    (torch tensor or NumPy array) and returns `[batch]` / `[W, C]` int64 meta actions or `[..., 2]` continuous
    actions in [-1, 1], as the same kind of array it was given. Deterministic (the mode) unless
    `deterministic=False`. Meta actions are masked by the world's action mask when the pilot is bound to a world
    (`for_world`) and given the state, or when `mask` is passed; otherwise impossible lane changes act as IDLE,
    as in highway-env."""

    def __init__(
        self, model: ActorCritic, sim: SimConfig, policy: PolicyConfig, deterministic: bool = True, world=None
    ) -> None:
        self.model = model.eval()
        self.sim = sim
        self.policy = policy
        self.deterministic = deterministic
        self.world = world
        self.observation_space = observation_space(sim)
        self.action_space = action_space(sim)
        self.obs_shape = tuple(self.observation_space.shape)

    def for_world(self, world) -> LearnedPilot:
        """The same pilot reading the action mask from `world` whenever `act` gets a state."""
        return LearnedPilot(self.model, self.sim, self.policy, self.deterministic, world)

    def to(self, device: torch.device | str) -> LearnedPilot:
        self.model.to(device)
        return self

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor | np.ndarray, state: WorldState | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor | np.ndarray:
        as_numpy = isinstance(obs, np.ndarray)
        x = torch.as_tensor(obs)
        out_device = x.device
        lead = x.ndim - len(self.obs_shape)
        if lead not in (1, 2) or tuple(x.shape[lead:]) != self.obs_shape:
            raise ValueError(
                f"LearnedPilot.act: observation shape {tuple(x.shape)} does not fit the pilot's observation space "
                f"{self.obs_shape} (expected [batch, *{self.obs_shape}] or [worlds, controlled, *{self.obs_shape}])"
            )
        batch = x.shape[:lead]
        device = next(self.model.parameters()).device
        x = x.to(device=device, dtype=torch.float32).reshape(-1, *self.obs_shape)
        if mask is None and state is not None and self.world is not None and self.sim.action is ActionType.META:
            mask = self.world.action_mask(state)
        if mask is not None:
            mask = torch.as_tensor(mask, device=device).reshape(-1, 5)
        actor_out, _ = self.model(x)
        if self.deterministic:
            action = deterministic_action(self.model, actor_out, mask)
        else:
            action = distribution(self.model, actor_out, mask).sample()
            if self.model.log_std is not None:
                action = action.clamp(-1.0, 1.0)
        action = action.reshape(*batch, *action.shape[1:]).to(out_device)
        return action.numpy() if as_numpy else action


def load(path: str | Path, device: torch.device | str = "cpu", deterministic: bool = True) -> LearnedPilot:
    """A pilot from a checkpoint written by `fuyao train` (`runs/NAME/checkpoints/best.pt`, `last.pt`, ...)."""
    data = read_checkpoint(path)
    model = ActorCritic(data["sim"], data["policy"])
    check_state_dict(model, data["model"], str(path))
    model.load_state_dict(data["model"])
    return LearnedPilot(model.to(device), data["sim"], data["policy"], deterministic)
