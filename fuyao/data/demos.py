"""Demonstrations for behaviour cloning: actions recovered from trajectories (inverse dynamics), logged
scenarios turned into demonstration recordings, and the stream of (observation, action) batches that
`fuyao train --algo bc --data DIR` learns from.

**Inverse dynamics** reads a driver's motion at the decision times, `[W, T]` series, and returns the action of
the world's action space that reproduces it, the label of decision t coming from t and t + 1 (the last has none):

- *Continuous* (`[acceleration, steering]`, normalised): the inverse of `fuyao.sim.dynamics.bicycle_step` held
  for one decision: acceleration `(v1 - v0) / T`; the slip angle from the heading change over the distance
  driven, `sin(beta) = dyaw (L / 2) / distance`, and the steering `atan(2 tan(beta))`. Exact for Fuyao's own
  rollouts (up to float32 and the speed clamp at 0); a car that barely moved (< 0.5 m) is labelled straight.
- *Meta* (highway-env's DiscreteMetaAction): a lane change is a move onto a lane that is not a successor of the
  one before (two hops, so a short junction lane in between is still "ahead"); its side is the lane graph's
  (the new lane is the old one's neighbour there, or leads on from it), or where the graph says nothing, the
  side the lateral offset crossed from; its label goes on the decision the lateral motion towards that side began (at
  most `MAX_LANE_CHANGE_S` back), as the action that began it. Off lane changes, the label is the one
  of IDLE, FASTER and SLOWER whose cruise set-point (by `apply_action`'s rule, from the current speed) is
  nearest the set-point the speed change implies (the inverse of the proportional cruise control over the
  decision's ticks); ties go to IDLE. No lane change is inferred on junction connectors.

**Logs to demonstrations** (`log_demonstrations`): the scenarios are replayed with the logged driver at the ego
(`ReplayConfig(ego="log")`) on the training preset's spaces; each decision's observation and action mask are
the world's, the label is the inverse dynamics of the logged ego. `write_log_demonstrations` streams a folder
of scenarios into a recording folder (`fuyao.data.record`'s format, `pilot` `"log"`) chunk by chunk.

**The stream** (`Demonstrations`) reads a recording's part files one at a time in a seeded order per pass, each
shuffled, and hands out batches of rows; its position is a function of the rows already consumed, so a resumed
run continues where the killed one stopped, and each DDP rank reads its own share of the parts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from fuyao.configio import to_dict
from fuyao.data.record import (
    INDEX_FILE,
    RECORDING_FORMAT,
    RECORDING_VERSION,
    observation_index,
    pack_mask,
    read_recording_index,
    roadmap_to_vector_map,
    unpack_mask,
    write_part,
)
from fuyao.data.replay import ReplayConfig, build_replay
from fuyao.data.scenario import ScenarioError
from fuyao.roads.lanegraph import RoadMap
from fuyao.sim.config import ActionType, SimConfig
from fuyao.sim.geometry import wrap_angle
from fuyao.sim.step import META_FASTER, META_IDLE, META_LEFT, META_RIGHT, META_SLOWER, speed_index
from fuyao.sim.traffic import TAU_ACC

MAX_LANE_CHANGE_S = 4.0  # s: a lane change's label goes at most this long before its crossing
LATERAL_SPEED = 0.2  # m/s towards the new lane (mean over a decision): the lateral motion of a lane change
CROSSING_D_M = 0.05  # m: the offsets on both sides of a crossing are at least this far from the boundary's side
MIN_STEER_DISTANCE_M = 0.5  # m per decision: below it the heading change says nothing of the steering
CONNECTOR = 2  # `RoadMap.lane_kind` of junction connectors


# ---- inverse dynamics -----------------------------------------------------------------------------------------


def _successor(road: RoadMap, map_id: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`b` is `a`, a successor of `a`, or a successor's successor, `[W]` bool (lanes `-1`: False)."""
    m = map_id
    succ = road.lane_succ[m, a.clamp(min=0)]  # [W, S]
    one = (succ == b.unsqueeze(-1)).any(-1)
    two = (road.lane_succ[m.unsqueeze(-1), succ.clamp(min=0)] == b.view(-1, 1, 1)) & (succ >= 0).unsqueeze(-1)
    return (a >= 0) & (b >= 0) & ((a == b) | one | two.flatten(1).any(-1))


