"""Gymnasium shells around `World`: the only objects in Fuyao that hold a current `WorldState`.

`FuyaoVectorEnv` (gymnasium.vector.VectorEnv)
    One sub-environment per controlled vehicle: `num_envs = worlds * controlled`, flattened world-major (sub-env
    `i` is controlled slot `i % C` of world `i // C`). Observations, rewards, flags, infos and actions are
    **torch tensors on the world's device**, not NumPy arrays, as in other GPU simulators (Brax, GPUDrive,
    Isaac Lab): the trainer reads and writes device memory and nothing crosses to the host. Actions may also be
    given as NumPy arrays or lists; they are moved to the device. `observation_space` / `action_space` are the
    usual NumPy-based Gymnasium spaces and describe shapes and dtypes (their `sample()` returns NumPy, which
    `step` accepts).

    Autoreset is `AutoresetMode.SAME_STEP`: a world whose episode ended is reset inside the same `step`; the
    returned observation is the fresh episode's first, and the observation the episode ended in is in
    `infos["final_obs"]`, a full `[num_envs, *obs_shape]` tensor valid where the bool mask `infos["_final_obs"]`
    (= terminated | truncated) is set.

    Several controlled vehicles per world (self-play) follow PettingZoo's agents-leaving rule: a vehicle whose
    episode terminated (crash, off-road, missed route, arrival) while others in its world drive on stays
    inactive until the whole world resets: `infos["active"]` False, reward 0, terminated and truncated False,
    an all-zero observation. Its next episode starts, without a flag, at the step its world resets (when every
    controlled vehicle of the world is done or time is up). Mask inactive steps out of the loss with
    `infos["active"]`. With `SimConfig.respawn` it instead enters again as a new agent at a clear road entry
    while its world drives on: the returned observation is then its new episode's first, as for a reset world
    (it stays inactive, as above, for the decisions its entry is blocked).

`FuyaoEnv` (gymnasium.Env)
    One world with one controlled vehicle; NumPy float32 observations, `int` (meta) or `(2,)` float (continuous)
    actions, Python scalars in `info`. Standard Gymnasium semantics: after `terminated or truncated` call
    `reset()`.

`make_env`, `make_vector_env` build either from a named preset; `register()` adds Gymnasium ids (`GYM_IDS`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from fuyao.presets import PRESETS, preset
from fuyao.sim.config import ActionType, ConfigError, SimConfig
from fuyao.sim.state import WorldState, replace
from fuyao.sim.step import StepResult
from fuyao.sim.world import World

NUM_META_ACTIONS = 5  # highway-env DiscreteMetaAction: LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER
SEED_MODULUS = 2**32  # World keys are 32-bit; larger seeds are taken modulo this

# Gymnasium id -> preset name. Gymnasium refuses an unversioned id beside a versioned one of the same name
# ("fuyao/highway" next to "fuyao/highway-v0"), so Fuyao's own highway (ramps, curves, mixed traffic) is
# registered as "fuyao/highway-ramps"; `gymnasium.make("fuyao/highway")` resolves to "fuyao/highway-v0".
GYM_IDS: dict[str, str] = {
    "fuyao/highway-v0": "highway-v0",
    "fuyao/merge-v0": "merge-v0",
    "fuyao/exit-v0": "exit-v0",
    "fuyao/highway-ramps": "highway",
    "fuyao/smoke": "smoke",
}


def single_observation_space(world: World) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, world.observation_shape, np.float32)


def single_action_space(cfg: SimConfig) -> spaces.Space:
    if cfg.action is ActionType.META:
        return spaces.Discrete(NUM_META_ACTIONS)
    return spaces.Box(-1.0, 1.0, (2,), np.float32)


def world_seed(seed: int | None, np_random: np.random.Generator) -> int:
    """The integer `World.reset` gets: `seed` itself, or a draw from the env's generator when `seed` is None
    (so `reset(seed=s)` followed by plain `reset()` calls is reproducible too)."""
    if seed is None:
        return int(np_random.integers(0, SEED_MODULUS))
    return int(seed) % SEED_MODULUS


def terminal_observation(world: World, result: StepResult) -> torch.Tensor:
    """What each controlled vehicle saw when its decision ended, before auto-reset, `[W, C, *obs_shape]`.

    `observe` zeroes inactive vehicles, and a vehicle that terminated in this decision is already inactive in
    `result.final_state`; it is unmasked here so a crash's last observation shows the crash. Vehicles that
    left in an earlier decision stay zero."""
    final = result.final_state
    return world.observe(replace(final, active=final.active | result.terminated))


class FuyaoVectorEnv(VectorEnv):
    """`worlds * controlled` sub-environments on one device, tensors in and out (see the module docstring).

    reset(seed) -> obs `[E, *obs_shape]` float32, infos
    step(actions `[E]` int (meta) or `[E, 2]` float in [-1, 1] (continuous))
        -> obs `[E, *obs_shape]` float32, reward `[E]` float32, terminated `[E]` bool, truncated `[E]` bool, infos

    with `E = num_envs`. `infos` holds every per-step metric term of `World.step` (`collision`, `progress_m`,
    `speed`, `reward_*`, `active`, ...) as `[E]` tensors describing the decision just taken (before any
    auto-reset); world-level terms (`world_*`) are reported on each world's first sub-env (index `w * C`) and
    zero on the others, so sums over sub-envs count each world once. `action_mask` `[E, 5]` bool (meta
    actions) refers to the returned observation. Meta actions outside 0..4 act as IDLE (not checked: that
    would need a device sync).
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, world: World) -> None:
        cfg = world.cfg
        self.world = world
        self.cfg = cfg
        self.device = world.device
        self.num_worlds = cfg.worlds
        self.controlled = cfg.controlled
        self.num_envs = cfg.worlds * cfg.controlled
        self.obs_shape = world.observation_shape
        self.single_observation_space = single_observation_space(world)
        self.single_action_space = single_action_space(cfg)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.state: WorldState | None = None

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        """`[W, C, ...]` -> `[W * C, ...]`, world-major."""
        return x.reshape(self.num_envs, *x.shape[2:])

    def _per_world(self, x: torch.Tensor) -> torch.Tensor:
        """`[W]` -> `[W * C]`: the value on each world's first sub-env, zero on the others."""
        return torch.nn.functional.pad(x.unsqueeze(1), (0, self.controlled - 1)).reshape(self.num_envs)

    def _action_tensor(self, actions) -> torch.Tensor:
        a = torch.as_tensor(actions, device=self.device)
        w, c = self.num_worlds, self.controlled
        if self.cfg.action is ActionType.META:
            if tuple(a.shape) != (self.num_envs,):
                raise ValueError(
                    f"actions: got shape {tuple(a.shape)}; expected ({self.num_envs},) meta action indices 0..4"
                )
            return a.long().view(w, c)
        if tuple(a.shape) != (self.num_envs, 2):
            raise ValueError(
                f"actions: got shape {tuple(a.shape)}; expected ({self.num_envs}, 2) (acceleration, steering) in [-1, 1]"
            )
        return a.float().view(w, c, 2)

    def _mask_info(self, state: WorldState) -> dict[str, torch.Tensor]:
        if self.cfg.action is not ActionType.META:
            return {}
        return {"action_mask": self._flat(self.world.action_mask(state))}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reset every world. The same `seed` gives the same rollouts for the same actions, bit for bit on one
        device. `options` is not used."""
        if options:
            raise ValueError(f"options: got keys {sorted(options)}; allowed: none (FuyaoVectorEnv takes no options)")
        super().reset(seed=seed)
        self.state = self.world.reset(world_seed(seed, self.np_random))
        infos = {"active": self._flat(self.state.active), **self._mask_info(self.state)}
        return self._flat(self.world.observe(self.state)), infos

    def step(self, actions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        if self.state is None:
            raise RuntimeError("FuyaoVectorEnv.step: call reset() before the first step()")
        result = self.world.step(self.state, self._action_tensor(actions))
        self.state = result.state
        terminated = self._flat(result.terminated)
        truncated = self._flat(result.truncated)
        infos: dict[str, torch.Tensor] = {}
        for key, value in result.info.items():
            infos[key] = self._per_world(value) if key.startswith("world_") else self._flat(value)
        infos["final_obs"] = self._flat(terminal_observation(self.world, result))
        infos["_final_obs"] = terminated | truncated
        infos.update(self._mask_info(result.state))
        obs = self._flat(self.world.observe(result.state))
        return obs, self._flat(result.reward), terminated, truncated, infos


class FuyaoEnv(gymnasium.Env):
    """One world, one controlled vehicle, NumPy in and out: a standard `gymnasium.Env`.

    Observation: float32 array of `world.observation_shape`. Action: an int 0..4 (meta) or a `(2,)` array in
    [-1, 1] (continuous). `info` holds the per-step metric terms of `World.step` as Python scalars and, for
    meta actions, `action_mask` (5,) bool. After termination the returned observation is the one the episode
    ended in (the crash included); `World.step` has already begun a fresh episode internally, but `reset()`
    still starts deterministically from its seed.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, cfg: SimConfig, device: torch.device | str = "cpu", render_mode: str | None = None) -> None:
        if cfg.controlled != 1:
            raise ConfigError(
                f"SimConfig.controlled: got {cfg.controlled}; allowed: 1 for FuyaoEnv "
                "(use FuyaoVectorEnv for several controlled vehicles per world)"
            )
        if render_mode is not None:
            raise ValueError(f"render_mode: got {render_mode!r}; allowed: None (draw frames with fuyao.viz)")
        self.cfg = dataclasses.replace(cfg, worlds=1)
        self.world = World(self.cfg, device)
        self.observation_space = single_observation_space(self.world)
        self.action_space = single_action_space(self.cfg)
        self.render_mode = None
        self.state: WorldState | None = None

    def _action_tensor(self, action) -> torch.Tensor:
        if self.cfg.action is ActionType.META:
            return torch.tensor([[int(action)]], dtype=torch.int64, device=self.world.device)
        a = np.asarray(action, dtype=np.float32)
        if a.shape != (2,):
            raise ValueError(f"action: got shape {a.shape}; expected (2,) (acceleration, steering) in [-1, 1]")
        return torch.from_numpy(a).to(self.world.device).view(1, 1, 2)

    def _mask_info(self, state: WorldState) -> dict[str, Any]:
        if self.cfg.action is not ActionType.META:
            return {}
        return {"action_mask": self.world.action_mask(state)[0, 0].cpu().numpy()}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if options:
            raise ValueError(f"options: got keys {sorted(options)}; allowed: none (FuyaoEnv takes no options)")
        super().reset(seed=seed)
        self.state = self.world.reset(world_seed(seed, self.np_random))
        obs = self.world.observe(self.state)[0, 0].cpu().numpy()
        return obs, self._mask_info(self.state)

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.state is None:
            raise RuntimeError("FuyaoEnv.step: call reset() before the first step()")
        result = self.world.step(self.state, self._action_tensor(action))
        self.state = result.state
        # With one controlled vehicle, `final_state` is `state` unless the episode ended: one observation serves.
        obs = terminal_observation(self.world, result)[0, 0].cpu().numpy()
        keys = list(result.info)
        values = [result.info[k][0] if k.startswith("world_") else result.info[k][0, 0] for k in keys]
        head = [result.reward[0, 0], result.terminated[0, 0], result.truncated[0, 0]]
        host = torch.stack([v.double() for v in head + values]).cpu().tolist()  # one transfer per step
        info: dict[str, Any] = {}
        for key, value, number in zip(keys, values, host[3:]):
            info[key] = _python_scalar(number, value.dtype)
        info.update(self._mask_info(result.final_state))
        return obs, float(host[0]), bool(host[1]), bool(host[2]), info


