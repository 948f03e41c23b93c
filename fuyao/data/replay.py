"""Logged scenarios as batched worlds: one world per scenario, the ego in slot 0, the logged objects nearest to it
in the other slots, each replayed from its log (`fuyao.sim.replay`: non-reactive, or reactive along its logged
path). Everything here runs once, on the host (numpy), before the first step.

How a log meets the world:
- time: the scenario is resampled to the world's tick (`Scenario.resample`, documented there: linear positions,
  headings the shorter way round, validity only between valid steps);
- map: the log's vector map becomes the world's map (`fuyao.data.logmap.vector_map_to_roadmap`); scenarios with
  the same map (cut from one log, or one city's) share one map of the bank, built once
- objects: the ego and the `vehicles - 1` tracks that come nearest to it (smallest distance at any common
  step); the others are counted in `ReplayBatch.summary` (`tracks beyond the slots`);
- lane coordinates: every logged pose is projected onto its nearest lane segment (a k-d tree over lane points,
  then the exact foot on the neighbouring segments); vehicles and cyclists only onto lanes that run their way
  (within `max_heading_rad`). A pose farther outside the lane than `free_space_margin_m`, against the lane, or of a
  pedestrian or other object, is free space;
- routes: each track's destination is the one whose route leaves its last logged lane soonest (the way the
  logged driver was going); the ego's expert progress is the route cost-to-go it covered in the log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial import cKDTree

from fuyao.data.logmap import LogMapConfig, vector_map_to_roadmap
from fuyao.data.scenario import AgentType, Scenario, ScenarioError, resample
from fuyao.roads.lanegraph import RoadMap, stack_maps
from fuyao.sim.config import MapKind, SimConfig
from fuyao.sim.geometry import lane_attr
from fuyao.sim.lanes import REACHABLE
from fuyao.sim.replay import LOG, REACTIVE, SIMULATED, LogReplay
from fuyao.sim.reset import CONTROLLED_CAR, sample_drivers
from fuyao.sim.signals import initial_clock
from fuyao.sim.state import Vehicles, WorldState

EGO_MODES = ("pilot", "log")


@dataclass(frozen=True)
class ReplayConfig:
    vehicles: int = 32  # slots per world: the ego and the tracks nearest to it
    reactive: bool = False  # the other tracks follow their logged paths with IDM speed control
    ego: str = "pilot"  # "pilot": the ego is driven by the pilot; "log": by its log (the logged driver)
    free_space_margin_m: float = 1.0  # a pose this far outside its nearest lane is free space
    max_heading_rad: float = 0.5 * math.pi  # vehicles project only onto lanes within this of their heading
    candidates: int = 12  # nearest lane points examined per pose (and the segments on both sides of each)
    map: LogMapConfig = field(default_factory=LogMapConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.vehicles, int) or self.vehicles < 1:
            raise ScenarioError(f"ReplayConfig.vehicles: got {self.vehicles!r}; must be an integer >= 1")
        if self.ego not in EGO_MODES:
            raise ScenarioError(f"ReplayConfig.ego: got {self.ego!r}; allowed: {', '.join(EGO_MODES)}")
        if self.free_space_margin_m < 0:
            raise ScenarioError(f"ReplayConfig.free_space_margin_m: got {self.free_space_margin_m!r}; must be >= 0")


@dataclass(frozen=True)
class ReplayBatch:
    """Logged scenarios ready to step: `World(batch.cfg, road=batch.road)` and `batch.state`."""

    road: RoadMap
    cfg: SimConfig
    state: WorldState
    names: tuple[str, ...]
    ego_x: torch.Tensor  # [W, T] float32 m, the logged ego per tick
    ego_y: torch.Tensor  # [W, T]
    ego_valid: torch.Tensor  # [W, T] bool
    log_ticks: torch.Tensor  # [W] int64, ticks each log covers
    expert_progress_m: torch.Tensor  # [W] float32, route cost-to-go the logged ego covered
    summary: dict[str, int]  # what was built and left out, with counts


# ---- projection onto lanes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LaneTable:
    """The lane points of a one-map `RoadMap` flattened, with the segment that starts at each point."""

    xy: np.ndarray  # [Q, 2] points
    lane: np.ndarray  # [Q] lane id
    s: np.ndarray  # [Q] arc length of the point
    has_next: np.ndarray  # [Q] bool, a segment starts here (not the lane's last point)
    yaw: np.ndarray  # [Q] heading of that segment
    width: np.ndarray  # [Q] lane width
    tree: cKDTree


def _lane_table(road: RoadMap) -> _LaneTable:
    xy_all = road.lane_xy[0].double().numpy()
    ds = road.lane_ds[0].double().numpy()
    length = road.lane_length[0].double().numpy()
    valid = road.lane_valid[0].numpy()
    width = road.lane_width[0].double().numpy()
    yaw_all = road.lane_yaw[0].double().numpy()
    parts = {k: [] for k in ("xy", "lane", "s", "has_next", "yaw", "width")}
    for lane in np.nonzero(valid)[0]:
        n = int(round(length[lane] / ds[lane])) + 1
        n = min(max(n, 2), xy_all.shape[1])
        parts["xy"].append(xy_all[lane, :n])
        parts["lane"].append(np.full(n, lane))
        parts["s"].append(np.arange(n) * ds[lane])
        nxt = np.ones(n, dtype=bool)
        nxt[-1] = False
        parts["has_next"].append(nxt)
        parts["yaw"].append(yaw_all[lane, :n])
        parts["width"].append(np.full(n, width[lane]))
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return _LaneTable(**cat, tree=cKDTree(cat["xy"]))


def _wrap(a: np.ndarray) -> np.ndarray:
    return np.remainder(a + np.pi, 2 * np.pi) - np.pi


def project(
    table: _LaneTable, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, directed: np.ndarray, cfg: ReplayConfig
) -> dict[str, np.ndarray]:
    """Lane coordinates of poses `x, y, yaw [Q]`: `lane, s, d, psi, on_lane`. `directed [Q]` bool: the pose only
    projects onto lanes within `cfg.max_heading_rad` of its heading (vehicles, cyclists) where one is near."""
    q = np.stack([x, y], -1)
    k = min(cfg.candidates, table.xy.shape[0])
    _, idx = table.tree.query(q, k=k)
    idx = idx.reshape(q.shape[0], k)
    # The segments starting at each candidate point and at the point before it (same lane).
    prev = np.clip(idx - 1, 0, None)
    prev_ok = (idx > 0) & (table.lane[prev] == table.lane[idx]) & table.has_next[prev]
    seg = np.concatenate([idx, prev], 1)  # [Q, 2k] start points
    seg_ok = np.concatenate([table.has_next[idx], prev_ok], 1)
    a = table.xy[seg]
    ab = table.xy[np.clip(seg + 1, 0, table.xy.shape[0] - 1)] - a
    len2 = np.einsum("qkc,qkc->qk", ab, ab)
    seg_ok &= len2 > 1e-12
    len2 = np.where(seg_ok, len2, 1.0)
    aq = q[:, None, :] - a
    t = np.clip(np.einsum("qkc,qkc->qk", aq, ab) / len2, 0.0, 1.0)
    rel = aq - t[..., None] * ab
    dist2 = np.einsum("qkc,qkc->qk", rel, rel)
    # Heading agreement as a cosine (no angles for every candidate).
    cos_rel = (ab[..., 0] * np.cos(yaw)[:, None] + ab[..., 1] * np.sin(yaw)[:, None]) / np.sqrt(len2)
    heading_ok = cos_rel >= math.cos(cfg.max_heading_rad) - 1e-9
    use_heading = directed & (seg_ok & heading_ok).any(1)
    cost = np.where(seg_ok & (heading_ok | ~use_heading[:, None]), dist2, np.inf)
    best = np.argmin(cost, 1)
    rows = np.arange(q.shape[0])
    start = seg[rows, best]
    seg_len = np.sqrt(len2[rows, best])
    lane = table.lane[start]
    s = table.s[start] + t[rows, best] * seg_len
    u = ab[rows, best] / seg_len[:, None]
    r = aq[rows, best]
    d = u[:, 0] * r[:, 1] - u[:, 1] * r[:, 0]  # positive to the left
    psi = _wrap(yaw - np.arctan2(u[:, 1], u[:, 0]))
    # The foot's distance, not |d|: a pose past a lane's end projects onto its end point.
    inside = np.sqrt(dist2[rows, best]) <= 0.5 * table.width[start] + cfg.free_space_margin_m
    on_lane = inside & (np.abs(psi) <= cfg.max_heading_rad) & directed
    return {"lane": lane, "s": s, "d": d, "psi": psi, "on_lane": on_lane}


# ---- one scenario ----------------------------------------------------------------------------------------------


def _fill(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """`a [A, T]` with every invalid step holding the nearest earlier valid step's value (before the first valid
    step: the first valid value). Tracks never valid are left as they are."""
    steps = a.shape[1]
    ar = np.broadcast_to(np.arange(steps), a.shape)
    last = np.maximum.accumulate(np.where(valid, ar, -1), axis=1)
    first = np.argmax(valid, axis=1)[:, None]
    src = np.where(last < 0, first, last)
    return np.take_along_axis(a, src, axis=1)


def _choose_tracks(sc: Scenario, slots: int) -> tuple[np.ndarray, int]:
    """The ego first, then the tracks nearest to it (smallest distance at any step both are valid)."""
    ego = sc.ego
    others = [a for a in range(sc.num_tracks) if a != ego and sc.valid[a].any()]
    both = sc.valid[others] & sc.valid[ego][None]
    dist = np.hypot(sc.x[others] - sc.x[ego][None], sc.y[others] - sc.y[ego][None])
    near = np.where(both, dist, np.inf).min(1) if others else np.zeros(0)
    # Tracks never beside the ego come last, by their first valid step's distance to the ego's start.
    order = np.argsort(near, kind="stable")
    chosen = [ego] + [others[i] for i in order[: slots - 1]]
    return np.asarray(chosen), max(0, len(others) - (slots - 1))


def _destinations(road: RoadMap, lane0, s0, lane1, s1) -> tuple[np.ndarray, np.ndarray]:
    """Per track the destination its logged route leads to, and the route cost-to-go it covered (m)."""
    cost = road.route.cost[0].double().numpy()  # [L, D]
    ok = road.dest_valid[0].numpy()[None, :]
    c0 = cost[lane0] - s0[:, None]
    c1 = cost[lane1] - s1[:, None]
    reach = ok & (c0 < REACHABLE) & (c1 < REACHABLE)
    dest = np.argmin(np.where(reach, c1, np.inf), 1)
    fallback = road.route.default_dest[0].numpy()[lane0]
    found = reach.any(1)
    dest = np.where(found, dest, fallback)
    rows = np.arange(dest.shape[0])
    covered = np.where(found, np.clip(c0[rows, dest] - c1[rows, dest], 0.0, None), 0.0)
    return dest, covered


def _map_key(vmap) -> str:
    """A digest of a vector map's content: scenarios cut from one log share their map, built once."""
    h = hashlib.blake2b(digest_size=16)
    for part in (vmap.points, vmap.offsets, vmap.width, vmap.speed_limit, vmap.is_intersection, vmap.left, vmap.right):
        h.update(np.ascontiguousarray(part).tobytes())
    h.update(repr((vmap.lane_ids, vmap.successors, vmap.kind)).encode())
    return h.hexdigest()


