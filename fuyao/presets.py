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
    MobilRule,
    ObservationType,
    Placement,
    RewardConfig,
    RewardShape,
    SimConfig,
)

# The default: curved 3-lane highways with an on-ramp and an off-ramp; half the episodes route the pilot
# to the exit; mixed traffic of timid to aggressive cars and trucks.
HIGHWAY = SimConfig()

# The presets that mirror a highway-env scenario steer with highway-env's controllers exactly: no tyre-friction or
# steering-rate bound (`SimConfig.max_lat_accel`, `max_steer_rate`).
HIGHWAY_ENV_CONTROLLERS = {"max_lat_accel": None, "max_steer_rate": None}

# highway-env's highway-v0: 4 straight lanes, 50 other vehicles ahead of the ego, 15 Hz ticks, 1 Hz
# decisions, 40 s episodes, Kinematics observation, DiscreteMetaAction with target speeds 20/25/30 m/s,
# reward collision -1, right lane 0.1, high speed 0.4 on [20, 30] m/s, normalised, times on-road.
HIGHWAY_V0 = SimConfig(
    **HIGHWAY_ENV_CONTROLLERS,
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
    # highway-env's own placement (a chain ahead of the ego from x = 180 m, cars at 21-24 m/s) and its own MOBIL
    # (b_safe 2 m/s^2, no keep-right bias): a pilot trained with Fuyao's (cars spread over 1,200 m at 23-25 m/s,
    # Fuyao's cautious MOBIL) crashed in 1.5 % of these episodes and in 35 % of highway-env's (2026-12-07).
    placement=Placement.HIGHWAY_ENV,
    inflow=False,
    offroad_terminal=False,
    drivers=DriverConfig(
        profile=DriverProfile.HIGHWAY_ENV, truck_fraction=0.0, exit_fraction=0.0, mobil=MobilRule.HIGHWAY_ENV
    ),
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

# highway-env's merge-v0 (MergeEnv): two lanes with a merging lane joining from the right over x = 230-310 m (a
# sine bend, an acceleration lane the ego may not enter, an obstacle at its end); the ego on lane 1 at x = 30 m and
# 30 m/s, three IDM cars around it, one merging car on the ramp (`fuyao.roads.highway_env_maps`,
# `fuyao.sim.highway_env_reset`); highway-env's MOBIL; 15 Hz ticks, 1 Hz decisions, the episode over once the ego
# is past x = 370 m (or crashed); Kinematics (its y range fixed at 2 lanes, as highway-env fixes it at reset);
# DiscreteMetaAction at 20/25/30 m/s; reward collision -1, right lane 0.1 (the lane index), high speed 0.2 on
# [20, 30] m/s (unclipped), lane change -0.05 (the action), merging speed -0.5, normalised by
# [collision + merging speed, high speed + right lane].
MERGE_V0 = SimConfig(
    **HIGHWAY_ENV_CONTROLLERS,
    vehicles=6,
    num_maps=1,
    map=MapKind.MERGE_V0,
    sim_hz=15,
    decision_hz=1,
    episode_s=40.0,
    action=ActionType.META,
    observation=ObservationType.HIGHWAY_KINEMATICS,
    kinematics_lanes=2,
    target_speeds=(20.0, 25.0, 30.0),
    ego_speed=30.0,
    inflow=False,
    offroad_terminal=False,
    drivers=DriverConfig(
        profile=DriverProfile.HIGHWAY_ENV, truck_fraction=0.0, exit_fraction=0.0, mobil=MobilRule.HIGHWAY_ENV
    ),
    reward=RewardConfig(
        progress=0.0,
        collision=-1.0,
        offroad=0.0,
        route_failure=0.0,
        arrived=0.0,
        red_light=0.0,
        comfort=0.0,
        high_speed=0.2,
        right_lane=0.1,
        merging_speed=-0.5,
        lane_change_command=-0.05,
        speed_range=(20.0, 30.0),
        normalize=True,
        shape=RewardShape.MERGE,
    ),
)

# highway-env's exit-v0 (ExitEnv): 6 lanes (limits 26 - 3.4 i m/s), a seventh, the exit lane, over x = 400-500 m,
# then the exit (a 150 m radius quarter circle); the ego on the leftmost lane at 25 m/s, 20 IDM cars that keep
# their lane at its limit; 5 Hz ticks, 1 Hz decisions, 18 s episodes; ExitObservation (15 rows, cos_h and sin_h,
# unclipped, the ego's x from the exit lane's start); DiscreteMetaAction at 18/24/30 m/s; reward high speed 0.1
# (clipped) plus goal 1 (the target lane is the exit lane or the exit), normalised by [collision 0, goal] and
# clipped to [0, 1].
EXIT_V0 = SimConfig(
    **HIGHWAY_ENV_CONTROLLERS,
    vehicles=21,
    num_maps=1,
    map=MapKind.EXIT_V0,
    sim_hz=5,
    decision_hz=1,
    episode_s=18.0,
    action=ActionType.META,
    observation=ObservationType.HIGHWAY_EXIT,
    kinematics_vehicles=15,
    kinematics_lanes=6,
    target_speeds=(18.0, 24.0, 30.0),
    ego_speed=25.0,
    inflow=False,
    offroad_terminal=False,
    drivers=DriverConfig(
        profile=DriverProfile.HIGHWAY_ENV,
        truck_fraction=0.0,
        exit_fraction=0.0,
        mobil=MobilRule.HIGHWAY_ENV,
        lane_changes=False,
    ),
    reward=RewardConfig(
        progress=0.0,
        collision=0.0,
        offroad=0.0,
        route_failure=0.0,
        arrived=0.0,
        red_light=0.0,
        comfort=0.0,
        high_speed=0.1,
        right_lane=0.0,
        goal=1.0,
        speed_range=(20.0, 30.0),
        normalize=True,
        shape=RewardShape.EXIT,
    ),
)

# highway-env ids Fuyao mirrors, each with its preset (`fuyao bench transfer`, docs/highway-env.md).
HIGHWAY_ENV_MIRRORS: dict[str, str] = {"highway-v0": "highway-v0", "merge-v0": "merge-v0", "exit-v0": "exit-v0"}

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
    # The highway's share of background traffic bound for the off-ramp (the city preset's 1.0 is for its random
    # trips; on a highway it jammed the deceleration lane with exiting cars and the pilot could not get in).
    drivers=dataclasses.replace(CITY.drivers, exit_fraction=0.3),
)

PRESETS: dict[str, SimConfig] = {
    "highway": HIGHWAY,
    "highway-v0": HIGHWAY_V0,
    "merge-v0": MERGE_V0,
    "exit-v0": EXIT_V0,
    "smoke": SMOKE,
    "city": CITY,
    "ngp": NGP,
}


def highway_env_mirror(env_id: str) -> str:
    """The preset mirroring highway-env's `env_id`; a `ConfigError` listing what Fuyao mirrors otherwise."""
    if env_id not in HIGHWAY_ENV_MIRRORS:
        raise ConfigError(
            f"highway-env id: got {env_id!r}; Fuyao mirrors: {', '.join(HIGHWAY_ENV_MIRRORS)} "
            "(roundabout-v0, intersection-v0 and the others are not mirrored)"
        )
    return HIGHWAY_ENV_MIRRORS[env_id]


def preset(name: str, **overrides) -> SimConfig:
    """A named preset with top-level fields replaced, e.g. `preset("highway-v0", worlds=1024)`."""
    if name not in PRESETS:
        raise ConfigError(f"preset: got {name!r}; allowed: {', '.join(sorted(PRESETS))}")
    return dataclasses.replace(PRESETS[name], **overrides)
