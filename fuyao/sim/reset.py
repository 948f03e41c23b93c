"""Sampling initial worlds: maps, vehicles placed along lanes with a minimum gap, drivers drawn per vehicle.

Placement is vectorised: each vehicle draws a lane (weighted by the lane's free length in the spawn window),
vehicles are sorted by (lane, uniform draw), and the k-th of n vehicles in a lane of free length A sits at
`lo + u_k (A - n g) + k g`: uniformly random positions with every gap at least `g`. Vehicles that do not fit
stay absent. The controlled slots go to the vehicles nearest the ego start point.
"""

from __future__ import annotations

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.sim.config import SCENARIO_VEHICLES, DriverProfile, MapKind, Placement, SimConfig
from fuyao.sim.constants import SimConstants, constants_or_build
from fuyao.sim.geometry import lane_attr, lane_index, route_attr
from fuyao.sim.highway_env_reset import highway_env_reset
from fuyao.sim.rng import uniform
from fuyao.sim.signals import initial_clock
from fuyao.sim.state import Vehicles, WorldState, replace

# Random streams (any distinct integers; changing one changes the rollouts, so the golden numbers too).
S_MAP, S_LANE, S_POS, S_DRIVER, S_DEST, S_EGO_DEST, S_INFLOW, S_RAMP, S_RESPAWN = range(1, 10)
UNREACHABLE_HALF = 5.0e8
RAMP_KIND = 1  # `RoadMap.lane_kind` of ramp lanes
RAMP_START_S = 30.0  # m along the on-ramp where an on-ramp start puts the first controlled vehicle
RAMP_CLEARANCE_M = 30.0  # m: background cars on the ramp closer than this to that spot are removed
RAMP_SPEED_FRACTION = 0.8  # x the ramp's speed limit: the vehicle's speed at the start


def car_driver(z):
    """IDM and MOBIL parameters of a car driver of aggressiveness `z` in [0, 1] (timid to aggressive): a tensor,
    or a number for one fixed driver."""
    return dict(
        desire=0.85 + 0.3 * z,
        idm_headway=1.8 - 0.9 * z,
        idm_gap=3.0 - 1.5 * z,
        idm_accel=1.0 + 1.5 * z,
        idm_decel=2.0 + 1.0 * z,
        politeness=0.6 - 0.5 * z,
    )


# Controlled cars: one fixed ordinary car and driver (the middle of the car range), so that the rule-based pilot
# drives every controlled car alike: its decisions depend on the scene only, never on a hidden draw.
CONTROLLED_CAR = dict(length=5.0, width=2.0, max_speed=45.0, idm_delta=4.0, **car_driver(0.5))


def sample_drivers(cfg: SimConfig, key, counter, shape: tuple[int, int], device) -> dict[str, torch.Tensor]:
    """Driver and vehicle parameters `[W, N]` each: timid to aggressive cars and trucks (or highway-env's)."""
    u = uniform(key, counter, (shape[1], 8), S_DRIVER)  # [W, N, 8]
    z = u[..., 0]  # aggressiveness in [0, 1)
    if cfg.drivers.profile is DriverProfile.HIGHWAY_ENV:
        ones = torch.ones(shape, device=device)
        init_speed = 23.0 + 2.0 * u[..., 1]  # m/s, highway-env's DEFAULT_INITIAL_SPEEDS
        return dict(
            length=5.0 * ones,
            width=2.0 * ones,
            desire=init_speed / cfg.road.speed_limit,
            max_speed=40.0 * ones,
            idm_headway=1.5 * ones,
            idm_gap=5.0 * ones,
            idm_accel=3.0 * ones,
            idm_decel=5.0 * ones,
            idm_delta=3.5 + u[..., 2],
            politeness=0.0 * ones,
            init_fraction=ones,
        )
    truck = u[..., 1] < cfg.drivers.truck_fraction
    lo, hi = cfg.drivers.initial_speed_range

    def pick(car, trk):
        return torch.where(truck, trk, car)

    car = car_driver(z)
    return dict(
        length=pick(4.2 + 1.0 * u[..., 2], 10.0 + 6.0 * u[..., 2]),
        width=pick(1.75 + 0.3 * u[..., 3], torch.full(shape, 2.5, device=device)),
        desire=pick(car["desire"], 0.75 + 0.1 * z),
        max_speed=pick(torch.full(shape, 45.0, device=device), torch.full(shape, 25.0, device=device)),
        idm_headway=pick(car["idm_headway"], 1.8 + 0.4 * u[..., 4]),
        idm_gap=pick(car["idm_gap"], torch.full(shape, 4.0, device=device)),
        idm_accel=pick(car["idm_accel"], torch.full(shape, 0.8, device=device)),
        idm_decel=pick(car["idm_decel"], torch.full(shape, 1.5, device=device)),
        idm_delta=torch.full(shape, 4.0, device=device),
        politeness=pick(car["politeness"], torch.full(shape, 0.5, device=device)),
        init_fraction=lo + (hi - lo) * u[..., 5],
    )


