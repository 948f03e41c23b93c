"""Named, seeded, versioned scenario suites: the episodes every pilot is judged on.

A `Scenario` is a `SimConfig` (a preset with fields replaced), a seed and an episode count: its episodes are
the first episodes of worlds `0 .. episodes - 1` of `World(sim).reset(seed)`. World `i`'s episode depends only
on `(seed, i)` (each world has its own random key), so every pilot sees the same episodes, and a suite scaled
down (`Suite.scaled`) keeps a prefix of the same episodes.

A `Suite` is a tuple of scenarios that share one observation and one action space (`observation_space`,
`action_space`: the Gymnasium spaces of `fuyao.envs`). Its `version` changes whenever any scenario changes, so
numbers are only compared within one `name@version`.

Suites (`SUITES`):
    highway      the `highway` preset (native observation, meta actions): cruise, dense traffic, on-ramp merge
                 (the ego starts on the on-ramp), taking the exit, overtaking slow trucks, cut-ins, held-out
                 maps (map seeds never used in training, which uses `map_seed=0`). 1,000 episodes.
    highway-v0   the `highway-v0` preset (highway-kinematics observation, meta actions): highway-env's
                 highway-v0, dense, sparse, and held-out curved roads. 400 episodes.
    smoke        two tiny scenarios of the `smoke` preset, for tests. 6 episodes.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass

import gymnasium
import numpy as np
import torch

from fuyao.envs.gym import single_action_space
from fuyao.presets import preset
from fuyao.roads.lanegraph import RoadMap
from fuyao.sim.config import ConfigError, DriverConfig, SimConfig
from fuyao.sim.geometry import lane_attr, route_attr
from fuyao.sim.observe import observation_shape
from fuyao.sim.reset import UNREACHABLE_HALF
from fuyao.sim.state import WorldState, replace

RAMP_KIND = 1  # `RoadMap.lane_kind` of ramp lanes
RAMP_START_S = 30.0  # m along the on-ramp where the ego starts in `EgoStart.ON_RAMP`
RAMP_CLEARANCE_M = 30.0  # m: background cars on the ramp closer than this to the ego's start are removed
RAMP_SPEED_FRACTION = 0.8  # x the ramp's speed limit: the ego's speed at the start


class EgoStart(enum.Enum):
    RESET = "reset"  # where `World.reset` puts the controlled vehicles (`SimConfig.ego_position`)
    ON_RAMP = "on-ramp"  # the first controlled vehicle starts on the on-ramp and must merge


@dataclass(frozen=True)
class Scenario:
    """One scenario: `episodes` worlds of `sim` from `World.reset(seed)`."""

    name: str
    description: str
    sim: SimConfig  # `worlds` is replaced by `episodes` when the scenario runs
    seed: int
    episodes: int
    ego_start: EgoStart = EgoStart.RESET

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"Scenario.name: got {self.name!r}; allowed: letters, digits, '-' and '_'")
        if not isinstance(self.episodes, int) or self.episodes < 1:
            raise ConfigError(f"Scenario.episodes ({self.name}): got {self.episodes!r}; allowed: an integer >= 1")
        object.__setattr__(self, "ego_start", EgoStart(self.ego_start))

    @property
    def config(self) -> SimConfig:
        """The `SimConfig` the scenario runs: `sim` with one world per episode."""
        return dataclasses.replace(self.sim, worlds=self.episodes)

    def initial_state(self, world, seed: int | None = None) -> WorldState:
        """`world.reset(seed)` with the scenario's ego start applied (`world` built from `config`)."""
        state = world.reset(self.seed if seed is None else seed)
        if self.ego_start is EgoStart.ON_RAMP:
            state = place_ego_on_ramp(state, world.road, world.cfg)
        return state