def _one(
    sc: Scenario, sim_hz: float, cfg: ReplayConfig, summary: Counter, maps: dict[str, tuple[int, RoadMap, _LaneTable]]
) -> tuple[int, dict]:
    where = sc.origin or f"scenario {sc.scenario_id!r}"
    if sc.map is None:
        raise ScenarioError(f"{where}: map: none; a replayed scenario needs the log's map")
    if not sc.valid[sc.ego, 0]:
        raise ScenarioError(f"{where}: ego track {sc.track_ids[sc.ego]!r} is not logged at the first step")
    sc = resample(sc, sim_hz)
    key = _map_key(sc.map)
    if key not in maps:
        road, map_summary = vector_map_to_roadmap(sc.map, name=sc.scenario_id, cfg=cfg.map)
        for what, n in map_summary.skipped.items():
            summary[f"map: {what}"] += n
        maps[key] = (len(maps), road, _lane_table(road))
    map_index, road, table = maps[key]
    tracks, left_out = _choose_tracks(sc, cfg.vehicles)
    summary["tracks beyond the slots"] += left_out
    valid = sc.valid[tracks]
    x, y = _fill(sc.x[tracks], valid), _fill(sc.y[tracks], valid)
    yaw = _fill(sc.yaw[tracks], valid)
    speed = np.hypot(sc.vx[tracks], sc.vy[tracks])
    step = np.hypot(np.diff(x, axis=1), np.diff(y, axis=1))  # 0 across invalid (filled) steps
    from_motion = np.concatenate([step[:, :1], step], 1) * sim_hz
    speed = _fill(np.where(np.isfinite(speed), speed, from_motion), valid)
    path = np.concatenate([np.zeros((len(tracks), 1)), np.cumsum(step, 1)], 1)
    kinds = sc.agent_type[tracks]
    directed = np.isin(kinds, [AgentType.VEHICLE, AgentType.CYCLIST])
    a, steps = valid.shape
    # Only the logged poses; the steps between hold the nearest logged step's coordinates (`_fill`).
    flat = valid.ravel()
    got = project(table, x.ravel()[flat], y.ravel()[flat], yaw.ravel()[flat], np.repeat(directed, steps)[flat], cfg)
    proj = {}
    for key, val in got.items():
        full = np.zeros(a * steps, dtype=val.dtype)
        full[flat] = val
        proj[key] = full.reshape(a, steps) if key == "on_lane" else _fill(full.reshape(a, steps), valid)
    on_lane = proj["on_lane"] & valid
    summary["objects in free space"] += int((valid.any(1) & ~on_lane.any(1)).sum())
    first = np.where(valid.any(1), np.argmax(valid, 1), steps)
    last = steps - 1 - np.argmax(valid[:, ::-1], 1)
    on_any = np.where(on_lane, np.arange(steps), -1)
    last_on = np.where(on_lane.any(1), on_any.max(1), np.clip(first, 0, steps - 1))
    first_on = np.where(on_lane.any(1), np.argmax(on_lane, 1), np.clip(first, 0, steps - 1))
    rows = np.arange(a)
    lane0, s0 = proj["lane"][rows, first_on], proj["s"][rows, first_on]
    lane1, s1 = proj["lane"][rows, last_on], proj["s"][rows, last_on]
    dest, covered = _destinations(road, lane0, s0, lane1, s1)
    out = dict(
        x=x,
        y=y,
        yaw=yaw,
        speed=speed,
        lane=proj["lane"],
        s=proj["s"],
        d=proj["d"],
        psi=proj["psi"],
        valid=valid,
        on_lane=on_lane,
        path=path,
        first=first,
        path_end=path[rows, np.clip(last, 0, steps - 1)],
        holds_to_end=valid[:, -1],
        length=np.array([sc.length[t] for t in tracks]),
        width=np.array([sc.width[t] for t in tracks]),
        dest=dest,
        max_speed=np.where(valid, speed, 0.0).max(1),
        expert_progress=covered[0],
        steps=steps,
        name=sc.scenario_id,
    )
    return map_index, out