def _python_scalar(number: float, dtype: torch.dtype) -> bool | int | float:
    if dtype == torch.bool:
        return bool(number)
    if not dtype.is_floating_point:
        return int(number)
    return float(number)


def make_vector_env(
    preset_name: str = "highway", device: torch.device | str = "cpu", compile: bool = False, **sim_overrides
) -> FuyaoVectorEnv:
    """A `FuyaoVectorEnv` from a named preset with `SimConfig` fields replaced, e.g.
    `make_vector_env("highway-v0", device="cuda", worlds=1024)`."""
    return FuyaoVectorEnv(World(preset(preset_name, **sim_overrides), device, compile=compile))


def make_env(
    preset_name: str = "highway", device: torch.device | str = "cpu", render_mode: str | None = None, **sim_overrides
) -> FuyaoEnv:
    """A single-world `FuyaoEnv` from a named preset with `SimConfig` fields replaced (`worlds` is forced to 1)."""
    return FuyaoEnv(preset(preset_name, **sim_overrides), device, render_mode=render_mode)


def make_vector_env_for_gym(
    num_envs: int = 1, preset_name: str = "highway", device: torch.device | str = "cpu", **sim_overrides
) -> FuyaoVectorEnv:
    """Gymnasium's `vector_entry_point`: `gymnasium.make_vec(id, num_envs=E)` builds `E / controlled` worlds."""
    if preset_name not in PRESETS:
        raise ConfigError(f"preset: got {preset_name!r}; allowed: {', '.join(sorted(PRESETS))}")
    controlled = sim_overrides.get("controlled", PRESETS[preset_name].controlled)
    if num_envs < 1 or num_envs % controlled:
        raise ValueError(f"num_envs: got {num_envs}; allowed: a positive multiple of controlled = {controlled}")
    sim_overrides["worlds"] = num_envs // controlled
    return make_vector_env(preset_name, device, **sim_overrides)


def register() -> None:
    """Register the ids in `GYM_IDS` with Gymnasium (idempotent). Then `gymnasium.make("fuyao/smoke")` gives a
    `FuyaoEnv` and `gymnasium.make_vec("fuyao/smoke", num_envs=64)` a `FuyaoVectorEnv`; extra keyword arguments
    replace `SimConfig` fields (`gymnasium.make("fuyao/highway-v0", vehicles=21)`) or set `device`."""
    for env_id, preset_name in GYM_IDS.items():
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            env_id,
            entry_point="fuyao.envs.gym:make_env",
            vector_entry_point="fuyao.envs.gym:make_vector_env_for_gym",
            kwargs={"preset_name": preset_name},
        )
