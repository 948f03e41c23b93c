"""Logged motion inside the step (DESIGN.md: "a replayed vehicle is a vehicle whose motion comes from its log
(non-reactive) or from IDM along its logged path (reactive), chosen per vehicle by a mask").

A world that replays a log carries a `LogReplay`: every replayed slot's logged motion per tick of the world,
`[W, N, T]`, both as the logged pose (`x, y, yaw`, free space) and as lane coordinates on the world's map (`lane,
s, d, psi`, the pose projected onto its nearest lane; `fuyao.data.replay` builds them). Each tick, after the
world's own motion, the replayed slots are overwritten:

- `LOG` (non-reactive): the logged state of the next tick, exactly; present where the log is valid.
- `REACTIVE`: the driver model's acceleration (IDM towards the leader the lane graph gives, signals and yielding
  as for any background car; no lane changes of its own) sets its speed; its position moves that far along the
  logged path (`path`, the distance driven in the log), and its pose is the logged path's at that distance
  (linear between logged ticks, headings the shorter way round). It appears where and when the log's track
  begins, at the logged speed, and leaves at the end of its path unless the log holds it to the last tick (then
  it waits there).

A logged pose farther from every lane than its half width plus a margin (parking, U-turns, pedestrians on the
pavement) is free space (`on_lane` False): the slot is absent from the lane graph (no car follows or yields to
it) but its box still counts in the controlled vehicles' collisions (`ego_hits`). Replayed slots never crash or
get towed: the log goes on whatever the ego does, as in Waymax and nuPlan. Controlled slots are `SIMULATED`
(driven by the pilot) unless the log drives them too (`LOG`, the logged driver as a reference pilot).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from fuyao.sim.collision import boxes_overlap_cs

SIMULATED = 0
LOG = 1
REACTIVE = 2


@dataclass(frozen=True)
class LogReplay:
    """Logged motion of every slot of every world per tick since the episode began, `[W, N, T]` unless noted.
    Steps the log does not cover (before a track begins, after it ends, padding to the longest log) hold the
    nearest valid step's values with `valid` False."""

    mode: torch.Tensor  # [W, N] int64: SIMULATED, LOG or REACTIVE
    x: torch.Tensor  # float32 m, world frame
    y: torch.Tensor  # float32 m
    yaw: torch.Tensor  # float32 rad
    speed: torch.Tensor  # float32 m/s
    lane: torch.Tensor  # int64, nearest lane of the world's map
    s: torch.Tensor  # float32 m along it
    d: torch.Tensor  # float32 m, lateral offset, positive to the left
    psi: torch.Tensor  # float32 rad, heading relative to the lane
    valid: torch.Tensor  # bool, the log observed the object at this tick
    on_lane: torch.Tensor  # bool, valid and within the lane graph (else free space)
    path: torch.Tensor  # float32 m, distance driven along the logged track since it began (non-decreasing)
    first: torch.Tensor  # [W, N] int64, the track's first valid tick (T: never)
    path_end: torch.Tensor  # [W, N] float32 m, `path` at the track's last valid tick
    holds_to_end: torch.Tensor  # [W, N] bool, the track is valid up to the world's last logged tick
    length: torch.Tensor  # [W] int64, ticks the world's log covers
    t: torch.Tensor  # [W] int64, ticks since the episode began
    p: torch.Tensor  # [W, N] float32 m, reactive slots' position along their path

    @property
    def replayed(self) -> torch.Tensor:
        """`[W, N]` bool: slots whose motion comes from the log."""
        return self.mode != SIMULATED


