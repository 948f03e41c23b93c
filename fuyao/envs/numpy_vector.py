"""`NumpyVectorEnv`: `FuyaoVectorEnv` with NumPy at the boundary, for trainers written against NumPy Gymnasium
vector envs (CleanRL, most of the ecosystem). Everything else (the autoreset mode, `final_obs`, `active`,
`action_mask`, the metric terms) is `FuyaoVectorEnv`'s, moved to the host once per step. Trainers that can take
tensors should use `FuyaoVectorEnv` itself: this wrapper costs a device-to-host copy of every output."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorWrapper
from gymnasium.vector.utils import batch_space

from fuyao.envs.gym import FuyaoVectorEnv


def to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


class NumpyVectorEnv(VectorWrapper):
    """NumPy observations `[E, *obs_shape]` float32 (`[E, prod(obs_shape)]` with `flatten`), rewards `[E]` float32,
    flags `[E]` bool and infos of NumPy arrays; actions as NumPy arrays (or anything `FuyaoVectorEnv` takes).

    `flatten` gives flat observation vectors (the MLP agents of CleanRL-style scripts size their first layer as
    `prod(single_observation_space.shape)` and feed the batch as it comes); `infos["final_obs"]` is flattened too.
    """

    def __init__(self, env: FuyaoVectorEnv, flatten: bool = False) -> None:
        super().__init__(env)
        self.flatten = flatten
        if flatten:
            single = env.single_observation_space
            self.single_observation_space = spaces.Box(-np.inf, np.inf, (int(np.prod(single.shape)),), np.float32)
            self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def _obs(self, obs: torch.Tensor) -> np.ndarray:
        out = to_numpy(obs)
        return out.reshape(out.shape[0], -1) if self.flatten else out

    def _infos(self, infos: dict[str, torch.Tensor]) -> dict[str, Any]:
        out = {k: to_numpy(v) for k, v in infos.items()}
        if self.flatten and "final_obs" in out:
            out["final_obs"] = out["final_obs"].reshape(self.num_envs, -1)
        return out

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, infos = self.env.reset(seed=seed, options=options)
        return self._obs(obs), self._infos(infos)

    def step(self, actions):
        obs, reward, terminated, truncated, infos = self.env.step(actions)
        return self._obs(obs), to_numpy(reward), to_numpy(terminated), to_numpy(truncated), self._infos(infos)
