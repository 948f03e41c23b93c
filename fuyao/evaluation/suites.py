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
    merge-v0     the `merge-v0` preset: highway-env's merge-v0. 200 episodes.
    exit-v0      the `exit-v0` preset: highway-env's exit-v0. 200 episodes.
    city         the `city` preset (native observation with the junction block, meta actions at 10 Hz): grid
                 cruise, dense traffic, priority junctions only (no signals), signal cycles shorter and longer
                 than any in training, irregular held-out maps (more jitter and T-junctions). 240 episodes.
    ngp          the `ngp` preset (one space for every road, 10 Hz): NGP trips (city street, on-ramp, highway,
                 off-ramp, city), dense, held-out maps; the bank's highways (cruise, exit, merge) and cities
                 (cruise, held-out irregular). 290 episodes.
    smoke        two tiny scenarios of the `smoke` preset, for tests. 6 episodes.

`Suite.validation()` gives any suite's validation twin (other seeds, other maps): trainers choose and stop on it.
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
from fuyao.sim.observe import observation_shape
from fuyao.sim.reset import has_on_ramp, start_on_ramp
from fuyao.sim.state import WorldState


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
    # The kind of road it judges (`ngp`: "highway", "city", "ngp"). A suite with groups holds a trainer's pilot to
    # the target on each group at once (`fuyao.train.evaluator`), not on the pooled episodes alone; "" is no group.
    group: str = ""

    def __post_init__(self) -> None:
        if self.group and not self.group.replace("-", "").isalnum():
            raise ConfigError(f"Scenario.group ({self.name}): got {self.group!r}; allowed: letters, digits and '-'")
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

    def validation(self) -> Suite:
        """The same scenarios on other episodes and other maps: seeds offset by `VALIDATION_SEED_OFFSET` and map
        seeds by `VALIDATION_MAP_SEED`, disjoint from every suite's and from training's. Trainers choose
        checkpoints and stop on it, so that the suite only reports."""
        scenarios = tuple(
            dataclasses.replace(
                s,
                seed=s.seed + VALIDATION_SEED_OFFSET,
                sim=dataclasses.replace(s.sim, map_seed=s.sim.map_seed + VALIDATION_MAP_SEED),
            )
            for s in self.scenarios
        )
        return Suite(f"{self.name}-validation", self.version, f"validation episodes of {self.id}", scenarios)

    @property
    def episodes(self) -> int:
        return sum(s.episodes for s in self.scenarios)

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """`{group: scenario names}` in suite order, for scenarios with a group (empty if none has one)."""
        groups: dict[str, tuple[str, ...]] = {}
        for s in self.scenarios:
            if s.group:
                groups[s.group] = (*groups.get(s.group, ()), s.name)
        return groups

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
    """Move the first controlled vehicle of every world onto its map's on-ramp (`fuyao.sim.reset.start_on_ramp`:
    `RAMP_START_S` along it at `RAMP_SPEED_FRACTION` of the ramp's limit, background cars on the ramp within
    `RAMP_CLEARANCE_M` removed). Pure."""
    if not bool(has_on_ramp(road).all()):
        raise ConfigError("EgoStart.ON_RAMP: a map of this scenario has no on-ramp; allowed: road.on_ramp_s set")
    return start_on_ramp(state, road, cfg, torch.ones_like(state.map_id, dtype=torch.bool))


# ------------------------------------------------------------------------------------------------ the suites

HELD_OUT_MAP_SEED = 1_000_001  # training uses map_seed 0; these maps are never trained on
VALIDATION_MAP_SEED = 2_000_003  # `Suite.validation`: map seeds offset by this (neither training's nor a suite's)
VALIDATION_SEED_OFFSET = 500_000  # ... and episode seeds (suites use seeds below 10,000)


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
    # 2 (2026-12-07): highway-env's placement and MOBIL; background cars reconsider their lane each at its own phase
    version="2",
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


def _city(**overrides) -> SimConfig:
    return preset("city", **overrides)


CITY_MAP = preset("city").city

CITY = Suite(
    name="city",
    version="1",
    description="Fuyao's city preset: 3 x 3 grid cities, 2 lanes, signalised and priority junctions; 10 Hz meta actions",
    scenarios=(
        Scenario("grid-cruise", "the city preset's traffic, random trips", _city(), seed=4401, episodes=60),
        Scenario("dense", "64 vehicles instead of 48", _city(vehicles=64, spawn_gap_m=10.0), seed=4402, episodes=40),
        Scenario(
            "priority-junctions",
            "no signals: priority roads, left turns give way (gap acceptance at every junction)",
            _city(city=dataclasses.replace(CITY_MAP, signal_fraction=0.0)),
            seed=4403,
            episodes=40,
        ),
        Scenario(
            "short-cycles",
            "greens of 8-12 s (training draws 15-30 s, scaled 0.8-1.25)",
            _city(city=dataclasses.replace(CITY_MAP, green_s=(8.0, 12.0)), signal_scale_range=(1.0, 1.0)),
            seed=4404,
            episodes=30,
        ),
        Scenario(
            "long-cycles",
            "greens of 45-60 s",
            _city(city=dataclasses.replace(CITY_MAP, green_s=(45.0, 60.0)), signal_scale_range=(1.0, 1.0)),
            seed=4405,
            episodes=30,
        ),
        Scenario(
            "irregular-held-out",
            "maps never used in training, more irregular (jitter 16 m, a fifth of the streets gone)",
            _city(map_seed=HELD_OUT_MAP_SEED, city=dataclasses.replace(CITY_MAP, jitter_m=16.0, drop_fraction=0.2)),
            seed=4406,
            episodes=40,
        ),
    ),
)


