"""Initial worlds of highway-env's fixed scenarios, vehicle for vehicle (`MergeEnv._make_vehicles`,
`ExitEnv._create_vehicles`), drawn from Fuyao's counter-based streams instead of highway-env's generator (same
distributions, other numbers). Pure; the maps are `fuyao.roads.highway_env_maps`.

merge-v0, 6 slots:
    0     the ego on a-b lane 1 at x = 30 m, 30 m/s (target 30 m/s)
    1..3  IDM cars on a-b lane 0 or 1 (even odds) at x = 90, 70, 5 m + U(-5, 5), speeds 29, 31, 31.5 + U(-1, 1)
          m/s, target speed = initial speed (highway-env clips it to the lane's 20 m/s limit in IDM)
    4     the merging car on j-k at x = 110 m, 20 m/s, target speed 30 m/s
    5     the obstacle (2 m x 2 m, standing) at the end of the acceleration lane
exit-v0, 21 slots:
    0     the ego on 0-1 lane 0, 25 m/s, placed as `Vehicle.create_random(spacing=2)` on an empty road:
          x = 3 o + o U(0.9, 1.1), o = 2 (12 + 25) exp(-5 / 40 x 6 lanes)
    1..20 IDM cars that keep their lane: lane k of 0..5 with probability k / 15, speed = that lane's limit,
          each placed `create_random(spacing=1 / 1.5)` ahead of the previous one: x += o U(0.9, 1.1),
          o = (12 + speed) exp(-5 / 40 x 6) / 1.5
highway-v0 (`SimConfig.placement` `highway-env` on a highway map), `HighwayEnv._create_vehicles`: for each of the C
controlled vehicles in turn, the controlled one, then its share of the others (highway-env's `near_split`), every
one `Vehicle.create_random` on an empty-at-first road: a lane drawn uniformly, then x = the largest x of the cars
placed so far (3 o for the first) + o U(0.9, 1.1), o = spacing (12 + speed) exp(-5 / 40 x lanes):
    controlled  25 m/s (`SimConfig.ego_speed`, target the nearest target speed), spacing 2 (`ego_spacing`)
    others      U(0.7, 0.8) x the lane's limit (21-24 m/s on highway-v0), target speed = initial speed, spacing
                1 (1 / `vehicles_density`); `randomize_behavior` draws delta from U(3.5, 4.5)
Every car is highway-env's IDMVehicle: 5 m x 2 m, T = 1.5 s, a = 3 m/s^2, b = 5 m/s^2, delta = 4 (merge-v0 and
exit-v0 do not randomise it), politeness 0.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from fuyao.roads import highway_env_maps as maps
from fuyao.roads.lanegraph import RoadMap
from fuyao.sim.config import SCENARIO_VEHICLES, MapKind, SimConfig
from fuyao.sim.constants import SimConstants, constants_or_build
from fuyao.sim.geometry import lane_attr
from fuyao.sim.rng import uniform
from fuyao.sim.signals import initial_clock
from fuyao.sim.state import Vehicles, WorldState

S_LANE, S_POS, S_SPEED, S_MAP = 21, 22, 23, 24  # random streams (distinct from `fuyao.sim.reset`'s)

HIGHWAY_ENV_CAR = dict(
    length=5.0,  # m, Vehicle.LENGTH
    width=2.0,  # m
    max_speed=40.0,  # m/s, Vehicle.MAX_SPEED
    idm_headway=1.5,  # s, IDMVehicle.TIME_WANTED
    idm_gap=5.0,  # m bumper to bumper (DISTANCE_WANTED 10 m is centre to centre for 5 m cars)
    idm_accel=3.0,  # m/s^2, COMFORT_ACC_MAX
    idm_decel=5.0,  # m/s^2, -COMFORT_ACC_MIN
    idm_delta=4.0,  # DELTA
    politeness=0.0,  # POLITENESS
)
OBSTACLE_SIZE_M = 2.0  # highway-env's RoadObject LENGTH and WIDTH
OBSTACLE_END_MARGIN_M = 1.0e-3  # the obstacle stands this far before the lane's end (not driven off it)

MERGE_VEHICLES = SCENARIO_VEHICLES[MapKind.MERGE_V0]
MERGE_EGO = (30.0, 30.0)  # x m, speed m/s
MERGE_TRAFFIC = ((90.0, 29.0), (70.0, 31.0), (5.0, 31.5))  # (x m, speed m/s) before the jitter
MERGE_POSITION_JITTER_M = 5.0
MERGE_SPEED_JITTER = 1.0  # m/s
MERGE_RAMP_CAR = (110.0, 20.0, 30.0)  # x m on j-k, speed m/s, target speed m/s

EXIT_VEHICLES = SCENARIO_VEHICLES[MapKind.EXIT_V0]
EXIT_EGO_SPEED = 25.0  # m/s
EXIT_EGO_SPACING = 2.0  # HighwayEnv's ego_spacing
EXIT_DENSITY = 1.5  # ExitEnv's vehicles_density

HIGHWAY_V0_EGO_SPACING = 2.0  # HighwayEnv's ego_spacing
HIGHWAY_V0_DENSITY = 1.0  # HighwayEnv's vehicles_density
HIGHWAY_V0_SPEED_FRACTION = (0.7, 0.8)  # create_random's speed: U(0.7, 0.8) x the lane's limit
HIGHWAY_V0_DELTA = (3.5, 4.5)  # IDMVehicle.DELTA_RANGE (randomize_behavior)


MERGE_LANE = maps.MERGE_LANE_IDS
EXIT_LANE_0 = maps.EXIT_LANE_IDS["010"]  # 0-1 lane 0, the ego's


def _create_random_offset(speed, spacing: float, lanes: int):
    """`Vehicle.create_random`'s longitudinal offset, m: spacing (12 + speed) exp(-5 / 40 lanes)."""
    return spacing * (12.0 + speed) * math.exp(-5.0 / 40.0 * lanes)