# ---- the batch -------------------------------------------------------------------------------------------------


def build_replay(
    scenarios: list[Scenario], sim: SimConfig, cfg: ReplayConfig | None = None, device: torch.device | str = "cpu"
) -> ReplayBatch:
    """One world per scenario, on the action and observation spaces of `sim` (the pilot's own config: its
    decision rate, target speeds, observation); the world's tick is `sim.sim_hz`."""
    cfg = cfg or ReplayConfig()
    if not scenarios:
        raise ScenarioError("build_replay: got no scenarios")
    summary: Counter = Counter()
    maps: dict[str, tuple[int, RoadMap, _LaneTable]] = {}
    built = [_one(sc, sim.sim_hz, cfg, summary, maps) for sc in scenarios]
    roads = [r for _, r, _ in sorted(maps.values(), key=lambda m: m[0])]
    map_id = torch.as_tensor([i for i, _ in built], dtype=torch.int64, device=device)
    items = [o for _, o in built]
    w, n = len(items), cfg.vehicles
    steps = max(o["steps"] for o in items)
    tpd = sim.ticks_per_decision
    decisions = max(1, (steps - 1) // tpd)
    rcfg = dataclasses.replace(
        sim,
        worlds=w,
        vehicles=n,
        controlled=1,
        num_maps=len(roads),
        map=MapKind.CITY,  # lanes of any shape: the city's steering (curvature feed-forward)
        observe_junctions=sim.junction_features,  # the pilot's observation layout, whatever the map
        inflow=False,
        respawn=False,
        episode_s=decisions / sim.decision_hz,
    )
    road = stack_maps(roads).to(device)

    def table(key, fill, dtype):
        out = np.full((w, n, steps), fill, dtype=dtype)
        for i, o in enumerate(items):
            a, t = o[key].shape
            out[i, :a, :t] = o[key]
            out[i, :a, t:] = o[key][:, -1:]  # padding holds the last step (valid False there)
        return torch.as_tensor(out, device=device)

    def per_slot(key, fill, dtype):
        out = np.full((w, n), fill, dtype=dtype)
        for i, o in enumerate(items):
            out[i, : o[key].shape[0]] = o[key]
        return torch.as_tensor(out, device=device)

    valid = table("valid", False, bool)
    for i, o in enumerate(items):
        valid[i, :, o["steps"] :] = False
    occupied = per_slot("first", steps, np.int64) < steps  # [W, N] a track sits in the slot
    mode = torch.where(occupied, REACTIVE if cfg.reactive else LOG, SIMULATED)
    mode[:, 0] = SIMULATED if cfg.ego == "pilot" else LOG
    replay = LogReplay(
        mode=mode.to(torch.int64),
        x=table("x", 0.0, np.float32),
        y=table("y", 0.0, np.float32),
        yaw=table("yaw", 0.0, np.float32),
        speed=table("speed", 0.0, np.float32),
        lane=table("lane", 0, np.int64),
        s=table("s", 0.0, np.float32),
        d=table("d", 0.0, np.float32),
        psi=table("psi", 0.0, np.float32),
        valid=valid,
        on_lane=table("on_lane", False, bool) & valid,
        path=table("path", 0.0, np.float32),
        first=per_slot("first", steps, np.int64),
        path_end=per_slot("path_end", 0.0, np.float32),
        holds_to_end=per_slot("holds_to_end", False, bool),
        length=torch.as_tensor([o["steps"] for o in items], dtype=torch.int64, device=device),
        t=torch.zeros(w, dtype=torch.int64, device=device),
        p=torch.zeros(w, n, dtype=torch.float32, device=device),
    )
    state = _initial_state(replay, road, rcfg, per_slot, map_id, device)
    names = tuple(o["name"] for o in items)
    expert = torch.as_tensor([o["expert_progress"] for o in items], dtype=torch.float32, device=device)
    summary["scenarios"] = w
    summary["maps built"] = len(roads)
    summary["tracks replayed"] = int(occupied.sum())
    return ReplayBatch(
        road=road,
        cfg=rcfg,
        state=state,
        names=names,
        ego_x=replay.x[:, 0].clone(),
        ego_y=replay.y[:, 0].clone(),
        ego_valid=replay.valid[:, 0].clone(),
        log_ticks=replay.length.clone(),
        expert_progress_m=expert,
        summary=dict(summary),
    )


def _initial_state(rp: LogReplay, road: RoadMap, cfg: SimConfig, per_slot, map_id, device) -> WorldState:
    """Tick 0 of every log: logged slots where the log has them, the ego (slot 0) at its logged pose."""
    w, n, _ = rp.x.shape
    seed = torch.arange(w, dtype=torch.int64, device=device)
    counter = torch.zeros(w, dtype=torch.int64, device=device)
    drivers = sample_drivers(cfg, seed, counter, (w, n), device)
    drivers.pop("init_fraction")
    controlled = torch.zeros(w, n, dtype=torch.bool, device=device)
    controlled[:, 0] = True
    for name, value in CONTROLLED_CAR.items():
        drivers[name] = torch.where(controlled, torch.full_like(drivers[name], value), drivers[name])
    drivers["length"] = per_slot("length", 4.5, np.float32)
    drivers["width"] = per_slot("width", 1.8, np.float32)
    lane, s = rp.lane[:, :, 0].clone(), rp.s[:, :, 0].clone()
    limit = lane_attr(road.lane_speed_limit, road, map_id, lane).clamp(min=1.0)
    logged_top = per_slot("max_speed", 0.0, np.float32)
    # Reactive drivers wish for the fastest speed they were logged at (at least 2 m/s).
    drivers["desire"] = torch.where(controlled, drivers["desire"], logged_top.clamp(min=2.0) / limit)
    speed = rp.speed[:, :, 0].clone()
    present = rp.on_lane[:, :, 0].clone()
    present[:, 0] = True  # the ego is logged at step 0 (checked), projected wherever it is
    speeds = torch.as_tensor(cfg.target_speeds, dtype=torch.float32, device=device)
    nearest = (speed.unsqueeze(-1) - speeds).abs().argmin(-1)
    zeros = torch.zeros(w, n, device=device)
    vehicles = Vehicles(
        lane=lane,
        s=s,
        d=rp.d[:, :, 0].clone(),
        psi=rp.psi[:, :, 0].clone(),
        speed=speed,
        accel=zeros.clone(),
        steer=zeros.clone(),
        dest=per_slot("dest", 0, np.int64),
        lc_dir=torch.zeros(w, n, dtype=torch.int64, device=device),
        target_speed=torch.where(controlled, speeds[nearest], speed),
        present=present,
        controlled=controlled,
        crashed=torch.zeros(w, n, dtype=torch.bool, device=device),
        cmd_accel=zeros.clone(),
        cmd_steer=zeros.clone(),
        **drivers,
    )
    return WorldState(
        vehicles=vehicles,
        map_id=map_id.clone(),
        time_s=torch.zeros(w, device=device),
        decisions=torch.zeros(w, dtype=torch.int64, device=device),
        episode=torch.zeros(w, dtype=torch.int64, device=device),
        seed=seed,
        ticks=torch.zeros(w, dtype=torch.int64, device=device),
        active=controlled[:, :1].clone(),
        signals=initial_clock(road, map_id, seed, counter, cfg.signal_scale_range),
        replay=rp,
    )