def _ngp(kind: str, **overrides) -> SimConfig:
    """The `ngp` preset (one observation and action space for every road) on one kind of map: `highway`, `city`
    or `ngp` (a mixed bank of that kind alone, so the dynamics are the preset's)."""
    mix = {"highway": (1.0, 0.0, 0.0), "city": (0.0, 1.0, 0.0), "ngp": (0.0, 0.0, 1.0)}[kind]
    return preset("ngp", mix=mix, **overrides)


_NGP_PRESET = preset("ngp")
NGP = Suite(
    name="ngp",
    version="1",
    description=(
        "the navigation-guided pilot's suite (the `ngp` preset: 10 Hz meta actions, 0-34 m/s): trips from a city "
        "street onto the highway and into another city, and the highway and city roads of the same bank"
    ),
    scenarios=(
        Scenario(
            "ngp-trip",
            "city street, on-ramp, highway, off-ramp, city: the preset's NGP maps",
            _ngp("ngp"),
            seed=4501,
            episodes=60,
            group="ngp",
        ),
        Scenario(
            "ngp-dense",
            "64 vehicles instead of 48",
            _ngp("ngp", vehicles=64, spawn_gap_m=10.0),
            seed=4502,
            episodes=30,
            group="ngp",
        ),
        Scenario(
            "ngp-held-out",
            "NGP maps never used in training, with more irregular cities (jitter 12 m)",
            _ngp(
                "ngp",
                map_seed=HELD_OUT_MAP_SEED,
                ngp=dataclasses.replace(_NGP_PRESET.ngp, city=dataclasses.replace(_NGP_PRESET.ngp.city, jitter_m=12.0)),
            ),
            seed=4503,
            episodes=30,
            group="ngp",
        ),
        Scenario(
            "highway-cruise",
            "the preset's highways, routes to the end or the exit",
            _ngp("highway"),
            seed=4504,
            episodes=40,
            group="highway",
        ),
        Scenario(
            "highway-exit",
            "every route takes the exit",
            _ngp("highway", ego_exit_fraction=1.0),
            seed=4505,
            episodes=30,
            group="highway",
        ),
        Scenario(
            "highway-merge",
            "the ego starts on the on-ramp",
            _ngp("highway", ego_exit_fraction=0.0),
            seed=4506,
            episodes=30,
            group="highway",
            ego_start=EgoStart.ON_RAMP,
        ),
        Scenario(
            "city-cruise", "the preset's cities, random trips", _ngp("city"), seed=4507, episodes=40, group="city"
        ),
        Scenario(
            "city-held-out",
            "irregular cities never used in training (jitter 16 m, a fifth of the streets gone)",
            _ngp(
                "city",
                map_seed=HELD_OUT_MAP_SEED,
                city=dataclasses.replace(_NGP_PRESET.city, jitter_m=16.0, drop_fraction=0.2),
            ),
            seed=4508,
            episodes=30,
            group="city",
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

MERGE_V0 = Suite(
    name="merge-v0",
    # 2 (2026-12-07): background cars reconsider their lane each at its own phase, as highway-env's do
    version="2",
    description="highway-env's merge-v0 (a merging car, an acceleration lane); highway-kinematics, meta actions",
    scenarios=(Scenario("merge-v0", "highway-env's merge-v0", preset("merge-v0"), seed=4501, episodes=200),),
)

EXIT_V0 = Suite(
    name="exit-v0",
    # 2 (2026-12-07): background cars reconsider their lane each at its own phase, as highway-env's do
    version="2",
    description="highway-env's exit-v0 (6 lanes, the exit lane on the far right); ExitObservation, meta actions",
    scenarios=(Scenario("exit-v0", "highway-env's exit-v0", preset("exit-v0"), seed=4601, episodes=200),),
)

SUITES: dict[str, Suite] = {s.name: s for s in (HIGHWAY, HIGHWAY_V0, MERGE_V0, EXIT_V0, CITY, NGP, SMOKE)}


def get_suite(name: str) -> Suite:
    """A suite by name; unknown names raise `ConfigError` listing the known ones."""
    if name not in SUITES:
        raise ConfigError(f"--suite: got {name!r}; allowed: {', '.join(SUITES)}")
    return SUITES[name]