def sample_destination(
    road: RoadMap, cfg: SimConfig, map_id, lane, u, exit_fraction: float, ego: bool = False
) -> torch.Tensor:
    """`[W, N]` int64 destinations for vehicles on `lane`, from uniforms `u`.

    Maps with random trips (`RoadMap.map_trips`: cities, NGP maps): any valid destination reachable from the lane,
    by `RoadMap.dest_weight` (`ego`: uniformly among those in `RoadMap.dest_ego`, where one is reachable).
    Highway maps: destination 0 (the main one) with probability 1 - exit_fraction, else one of the others
    uniformly. Unreachable or missing choices fall back to the nearest reachable destination."""
    num_dest = road.route.cost.shape[2]
    d_ids = torch.arange(num_dest, device=lane.device)
    # Random trips: among the destinations reachable from the lane ...
    cost = road.route.cost.reshape(-1, num_dest)[lane_index(road, map_id, lane)]  # [W, N, D]
    allowed = road.dest_valid[map_id].unsqueeze(1) & (cost < UNREACHABLE_HALF)
    if ego:
        for_ego = allowed & road.dest_ego[map_id].unsqueeze(1)
        allowed = torch.where(for_ego.any(-1, keepdim=True), for_ego, allowed)
    # Weighted by `RoadMap.dest_weight` (controlled vehicles: alike): the first destination whose cumulative
    # weight exceeds u x the total.
    weight = torch.ones_like(cost) if ego else road.dest_weight[map_id].unsqueeze(1).expand_as(cost)
    cum = torch.cumsum(torch.where(allowed, weight, 0.0), dim=-1)
    pick = u.unsqueeze(-1) * cum[..., -1:]
    trip = torch.where(allowed & (cum > pick), d_ids, num_dest).amin(-1).clamp(max=num_dest - 1)
    if num_dest > 1:
        # Given u < exit_fraction, u / exit_fraction is uniform again and picks among destinations 1 .. D-1.
        other = 1 + (u / max(exit_fraction, 1e-9) * (num_dest - 1)).long().clamp(max=max(num_dest - 2, 0))
        main_or_exit = torch.where(u < exit_fraction, other, 0)
    else:
        main_or_exit = torch.zeros_like(u, dtype=torch.int64)
    dest = torch.where(road.map_trips[map_id].unsqueeze(1), trip, main_or_exit)
    valid = road.dest_valid.reshape(-1)[map_id.unsqueeze(1) * num_dest + dest]
    reach = route_attr(road.route.cost, road, map_id, lane, dest) < UNREACHABLE_HALF
    fallback = lane_attr(road.route.default_dest, road, map_id, lane)
    return torch.where(valid & reach, dest, fallback)


def _ego_s(road_cfg, cfg: SimConfig) -> float:
    win0, win1 = road_cfg.spawn_window
    return win0 + cfg.ego_position * (min(win1, road_cfg.length_m) - win0)