@dataclass(frozen=True)
class Suite:
    """Scenarios that share one observation and one action space. Compare numbers only within `name@version`."""

    name: str
    version: str
    description: str
    scenarios: tuple[Scenario, ...]

    def __post_init__(self) -> None:
        if not self.scenarios:
            raise ConfigError(f"Suite.scenarios ({self.name}): empty; allowed: one or more scenarios")
        names = [s.name for s in self.scenarios]
        if len(set(names)) != len(names):
            raise ConfigError(f"Suite.scenarios ({self.name}): duplicate scenario names {names}")
        first = self.scenarios[0].sim
        for s in self.scenarios[1:]:
            same = (
                s.sim.observation is first.observation
                and s.sim.action is first.action
                and observation_shape(s.sim) == observation_shape(first)
                and s.sim.controlled == first.controlled
            )
            if not same:
                raise ConfigError(
                    f"Suite.scenarios ({self.name}): scenario {s.name!r} has observation {s.sim.observation.value} "
                    f"{observation_shape(s.sim)}, action {s.sim.action.value}, controlled {s.sim.controlled}; "
                    f"allowed: those of {self.scenarios[0].name!r} ({first.observation.value} "
                    f"{observation_shape(first)}, {first.action.value}, controlled {first.controlled})"
                )

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def episodes(self) -> int:
        return sum(s.episodes for s in self.scenarios)

    @property
    def sim(self) -> SimConfig:
        """The first scenario's config (every scenario shares its spaces)."""
        return self.scenarios[0].sim

    @property
    def observation_space(self) -> gymnasium.spaces.Box:
        """One controlled vehicle's observation space (as `fuyao.envs.gym.single_observation_space`)."""
        return gymnasium.spaces.Box(-np.inf, np.inf, observation_shape(self.sim), np.float32)

    @property
    def action_space(self) -> gymnasium.spaces.Space:
        """One controlled vehicle's action space (as `fuyao.envs.gym.single_action_space`)."""
        return single_action_space(self.sim)

    def scaled(self, episodes: int) -> Suite:
        """The suite with about `episodes` episodes in all: every scenario keeps its share (at least 1) and its
        seed, so its episodes are the first ones of the full suite's."""
        if not isinstance(episodes, int) or episodes < 1:
            raise ConfigError(f"--episodes: got {episodes!r}; allowed: an integer >= 1")
        factor = episodes / self.episodes
        scenarios = tuple(
            dataclasses.replace(s, episodes=max(1, int(math.floor(s.episodes * factor + 0.5)))) for s in self.scenarios
        )
        return dataclasses.replace(self, scenarios=scenarios)


def place_ego_on_ramp(state: WorldState, road: RoadMap, cfg: SimConfig) -> WorldState:
    """Move the first controlled vehicle of every world to `RAMP_START_S` on its map's on-ramp (the ramp lane
    traffic enters by), at `RAMP_SPEED_FRACTION` of the ramp's limit, keeping its destination where the ramp
    reaches it. Background cars on the ramp within `RAMP_CLEARANCE_M` of that spot are removed. Pure."""
    v = state.vehicles
    m = state.map_id
    on_ramp = road.lane_valid & road.lane_is_source & (road.lane_kind == RAMP_KIND)  # [M, L]
    if not bool(on_ramp.any(dim=1).all()):
        raise ConfigError("EgoStart.ON_RAMP: a map of this scenario has no on-ramp; allowed: road.on_ramp_s set")
    ramp_lane = on_ramp.long().argmax(dim=1)[m]  # [W]
    ego = torch.zeros_like(v.present)
    ego[:, 0] = True  # slot 0 is the first controlled vehicle
    lane = torch.where(ego, ramp_lane.unsqueeze(1), v.lane)
    length = lane_attr(road.lane_length, road, m, ramp_lane)
    start_s = torch.minimum(torch.full_like(length, RAMP_START_S), 0.5 * length).unsqueeze(1)
    limit = lane_attr(road.lane_speed_limit, road, m, ramp_lane).unsqueeze(1)
    speed = RAMP_SPEED_FRACTION * limit
    speeds = torch.tensor(cfg.target_speeds, device=v.s.device)
    target = speeds[(speed.unsqueeze(-1) - speeds).abs().argmin(-1)]
    reach = route_attr(road.route.cost, road, m, ramp_lane.unsqueeze(1), v.dest[:, :1]) < UNREACHABLE_HALF
    dest = torch.where(reach, v.dest[:, :1], lane_attr(road.route.default_dest, road, m, ramp_lane).unsqueeze(1))
    crowding = (v.lane == ramp_lane.unsqueeze(1)) & ((v.s - start_s).abs() < RAMP_CLEARANCE_M) & ~v.controlled
    zero = torch.zeros_like(v.s)
    moved = replace(
        v,
        lane=lane,
        s=torch.where(ego, start_s, v.s),
        d=torch.where(ego, zero, v.d),
        psi=torch.where(ego, zero, v.psi),
        speed=torch.where(ego, speed, v.speed),
        target_speed=torch.where(ego, target, v.target_speed),
        dest=torch.where(ego, dest, v.dest),
        lc_dir=torch.where(ego, 0, v.lc_dir),
        present=v.present & ~crowding,
    )
    return replace(state, vehicles=moved)


