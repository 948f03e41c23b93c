"""Typed configuration of the batched world. Frozen dataclasses; every check names the field, value and what is
allowed. Presets live in `fuyao.presets`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from fuyao.roads.city import CityConfig
from fuyao.roads.highway import HighwayConfig
from fuyao.roads.ngp import NgpConfig
from fuyao.sim.grid_config import OccupancyGridConfig, RasterConfig


class ConfigError(ValueError):
    """An invalid configuration, raised at construction."""


def _bad(owner: str, name: str, value, allowed: str) -> ConfigError:
    return ConfigError(f"{owner}.{name}: got {value!r}; allowed: {allowed}")


class ActionType(enum.Enum):
    META = "meta"  # highway-env DiscreteMetaAction: 0 LANE_LEFT, 1 IDLE, 2 LANE_RIGHT, 3 FASTER, 4 SLOWER
    CONTINUOUS = "continuous"  # [acceleration, steering] in [-1, 1], scaled by the action ranges


class ObservationType(enum.Enum):
    NATIVE = "native"
    HIGHWAY_KINEMATICS = "highway-kinematics"
    HIGHWAY_OCCUPANCY = "highway-occupancy"  # highway-env's OccupancyGrid (`fuyao.sim.observe_grid`)
    RASTER = "raster"  # bird's-eye raster for convolutional policies (`fuyao.sim.observe_grid`)
    HIGHWAY_EXIT = "highway-exit"  # highway-env's ExitObservation (exit-v0's default): Kinematics, more features


class MapKind(enum.Enum):
    """Which generator builds the map bank: `SimConfig.road` (highway), `SimConfig.city`, `SimConfig.ngp`
    (a city, a highway and another city joined by ramps), or `mixed`: all three, in the shares `SimConfig.mix`.
    `SimConfig.map` may instead be the path of a map file written by `fuyao maps import` (an imported real map)."""

    HIGHWAY = "highway"
    CITY = "city"
    NGP = "ngp"
    MIXED = "mixed"
    MERGE_V0 = "merge-v0"  # highway-env's MergeEnv road and vehicles (`fuyao.roads.highway_env_maps`)
    EXIT_V0 = "exit-v0"  # highway-env's ExitEnv road and vehicles


# Vehicle slots of highway-env's fixed scenes (`fuyao.sim.highway_env_reset`): the ego and the others.
SCENARIO_VEHICLES = {MapKind.MERGE_V0: 6, MapKind.EXIT_V0: 21}


class DriverProfile(enum.Enum):
    MIXED = "mixed"  # timid to aggressive cars and trucks
    HIGHWAY_ENV = "highway-env"  # highway-env's IDMVehicle constants (5 m x 2 m cars, T = 1.5 s, ...)


class MobilRule(enum.Enum):
    """The lane-change test background drivers apply (`fuyao.sim.traffic.MOBIL_RULES`)."""

    FUYAO = "fuyao"  # route-aware MOBIL: b_safe 4 m/s^2 for both cars, keep-right bias, minimum gaps
    # highway-env's IDMVehicle.mobil: b_safe 2 m/s^2 (LANE_CHANGE_MAX_BRAKING_IMPOSED) for the new follower only,
    # gain threshold 0.2 m/s^2, no keep-right bias
    HIGHWAY_ENV = "highway-env"


class Placement(enum.Enum):
    """Where reset puts the vehicles of a highway map."""

    FUYAO = "fuyao"  # each lane filled at random over the spawn window, the controlled ones nearest `ego_position`
    # highway-env's HighwayEnv._create_vehicles: a chain from the road's start, each car ahead of every car placed
    # before it (`fuyao.sim.highway_env_reset.highway_v0_vehicles`)
    HIGHWAY_ENV = "highway-env"


class RewardShape(enum.Enum):
    """How highway-env's terms are read and normalised: each scenario's `_reward` / `_rewards` differs."""

    # HighwayEnv: forward speed clipped to [0, 1]; target lane from the left / (lanes - 1);
    # lmap(r, [collision, high_speed + right_lane], [0, 1]) x on-road
    HIGHWAY = "highway"
    # MergeEnv: speed unclipped; current lane index from the left (unnormalised);
    # lmap(r, [collision + merging_speed, high_speed + right_lane], [0, 1])
    MERGE = "merge"
    # ExitEnv: speed clipped to [0, 1]; target lane index; lmap(r, [collision, goal], [0, 1]) clipped to [0, 1]
    EXIT = "exit"


def _parse_enum(owner: str, name: str, value, cls: type[enum.Enum]):
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        raise _bad(owner, name, value, ", ".join(repr(m.value) for m in cls)) from None


def _parse_map(value) -> MapKind | Path:
    """`SimConfig.map`: a `MapKind` value, or the path of a readable map file (its header is checked here)."""
    if isinstance(value, MapKind):
        return value
    allowed = (
        f"{', '.join(repr(m.value) for m in MapKind)}, or the path of a map file written by "
        "`fuyao maps import FILE --out NAME` (.npz)"
    )
    if isinstance(value, str):
        try:
            return MapKind(value)
        except ValueError:
            value = Path(value)
    if not isinstance(value, Path):
        raise _bad("SimConfig", "map", value, allowed)
    if not value.is_file():
        raise _bad("SimConfig", "map", str(value), f"{allowed}; no such file")
    from fuyao.roads.io.mapfile import read_header
    from fuyao.roads.lanegraph import MapError

    try:
        read_header(value)
    except MapError as err:
        raise _bad("SimConfig", "map", str(value), f"{allowed}; this file is not one: {err}") from None
    return value


@dataclass(frozen=True)
class DriverConfig:
    """How background drivers are drawn. Speeds in m/s, accelerations in m/s^2, times in s, lengths in m."""

    profile: DriverProfile = DriverProfile.MIXED
    truck_fraction: float = 0.15
    exit_fraction: float = 0.3  # share of background traffic whose route takes a secondary exit (off-ramp)
    initial_speed_range: tuple[float, float] = (0.75, 0.95)  # x desired speed
    mobil: MobilRule = MobilRule.FUYAO
    lane_changes: bool = True  # False: background drivers keep their lane (exit-v0's `enable_lane_change`)

    def __post_init__(self) -> None:
        object.__setattr__(self, "profile", _parse_enum("DriverConfig", "profile", self.profile, DriverProfile))
        object.__setattr__(self, "mobil", _parse_enum("DriverConfig", "mobil", self.mobil, MobilRule))
        for name in ("truck_fraction", "exit_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise _bad("DriverConfig", name, value, "0 to 1")
        lo, hi = self.initial_speed_range
        if not 0.0 <= lo <= hi <= 1.5:
            raise _bad("DriverConfig", "initial_speed_range", self.initial_speed_range, "0 <= lo <= hi <= 1.5")


@dataclass(frozen=True)
class RewardConfig:
    """Reward = sum of weight x term, per controlled vehicle and decision.

    progress: metres of route cost-to-go removed in the decision, divided by `progress_scale_m`.
    high_speed / right_lane: highway-env's terms (forward speed mapped from `speed_range` to [0, 1]; lane index
    from the left over the number of lanes - 1). `normalize` maps [collision, high_speed + right_lane] to
    [0, 1] and multiplies by on-road, exactly as highway-env's HighwayEnv does; `shape` picks MergeEnv's or
    ExitEnv's reading of the terms and normalisation instead.
    merging_speed: MergeEnv's altruistic term, the sum over vehicles on an acceleration lane of
    (target speed - speed) / target speed. goal: ExitEnv's, 1 while the (target) lane is a goal lane
    (`RoadMap.lane_goal`). lane_change_command: MergeEnv's lane-change term, 1 when the decision's meta action
    is LANE_LEFT or LANE_RIGHT (whether or not a change follows).
    """

    progress: float = 1.0
    progress_scale_m: float = 30.0  # m per decision that earns 1 (30 m/s at 1 Hz)
    collision: float = -5.0
    offroad: float = -5.0
    route_failure: float = -5.0
    arrived: float = 1.0
    red_light: float = -5.0  # entering a junction past its stop line on red
    comfort: float = -0.02  # x (|jerk| / 10 m/s^3 + |lat accel| / 4 m/s^2), decision average
    lane_change: float = 0.0
    high_speed: float = 0.0
    right_lane: float = 0.0
    speed_range: tuple[float, float] = (20.0, 30.0)  # m/s
    normalize: bool = False
    merging_speed: float = 0.0
    goal: float = 0.0
    lane_change_command: float = 0.0
    shape: RewardShape = RewardShape.HIGHWAY

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", _parse_enum("RewardConfig", "shape", self.shape, RewardShape))


@dataclass(frozen=True)
class SimConfig:
    """The batched world. Shapes: W = worlds, N = vehicle slots, C = controlled vehicles per world."""

    worlds: int = 64
    vehicles: int = 32  # slots per world, controlled ones included
    controlled: int = 1  # the first `controlled` slots are driven by the policy; `vehicles` for full self-play
    num_maps: int = 8
    map_seed: int = 0
    # The generator of the map bank (`road` for highways, `city` for cities), or the path of a map file written
    # by `fuyao maps import` (one imported map; `num_maps` and `map_seed` do not apply; it drives like a city).
    map: MapKind | Path = MapKind.HIGHWAY
    road: HighwayConfig = field(default_factory=HighwayConfig)
    city: CityConfig = field(default_factory=CityConfig)
    ngp: NgpConfig = field(default_factory=NgpConfig)
    mix: tuple[float, float, float] = (1.0, 1.0, 1.0)  # map kind `mixed`: shares of highway, city and NGP maps
    sim_hz: int = 15
    decision_hz: int = 1
    episode_s: float = 40.0
    action: ActionType = ActionType.META
    observation: ObservationType = ObservationType.NATIVE
    target_speeds: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0)  # m/s, meta actions
    accel_range: tuple[float, float] = (-5.0, 5.0)  # m/s^2, continuous actions
    steer_range: tuple[float, float] = (-0.785398, 0.785398)  # rad, continuous actions
    # What a car can do, for every vehicle and action type (`fuyao.sim.dynamics.limit_steer`): lateral acceleration
    # bounded by tyre friction (m/s^2; 8 is about 0.8 g, dry asphalt) and the road wheel's steering rate (rad/s).
    # A person's fastest hand-over-hand is about 1 rad/s at the road wheel, but the drivers' lateral controller
    # (highway-env's, with a 0.3 s curvature preview) does not anticipate turns as a person does: bounded at 1
    # rad/s it left the road in 31 % of the rule-based pilot's NGP trips (at 2, none, 3 is used with margin).
    # None: unbounded, as highway-env's controllers are (the highway-env presets mirror them exactly).
    max_lat_accel: float | None = 8.0
    max_steer_rate: float | None = 3.0
    ego_speed: float = 25.0  # m/s at reset
    ego_position: float = 0.15  # where in the spawn window the controlled vehicles start (fraction)
    ego_exit_fraction: float = 0.5  # share of episodes whose route for the controlled vehicles takes the exit
    ego_ramp_fraction: float = 0.0  # share of episodes whose first controlled vehicle starts on the on-ramp
    spawn_gap_m: float = 25.0  # minimum centre distance between vehicles placed in one lane at reset
    placement: Placement = Placement.FUYAO  # how reset places the vehicles on highway maps
    inflow: bool = True  # refill free slots at the road's entries so traffic does not thin out
    # Several controlled vehicles (self-play): an agent whose episode ended enters again at a road entry as a new
    # agent while its world drives on (`fuyao.sim.step.respawn`), instead of waiting for the whole world to reset.
    # No effect with one controlled vehicle: its world resets when it is done.
    respawn: bool = False
    neighbours: int = 8  # K nearest vehicles in the native observation
    # The native observation's junction block (stop line, signal, manoeuvre, conflicts): None = on city maps.
    observe_junctions: bool | None = None
    lookahead_m: tuple[float, ...] = (0.0, 10.0, 25.0, 50.0, 80.0, 120.0)  # lane geometry points ahead
    kinematics_vehicles: int = 5  # highway-kinematics rows (ego first)
    # Lanes the highway-kinematics y normaliser spans (4 m each). None: the observer's road here. highway-env fixes
    # it at an episode's first observation (the ego's starting road) and keeps it: merge-v0 2, exit-v0 6.
    kinematics_lanes: int | None = None
    occupancy: OccupancyGridConfig = field(default_factory=OccupancyGridConfig)  # highway-occupancy
    raster: RasterConfig = field(default_factory=RasterConfig)  # raster
    mobil_period_s: float = 1.0  # how often background drivers reconsider their lane
    # Signal timing drawn per world and junction: every phase's duration times a scale from this range.
    signal_scale_range: tuple[float, float] = (0.8, 1.25)
    offroad_terminal: bool = True
    drivers: DriverConfig = field(default_factory=DriverConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", _parse_enum("SimConfig", "action", self.action, ActionType))
        object.__setattr__(self, "map", _parse_map(self.map))
        object.__setattr__(
            self, "observation", _parse_enum("SimConfig", "observation", self.observation, ObservationType)
        )
        object.__setattr__(self, "placement", _parse_enum("SimConfig", "placement", self.placement, Placement))
        if self.placement is Placement.HIGHWAY_ENV and self.map is not MapKind.HIGHWAY:
            where = getattr(self.map, "value", str(self.map))
            raise _bad(
                "SimConfig", "placement", self.placement.value, f"'fuyao' on map {where!r} ('highway-env': 'highway')"
            )
        for name in ("max_lat_accel", "max_steer_rate"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise _bad("SimConfig", name, value, "a number > 0, or None (unbounded)")
        positive_ints = ("worlds", "vehicles", "controlled", "num_maps", "sim_hz", "decision_hz", "neighbours")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise _bad("SimConfig", name, value, "an integer >= 1")
        if self.map in SCENARIO_VEHICLES and (self.vehicles, self.controlled) != (SCENARIO_VEHICLES[self.map], 1):
            raise _bad(
                "SimConfig",
                "vehicles",
                (self.vehicles, self.controlled),
                f"vehicles = {SCENARIO_VEHICLES[self.map]} and controlled = 1 on map {self.map.value!r} "
                "(highway-env's scene: one ego and the others)",
            )
        if self.controlled > self.vehicles:
            raise _bad("SimConfig", "controlled", self.controlled, f"1 to vehicles = {self.vehicles}")
        if self.sim_hz % self.decision_hz:
            raise _bad("SimConfig", "decision_hz", self.decision_hz, f"a divisor of sim_hz = {self.sim_hz}")
        if self.episode_s * self.decision_hz < 1:
            raise _bad("SimConfig", "episode_s", self.episode_s, f">= one decision ({1 / self.decision_hz} s)")
        if len(self.target_speeds) < 2 or list(self.target_speeds) != sorted(self.target_speeds):
            raise _bad("SimConfig", "target_speeds", self.target_speeds, "two or more increasing speeds (m/s)")
        if min(self.target_speeds) < 0:
            raise _bad("SimConfig", "target_speeds", self.target_speeds, "speeds >= 0 m/s")
        if not 0.0 <= self.ego_position <= 1.0:
            raise _bad("SimConfig", "ego_position", self.ego_position, "0 to 1")
        if not 0.0 <= self.ego_exit_fraction <= 1.0:
            raise _bad("SimConfig", "ego_exit_fraction", self.ego_exit_fraction, "0 to 1")
        if not 0.0 <= self.ego_ramp_fraction <= 1.0:
            raise _bad("SimConfig", "ego_ramp_fraction", self.ego_ramp_fraction, "0 to 1")
        if self.spawn_gap_m <= 0:
            raise _bad("SimConfig", "spawn_gap_m", self.spawn_gap_m, "> 0 m")
        if self.kinematics_vehicles < 1:
            raise _bad("SimConfig", "kinematics_vehicles", self.kinematics_vehicles, ">= 1")
        if self.kinematics_lanes is not None and (
            not isinstance(self.kinematics_lanes, int) or self.kinematics_lanes < 1
        ):
            raise _bad("SimConfig", "kinematics_lanes", self.kinematics_lanes, "None or an integer >= 1")
        lo, hi = self.signal_scale_range
        if not 0.0 < lo <= hi:
            raise _bad("SimConfig", "signal_scale_range", self.signal_scale_range, "0 < lo <= hi")
        if len(self.mix) != 3 or min(self.mix) < 0 or sum(self.mix) <= 0:
            raise _bad("SimConfig", "mix", self.mix, "three shares >= 0 (highway, city, ngp), not all 0")
        if self.map is MapKind.MIXED and self.num_maps < sum(1 for x in self.mix if x > 0):
            raise _bad(
                "SimConfig",
                "num_maps",
                self.num_maps,
                f">= {sum(1 for x in self.mix if x > 0)}: one map of each kind in mix",
            )
        if self.mobil_period_s <= 0:
            raise _bad("SimConfig", "mobil_period_s", self.mobil_period_s, "> 0 s")

    @property
    def map_file(self) -> Path | None:
        """The imported map's file, or None for a generated map bank."""
        return self.map if isinstance(self.map, Path) else None

    @property
    def has_city(self) -> bool:
        """Whether the bank holds city streets (junctions, signals, curved connectors): the city, NGP and mixed
        kinds, and imported maps."""
        return self.map in (MapKind.CITY, MapKind.NGP, MapKind.MIXED) or isinstance(self.map, Path)

    @property
    def junction_features(self) -> bool:
        """Whether the native observation carries the junction block."""
        return self.has_city if self.observe_junctions is None else self.observe_junctions

    @property
    def road_config(self) -> HighwayConfig | CityConfig | NgpConfig:
        """The chosen generator's config (`map`); `mixed` banks: the highway's (its spawn window places the
        controlled vehicles on highway maps); an imported map places vehicles as a city does."""
        if isinstance(self.map, Path):
            return self.city
        return {MapKind.CITY: self.city, MapKind.NGP: self.ngp}.get(self.map, self.road)

    def map_counts(self) -> tuple[int, int, int]:
        """Maps of each kind (highway, city, NGP) in the bank (an imported map counts as a city)."""
        if isinstance(self.map, Path):
            return (0, 1, 0)
        if self.map is not MapKind.MIXED:
            return tuple(self.num_maps if k is self.map else 0 for k in (MapKind.HIGHWAY, MapKind.CITY, MapKind.NGP))
        total = sum(self.mix)
        counts = [int(self.num_maps * x / total) for x in self.mix]
        for i in sorted(range(3), key=lambda i: -self.mix[i]):  # the remainder to the largest shares, one each
            if sum(counts) < self.num_maps:
                counts[i] += 1
        for i in range(3):  # every kind asked for has a map
            if self.mix[i] > 0 and counts[i] == 0:
                j = max(range(3), key=lambda j: counts[j])
                counts[i], counts[j] = 1, counts[j] - 1
        return tuple(counts)

    @property
    def ticks_per_decision(self) -> int:
        return self.sim_hz // self.decision_hz

    @property
    def dt(self) -> float:
        return 1.0 / self.sim_hz

    @property
    def decisions_per_episode(self) -> int:
        return int(round(self.episode_s * self.decision_hz))

    @property
    def mobil_every_ticks(self) -> int:
        return max(1, int(round(self.mobil_period_s * self.sim_hz)))