def _vehicles(w: int, n: int, device, **fields) -> Vehicles:
    """`Vehicles` `[W, N]` from the given fields; highway-env's IDM car for the driver parameters not given."""
    zeros = torch.zeros(w, n, device=device)
    full = {k: torch.full((w, n), v, device=device) for k, v in HIGHWAY_ENV_CAR.items()}
    controlled = torch.zeros(w, n, dtype=torch.bool, device=device)
    controlled[:, 0] = True
    base = dict(
        d=zeros.clone(),
        psi=zeros.clone(),
        accel=zeros.clone(),
        steer=zeros.clone(),
        dest=torch.zeros(w, n, dtype=torch.int64, device=device),
        lc_dir=torch.zeros(w, n, dtype=torch.int64, device=device),
        present=torch.ones(w, n, dtype=torch.bool, device=device),
        controlled=controlled,
        crashed=torch.zeros(w, n, dtype=torch.bool, device=device),
        cmd_accel=zeros.clone(),
        cmd_steer=zeros.clone(),
        **full,
    )
    base.update(fields)
    return Vehicles(**base)


def _desire(road: RoadMap, map_id, lane, target_speed):
    """IDM's desired speed as a fraction of the lane's limit: highway-env clips the target speed to the limit."""
    limit = lane_attr(road.lane_speed_limit, road, map_id, lane)
    return torch.minimum(target_speed, limit) / limit


def _nearest_target(speed, consts: SimConstants):
    return consts.target_speeds[(speed.unsqueeze(-1) - consts.target_speeds).abs().argmin(-1)]


