"""PettingZoo shells for self-play: one agent per controlled vehicle, agents leaving and (with `SimConfig.respawn`)
appearing as their vehicles do.

`FuyaoParallelEnv` (pettingzoo.ParallelEnv)
    One world with `C = SimConfig.controlled` controlled vehicles, NumPy in and out, dictionaries keyed by agent
    name. It passes PettingZoo's `parallel_api_test`. Agent names are `"car{slot}_{life}"`: `slot` is the
    controlled vehicle slot 0..C-1, `life` counts the agents that slot has held in this episode (0 at reset). A
    vehicle that crashes, leaves the road, misses its exit or arrives is terminated and removed from `agents`;
    one whose time is up is truncated. With `respawn` (and C > 1) a slot whose agent ended enters again at a
    clear road entry as a *new* agent, `"car{slot}_{life + 1}"`, so no name comes back within an episode (an
    agent cannot be revived). `possible_agents` lists every name an episode can reach (C names without respawn;
    C x decisions_per_episode with it: a slot takes at most one new agent per decision); `agents` at reset is
    its first C entries. The episode ends when `agents` is empty; then call `reset()`.

    After `step` the dictionaries hold every agent that acted (its reward, flags, and for one that ended, the
    observation its episode ended in) and every agent that entered in this step (its first observation, reward
    0, flags False). `infos[agent]` holds `slot`, `life`, for agents that acted every per-step metric term of
    `World.step` as a Python scalar (world-level terms `world_*` are the same for every agent), and for agents
    that act next, `action_mask` (5,) bool of the meta actions they may take. Actions: an `int` 0..4 (meta) or a
    `(2,)` float array in [-1, 1] (continuous) for every agent in `agents`, no others.

`FuyaoParallelVectorEnv`
    The vectorised form for MARL trainers: `W` worlds x `C` slots, torch tensors `[W, C, ...]` on the world's
    device, auto-reset in the same step (as `FuyaoVectorEnv`), with the per-slot agent bookkeeping as tensors
    (`life`, `active`, `spawned`) so names never need the host. `FuyaoParallelEnv` is this class with `W = 1`
    and dictionaries on top. `FuyaoVectorEnv` (Gymnasium, flat `[W * C]`) remains the form for single-agent
    trainers that treat every slot as an environment.

`make_parallel_env`, `make_parallel_vector_env` build either from a named preset.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from pettingzoo import ParallelEnv

from fuyao.envs.gym import single_action_space, single_observation_space, terminal_observation, world_seed
from fuyao.presets import preset
from fuyao.sim.config import ActionType, SimConfig
from fuyao.sim.state import WorldState
from fuyao.sim.world import World

# Keys of `FuyaoParallelVectorEnv.step`'s infos that are agent bookkeeping, not metric terms of `World.step`.
BOOKKEEPING = frozenset(
    {"active", "life", "final_obs", "next_active", "next_life", "spawned", "world_done", "action_mask"}
)
IDLE = 1  # meta action of slots that hold no agent (ignored by the world: they are inactive)


def agent_name(slot: int, life: int) -> str:
    """The name of the `life`-th agent (0 at reset) of controlled slot `slot` within an episode."""
    return f"car{slot}_{life}"


def lives_per_episode(cfg: SimConfig) -> int:
    """How many agents one controlled slot can hold in an episode: one without respawn; with it, one per decision
    (the reset's, then at most one respawn per decision; a respawn in the last decision is undone by the reset)."""
    if cfg.respawn and cfg.controlled > 1:
        return cfg.decisions_per_episode
    return 1


class FuyaoParallelVectorEnv:
    """`W` worlds x `C` controlled slots for multi-agent trainers, tensors on the world's device.

    reset(seed) -> obs `[W, C, *obs_shape]` float32, infos
    step(actions `[W, C]` int (meta) or `[W, C, 2]` float in [-1, 1] (continuous))
        -> obs `[W, C, *obs_shape]`, reward `[W, C]` float32, terminated `[W, C]` bool, truncated `[W, C]` bool,
           infos

    Slots without an agent get reward 0, flags False, an all-zero observation, and their action is ignored.
    `infos` after `step`, every tensor on the device:
      - every metric term of `World.step`, `[W, C]` (`world_*`: `[W]`), for the decision just taken;
      - `active` `[W, C]` bool: the slot's agent took this decision (reward and flags are real), and `life`
        `[W, C]` int64: which of the slot's agents it was (its name is `agent_name(slot, life)`);
      - `final_obs` `[W, C, *obs_shape]`: what each acting agent saw when its decision ended, before any respawn or
        auto-reset (its last observation where it terminated or was truncated);
      - `next_active` `[W, C]` bool and `next_life` `[W, C]` int64: the agents the returned observation belongs to
        (the ones that act next);
      - `spawned` `[W, C]` bool: a new agent entered the slot in this step by respawn (not by a world reset);
      - `world_done` `[W]` bool: the world's episode ended in this step and it was reset: its returned
        observations are the new episode's first, with every slot's `next_life` 0;
      - `action_mask` `[W, C, 5]` bool (meta actions), for the returned observation.
    `reset` returns `next_active`, `next_life` and `action_mask`. The same seed gives the same rollouts (names
    included) for the same actions, bit for bit on one device.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, world: World) -> None:
        cfg = world.cfg
        self.world = world
        self.cfg = cfg
        self.device = world.device
        self.num_worlds = cfg.worlds
        self.controlled = cfg.controlled
        self.obs_shape = world.observation_shape
        self.single_observation_space = single_observation_space(world)
        self.single_action_space = single_action_space(cfg)
        self.lives_per_episode = lives_per_episode(cfg)
        self.state: WorldState | None = None
        self.life: torch.Tensor | None = None  # [W, C] int64, the life of each slot's current (or last) agent
        self.np_random, _ = seeding.np_random()

    def _action_tensor(self, actions) -> torch.Tensor:
        a = torch.as_tensor(actions, device=self.device)
        w, c = self.num_worlds, self.controlled
        if self.cfg.action is ActionType.META:
            if tuple(a.shape) != (w, c):
                raise ValueError(f"actions: got shape {tuple(a.shape)}; expected ({w}, {c}) meta action indices 0..4")
            return a.long()
        if tuple(a.shape) != (w, c, 2):
            raise ValueError(
                f"actions: got shape {tuple(a.shape)}; expected ({w}, {c}, 2) (acceleration, steering) in [-1, 1]"
            )
        return a.float()

    def _mask_info(self, state: WorldState) -> dict[str, torch.Tensor]:
        if self.cfg.action is not ActionType.META:
            return {}
        return {"action_mask": self.world.action_mask(state)}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reset every world (`seed` as `FuyaoVectorEnv.reset`). `options` is not used."""
        if options:
            raise ValueError(f"options: got keys {sorted(options)}; allowed: none (FuyaoParallelVectorEnv)")
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        self.state = self.world.reset(world_seed(seed, self.np_random))
        self.life = torch.zeros_like(self.state.active, dtype=torch.int64)
        infos = {"next_active": self.state.active, "next_life": self.life, **self._mask_info(self.state)}
        return self.world.observe(self.state), infos

    def step(self, actions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        if self.state is None or self.life is None:
            raise RuntimeError("FuyaoParallelVectorEnv.step: call reset() before the first step()")
        result = self.world.step(self.state, self._action_tensor(actions))
        acted = result.info["active"]
        continuing = acted & ~(result.terminated | result.truncated)
        reset_world = result.world_done.unsqueeze(1)
        spawned = result.state.active & ~continuing & ~reset_world
        next_life = torch.where(reset_world, 0, self.life + spawned.long())
        infos = dict(result.info)
        infos.update(
            life=self.life,
            final_obs=terminal_observation(self.world, result),
            next_active=result.state.active,
            next_life=next_life,
            spawned=spawned,
            world_done=result.world_done,
            **self._mask_info(result.state),
        )
        self.state, self.life = result.state, next_life
        return self.world.observe(result.state), result.reward, result.terminated, result.truncated, infos

    def close(self) -> None:
        pass


class FuyaoParallelEnv(ParallelEnv):
    """One world, `C` controlled vehicles as PettingZoo agents, NumPy in and out (see the module docstring).

    Every agent shares one observation space (float32 `world.observation_shape`) and one action space
    (`Discrete(5)` meta, or `Box(-1, 1, (2,))` continuous); `observation_space(agent)` returns the same object
    for every name. `state()` is the global view for centralised critics: every slot's observation, in slot
    order, flattened (zeros for slots without an agent).
    """

    metadata: dict[str, Any] = {"name": "fuyao_parallel_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(
        self,
        cfg: SimConfig,
        device: torch.device | str = "cpu",
        compile: bool = False,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode: got {render_mode!r}; allowed: None (draw frames with fuyao.viz)")
        self.render_mode = None
        self.cfg = dataclasses.replace(cfg, worlds=1)
        self.vec = FuyaoParallelVectorEnv(World(self.cfg, device, compile=compile))
        c = self.cfg.controlled
        self.possible_agents = [agent_name(s, life) for life in range(self.vec.lives_per_episode) for s in range(c)]
        self._known = frozenset(self.possible_agents)
        self.agents: list[str] = []
        self._slot: dict[str, int] = {}  # live agent -> its slot
        self._observation_space = self.vec.single_observation_space
        self._action_space = self.vec.single_action_space
        self.state_space = spaces.Box(-np.inf, np.inf, (c * int(np.prod(self.vec.obs_shape)),), np.float32)
        self._global: np.ndarray | None = None  # [C, *obs_shape] of the latest step, for `state()`

    def _check_name(self, agent: str) -> None:
        if agent not in self._known:
            raise KeyError(f"agent: got {agent!r}; allowed: names of possible_agents ('car0_0' ... )")

    # One space object shared by every agent: PettingZoo asks for the very same object on every call for an agent.
    def observation_space(self, agent: str) -> spaces.Space:
        self._check_name(agent)
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Space:
        self._check_name(agent)
        return self._action_space

    def _set_agents(self, slots: list[int], lives: list[int]) -> None:
        self.agents = [agent_name(s, life) for s, life in zip(slots, lives)]
        self._slot = dict(zip(self.agents, slots))

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start an episode; the same `seed` gives the same episode for the same actions. `options` is accepted
        for PettingZoo's API and not used."""
        obs, infos = self.vec.reset(seed=seed)
        obs = obs[0].cpu().numpy()
        active = infos["next_active"][0].cpu().tolist()
        masks = infos["action_mask"][0].cpu().numpy() if "action_mask" in infos else None
        slots = [s for s, a in enumerate(active) if a]
        self._set_agents(slots, [0] * len(slots))
        self._global = obs  # `observe` zeroes slots without an agent
        observations = {a: obs[s] for a, s in self._slot.items()}
        out_infos = {a: self._agent_info(s, 0, masks) for a, s in self._slot.items()}
        return observations, out_infos

    @staticmethod
    def _agent_info(slot: int, life: int, masks: np.ndarray | None) -> dict[str, Any]:
        info: dict[str, Any] = {"slot": slot, "life": life}
        if masks is not None:
            info["action_mask"] = masks[slot]
        return info

    def _action_array(self, actions: dict[str, Any]) -> torch.Tensor:
        missing = [a for a in self.agents if a not in actions]
        extra = [a for a in actions if a not in self._slot]
        if missing or extra:
            raise ValueError(
                f"actions: got keys {sorted(actions)}; expected exactly the live agents {self.agents} "
                f"(missing {missing}, not live {extra})"
            )
        c = self.cfg.controlled
        if self.cfg.action is ActionType.META:
            out = torch.full((1, c), IDLE, dtype=torch.int64)
            for agent, action in actions.items():
                out[0, self._slot[agent]] = int(action)
            return out
        out = torch.zeros(1, c, 2)
        for agent, action in actions.items():
            a = np.asarray(action, dtype=np.float32)
            if a.shape != (2,):
                raise ValueError(f"actions[{agent!r}]: got shape {a.shape}; expected (2,) (acceleration, steering)")
            out[0, self._slot[agent]] = torch.from_numpy(a)
        return out

    def step(self, actions: dict[str, Any]):
        """Advance one decision. Returns observations, rewards, terminations, truncations, infos: dictionaries
        over the agents that acted and the agents that entered (see the module docstring)."""
        if not self.agents:
            raise RuntimeError("FuyaoParallelEnv.step: no live agents; call reset() to start an episode")
        obs, reward, terminated, truncated, infos = self.vec.step(self._action_array(actions))
        # World 0 of every tensor, one transfer each; the world has C slots, so every array here is small.
        host = {k: v[0].cpu().numpy() for k, v in infos.items()}
        obs, reward, terminated, truncated = (x[0].cpu().numpy() for x in (obs, reward, terminated, truncated))
        masks = host.get("action_mask")
        metric_keys = [k for k in infos if k not in BOOKKEEPING]

        observations, rewards, terms_out, truncs_out, out_infos = {}, {}, {}, {}, {}
        next_slots, next_lives = [], []
        for slot in range(self.cfg.controlled):
            if host["active"][slot]:
                name = agent_name(slot, int(host["life"][slot]))
                ended = bool(terminated[slot] or truncated[slot])
                observations[name] = host["final_obs"][slot] if ended else obs[slot]
                rewards[name] = float(reward[slot])
                terms_out[name] = bool(terminated[slot])
                truncs_out[name] = bool(truncated[slot])
                info = {"slot": slot, "life": int(host["life"][slot])}
                info |= {k: _scalar(host[k] if k.startswith("world_") else host[k][slot]) for k in metric_keys}
                if not ended and masks is not None:
                    info["action_mask"] = masks[slot]
                out_infos[name] = info
                if not ended:
                    next_slots.append(slot)
                    next_lives.append(int(host["life"][slot]))
            if host["spawned"][slot]:
                life = int(host["next_life"][slot])
                name = agent_name(slot, life)
                observations[name] = obs[slot]
                rewards[name] = 0.0
                terms_out[name] = truncs_out[name] = False
                out_infos[name] = self._agent_info(slot, life, masks)
                next_slots.append(slot)
                next_lives.append(life)
        order = sorted(range(len(next_slots)), key=lambda i: next_slots[i])
        self._set_agents([next_slots[i] for i in order], [next_lives[i] for i in order])
        # `observe` zeroes slots without an agent; after the episode's end the world holds the next episode.
        self._global = np.zeros_like(obs) if host["world_done"] else obs
        return observations, rewards, terms_out, truncs_out, out_infos

    def state(self) -> np.ndarray:
        """`[C * prod(obs_shape)]` float32: every slot's latest observation (zeros where the slot has no agent)."""
        if self._global is None:
            raise RuntimeError("FuyaoParallelEnv.state: call reset() first")
        return self._global.reshape(-1)

    def close(self) -> None:
        self.vec.close()


def _scalar(x: np.ndarray) -> bool | int | float:
    if x.dtype == np.bool_:
        return bool(x)
    if np.issubdtype(x.dtype, np.integer):
        return int(x)
    return float(x)


def make_parallel_env(
    preset_name: str = "highway", device: torch.device | str = "cpu", compile: bool = False, **sim_overrides
) -> FuyaoParallelEnv:
    """A `FuyaoParallelEnv` from a named preset with `SimConfig` fields replaced (`worlds` is forced to 1), e.g.
    `make_parallel_env("highway-v0", controlled=4, respawn=True)`."""
    return FuyaoParallelEnv(preset(preset_name, **sim_overrides), device, compile=compile)


def make_parallel_vector_env(
    preset_name: str = "highway", device: torch.device | str = "cpu", compile: bool = False, **sim_overrides
) -> FuyaoParallelVectorEnv:
    """A `FuyaoParallelVectorEnv` from a named preset with `SimConfig` fields replaced, e.g.
    `make_parallel_vector_env("highway", device="cuda", worlds=512, controlled=8, respawn=True)`."""
    return FuyaoParallelVectorEnv(World(preset(preset_name, **sim_overrides), device, compile=compile))


__all__ = [
    "FuyaoParallelEnv",
    "FuyaoParallelVectorEnv",
    "agent_name",
    "lives_per_episode",
    "make_parallel_env",
    "make_parallel_vector_env",
]
