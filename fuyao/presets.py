"""Named configurations. Presets are Python objects; the CLI overrides any field (`--sim.worlds 4096`)."""

from __future__ import annotations

import dataclasses

from fuyao.roads.city import CityConfig
from fuyao.roads.highway import HighwayConfig
from fuyao.sim.config import (
    ActionType,
    ConfigError,
    DriverConfig,
    DriverProfile,
    MapKind,
    ObservationType,
    RewardConfig,
    SimConfig,
)

# The default: curved 3-lane highways with an on-ramp and an off-ramp; half the episodes route the pilot
# to the exit; mixed traffic of timid to aggressive cars and trucks.
HIGHWAY = SimConfig()

# highway-env's highway-v0: 4 straight lanes, 50 other vehicles ahead of the ego, 15 Hz ticks, 1 Hz
# decisions, 40 s episodes, Kinematics observation, DiscreteMetaAction with target speeds 20/25/30 m/s,
# reward collision -1, right lane 0.1, high speed 0.4 on [20, 30] m/s, normalised, times on-road.
HIGHWAY_V0 = SimConfig(
    vehicles=51,
    num_maps=1,
    road=HighwayConfig(
        lanes=4,
        length_m=3000.0,
        max_curvature=0.0,
        on_ramp_s=None,
        off_ramp_s=None,
        speed_limit=30.0,
        spawn_window=(0.0, 1200.0),
    ),
    sim_hz=15,
    decision_hz=1,
    episode_s=40.0,
    action=ActionType.META,
    observation=ObservationType.HIGHWAY_KINEMATICS,
    target_speeds=(20.0, 25.0, 30.0),
    ego_speed=25.0,
    ego_position=0.0,
    ego_exit_fraction=0.0,
    inflow=False,
    offroad_terminal=False,
    drivers=DriverConfig(profile=DriverProfile.HIGHWAY_ENV, truck_fraction=0.0, exit_fraction=0.0),
    reward=RewardConfig(
        progress=0.0,
        collision=-1.0,
        offroad=0.0,
        route_failure=0.0,
        arrived=0.0,
        comfort=0.0,
        high_speed=0.4,
        right_lane=0.1,
        speed_range=(20.0, 30.0),
        normalize=True,
    ),
)

# Tiny and quick, for tests and CLI smoke runs.
SMOKE = SimConfig(
    worlds=4,
    vehicles=8,
    num_maps=2,
    road=HighwayConfig(
        lanes=2,
        length_m=900.0,
        on_ramp_s=250.0,
        off_ramp_s=700.0,
        accel_lane_m=120.0,
        decel_lane_m=100.0,
        ramp_length_m=100.0,
        spawn_window=(0.0, 500.0),
    ),
    episode_s=10.0,
)

# A grid city: 3 x 3 junctions 120 m apart, two lanes each way, most junctions signalised (two phases with
# permissive left turns, yellow, all red), the others priority junctions; perturbed and with a few streets
# missing (T-junctions); 50 km/h. Trips between boundary streets. Decisions at 10 Hz (one per tick), as nuPlan
# and Waymax decide: a 1 Hz decision cannot stop at a line or take a gap. Meta actions reach 0 m/s in 2 m/s
# steps. No trucks: the junctions have no swept-path room for 10-16 m vehicles (their boxes cut across the
# next lane in a turn).
CITY = SimConfig(
    map=MapKind.CITY,
    city=CityConfig(rows=3, cols=3, lanes=2, signal_fraction=0.75, jitter_m=8.0, drop_fraction=0.1),
    vehicles=48,
    num_maps=8,
    sim_hz=10,
    decision_hz=10,
    episode_s=90.0,
    target_speeds=tuple(float(v) for v in range(0, 18, 2)),
    ego_speed=8.0,
    ego_exit_fraction=1.0,
    spawn_gap_m=12.0,
    drivers=DriverConfig(truck_fraction=0.0, exit_fraction=1.0),
    reward=RewardConfig(progress_scale_m=3.0, comfort=-0.002),
)

# Navigation-guided driving on every road at once: a bank of highways (ramps, curves), grid cities and NGP maps
# (a city street, the on-ramp, the highway, the off-ramp, the other city: `fuyao.roads.ngp`), in equal shares, with
# one decision rate (10 Hz, the city's) and one action set (0 to 34 m/s in 2 m/s steps) for every road. The city's
# drivers (no trucks), 48 vehicles. Episodes of 150 s: an NGP trip takes 100-130 s; highway and city routes
# arrive sooner and end the episode.
NGP = dataclasses.replace(
    CITY,
    map=MapKind.MIXED,
    num_maps=12,
    episode_s=180.0,
    target_speeds=tuple(float(v) for v in range(0, 36, 2)),
    ego_speed=25.0,
    ego_exit_fraction=0.5,
)

PRESETS: dict[str, SimConfig] = {
    "highway": HIGHWAY,
    "highway-v0": HIGHWAY_V0,
    "smoke": SMOKE,
    "city": CITY,
    "ngp": NGP,
}


def preset(name: str, **overrides) -> SimConfig:
    """A named preset with top-level fields replaced, e.g. `preset("highway-v0", worlds=1024)`."""
    if name not in PRESETS:
        raise ConfigError(f"preset: got {name!r}; allowed: {', '.join(sorted(PRESETS))}")
    return dataclasses.replace(PRESETS[name], **overrides)
