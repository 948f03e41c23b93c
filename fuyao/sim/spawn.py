"""Vehicles entering a running world: background traffic refilling free slots at the map's entries, and
controlled agents respawning after their episode ended (self-play). Resets are in `fuyao.sim.reset`."""

from __future__ import annotations

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.sim.config import SimConfig
from fuyao.sim.constants import SimConstants, constants_or_build
from fuyao.sim.geometry import lane_attr
from fuyao.sim.reset import CONTROLLED_CAR, S_INFLOW, S_RESPAWN, sample_destination, sample_drivers
from fuyao.sim.rng import uniform
from fuyao.sim.state import Vehicles, WorldState, replace


def _entry_spawn(state: WorldState, road: RoadMap, cfg: SimConfig, free: torch.Tensor, stream: int):
    """Which of the slots `free [W, N]` enter the map this decision: each draws an entry lane (a source lane that
    is not a junction connector); per entry lane the lowest such slot spawns at s = 0 if the lane is clear for
    `spawn_gap_m`. Returns `spawn [W, N]`, the drawn `lane`, the speed of the first car on that lane (1e6 if
    none: a new car is never faster) and a uniform draw `[W, N]` for the destination."""
    v = state.vehicles
    w, n = v.s.shape
    num_lanes = road.max_lanes
    source = road.lane_is_source[state.map_id] & road.lane_valid[state.map_id] & (road.lane_kind[state.map_id] != 2)
    u = uniform(state.seed, state.ticks, (n, 2), stream)
    cdf = torch.cumsum(source.float(), dim=1)
    cdf = cdf / cdf[:, -1:].clamp(min=1.0)
    lane = torch.searchsorted(cdf, u[..., 0].contiguous(), right=True).clamp(max=num_lanes - 1)
    free = free & source.any(dim=1, keepdim=True)
    big = torch.full((w, num_lanes), 1.0e6, device=v.s.device)
    occupied_s = torch.where(v.present, v.s - 0.5 * v.length, 1.0e6)
    first_s = big.scatter_reduce(1, v.lane.clamp(min=0), occupied_s, reduce="amin")
    # The new car is no faster than the first car on its entry lane.
    is_first = v.present & (occupied_s <= first_s.gather(1, v.lane.clamp(min=0)))
    lane_speed = torch.full((w, num_lanes), 1.0e6, device=v.s.device).scatter_reduce(
        1, v.lane.clamp(min=0), torch.where(is_first, v.speed, 1.0e6), reduce="amin"
    )
    clear = first_s.gather(1, lane) > cfg.spawn_gap_m
    slot_ids = torch.arange(n, device=v.s.device).expand(w, n)
    candidate = free & clear
    winner_slot = torch.full((w, num_lanes), n, dtype=torch.int64, device=v.s.device).scatter_reduce(
        1, lane, torch.where(candidate, slot_ids, n), reduce="amin"
    )
    spawn = candidate & (winner_slot.gather(1, lane) == slot_ids)
    return spawn, lane, lane_speed.gather(1, lane), u[..., 1]


def _entered(v: Vehicles, spawn: torch.Tensor, lane: torch.Tensor, **fields: torch.Tensor) -> Vehicles:
    """`v` with the slots `spawn` replaced by a car at the start (s = 0) of `lane`, at rest laterally."""
    zeros = torch.zeros_like(v.s)
    fresh = dict(
        lane=lane,
        s=zeros,
        d=zeros,
        psi=zeros,
        accel=zeros,
        steer=zeros,
        lc_dir=torch.zeros_like(lane),
        present=torch.ones_like(v.present),
        crashed=torch.zeros_like(v.present),
        **fields,
    )
    return replace(v, **{k: torch.where(spawn, val, getattr(v, k)) for k, val in fresh.items()})


def inflow(state: WorldState, road: RoadMap, cfg: SimConfig) -> WorldState:
    """Refill free background slots at the map's entry lanes, one car per entry lane and decision, where the
    entry is clear for `spawn_gap_m`."""
    v = state.vehicles
    w, n = v.s.shape
    spawn, lane, lane_speed, u_dest = _entry_spawn(state, road, cfg, ~v.present & ~v.controlled, S_INFLOW)
    drivers = sample_drivers(cfg, state.seed, state.ticks, (w, n), v.s.device)
    limit = lane_attr(road.lane_speed_limit, road, state.map_id, lane)
    desired = torch.minimum(drivers["desire"] * limit, drivers["max_speed"])
    speed = torch.minimum(desired * drivers.pop("init_fraction"), lane_speed)
    dest = sample_destination(road, cfg, state.map_id, lane, u_dest, cfg.drivers.exit_fraction)
    v = _entered(v, spawn, lane, speed=speed, dest=dest, target_speed=desired, **drivers)
    return replace(state, vehicles=v)


def respawn(state: WorldState, road: RoadMap, cfg: SimConfig, consts: SimConstants | None = None) -> WorldState:
    """Controlled slots whose agent is out of its episode (crashed, off the road, arrived, missed its exit) enter
    again as a new agent, as MetaDrive's multi-agent environments respawn theirs: the old car is towed away, and
    the new one starts at an entry lane clear for `spawn_gap_m` (at most one car per entry lane and decision;
    a slot whose entry is blocked waits, inactive, for a later decision) with the controlled car's parameters, at
    `ego_speed` (no faster than the lane's limit and its first car), on a route drawn like a reset's
    (`ego_exit_fraction`)."""
    v = state.vehicles
    w, n = v.s.shape
    c = state.active.shape[1]
    ended = v.controlled[:, :c] & ~state.active
    # Padded as uint8, as in `end_decision` (Inductor's CPU vectoriser and padded bools).
    out = torch.nn.functional.pad(ended.to(torch.uint8), (0, n - c)).bool()
    v = replace(v, present=v.present & ~out)
    state = replace(state, vehicles=v)
    spawn, lane, lane_speed, u_dest = _entry_spawn(state, road, cfg, out, S_RESPAWN)
    m = state.map_id
    limit = lane_attr(road.lane_speed_limit, road, m, lane)
    speed = torch.minimum(torch.minimum(torch.full_like(limit, cfg.ego_speed), limit), lane_speed)
    speeds = constants_or_build(consts, cfg, v.s.device).target_speeds
    target = speeds[(speed.unsqueeze(-1) - speeds).abs().argmin(-1)]
    dest = sample_destination(road, cfg, m, lane, u_dest, cfg.ego_exit_fraction)
    fields = {k: torch.full_like(v.s, value) for k, value in CONTROLLED_CAR.items()}
    fields.update(
        speed=speed, dest=dest, target_speed=target, cmd_accel=torch.zeros_like(v.s), cmd_steer=torch.zeros_like(v.s)
    )
    v = _entered(v, spawn, lane, **fields)
    return replace(state, vehicles=v, active=state.active | spawn[:, :c])


__all__ = ["inflow", "respawn"]
