"""Signal clocks: every junction's phase and time in phase, per world, and the state of every connector.

The map holds each junction's program (`RoadMap.lane_signal [M, L, Ph]`, `junction_phase_s [M, J, Ph]`); the
world holds, per world and junction, the phase index, the seconds spent in it and a timing scale drawn per world
(so training sees many cycle lengths). A reset starts each junction at a random point of its cycle (the offset).
Fixed-time programs: a phase ends after `duration x scale` seconds; one phase change per tick at most (phases
last far longer than a tick).
"""

from __future__ import annotations

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.roads.signals import Signal
from fuyao.sim.geometry import lane_index
from fuyao.sim.rng import uniform
from fuyao.sim.state import SignalClock

S_SIGNAL = 11  # random stream of the signal offsets and timing scales


def initial_clock(
    road: RoadMap, map_id: torch.Tensor, key: torch.Tensor, counter: torch.Tensor, scale_range: tuple[float, float]
) -> SignalClock:
    """Clocks at a uniformly random point of each junction's (scaled) cycle. `map_id, key, counter [W]`."""
    num_j = road.junction_phase_s.shape[1]
    u = uniform(key, counter, (num_j, 2), S_SIGNAL)  # [W, J, 2]
    lo, hi = scale_range
    scale = lo + (hi - lo) * u[..., 0]
    durations = road.junction_phase_s[map_id] * scale.unsqueeze(-1)  # [W, J, Ph]
    ends = torch.cumsum(durations, dim=-1)
    cycle = ends[..., -1]
    t = u[..., 1] * cycle  # offset into the cycle
    phase = (ends <= t.unsqueeze(-1)).sum(dim=-1)
    num = road.junction_num_phases[map_id]
    phase = torch.minimum(phase, (num - 1).clamp(min=0))
    start = torch.where(phase > 0, ends.gather(-1, (phase - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1), 0.0)
    time_s = torch.where(num > 0, t - start, 0.0)
    return SignalClock(phase=phase, time_s=time_s.clamp(min=0.0), scale=scale)


def advance_clock(clock: SignalClock, road: RoadMap, map_id: torch.Tensor, dt: float) -> SignalClock:
    """One tick of `dt` seconds: time runs, and a phase that has lasted its duration hands over to the next."""
    num = road.junction_num_phases[map_id]  # [W, J]
    w, j = clock.phase.shape
    flat = (map_id.view(-1, 1) * j + torch.arange(j, device=map_id.device)) * road.junction_phase_s.shape[2]
    duration = road.junction_phase_s.reshape(-1)[flat + clock.phase] * clock.scale
    t = clock.time_s + dt
    over = (num > 0) & (t >= duration)
    phase = torch.where(over, torch.remainder(clock.phase + 1, num.clamp(min=1)), clock.phase)
    t = torch.where(over, t - duration, torch.where(num > 0, t, 0.0))
    return SignalClock(phase=phase, time_s=t, scale=clock.scale)


def _junction_clock(road: RoadMap, map_id: torch.Tensor, field: torch.Tensor, lane: torch.Tensor):
    """The junction of each `lane [W, ...]` (-1 none), `field [W, J]` of the clock at that junction, and the
    lanes' flat table index."""
    w = map_id.shape[0]
    flat = lane_index(road, map_id, lane)
    junction = road.lane_junction.reshape(-1)[flat]
    value = field.gather(1, junction.clamp(min=0).reshape(w, -1)).reshape(junction.shape)
    return junction, value, flat


def link_signal(road: RoadMap, map_id: torch.Tensor, clock: SignalClock, lane: torch.Tensor) -> torch.Tensor:
    """`Signal` code of each `lane [W, ...]` now (OFF for lanes in no signalised junction or `lane < 0`)."""
    junction, phase, flat = _junction_clock(road, map_id, clock.phase, lane)
    code = road.lane_signal.reshape(-1)[flat * road.lane_signal.shape[2] + phase.int()]
    return torch.where((lane >= 0) & (junction >= 0), code, int(Signal.OFF))


def link_time_in_state(road: RoadMap, map_id: torch.Tensor, clock: SignalClock, lane: torch.Tensor) -> torch.Tensor:
    """Seconds the junction of each `lane [W, ...]` has been in its current phase (0 where unsignalised)."""
    junction, t, _ = _junction_clock(road, map_id, clock.time_s, lane)
    return torch.where((lane >= 0) & (junction >= 0), t, 0.0)


def set_clock(clock: SignalClock, phase: torch.Tensor | None = None, time_s: torch.Tensor | None = None) -> SignalClock:
    """The clock with phases and/or times set from outside (tests, scenarios, signal-control research):
    `[W, J]` each; the scale is kept."""
    return SignalClock(
        phase=clock.phase if phase is None else phase.to(clock.phase),
        time_s=clock.time_s if time_s is None else time_s.to(clock.time_s),
        scale=clock.scale,
    )


__all__ = ["SignalClock", "advance_clock", "initial_clock", "link_signal", "link_time_in_state", "set_clock"]