def reset_state(
    road: RoadMap,
    cfg: SimConfig,
    seed: torch.Tensor,
    episode: torch.Tensor,
    ticks: torch.Tensor,
    consts: SimConstants | None = None,
) -> WorldState:
    """Fresh worlds for keys `seed [W]` and episode counters `episode [W]` (pure; no hidden state)."""
    if cfg.map in SCENARIO_VEHICLES or cfg.placement is Placement.HIGHWAY_ENV:
        return highway_env_reset(road, cfg, seed, episode, ticks, consts)
    device = seed.device
    consts = constants_or_build(consts, cfg, device)
    w, n, c = seed.shape[0], cfg.vehicles, cfg.controlled
    counter = episode
    u_map = uniform(seed, counter, (1,), S_MAP)[:, 0]
    map_id = (u_map * road.num_maps).long().clamp(max=road.num_maps - 1)

    # Lanes weighted by their free length in the spawn window.
    lo = road.lane_spawn_lo[map_id]  # [W, L]
    hi = road.lane_spawn_hi[map_id]
    avail = (hi - lo).clamp(min=0) * road.lane_valid[map_id]
    cdf = torch.cumsum(avail, dim=1)
    cdf = cdf / cdf[:, -1:].clamp(min=1e-6)
    u = uniform(seed, counter, (n, 2), S_LANE)
    lane = torch.searchsorted(cdf, u[..., 0].contiguous(), right=True).clamp(max=road.max_lanes - 1)
    # On maps of random trips the first `controlled` draws come from the lanes controlled vehicles may start on
    # (`lane_ego_start`: on an NGP map a few streets of the first city), so that one is there to take. (On city
    # maps those are every lane vehicles are placed on: the same draw.)
    ego_avail = avail * road.lane_ego_start[map_id]
    ego_cdf = torch.cumsum(ego_avail, dim=1)
    ego_cdf = ego_cdf / ego_cdf[:, -1:].clamp(min=1e-6)
    ego_lane = torch.searchsorted(ego_cdf, u[:, :c, 0].contiguous(), right=True).clamp(max=road.max_lanes - 1)
    use_ego = (road.map_trips[map_id] & (ego_avail.sum(dim=1) > 0)).unsqueeze(1)
    lane = torch.cat([torch.where(use_ego, ego_lane, lane[:, :c]), lane[:, c:]], dim=1)
    # Rank of each vehicle among those of its lane, by a second uniform draw.
    key = lane.double() + u[..., 1].double() * 0.999
    sorted_key, order = torch.sort(key, dim=1)
    sorted_lane = lane.gather(1, order)
    first = torch.searchsorted(sorted_lane.contiguous(), sorted_lane.contiguous(), right=False)
    rank_sorted = torch.arange(n, device=device).expand(w, n) - first
    count = torch.zeros(w, road.max_lanes, dtype=torch.int64, device=device).scatter_add_(
        1, lane, torch.ones_like(lane)
    )
    gap = cfg.spawn_gap_m
    lane_avail = avail.gather(1, sorted_lane)
    capacity = torch.floor(lane_avail / gap).long()
    n_lane = torch.minimum(count.gather(1, sorted_lane), capacity)
    u_sorted = (sorted_key - sorted_lane.double()).float() / 0.999
    s_sorted = (
        lo.gather(1, sorted_lane) + u_sorted * (lane_avail - n_lane * gap).clamp(min=0) + (rank_sorted + 0.5) * gap
    )
    fits = rank_sorted < capacity
    inverse = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=device).expand(w, n))
    s = s_sorted.gather(1, inverse)
    present = fits.gather(1, inverse)

    # Controlled slots: the present vehicles on lanes they may start on (`RoadMap.lane_ego_start`: road lanes)
    # nearest the ego start point: along the highway's spawn window on highway maps, `ego_position` of a block
    # along its street on maps of random trips.
    trips = road.map_trips[map_id].unsqueeze(1)
    ego_s = torch.where(
        trips, _ego_s(cfg.city if cfg.map is MapKind.MIXED else cfg.road_config, cfg), _ego_s(cfg.road_config, cfg)
    )
    road_s = lane_attr(road.lane_road_s0, road, map_id, lane) + s
    may_start = lane_attr(road.lane_ego_start, road, map_id, lane)
    ego_key = torch.where(present & may_start, (road_s - ego_s).abs(), 1.0e7 + torch.arange(n, device=device).float())
    slot_order = torch.argsort(ego_key, dim=1, stable=True)
    lane, s, present = lane.gather(1, slot_order), s.gather(1, slot_order), present.gather(1, slot_order)

    drivers = sample_drivers(cfg, seed, counter, (w, n), device)
    controlled = torch.zeros(w, n, dtype=torch.bool, device=device)
    controlled[:, :c] = True
    controlled = controlled & present
    limit = lane_attr(road.lane_speed_limit, road, map_id, lane)
    desired = torch.minimum(drivers["desire"] * limit, drivers["max_speed"])
    # Controlled vehicles start at `ego_speed`; on maps of random trips at most 0.6 of the lane's limit (a mixed
    # bank's highway ego at 25 m/s, its city ego at 8 m/s).
    ego_speed = torch.where(trips, torch.clamp(0.6 * limit, max=cfg.ego_speed), cfg.ego_speed)
    speed = torch.where(controlled, ego_speed, desired * drivers.pop("init_fraction"))
    if cfg.drivers.profile is DriverProfile.HIGHWAY_ENV:
        speed = torch.where(controlled, speed, desired)
    u_dest = uniform(seed, counter, (n,), S_DEST)
    dest = sample_destination(road, cfg, map_id, lane, u_dest, cfg.drivers.exit_fraction)
    u_ego = uniform(seed, counter, (1,), S_EGO_DEST).expand(w, n)
    ego_dest = sample_destination(road, cfg, map_id, lane, u_ego, cfg.ego_exit_fraction, ego=True)
    dest = torch.where(controlled, ego_dest, dest)

    def zeros():  # a fresh tensor per field: aliased fields would make compiled steps guard on identity
        return torch.zeros_like(s)

    for name, value in CONTROLLED_CAR.items():
        drivers[name] = torch.where(controlled, torch.full_like(s, value), drivers[name])
    speeds = consts.target_speeds
    nearest = (speed.unsqueeze(-1) - speeds).abs().argmin(-1)
    vehicles = Vehicles(
        lane=lane,
        s=s,
        d=zeros(),
        psi=zeros(),
        speed=speed,
        accel=zeros(),
        steer=zeros(),
        dest=dest,
        lc_dir=torch.zeros_like(lane),
        target_speed=torch.where(controlled, speeds[nearest], desired),
        present=present,
        controlled=controlled,
        crashed=torch.zeros_like(present),
        cmd_accel=zeros(),
        cmd_steer=zeros(),
        **drivers,
    )
    state = WorldState(
        vehicles=vehicles,
        map_id=map_id,
        time_s=torch.zeros(w, device=device),
        decisions=torch.zeros(w, dtype=torch.int64, device=device),
        episode=episode,
        seed=seed,
        ticks=ticks,
        active=controlled[:, :c].clone(),
        signals=initial_clock(road, map_id, seed, counter, cfg.signal_scale_range),
    )
    if cfg.ego_ramp_fraction > 0.0:
        on_ramp = uniform(seed, counter, (1,), S_RAMP)[:, 0] < cfg.ego_ramp_fraction
        state = start_on_ramp(state, road, cfg, on_ramp, consts)
    return state


