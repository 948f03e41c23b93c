"""World state: structure-of-arrays tensors, `[W worlds, N vehicle slots]`. Frozen; steps return new states."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from fuyao.sim.replay import LogReplay


@dataclass(frozen=True)
class Vehicles:
    """Per-vehicle state and driver parameters, every field `[W, N]`. Frenet frame of the vehicle's lane."""

    lane: torch.Tensor  # [W, N] int64, lane id local to the world's map
    s: torch.Tensor  # [W, N] float32 m, arc length along the lane centre line
    d: torch.Tensor  # [W, N] float32 m, lateral offset, positive to the left
    psi: torch.Tensor  # [W, N] float32 rad, heading relative to the lane direction
    speed: torch.Tensor  # [W, N] float32 m/s, >= 0
    accel: torch.Tensor  # [W, N] float32 m/s^2, applied in the last tick
    steer: torch.Tensor  # [W, N] float32 rad, front wheel angle applied in the last tick
    length: torch.Tensor  # [W, N] float32 m
    width: torch.Tensor  # [W, N] float32 m
    dest: torch.Tensor  # [W, N] int64, destination id (a group of exit lanes)
    lc_dir: torch.Tensor  # [W, N] int64, lane change under way: -1 left, 0 none, +1 right
    target_speed: torch.Tensor  # [W, N] float32 m/s, cruise set-point of meta actions
    desire: torch.Tensor  # [W, N] float32, desired speed as a fraction of the lane's speed limit (IDM v0)
    max_speed: torch.Tensor  # [W, N] float32 m/s, the vehicle's own top speed (trucks are slower)
    idm_headway: torch.Tensor  # [W, N] float32 s, IDM T
    idm_gap: torch.Tensor  # [W, N] float32 m, IDM s0 (jam distance, bumper to bumper)
    idm_accel: torch.Tensor  # [W, N] float32 m/s^2, IDM a
    idm_decel: torch.Tensor  # [W, N] float32 m/s^2, IDM b (comfortable braking)
    idm_delta: torch.Tensor  # [W, N] float32, IDM acceleration exponent
    politeness: torch.Tensor  # [W, N] float32, MOBIL p
    present: torch.Tensor  # [W, N] bool
    controlled: torch.Tensor  # [W, N] bool, driven by the policy
    crashed: torch.Tensor  # [W, N] bool
    cmd_accel: torch.Tensor  # [W, N] float32 m/s^2, held continuous command of controlled vehicles
    cmd_steer: torch.Tensor  # [W, N] float32 rad


@dataclass(frozen=True)
class SignalClock:
    """Traffic-signal clocks per world and junction `[W, J]` (`fuyao.sim.signals`)."""

    phase: torch.Tensor  # [W, J] int64, index into the junction's program (0 where unsignalised)
    time_s: torch.Tensor  # [W, J] float32 s spent in the current phase
    scale: torch.Tensor  # [W, J] float32, multiplier of every phase's duration in this world


@dataclass(frozen=True)
class WorldState:
    vehicles: Vehicles
    map_id: torch.Tensor  # [W] int64, index into the map bank
    time_s: torch.Tensor  # [W] float32 s since the episode began
    decisions: torch.Tensor  # [W] int64, decisions taken in this episode
    episode: torch.Tensor  # [W] int64, episodes begun in this world (random streams)
    seed: torch.Tensor  # [W] int64, the world's random key
    ticks: torch.Tensor  # [W] int64, ticks since the world was created (random streams)
    active: torch.Tensor  # [W, C] bool, controlled vehicle still in its episode
    signals: SignalClock  # [W, J] phase clocks of the map's junctions
    replay: LogReplay | None = None  # logged motion of replayed worlds (`fuyao.sim.replay`), else None

    @property
    def num_worlds(self) -> int:
        return self.map_id.shape[0]

    @property
    def device(self) -> torch.device:
        return self.map_id.device


def replace(obj, **changes):
    return dataclasses.replace(obj, **changes)


def where_world(mask: torch.Tensor, a, b):
    """Select per world between two states of the same type: `a` where `mask [W]` else `b`."""
    if a is None:  # an optional part both states lack (`WorldState.replay`)
        return None
    if isinstance(a, torch.Tensor):
        m = mask.view(-1, *([1] * (a.dim() - 1)))
        return torch.where(m, a, b)
    return type(a)(**{f.name: where_world(mask, getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)})


def put_worlds(obj, index: torch.Tensor, sub):
    """`obj` with the worlds `index [K]` replaced by the sub-batch `sub` (`[K, ...]` fields): the inverse of
    `select_worlds`. Returns new tensors; `obj` is not changed."""
    if obj is None:
        return None
    if isinstance(obj, torch.Tensor):
        return obj.index_copy(0, index, sub.to(obj.dtype))
    return type(obj)(
        **{f.name: put_worlds(getattr(obj, f.name), index, getattr(sub, f.name)) for f in dataclasses.fields(obj)}
    )


def permute_vehicles(v: Vehicles, order: torch.Tensor) -> Vehicles:
    """Reorder vehicle slots per world: `order [W, N]` slot indices."""
    return Vehicles(**{f.name: getattr(v, f.name).gather(1, order) for f in dataclasses.fields(v)})


def first_slots(obj, count: int):
    """The first `count` vehicle slots of every world (the controlled ones) of `Vehicles` or any dataclass of
    `[W, N, ...]` fields (`Surroundings`, `DriverParams`, ...): every field `[W, count, ...]`. Slot numbers stored in
    the fields (a neighbour's slot) still index all `N` slots."""
    if obj is None:
        return None
    if isinstance(obj, torch.Tensor):
        return obj[:, :count]
    return type(obj)(**{f.name: first_slots(getattr(obj, f.name), count) for f in dataclasses.fields(obj)})


def select_worlds(obj, index: torch.Tensor):
    """The sub-batch of worlds `index [K]` of a state (or any dataclass of `[W, ...]` tensors)."""
    if obj is None:
        return None
    if isinstance(obj, torch.Tensor):
        return obj[index]
    return type(obj)(**{f.name: select_worlds(getattr(obj, f.name), index) for f in dataclasses.fields(obj)})