def merge_v0_vehicles(road: RoadMap, cfg: SimConfig, seed, counter, map_id, consts: SimConstants) -> Vehicles:
    """merge-v0's vehicles `[W, 6]` (module docstring)."""
    w, device = seed.shape[0], seed.device
    u = uniform(seed, counter, (3, 3), S_POS)  # [W, car, (lane, position, speed)]
    base_x = torch.tensor([x for x, _ in MERGE_TRAFFIC], device=device)
    base_v = torch.tensor([v for _, v in MERGE_TRAFFIC], device=device)
    traffic_lane = torch.where(u[..., 0] < 0.5, MERGE_LANE["ab0"], MERGE_LANE["ab1"])
    traffic_s = base_x + MERGE_POSITION_JITTER_M * (2.0 * u[..., 1] - 1.0)
    traffic_v = base_v + MERGE_SPEED_JITTER * (2.0 * u[..., 2] - 1.0)
    ego_x, ego_v = MERGE_EGO
    ramp_x, ramp_v, ramp_target = MERGE_RAMP_CAR
    acc_len = lane_attr(road.lane_length, road, map_id, torch.full_like(seed, MERGE_LANE["bc2"]))

    def col(*parts):
        return torch.cat([p.reshape(w, -1) for p in parts], dim=1)

    def full(x, dtype=torch.float32):
        return torch.full((w, 1), x, dtype=dtype, device=device)

    lane = col(full(MERGE_LANE["ab1"], torch.int64), traffic_lane, full(MERGE_LANE["jk"], torch.int64))
    lane = col(lane, full(MERGE_LANE["bc2"], torch.int64))
    s = col(full(ego_x), traffic_s, full(ramp_x), acc_len - OBSTACLE_END_MARGIN_M)
    speed = col(full(ego_v), traffic_v, full(ramp_v), full(0.0))
    target = col(full(ego_v), traffic_v, full(ramp_target), full(0.0))
    target[:, :1] = _nearest_target(target[:, :1], consts)
    desire = _desire(road, map_id.unsqueeze(1), lane, target)
    obstacle = torch.zeros(w, MERGE_VEHICLES, dtype=torch.bool, device=device)
    obstacle[:, -1] = True
    size = torch.where(obstacle, OBSTACLE_SIZE_M, 0.0)
    return _vehicles(
        w,
        MERGE_VEHICLES,
        device,
        lane=lane,
        s=s,
        speed=speed,
        target_speed=target,
        desire=desire,
        length=torch.where(obstacle, size, HIGHWAY_ENV_CAR["length"]),
        width=torch.where(obstacle, size, HIGHWAY_ENV_CAR["width"]),
    )


def exit_v0_vehicles(road: RoadMap, cfg: SimConfig, seed, counter, map_id, consts: SimConstants) -> Vehicles:
    """exit-v0's vehicles `[W, 21]` (module docstring)."""
    w, n, device = seed.shape[0], EXIT_VEHICLES, seed.device
    lanes = maps.EXIT_LANES
    u_pos = uniform(seed, counter, (n,), S_POS)
    u_lane = uniform(seed, counter, (n - 1,), S_LANE)
    # numpy's choice(range(6), p = k / 15): the first lane whose cumulative probability exceeds the draw.
    weights = torch.arange(lanes, device=device, dtype=torch.float32)
    cdf = torch.cumsum(weights / weights.sum(), dim=0)
    traffic_lane = torch.searchsorted(cdf, u_lane.contiguous(), right=True).clamp(max=lanes - 1)
    limit = lane_attr(road.lane_speed_limit, road, map_id.unsqueeze(1), traffic_lane)
    ego_offset = _create_random_offset(EXIT_EGO_SPEED, EXIT_EGO_SPACING, lanes)
    ego_s = 3.0 * ego_offset + ego_offset * (0.9 + 0.2 * u_pos[:, :1])
    offsets = _create_random_offset(limit, 1.0 / EXIT_DENSITY, lanes) * (0.9 + 0.2 * u_pos[:, 1:])
    s = torch.cat([ego_s, ego_s + torch.cumsum(offsets, dim=1)], dim=1)
    lane = torch.cat([torch.full((w, 1), EXIT_LANE_0, dtype=torch.int64, device=device), traffic_lane], dim=1)
    ego_speed = torch.full((w, 1), EXIT_EGO_SPEED, device=device)
    speed = torch.cat([ego_speed, limit], dim=1)
    target = torch.cat([_nearest_target(ego_speed, consts), limit], dim=1)
    return _vehicles(
        w,
        n,
        device,
        lane=lane,
        s=s,
        speed=speed,
        target_speed=target,
        desire=_desire(road, map_id.unsqueeze(1), lane, target),
    )