def _at(table: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """`table [W, N, T]` at tick `k [W, N]` (clamped to the table)."""
    return table.gather(2, k.clamp(0, table.shape[2] - 1).unsqueeze(-1)).squeeze(-1)


def _wrap(a: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a + torch.pi, 2 * torch.pi) - torch.pi


@dataclass(frozen=True)
class ReplayedMotion:
    """The replayed slots' state after a tick, `[W, N]` (only where `LogReplay.replayed`)."""

    lane: torch.Tensor
    s: torch.Tensor
    d: torch.Tensor
    psi: torch.Tensor
    speed: torch.Tensor
    accel: torch.Tensor
    on_lane: torch.Tensor  # bool, present in the lane graph
    free: torch.Tensor  # bool, present in free space (collisions only)
    x: torch.Tensor
    y: torch.Tensor
    yaw: torch.Tensor


def advance(
    rp: LogReplay, speed: torch.Tensor, accel_model: torch.Tensor, dt: float
) -> tuple[ReplayedMotion, LogReplay]:
    """The replayed slots one tick on: `speed [W, N]` m/s now, `accel_model [W, N]` the driver model's
    acceleration for them (reactive slots). Returns their motion and the replay advanced by a tick."""
    w, n, steps = rp.x.shape
    k = (rp.t + 1).unsqueeze(1).expand(w, n)  # the tick being entered
    inside = k < rp.length.unsqueeze(1)

    # Non-reactive: the log's next tick.
    log_present = _at(rp.valid, k) & inside
    log_speed = _at(rp.speed, k)

    # Reactive: IDM speed, the distance along the logged path.
    begins = k == rp.first
    started = k >= rp.first
    v_model = (speed + accel_model * dt).clamp(min=0.0)
    v_new = torch.where(begins, log_speed, v_model)
    p_new = torch.where(begins, torch.zeros_like(rp.p), rp.p + v_new * dt)
    at_end = p_new >= rp.path_end
    p_new = torch.minimum(p_new, rp.path_end)
    v_new = torch.where(at_end & ~begins, 0.0, v_new)
    react_present = started & (~at_end | rp.holds_to_end | begins) & (rp.first < steps)
    hi = torch.searchsorted(rp.path, p_new.unsqueeze(-1).contiguous()).squeeze(-1)
    lo_i = (hi - 1).clamp(min=0)
    hi_i = hi.clamp(max=steps - 1)
    p0, p1 = _at(rp.path, lo_i), _at(rp.path, hi_i)
    frac = ((p_new - p0) / (p1 - p0).clamp(min=1e-6)).clamp(0.0, 1.0)
    frac = torch.where(hi_i == lo_i, 0.0, frac)
    near = torch.where(frac < 0.5, lo_i, hi_i)

    def lerp(table):
        return _at(table, lo_i) + frac * (_at(table, hi_i) - _at(table, lo_i))

    yaw0 = _at(rp.yaw, lo_i)
    react_yaw = _wrap(yaw0 + frac * _wrap(_at(rp.yaw, hi_i) - yaw0))

    reactive = rp.mode == REACTIVE
    idx = torch.where(reactive, near, k)

    def pick(react, logged):
        return torch.where(reactive, react, logged)

    present = pick(react_present, log_present)
    on_lane = present & _at(rp.on_lane, idx)
    new_speed = pick(v_new, log_speed)
    s_at = _at(rp.s, idx) + torch.where(reactive, p_new - _at(rp.path, near), 0.0)
    motion = ReplayedMotion(
        lane=_at(rp.lane, idx),
        s=s_at,
        d=_at(rp.d, idx),
        psi=_at(rp.psi, idx),
        speed=new_speed,
        accel=(new_speed - speed) / dt,
        on_lane=on_lane,
        free=present & ~on_lane,
        x=pick(lerp(rp.x), _at(rp.x, k)),
        y=pick(lerp(rp.y), _at(rp.y, k)),
        yaw=pick(react_yaw, _at(rp.yaw, k)),
    )
    return motion, dataclasses.replace(rp, t=rp.t + 1, p=torch.where(reactive, p_new, rp.p))


def ego_hits(x, y, yaw, length, width, present, controlled: int) -> torch.Tensor:
    """Which of the first `controlled` slots touch any other present box, `[W, C]` bool. Every pair of an ego with every slot (`[W, C, N]`): replayed worlds have few egos, and
    free-space objects are nobody's lane neighbour."""
    c = controlled
    cos_all, sin_all = torch.cos(yaw), torch.sin(yaw)

    def ego(t):
        return t[:, :c, None]

    def other(t):
        return t[:, None, :]

    touching = boxes_overlap_cs(
        other(x) - ego(x),
        other(y) - ego(y),
        ego(cos_all),
        ego(sin_all),
        ego(length),
        ego(width),
        other(cos_all),
        other(sin_all),
        other(length),
        other(width),
    )
    n = x.shape[1]
    not_self = torch.arange(n, device=x.device).unsqueeze(0) != torch.arange(c, device=x.device).unsqueeze(1)
    touching = touching & other(present) & ego(present) & not_self
    return touching.any(-1)
