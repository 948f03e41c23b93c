"""`World`: the map bank, the config and the pure step, bound together (still stateless: it holds no
`WorldState`; the Gymnasium shells in `fuyao.envs` hold the current state for their users)."""

from __future__ import annotations

import warnings
from typing import Literal

import torch

from fuyao.roads.city import build_city, build_city_bank
from fuyao.roads.highway import build_highway, build_highway_bank
from fuyao.roads.highway_env_maps import build_exit_v0, build_merge_v0
from fuyao.roads.lanegraph import RoadMap, stack_maps
from fuyao.roads.ngp import build_ngp, build_ngp_bank
from fuyao.sim.config import ConfigError, MapKind, ObservationType, SimConfig
from fuyao.sim.constants import SimConstants
from fuyao.sim.neighbours import Surroundings, surroundings
from fuyao.sim.observe import observation_shape, observe
from fuyao.sim.reset import reset_state
from fuyao.sim.state import WorldState, select_worlds
from fuyao.sim.step import StepResult, action_mask, begin_decision, end_decision, step, tick_and_accumulate


def build_bank(cfg: SimConfig) -> RoadMap:
    """The map bank `cfg.map` asks for: `cfg.num_maps` maps of the chosen generator, seeds from `cfg.map_seed`;
    a `mixed` bank: highways, then cities, then NGP maps (`SimConfig.map_counts`), each kind from that seed; or the
    one map of an imported map file."""
    if cfg.map_file is not None:
        from fuyao.roads.io.mapfile import load_map

        return load_map(cfg.map_file)
    if cfg.map is MapKind.CITY:
        return build_city_bank(cfg.city, cfg.num_maps, cfg.map_seed)
    if cfg.map is MapKind.NGP:
        return build_ngp_bank(cfg.ngp, cfg.num_maps, cfg.map_seed)
    if cfg.map is MapKind.MIXED:
        n_highway, n_city, n_ngp = cfg.map_counts()
        seed = cfg.map_seed
        maps = [build_highway(cfg.road, seed + i) for i in range(n_highway)]
        maps += [build_city(cfg.city, seed + i) for i in range(n_city)]
        maps += [build_ngp(cfg.ngp, seed + i) for i in range(n_ngp)]
        return stack_maps(maps)
    if cfg.map is MapKind.MERGE_V0:
        return build_merge_v0()
    if cfg.map is MapKind.EXIT_V0:
        return build_exit_v0()
    return build_highway_bank(cfg.road, cfg.num_maps, cfg.map_seed)


