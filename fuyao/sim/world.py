"""`World`: the map bank, the config and the pure step, bound together (still stateless: it holds no
`WorldState`; the Gymnasium shells in `fuyao.envs` hold the current state for their users)."""

from __future__ import annotations

import torch

from fuyao.roads.highway import build_highway_bank
from fuyao.roads.lanegraph import RoadMap
from fuyao.sim.config import ConfigError, SimConfig
from fuyao.sim.observe import observation_shape, observe
from fuyao.sim.reset import reset_state
from fuyao.sim.state import WorldState
from fuyao.sim.step import StepResult, action_mask, begin_decision, end_decision, step, tick_and_accumulate


class World:
    """Thousands of worlds stepped at once. `reset(seed) -> state`, `step(state, action) -> StepResult`."""

    def __init__(
        self,
        cfg: SimConfig,
        device: torch.device | str = "cpu",
        road: RoadMap | None = None,
        compile: bool = False,
    ) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.road = (road if road is not None else build_highway_bank(cfg.road, cfg.num_maps, cfg.map_seed)).to(
            self.device
        )
        self._check_capacity()
        self._parts = None
        if compile:
            # Three graphs (begin, one tick, end), each compiled once; the tick loop stays in Python.
            self._parts = tuple(
                torch.compile(f, dynamic=False) for f in (begin_decision, tick_and_accumulate, end_decision)
            )

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
        return reset_state(self.road, self.cfg, keys, zeros, zeros.clone())  # distinct tensors: no aliasing

    def step(self, state: WorldState, action: torch.Tensor) -> StepResult:
        return step(state, action, self.road, self.cfg, self._parts)

    def observe(self, state: WorldState) -> torch.Tensor:
        """`[W, C, *obs_shape]` float32."""
        return observe(state, self.road, self.cfg)

    def action_mask(self, state: WorldState) -> torch.Tensor:
        """`[W, C, 5]` bool (meta actions)."""
        return action_mask(state, self.road, self.cfg)