def highway_v0_vehicles(road: RoadMap, cfg: SimConfig, seed, counter, map_id, consts: SimConstants) -> Vehicles:
    """highway-v0's vehicles `[W, N]` on a straight highway map (module docstring), controlled ones in slots 0..C-1."""
    w, n, c, device = seed.shape[0], cfg.vehicles, cfg.controlled, seed.device
    lanes = cfg.road.lanes
    # Creation order j: controlled k, then its share of the others (highway-env's near_split: the first r of the
    # C shares hold q + 1 cars, the rest q). Built from `arange`, not from Python lists: resets run every decision.
    q, r = (n - c) // c, (n - c) % c
    j = torch.arange(n, device=device)
    early = j < r * (q + 2)
    late = j - r * (q + 2)
    group = torch.where(early, j // (q + 2), r + late // (q + 1))
    is_ctrl = torch.where(early, j % (q + 2), late % (q + 1)) == 0
    slot = torch.where(is_ctrl, group, c + j - group - 1)  # controlled k in slot k, the others after them in order
    inverse = torch.argsort(slot)  # slot -> created car
    is_ctrl = is_ctrl.expand(w, n)
    u = uniform(seed, counter, (n, 4), S_POS)  # [W, created car, (lane, position, speed, delta)]
    lane = (u[..., 0] * lanes).long().clamp(max=lanes - 1)
    limit = lane_attr(road.lane_speed_limit, road, map_id.unsqueeze(1), lane)
    lo, hi = HIGHWAY_V0_SPEED_FRACTION
    speed = torch.where(is_ctrl, torch.full_like(limit, cfg.ego_speed), limit * (lo + (hi - lo) * u[..., 2]))
    spacing = torch.where(is_ctrl, HIGHWAY_V0_EGO_SPACING, 1.0 / HIGHWAY_V0_DENSITY)
    offset = _create_random_offset(speed, 1.0, lanes) * spacing
    s = 3.0 * offset[:, :1] + torch.cumsum(offset * (0.9 + 0.2 * u[..., 1]), dim=1)
    target = torch.where(is_ctrl, _nearest_target(speed, consts), speed)
    d_lo, d_hi = HIGHWAY_V0_DELTA
    delta = torch.where(is_ctrl, HIGHWAY_ENV_CAR["idm_delta"], d_lo + (d_hi - d_lo) * u[..., 3])

    def slots(x):  # created order -> slots
        return x[:, inverse]

    vehicles = _vehicles(
        w,
        n,
        device,
        lane=slots(lane),
        s=slots(s),
        speed=slots(speed),
        target_speed=slots(target),
        desire=_desire(road, map_id.unsqueeze(1), slots(lane), slots(target)),
        idm_delta=slots(delta),
    )
    controlled = torch.zeros(w, n, dtype=torch.bool, device=device)
    controlled[:, :c] = True
    return dataclasses.replace(vehicles, controlled=controlled)


def highway_env_reset(
    road: RoadMap, cfg: SimConfig, seed, episode, ticks, consts: SimConstants | None = None
) -> WorldState:
    """Fresh worlds of the highway-env scenario `cfg.map` (merge-v0 or exit-v0), or of highway-v0 (a highway map
    with `placement` `highway-env`), for keys `seed [W]`."""
    consts = constants_or_build(consts, cfg, seed.device)
    build = {
        MapKind.MERGE_V0: merge_v0_vehicles,
        MapKind.EXIT_V0: exit_v0_vehicles,
        MapKind.HIGHWAY: highway_v0_vehicles,
    }[cfg.map]
    w = seed.shape[0]
    if cfg.map is MapKind.HIGHWAY:  # a bank of highway maps: each world draws one
        u_map = uniform(seed, episode, (1,), S_MAP)[:, 0]
        map_id = (u_map * road.num_maps).long().clamp(max=road.num_maps - 1)
    else:
        map_id = torch.zeros(w, dtype=torch.int64, device=seed.device)
    vehicles = build(road, cfg, seed, episode, map_id, consts)
    return WorldState(
        vehicles=vehicles,
        map_id=map_id,
        time_s=torch.zeros(w, device=seed.device),
        decisions=torch.zeros(w, dtype=torch.int64, device=seed.device),
        episode=episode,
        seed=seed,
        ticks=ticks,
        active=vehicles.controlled[:, : cfg.controlled].clone(),
        signals=initial_clock(road, map_id, seed, episode, cfg.signal_scale_range),
    )


__all__ = ["HIGHWAY_ENV_CAR", "exit_v0_vehicles", "highway_env_reset", "highway_v0_vehicles", "merge_v0_vehicles"]
