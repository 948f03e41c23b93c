"""`FuyaoSB3VecEnv`: `FuyaoVectorEnv` as a Stable-Baselines3 `VecEnv`, so SB3's algorithms train on it directly
(`PPO("MlpPolicy", FuyaoSB3VecEnv(env))`). Needs `fuyao[sb3]`.

SB3 takes NumPy, so observations, rewards and dones cross to the host once per step (`FuyaoVectorEnv` itself
keeps them on the device for trainers that take tensors). `num_envs = worlds * controlled`, sub-env `i` being
controlled slot `i % C` of world `i // C`, as in `FuyaoVectorEnv`.

- `step_wait` returns obs `[E, *obs_shape]` float32, rewards `[E]` float32, dones `[E]` bool (terminated or
  truncated) and one info dict per sub-env: the per-step metric terms of `World.step` as Python scalars
  (`info_keys`, all of them by default), `active`, `TimeLimit.truncated` (SB3's flag for bootstrapping a time
  limit), and where the episode ended, `terminal_observation` (what it ended in; the returned observation is the
  next episode's first, as SB3 expects).
- Action masks (meta actions): `env_method("action_masks")` returns one `(5,)` bool mask per sub-env for the
  current observation, which is what sb3-contrib's `MaskablePPO` asks for; `action_masks()` gives them as
  `[E, 5]`.
- The sub-envs are slots of one batched simulator, not separate objects: `get_attr` reads the attribute of the
  wrapped `FuyaoVectorEnv` (the same for every index), `set_attr` and `env_method` act on it once, and so accept
  only all indices (`None`). `env_is_wrapped` is False.
- Seeding: `seed(s)` then `reset()` resets every world from `s` (`FuyaoVectorEnv.reset(seed=s)`), SB3's
  per-sub-env offsets aside: the worlds already draw distinct streams from one seed.
- Several controlled vehicles per world: a vehicle whose episode ended while its world drives on is inactive
  (all-zero observation, reward 0, not done: `info["active"]` False) until it re-enters; SB3 has no mask for
  such steps and trains on them. Prefer `controlled = 1`, or `respawn = True` to keep inactive steps rare.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from fuyao.envs.gym import FuyaoVectorEnv, _python_scalar, make_vector_env
from fuyao.envs.numpy_vector import to_numpy

PER_SUB_ENV_METHODS = ("action_masks",)


class FuyaoSB3VecEnv(VecEnv):
    """A Stable-Baselines3 `VecEnv` over a `FuyaoVectorEnv` (see the module docstring)."""

    def __init__(self, env: FuyaoVectorEnv, info_keys: Sequence[str] | None = None) -> None:
        self.env = env
        self.info_keys = None if info_keys is None else tuple(info_keys)
        self._actions: Any = None
        self._masks: np.ndarray | None = None  # [E, 5] bool, for the current observation
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    def _store_masks(self, infos: dict[str, torch.Tensor]) -> None:
        self._masks = to_numpy(infos["action_mask"]) if "action_mask" in infos else None

    def reset(self) -> VecEnvObs:
        seed = self._seeds[0]
        obs, infos = self.env.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        self._store_masks(infos)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        if self._masks is not None:
            for info, mask in zip(self.reset_infos, self._masks):
                info["action_mask"] = mask
        return to_numpy(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("FuyaoSB3VecEnv.step_wait: call step_async(actions) first")
        obs, reward, terminated, truncated, infos = self.env.step(self._actions)
        self._actions = None
        done = terminated | truncated
        keys = [k for k in (self.info_keys or infos) if k not in ("final_obs", "_final_obs", "action_mask")]
        terms = torch.stack([infos[k].double() for k in keys]).cpu().numpy() if keys else np.zeros((0, self.num_envs))
        dtypes = [infos[k].dtype for k in keys]
        done_np, time_limit = to_numpy(done), to_numpy(truncated & ~terminated)
        final_obs = to_numpy(infos["final_obs"]) if done_np.any() else None
        self._store_masks(infos)
        out: list[dict[str, Any]] = []
        for i in range(self.num_envs):
            info = {k: _python_scalar(float(terms[j, i]), dt) for j, (k, dt) in enumerate(zip(keys, dtypes))}
            info["TimeLimit.truncated"] = bool(time_limit[i])
            if done_np[i]:
                info["terminal_observation"] = final_obs[i]
            out.append(info)
        return to_numpy(obs), to_numpy(reward), done_np, out

    def action_masks(self) -> np.ndarray:
        """`[E, 5]` bool: the meta actions each sub-env may take now."""
        if self._masks is None:
            raise RuntimeError("FuyaoSB3VecEnv.action_masks: meta actions only, and after reset()")
        return self._masks

    def close(self) -> None:
        self.env.close()

    def _all(self, indices: VecEnvIndices, what: str) -> list[int]:
        index = list(self._get_indices(indices))
        if sorted(index) != list(range(self.num_envs)):
            raise ValueError(
                f"{what}: got indices {index}; allowed: None (all sub-envs: they are slots of one simulator)"
            )
        return index

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        index = list(self._get_indices(indices))
        if attr_name in PER_SUB_ENV_METHODS:
            return [getattr(self, attr_name)] * len(index)
        return [getattr(self.env, attr_name)] * len(index)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._all(indices, "set_attr")
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        index = list(self._get_indices(indices))
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in index]
        self._all(indices, "env_method")
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result] * len(index)

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))


def make_sb3_vec_env(
    preset_name: str = "highway",
    device: torch.device | str = "cpu",
    compile: bool = False,
    info_keys: Sequence[str] | None = None,
    **sim_overrides,
) -> FuyaoSB3VecEnv:
    """A `FuyaoSB3VecEnv` from a named preset with `SimConfig` fields replaced, e.g.
    `make_sb3_vec_env("highway-v0", worlds=16)`."""
    return FuyaoSB3VecEnv(make_vector_env(preset_name, device, compile=compile, **sim_overrides), info_keys)
