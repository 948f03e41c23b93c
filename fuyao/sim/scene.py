"""Hand-built scenes: a few vehicles placed exactly, for tests, examples and scenario suites."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.sim.config import SimConfig
from fuyao.sim.signals import initial_clock
from fuyao.sim.state import Vehicles, WorldState

DEFAULT_VEHICLE = dict(
    lane=0,
    s=0.0,
    d=0.0,
    psi=0.0,
    speed=0.0,
    accel=0.0,
    steer=0.0,
    length=5.0,
    width=2.0,
    dest=0,
    lc_dir=0,
    target_speed=None,
    desire=1.0,
    max_speed=45.0,
    idm_headway=1.5,
    idm_gap=2.0,
    idm_accel=1.5,
    idm_decel=2.0,
    idm_delta=4.0,
    politeness=0.3,
    present=True,
    controlled=False,
    crashed=False,
    cmd_accel=0.0,
    cmd_steer=0.0,
)


def scene(
    road: RoadMap, cfg: SimConfig, worlds: Sequence[Sequence[dict]], map_id: Sequence[int] | None = None, seed: int = 0
) -> WorldState:
    """A state whose world `i` holds the vehicles described by `worlds[i]` (dicts of `Vehicles` fields; the
    rest take `DEFAULT_VEHICLE`). Slots beyond a world's list are absent. The first `cfg.controlled` slots are
    the controlled ones only where a dict says `controlled=True`."""
    w, n = len(worlds), cfg.vehicles
    device = road.device
    columns: dict[str, list[list]] = {k: [] for k in DEFAULT_VEHICLE}
    for vehicles in worlds:
        if len(vehicles) > n:
            raise ValueError(f"scene: {len(vehicles)} vehicles in one world; cfg.vehicles = {n}")
        rows = [{**DEFAULT_VEHICLE, **v} for v in vehicles] + [{**DEFAULT_VEHICLE, "present": False}] * (
            n - len(vehicles)
        )
        for k in DEFAULT_VEHICLE:
            col = []
            for r in rows:
                value = r[k]
                if k == "target_speed" and value is None:
                    value = r["speed"]
                col.append(value)
            columns[k].append(col)
    fields = {}
    for k, col in columns.items():
        ref = DEFAULT_VEHICLE[k]
        dtype = torch.bool if isinstance(ref, bool) else torch.int64 if isinstance(ref, int) else torch.float32
        fields[k] = torch.tensor(col, dtype=dtype, device=device)
    vehicles = Vehicles(**fields)
    keys = seed * 1_000_003 + torch.arange(w, dtype=torch.int64, device=device)
    zeros = torch.zeros(w, dtype=torch.int64, device=device)
    map_ids = torch.tensor(map_id if map_id is not None else [0] * w, dtype=torch.int64, device=device)
    return WorldState(
        vehicles=vehicles,
        map_id=map_ids,
        time_s=torch.zeros(w, device=device),
        decisions=zeros.clone(),
        episode=zeros.clone(),
        seed=keys,
        ticks=zeros,
        active=vehicles.controlled[:, : cfg.controlled] & vehicles.present[:, : cfg.controlled],
        signals=initial_clock(road, map_ids, keys, zeros, cfg.signal_scale_range),
    )