def _beside(road: RoadMap, map_id, a, b, side: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """`b` lies on `side` of `a`: it is `a`'s neighbour there (or leads on from it), or `a` leads to the lane
    on `b`'s `other` side, `[W]` bool."""
    nb = side[map_id, a.clamp(min=0)]
    back = other[map_id, b.clamp(min=0)]
    near = (nb >= 0) & _successor(road, map_id, nb, b)
    return (a >= 0) & (b >= 0) & (near | ((back >= 0) & _successor(road, map_id, a, back)))


def infer_meta_actions(
    road: RoadMap,
    cfg: SimConfig,
    map_id: torch.Tensor,
    lane: torch.Tensor,
    d: torch.Tensor,
    speed: torch.Tensor,
    valid: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Meta actions `[W, T]` int64 and where they are known `[W, T]` bool, from the lane, lateral offset and
    speed of one driver per world at T decision times (see the module docstring)."""
    w, t_len = lane.shape
    dev = lane.device
    known = torch.zeros_like(valid)
    known[:, :-1] = valid[:, :-1] & valid[:, 1:]
    lane_label = torch.full((w, t_len), -1, dtype=torch.int64, device=dev)
    kind = road.lane_kind
    cand = torch.full((w,), -1, dtype=torch.int64, device=dev)  # where the pending lane change's label goes
    cand_dir = torch.zeros(w, dtype=torch.int64, device=dev)  # +1 left, -1 right
    back = torch.zeros(w, dtype=torch.int64, device=dev)
    rows = torch.arange(w, device=dev)
    max_back = max(1, math.ceil(MAX_LANE_CHANGE_S * cfg.decision_hz))
    move = LATERAL_SPEED / cfg.decision_hz
    for t in range(t_len - 2, -1, -1):
        a, b = lane[:, t], lane[:, t + 1]
        ok = known[:, t]
        ahead = _successor(road, map_id, a, b)
        # The pending label moves back to t while the driver was already moving towards the new lane at t.
        moving = (d[:, t + 1] - d[:, t]) * cand_dir.float() > move
        extend = (cand == t + 1) & ok & (a == b) & moving & (back < max_back)
        done = (cand >= 0) & ~extend
        lane_label[rows[done], cand[done]] = torch.where(cand_dir[done] > 0, META_LEFT, META_RIGHT)
        cand = torch.where(done, -1, torch.where(extend, t, cand))
        back = torch.where(extend, back + 1, 0)
        on_road = (kind[map_id, a.clamp(min=0)] != CONNECTOR) & (kind[map_id, b.clamp(min=0)] != CONNECTOR)
        side = ok & ~ahead & on_road
        # Which side: the lane graph's neighbours (b beside a, or beside a lane a leads to), else the lateral
        # offset crossing from one side to the other.
        by_graph_left = _beside(road, map_id, a, b, road.lane_left, road.lane_right)
        by_graph_right = _beside(road, map_id, a, b, road.lane_right, road.lane_left)
        crossed_left = (d[:, t] > CROSSING_D_M) & (d[:, t + 1] < -CROSSING_D_M)
        crossed_right = (d[:, t] < -CROSSING_D_M) & (d[:, t + 1] > CROSSING_D_M)
        graph = by_graph_left | by_graph_right
        left = side & (by_graph_left | (~graph & crossed_left))
        right = side & ~left & (by_graph_right | (~graph & crossed_right))
        new = (left | right) & (cand < 0)
        cand = torch.where(new, t, cand)
        cand_dir = torch.where(new, torch.where(left, 1, -1), cand_dir)
    done = cand >= 0
    lane_label[rows[done], cand[done]] = torch.where(cand_dir[done] > 0, META_LEFT, META_RIGHT)

    speeds = torch.tensor(cfg.target_speeds, device=dev)  # host side: data preparation, not the hot path
    r = (1.0 - cfg.dt / TAU_ACC) ** cfg.ticks_per_decision  # v1 = target + (v0 - target) r
    action = torch.full((w, t_len), META_IDLE, dtype=torch.int64, device=dev)
    target = speeds[speed_index(speed[:, 0], speeds)]
    top = speeds.shape[0] - 1
    for t in range(t_len - 1):
        v0, v1 = speed[:, t], speed[:, t + 1]
        target = torch.where(valid[:, t], target, speeds[speed_index(v0, speeds)])  # a track (re)starting
        implied = (v1 - v0 * r) / (1.0 - r)
        idx = speed_index(v0, speeds)
        options = torch.stack([target, speeds[(idx + 1).clamp(max=top)], speeds[(idx - 1).clamp(min=0)]], -1)
        pick = (options - implied.unsqueeze(-1)).abs().argmin(-1)
        speed_action = torch.tensor([META_IDLE, META_FASTER, META_SLOWER], device=dev)[pick]
        changes_lane = lane_label[:, t] >= 0
        action[:, t] = torch.where(changes_lane, lane_label[:, t], speed_action)
        target = torch.where(changes_lane, target, options.gather(-1, pick.unsqueeze(-1)).squeeze(-1))
    return action, known


def infer_continuous_actions(
    cfg: SimConfig, yaw: torch.Tensor, speed: torch.Tensor, length: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised `[acceleration, steering]` `[W, T, 2]` and where known `[W, T]`, from the world-frame heading
    and the speed at T decision times; `length` `[W]` m (see the module docstring)."""
    k, dt = cfg.ticks_per_decision, cfg.dt
    period = k * dt
    known = torch.zeros_like(valid)
    known[:, :-1] = valid[:, :-1] & valid[:, 1:]
    v0, v1 = speed[:, :-1], speed[:, 1:]
    accel = (v1 - v0) / period
    distance = k * dt * v0 + accel * dt * dt * k * (k - 1) / 2  # the speeds the yaw rate was computed from
    dyaw = wrap_angle(yaw[:, 1:] - yaw[:, :-1])
    sin_beta = (dyaw * 0.5 * length.unsqueeze(-1) / distance.clamp(min=1e-3)).clamp(-0.99, 0.99)
    beta = torch.asin(sin_beta)
    steer = torch.where(distance > MIN_STEER_DISTANCE_M, torch.atan(2.0 * torch.tan(beta)), 0.0)

    def normalise(x, bounds):
        lo, hi = bounds
        return (2.0 * (x - lo) / (hi - lo) - 1.0).clamp(-1.0, 1.0)

    pair = torch.stack([normalise(accel, cfg.accel_range), normalise(steer, cfg.steer_range)], -1)
    action = torch.cat([pair, torch.zeros_like(pair[:, :1])], dim=1)
    return torch.where(known.unsqueeze(-1), action, 0.0), known


# ---- logs to demonstrations ----------------------------------------------------------------------------------


def ego_span(sc):
    """The scenario from the ego's first logged step to its last (the steps a demonstration can label), or
    None where the ego is logged at fewer than two steps."""
    steps = np.nonzero(sc.valid[sc.ego])[0]
    if steps.size < 2:
        return None
    lo, hi = int(steps[0]), int(steps[-1]) + 1
    if lo == 0 and hi == sc.valid.shape[1]:
        return sc
    cut = lambda a: np.asarray(a)[:, lo:hi]  # noqa: E731
    signals = sc.signals
    if signals is not None:
        signals = dataclasses.replace(signals, state=signals.state[:, lo:hi])
    return dataclasses.replace(
        sc,
        timestamps=sc.timestamps[lo:hi] - sc.timestamps[lo],
        **{k: cut(getattr(sc, k)) for k in ("x", "y", "yaw", "vx", "vy", "valid")},
        signals=signals,
        metadata={**sc.metadata, "first_step": lo},
    )


def log_demonstrations(
    scenarios: list, sim: SimConfig, replay: ReplayConfig | None = None, device: torch.device | str = "cpu"
) -> tuple[dict[str, np.ndarray], RoadMap, dict[str, Any]]:
    """Replay `scenarios` with the logged driver at the ego on `sim`'s spaces: one row per decision the log
    labels (the recording's columns, with `obs`, `action_mask` and the inferred action), the batch's road, and
    the replay summary."""
    from fuyao.sim.world import World

    rcfg = dataclasses.replace(replay or ReplayConfig(), ego="log")
    batch = build_replay(scenarios, sim, rcfg, device)
    cfg = batch.cfg
    world = World(cfg, device=device, road=batch.road, spawns=False)
    tpd = cfg.ticks_per_decision
    decisions = cfg.decisions_per_episode
    w = cfg.worlds
    meta = cfg.action is ActionType.META
    state = batch.state
    rp = state.replay
    act = (
        torch.full((w, 1), META_IDLE, dtype=torch.int64, device=world.device)
        if meta
        else torch.zeros(w, 1, 2, device=world.device)
    )
    obs, masks, active, reward, terminated, truncated = [], [], [], [], [], []
    with torch.inference_mode():
        for _ in range(decisions):
            obs.append(world.observe(state)[:, 0].flatten(1))
            if meta:
                masks.append(pack_mask(world.action_mask(state)[:, 0]))
            active.append(state.active[:, 0])
            result = world.step(state, act)
            reward.append(result.reward[:, 0])
            terminated.append(result.terminated[:, 0])
            truncated.append(result.truncated[:, 0])
            state = result.state
    ticks = (torch.arange(decisions + 1, device=world.device) * tpd).clamp(max=rp.x.shape[2] - 1)
    logged = rp.valid[:, 0][:, ticks] & (ticks.unsqueeze(0) < batch.log_ticks.unsqueeze(1))
    series = {k: getattr(rp, k)[:, 0][:, ticks] for k in ("lane", "s", "d", "x", "y", "yaw", "speed")}
    v = batch.state.vehicles
    if meta:
        action, known = infer_meta_actions(
            batch.road, cfg, batch.state.map_id, series["lane"], series["d"], series["speed"], logged
        )
    else:
        action, known = infer_continuous_actions(cfg, series["yaw"], series["speed"], v.length[:, 0], logged)
    stack = lambda xs: torch.stack(xs, 1)  # noqa: E731 ([W] per decision -> [W, D])
    keep = known[:, :decisions] & stack(active)
    cols: dict[str, torch.Tensor] = {
        "world": torch.arange(w, device=world.device).view(w, 1).expand(w, decisions),
        "slot": torch.zeros(w, decisions, dtype=torch.int64, device=world.device),
        "seed": torch.zeros(w, decisions, dtype=torch.int64, device=world.device),
        "episode": torch.zeros(w, decisions, dtype=torch.int64, device=world.device),
        "decision": torch.arange(decisions, device=world.device).view(1, -1).expand(w, decisions),
        "map_id": batch.state.map_id.view(w, 1).expand(w, decisions),
        **{k: val[:, :decisions] for k, val in series.items()},
        "length": v.length[:, :1].expand(w, decisions),
        "width": v.width[:, :1].expand(w, decisions),
        "active": keep,
        "reward": stack(reward),
        "terminated": stack(terminated),
        "truncated": stack(truncated),
    }
    cols["time_s"] = cols["decision"].float() / cfg.decision_hz
    cols["done"] = cols["terminated"] | cols["truncated"]
    if meta:
        cols["action"] = action[:, :decisions]
        cols["action_mask"] = stack(masks)
    else:
        cols["action_accel"], cols["action_steer"] = action[:, :decisions, 0], action[:, :decisions, 1]
    sel = keep.reshape(-1).cpu()
    host = {k: t.reshape(w * decisions).cpu().numpy()[sel.numpy()] for k, t in cols.items()}
    host["obs"] = torch.stack(obs, 1).reshape(w * decisions, -1).cpu().numpy()[sel.numpy()]
    scenario = np.repeat(np.asarray(batch.names, dtype=object), decisions)[sel.numpy()]
    host["scenario"] = scenario
    return host, batch.road, dict(batch.summary)


def write_log_demonstrations(
    scenario_files: list[Path],
    sim: SimConfig,
    out: str | Path,
    chunk: int = 256,
    replay: ReplayConfig | None = None,
    device: torch.device | str = "cpu",
    source: str = "",
) -> dict[str, Any]:
    """Stream scenario files into a demonstration recording in `out`, `chunk` scenarios at a time (the memory
    held is one chunk's replay); returns the counts."""
    from fuyao.data.scenario import read_scenario

    out = Path(out)
    if chunk < 1:
        raise ScenarioError(f"write_log_demonstrations.chunk: got {chunk!r}; must be >= 1 scenario")
    if not scenario_files:
        raise ScenarioError(f"{source or out}: no scenario files to turn into demonstrations")
    if out.exists() and any(out.glob("part-*.parquet")):
        raise ScenarioError(f"{out}: already holds a recording (part-*.parquet); choose an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {
        "format": RECORDING_FORMAT,
        "version": RECORDING_VERSION,
        "sim": to_dict(sim),
        "decision_hz": sim.decision_hz,
        "controlled": 1,
        "pilot": "log",
        "seed": 0,
        "map_names": [],
        "maps": {},
        "observation": observation_index(sim),
        "metadata": {"source": source, "actions": "inverse dynamics (fuyao.data.demos)", "scenarios": 0},
    }
    rows = parts = worlds = 0
    summary: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for lo in range(0, len(scenario_files), chunk):
        scenarios = []
        for f in scenario_files[lo : lo + chunk]:
            sc = read_scenario(f)
            why = "no map" if sc.map is None else None
            sc = ego_span(sc) if why is None else None
            if sc is None:
                why = why or "ego logged at fewer than two steps"
                skipped[why] = skipped.get(why, 0) + 1
                continue
            scenarios.append(sc)
        if not scenarios:
            continue
        cols, road, part_summary = log_demonstrations(scenarios, sim, replay, device)
        names = [f"log-map-{len(index['map_names']) + i}" for i in range(road.num_maps)]
        for i, name in enumerate(names):
            index["maps"][name] = roadmap_to_vector_map(road, i).to_json()
        cols["map_id"] = cols["map_id"] + len(index["map_names"])
        cols["world"] = cols["world"] + worlds
        index["map_names"].extend(names)
        worlds += len(scenarios)
        for k, n in part_summary.items():
            summary[k] = summary.get(k, 0) + int(n)
        if len(cols["world"]):
            scenario = cols.pop("scenario")
            rows += write_part(out, parts, cols, index["map_names"], extra={"scenario": scenario})
            parts += 1
    if not rows:
        raise ScenarioError(
            f"{source or out}: no decision of {len(scenario_files)} scenarios could be labelled (skipped: {skipped})"
        )
    index["metadata"].update(scenarios=worlds, skipped=skipped)
    index.update(worlds=worlds, parts=parts, rows=rows)
    _write_index(out, index)
    return {"out": str(out), "scenarios": worlds, "parts": parts, "rows": rows, "skipped": skipped, "replay": summary}


def _write_index(out: Path, index: dict[str, Any]) -> None:
    import json
    import os

    tmp = out / f".{INDEX_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(index))
    os.replace(tmp, out / INDEX_FILE)


# ---- the stream behaviour cloning reads -----------------------------------------------------------------------


class Demonstrations:
    """A recording folder (`fuyao data record`, or logs through `write_log_demonstrations`) as batches of
    `(obs, action, mask)` rows for training on `sim`'s spaces; see the module docstring."""

    def __init__(self, folder: str | Path, sim: SimConfig, rank: int = 0, world_size: int = 1) -> None:
        self.folder = Path(folder)
        self.index = read_recording_index(self.folder)
        where = self.folder / INDEX_FILE
        obs = self.index.get("observation")
        if obs is None:
            raise ScenarioError(
                f"{where}: field 'observation': got None; this recording has no observations to learn from "
                "(recorded with --no-observations); record it again with observations"
            )
        want = observation_index(sim)
        for field in ("type", "shape", "layout"):
            if obs.get(field) != want[field]:
                raise ScenarioError(
                    f"{where}: field 'observation.{field}': got {obs.get(field)!r}; the training preset's "
                    f"observation has {want[field]!r} (record with the same preset's observation)"
                )
        recorded = self.index.get("sim", {}).get("action")
        if recorded != sim.action.value:
            raise ScenarioError(
                f"{where}: field 'sim.action': got {recorded!r}; the training preset acts with {sim.action.value!r}"
            )
        self.meta = sim.action is ActionType.META
        self.obs_shape = tuple(want["shape"])
        all_parts = sorted(self.folder.glob("part-*.parquet"))
        if len(all_parts) < world_size:
            raise ScenarioError(
                f"{self.folder}: {len(all_parts)} part files for {world_size} processes; each process reads its "
                "own parts (record with a smaller --flush-every)"
            )
        self.parts = all_parts[rank::world_size]
        # Rows the stream hands out per part: the active ones (one small column read per part).
        self.part_rows = [
            int(np.count_nonzero(self._read(p, ["active"]).column("active").to_numpy())) for p in self.parts
        ]
        self.rows = sum(self.part_rows)
        if self.rows == 0:
            raise ScenarioError(f"{self.folder}: the recording holds no rows")
        self.rank = rank
        self._cache: tuple[int, int, dict[str, torch.Tensor]] | None = None

    def _columns(self) -> list[str]:
        acts = ["action", "action_mask"] if self.meta else ["action_accel", "action_steer"]
        return ["obs", "active", *acts]

    def read_part(self, i: int) -> dict[str, torch.Tensor]:
        """Part `i` of this rank's share: its active rows, `obs [R, *obs_shape]`, `action`, `mask` (meta)."""
        path = self.parts[i]
        table = self._read(path, self._columns())
        active = table.column("active").to_numpy()
        flat = table.column("obs").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        obs = torch.from_numpy(np.array(flat, dtype=np.float32)).view(len(active), *self.obs_shape)
        keep = torch.from_numpy(active.astype(bool))
        out = {"obs": obs[keep]}
        if self.meta:
            out["action"] = torch.from_numpy(table.column("action").to_numpy().astype(np.int64))[keep]
            out["mask"] = unpack_mask(torch.from_numpy(table.column("action_mask").to_numpy().astype(np.int64)))[keep]
        else:
            a = np.stack([table.column("action_accel").to_numpy(), table.column("action_steer").to_numpy()], -1)
            out["action"] = torch.from_numpy(a.astype(np.float32))[keep]
        if not torch.isfinite(out["obs"]).all():
            raise ScenarioError(f"{path}: column 'obs' holds non-finite values")
        return out

    @staticmethod
    def _read(path: Path, columns: list[str]):
        try:
            return pq.read_table(path, columns=columns)
        except (OSError, ValueError, KeyError) as err:
            raise ScenarioError(f"{path}: cannot read the columns {columns} ({err})") from None

    def _seed(self, seed: int, epoch: int, part: int = -1) -> int:
        return (seed * 1_000_003 + epoch * 10_007 + self.rank * 101 + part + 1) % (2**63)

    def _order(self, seed: int, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self._seed(seed, epoch))
        return torch.randperm(len(self.parts), generator=g).tolist()

    def batches(self, seed: int, start_row: int, size: int) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of `size` rows, from row `start_row` of the seeded stream on (passes over the parts repeat,
        each in a new order); each part is shuffled with its own seed. At most two parts are held at once."""
        if size < 1:
            raise ScenarioError(f"Demonstrations.batches: size {size!r}; must be >= 1")
        epoch, pos = divmod(start_row, self.rows) if self.rows else (0, 0)
        pending: list[dict[str, torch.Tensor]] = []
        held = 0
        while True:
            order = self._order(seed, epoch)
            for i in order:
                n = self.part_rows[i]
                if pos >= n:
                    pos -= n
                    continue
                part = self.read_part(i)
                g = torch.Generator().manual_seed(self._seed(seed, epoch, i))
                perm = torch.randperm(part["obs"].shape[0], generator=g)
                skip = min(pos, perm.shape[0])
                part = {k: v[perm[skip:]] for k, v in part.items()}
                pos = 0
                pending.append(part)
                held += part["obs"].shape[0]
                while held >= size:
                    merged = {k: torch.cat([p[k] for p in pending]) for k in pending[0]}
                    batch = {k: v[:size] for k, v in merged.items()}
                    rest = {k: v[size:] for k, v in merged.items()}
                    pending, held = [rest], rest["obs"].shape[0]
                    yield batch
            epoch += 1


def is_recording(folder: str | Path) -> bool:
    return (Path(folder) / INDEX_FILE).is_file()


__all__ = [
    "Demonstrations",
    "infer_continuous_actions",
    "infer_meta_actions",
    "is_recording",
    "log_demonstrations",
    "write_log_demonstrations",
]