class World:
    """Thousands of worlds stepped at once. `reset(seed) -> state`, `step(state, action) -> StepResult`."""

    def __init__(
        self,
        cfg: SimConfig,
        device: torch.device | str = "cpu",
        road: RoadMap | None = None,
        compile: bool | Literal["all", "tick", "tick+observe"] = False,
        cuda_graph: bool = False,
        spawns: bool = True,
    ) -> None:
        """`spawns=False`: the states stepped here come from elsewhere (logged scenarios, `fuyao.data.replay`), so
        the spawn windows need not hold `cfg.vehicles` (the check `reset` needs is skipped)."""
        self.cfg = cfg
        self.device = torch.device(device)
        self.road = (road if road is not None else build_bank(cfg)).to(self.device)
        if spawns:
            self._check_capacity()
        self.consts = SimConstants.build(cfg, self.device, self.road)  # the one host-to-device copy of config values
        self._parts = None
        self._compiled_once = False
        self._observe = None  # compiled `observe`, until its first call fails
        self._sur_key: tuple | None = None  # the state tensors `_sur` was computed from (`surroundings`)
        self._sur = None
        # `cuda_graph`: on CUDA the whole decision (compiled or not) is captured as one CUDA graph on the first
        # step and replayed (`fuyao.sim.graphs`); elsewhere, or where capture fails (a warning), steps run plain.
        self._graphed = None
        if cuda_graph and self.device.type == "cuda":
            from fuyao.sim.graphs import GraphedCall

            self._graphed = GraphedCall(self._plain_step)
        if compile not in (False, True, "all", "tick", "tick+observe"):
            raise ConfigError(f"World.compile: got {compile!r}; allowed: False, True / 'all', 'tick', 'tick+observe'")
        if compile:
            # "all" (True): three step graphs (begin, one tick, end) and `observe`, each compiled once; the tick
            # loop stays in Python. "tick": only the tick graph, 15 of a decision's 17 calls at 15 Hz.
            # `end_decision` (scoring, inflow, auto-reset) is most of the compile time (about 75 of 135 s cold on 2
            # CPU cores, highway preset, 512 worlds) and eager costs ~11% of a compiled decision: "tick" pays off
            # in runs of minutes. "tick+observe" (training): the tick and `observe` (~30 s more cold, then an
            # observation 15.2 -> 4.4 ms at 512 x 4 agents; training observes twice per decision).
            parts = {"begin": begin_decision, "tick": tick_and_accumulate, "end": end_decision}
            wanted = ("tick",) if compile in ("tick", "tick+observe") else tuple(parts)
            self._parts = tuple(_compile(f) if k in wanted else f for k, f in parts.items())
            # Not the raster on CPU: compiled there it took 5.2 s against 0.46 s eager (1,024 worlds; its scatters
            # and in-place cumulative sums; BENCHMARKS.md "Grid observations").
            raster_on_cpu = cfg.observation is ObservationType.RASTER and self.device.type == "cpu"
            if compile != "tick" and not raster_on_cpu:
                self._observe = _compile(observe)

    def _check_capacity(self) -> None:
        gap = self.cfg.spawn_gap_m
        per_map = ((self.road.lane_spawn_hi - self.road.lane_spawn_lo).clamp(min=0) / gap).floor().sum(dim=1)
        fit = int(per_map.min().item())
        if self.cfg.vehicles > fit:
            raise ConfigError(
                f"SimConfig.vehicles: got {self.cfg.vehicles}; allowed: at most {fit} vehicles fit in the spawn "
                f"window of the smallest map with spawn_gap_m = {gap} m (raise road.spawn_window or lower the count)"
            )

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return observation_shape(self.cfg)

    def reset(self, seed: int = 0) -> WorldState:
        """Initial state of every world; world `i` uses key `(seed mod 2^32) * 1_000_003 + i` (any int seed)."""
        w = self.cfg.worlds
        keys = (seed % 2**32) * 1_000_003 + torch.arange(w, dtype=torch.int64, device=self.device)
        zeros = torch.zeros(w, dtype=torch.int64, device=self.device)
        # Distinct tensors for the counters: no aliasing.
        return reset_state(self.road, self.cfg, keys, zeros, zeros.clone(), self.consts)

    def step(self, state: WorldState, action: torch.Tensor) -> StepResult:
        if self._graphed is not None:
            try:
                return self._graphed(state, action)
            except Exception as err:  # noqa: BLE001 (capture failed: see `fuyao.sim.graphs`)
                _warn_eager("capturing the world step as a CUDA graph", err, "running it without a graph")
                self._graphed = None
        return self._plain_step(state, action)

    def surroundings(self, state: WorldState) -> Surroundings:
        """Every vehicle's leaders, followers and junction conflicts in `state` (`fuyao.sim.neighbours`), computed
        once per state: the observation, the rule-based pilot and the decision's first tick all ask about the
        state a step returned, and the query is most of a city tick. States are values, never modified in
        place, so the state's own tensors are the key (one entry, the latest state)."""
        v = state.vehicles
        key = (state.map_id, v.lane, v.s, v.length, v.speed, v.present, v.dest)
        if self._sur_key is None or any(a is not b for a, b in zip(key, self._sur_key)):
            self._sur = surroundings(self.road, *key)
            self._sur_key = key
        return self._sur

    def _plain_step(self, state: WorldState, action: torch.Tensor) -> StepResult:
        if self._parts is not None and not self._compiled_once:
            # The first call compiles. Where that fails (on CPU Inductor needs a C++ compiler), say so once and
            # go on eager: the same step, slower. A fault of the step itself fails again, eagerly, below.
            try:
                result = step(state, action, self.road, self.cfg, self._parts, self.consts)
            except Exception as err:  # noqa: BLE001 (any compiler failure; see above)
                _warn_eager("torch.compile of the world step", err)
                self._parts = None
            else:
                self._compiled_once = True
                return result
        if self._parts is not None:
            return step(state, action, self.road, self.cfg, self._parts, self.consts)
        return step(state, action, self.road, self.cfg, None, self.consts, self.surroundings(state))

    def observe(self, state: WorldState) -> torch.Tensor:
        """`[W, C, *obs_shape]` float32."""
        if self._observe is not None:
            try:
                return self._observe(state, self.road, self.cfg, self.consts)
            except Exception as err:  # noqa: BLE001 (a compiler failure, as in `step`)
                _warn_eager("torch.compile of the observation", err)
                self._observe = None
        if self.cfg.observation is ObservationType.NATIVE:
            return observe(state, self.road, self.cfg, self.consts, self.surroundings(state))
        return observe(state, self.road, self.cfg, self.consts)

    def observe_worlds(self, state: WorldState, index: torch.Tensor) -> torch.Tensor:
        """The observation of the worlds `index [K]` only, `[K, C, *obs_shape]`: equal to `observe(state)[index]`
        (worlds are independent). Eager, and the surroundings cache is left alone (it holds the carried state's)."""
        return observe(select_worlds(state, index), self.road, self.cfg, self.consts)

    @property
    def observes_eagerly(self) -> bool:
        """The observation runs eagerly (not compiled): a few worlds cost a few worlds' time."""
        return self._observe is None

    def action_mask(self, state: WorldState) -> torch.Tensor:
        """`[W, C, 5]` bool (meta actions)."""
        return action_mask(state, self.road, self.cfg, self.consts)


# Inductor's C++ backend, scalar: the world's kernels are gathers by lane, slot and route index more than
# arithmetic, and a vectorised gather is a scalar loop through a stack buffer plus an index copy and a
# bounds check per vector. Scalar code is faster here (a compiled highway-v0 tick at 1,024 worlds: 8.4-8.6 vs
# 10.0 ms on a 2-core AMD EPYC, see BENCHMARKS.md) and compiles in about half the time. `simdlen=1` matches no
# vector ISA, so these graphs only get scalar code; the policy's graphs keep theirs (`cpp.vec_isa_ok=False`
# would do the same here, but Inductor caches the ISA list from the process's first compile, and training
# would be left scalar: test_compile). No effect on CUDA (Triton).
SIM_INDUCTOR_OPTIONS = {"cpp.simdlen": 1}


def _compile(fn):
    return torch.compile(fn, dynamic=False, options=SIM_INDUCTOR_OPTIONS)


def _warn_eager(what: str, err: Exception, instead: str = "running it eagerly") -> None:
    """Say once, at the caller's caller (the user's `World.step` / `World.observe` call), that `what` (compiling,
    capturing) failed and what runs instead."""
    warnings.warn(
        f"{what} failed ({type(err).__name__}: {str(err)[:200]}); {instead}",
        RuntimeWarning,
        stacklevel=3,
    )