# ------------------------------------------------------------------------------------------------ the suites

HELD_OUT_MAP_SEED = 1_000_001  # training uses map_seed 0; these maps are never trained on


def _highway(**overrides) -> SimConfig:
    return preset("highway", **overrides)


def _v0(**overrides) -> SimConfig:
    return preset("highway-v0", **overrides)


HIGHWAY_DRIVERS = DriverConfig()

HIGHWAY = Suite(
    name="highway",
    version="1",
    description="Fuyao's highway preset: curved 3-lane roads with ramps, mixed traffic; native observation, meta actions",
    scenarios=(
        Scenario(
            "cruise",
            "light traffic, the route goes to the end of the highway",
            _highway(vehicles=16, ego_exit_fraction=0.0),
            seed=4101,
            episodes=150,
        ),
        Scenario(
            "dense",
            "dense traffic (56 vehicles in the spawn window), half the routes take the exit",
            _highway(vehicles=56),
            seed=4102,
            episodes=150,
        ),
        Scenario(
            "merge",
            "the ego starts on the on-ramp and must merge before its acceleration lane ends",
            _highway(vehicles=32, ego_exit_fraction=0.0),
            seed=4103,
            episodes=150,
            ego_start=EgoStart.ON_RAMP,
        ),
        Scenario(
            "exit",
            "the route takes the off-ramp: move over in time and leave",
            _highway(vehicles=32, ego_exit_fraction=1.0, ego_position=0.4),
            seed=4104,
            episodes=150,
        ),
        Scenario(
            "trucks",
            "half the traffic is slow trucks to overtake",
            _highway(
                vehicles=32, ego_exit_fraction=0.0, drivers=dataclasses.replace(HIGHWAY_DRIVERS, truck_fraction=0.5)
            ),
            seed=4105,
            episodes=150,
        ),
        Scenario(
            "cut-ins",
            "most traffic is bound for the exit and cuts across the ego's lane",
            _highway(
                vehicles=40, ego_exit_fraction=0.0, drivers=dataclasses.replace(HIGHWAY_DRIVERS, exit_fraction=0.9)
            ),
            seed=4106,
            episodes=150,
        ),
        Scenario(
            "held-out-maps",
            "the default traffic on maps never used in training (map_seed 1000001)",
            _highway(map_seed=HELD_OUT_MAP_SEED),
            seed=4107,
            episodes=100,
        ),
    ),
)

HIGHWAY_V0 = Suite(
    name="highway-v0",
    version="1",
    description="highway-env's highway-v0 (4 straight lanes, 50 cars); highway-kinematics observation, meta actions",
    scenarios=(
        Scenario("highway-v0", "highway-env's highway-v0", _v0(), seed=4201, episodes=150),
        Scenario("dense", "80 vehicles instead of 50", _v0(vehicles=81), seed=4202, episodes=100),
        Scenario("sparse", "20 vehicles instead of 50", _v0(vehicles=21), seed=4203, episodes=75),
        Scenario(
            "held-out-curves",
            "curved roads from map seeds never used in training",
            _v0(
                num_maps=4,
                map_seed=HELD_OUT_MAP_SEED,
                road=dataclasses.replace(_v0().road, max_curvature=1.0 / 600.0),
            ),
            seed=4204,
            episodes=75,
        ),
    ),
)

SMOKE = Suite(
    name="smoke",
    version="1",
    description="two tiny scenarios of the smoke preset, for tests",
    scenarios=(
        Scenario("cruise", "the smoke preset", preset("smoke"), seed=4301, episodes=4),
        Scenario(
            "merge",
            "the ego starts on the on-ramp",
            preset("smoke", ego_exit_fraction=0.0),
            seed=4302,
            episodes=2,
            ego_start=EgoStart.ON_RAMP,
        ),
    ),
)

SUITES: dict[str, Suite] = {s.name: s for s in (HIGHWAY, HIGHWAY_V0, SMOKE)}


def get_suite(name: str) -> Suite:
    """A suite by name; unknown names raise `ConfigError` listing the known ones."""
    if name not in SUITES:
        raise ConfigError(f"--suite: got {name!r}; allowed: {', '.join(SUITES)}")
    return SUITES[name]