def on_ramp_lanes(road: RoadMap) -> torch.Tensor:
    """`[M, L]` bool: the on-ramp lanes (ramp lanes that traffic enters by)."""
    return road.lane_valid & road.lane_is_source & (road.lane_kind == RAMP_KIND)


def has_on_ramp(road: RoadMap) -> torch.Tensor:
    """`[M]` bool: the map has an on-ramp."""
    return on_ramp_lanes(road).any(dim=1)


def start_on_ramp(
    state: WorldState, road: RoadMap, cfg: SimConfig, where: torch.Tensor, consts: SimConstants | None = None
) -> WorldState:
    """Move the first controlled vehicle of the worlds `where [W]` (whose map has an on-ramp) to `RAMP_START_S`
    on the on-ramp, at `RAMP_SPEED_FRACTION` of the ramp's limit, keeping its destination where the ramp reaches
    it; background cars on the ramp within `RAMP_CLEARANCE_M` of that spot are removed. Pure."""
    v = state.vehicles
    m = state.map_id
    on_ramp = on_ramp_lanes(road)  # [M, L]
    ramp_lane = on_ramp.long().argmax(dim=1)[m]  # [W]
    ego = torch.zeros_like(v.present)
    ego[:, 0] = True  # slot 0 is the first controlled vehicle
    ego = ego & (where & on_ramp.any(dim=1)[m] & v.controlled[:, 0]).unsqueeze(1)
    lane = torch.where(ego, ramp_lane.unsqueeze(1), v.lane)
    length = lane_attr(road.lane_length, road, m, ramp_lane)
    start_s = torch.minimum(torch.full_like(length, RAMP_START_S), 0.5 * length).unsqueeze(1)
    limit = lane_attr(road.lane_speed_limit, road, m, ramp_lane).unsqueeze(1)
    speed = RAMP_SPEED_FRACTION * limit
    speeds = constants_or_build(consts, cfg, v.s.device).target_speeds
    target = speeds[(speed.unsqueeze(-1) - speeds).abs().argmin(-1)]
    reach = route_attr(road.route.cost, road, m, ramp_lane.unsqueeze(1), v.dest[:, :1]) < UNREACHABLE_HALF
    dest = torch.where(reach, v.dest[:, :1], lane_attr(road.route.default_dest, road, m, ramp_lane).unsqueeze(1))
    crowding = (
        (v.lane == ramp_lane.unsqueeze(1)) & ((v.s - start_s).abs() < RAMP_CLEARANCE_M) & ~v.controlled & ego[:, :1]
    )
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


__all__ = [
    "CONTROLLED_CAR",
    "car_driver",
    "has_on_ramp",
    "on_ramp_lanes",
    "reset_state",
    "sample_drivers",
    "sample_destination",
    "start_on_ramp",
]
