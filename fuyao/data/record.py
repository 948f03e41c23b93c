"""Recording rollouts of the batched world to partitioned Parquet, and recordings back into `Scenario`s.

A recording is a folder:

- `_recording.json`: `format` (`"fuyao.recording"`), `version` (1), the resolved `SimConfig`, `decision_hz`,
  the pilot, the seed, the map names and the maps themselves as vector lanes (`VectorMap.to_json`), and at
  close the counts;
- `part-00000.parquet`, `part-00001.parquet`, ...: one row per (decision, world, controlled slot), written
  every `flush_every` decisions so memory stays bounded. Read them all with `pyarrow.dataset.dataset(folder)`.

A row describes one decision of one controlled vehicle: the state the action was chosen in (`world`, `slot`,
`episode`, `decision` (index in the episode), `time_s`, `seed` (the world's key), `map_id`, `map`, `lane`, `s`,
`d`, `x`, `y`, `yaw`, `speed`, `length`, `width`, `active`), the `action` (meta: `action`; continuous:
`action_accel`, `action_steer`, normalised), and its outcome: `reward`, `terminated`, `truncated`, `done`, and
every per-step metric term of `World.step`'s `info` as `info_<term>` (world-level `world_*` terms on slot 0
rows, zero on the others, as in `fuyao.envs.gym`, so sums count each world once). `x, y, yaw` come from
`fuyao.sim.geometry.vehicle_pose_xy`.

`recording_to_scenarios(folder)` turns a recording into one `Scenario` per world episode: each controlled slot
is a track (a new track after each of its episode ends, where `SimConfig.respawn` lets it enter again), valid
where it was active, at the decision times `decision / decision_hz`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import torch

from fuyao.configio import to_dict
from fuyao.data.scenario import AgentType, Scenario, ScenarioError, VectorMap
from fuyao.roads.lanegraph import RoadMap
from fuyao.sim.config import ActionType
from fuyao.sim.geometry import vehicle_pose_xy
from fuyao.sim.state import WorldState
from fuyao.sim.step import StepResult

RECORDING_FORMAT = "fuyao.recording"
RECORDING_VERSION = 1
INDEX_FILE = "_recording.json"  # "_" first: `pyarrow.dataset` skips it when reading the folder


def roadmap_to_vector_map(road: RoadMap, map_index: int) -> VectorMap:
    """One map of a bank as vector lanes (the inverse of `fuyao.data.logmap`, up to resampling)."""
    valid = road.lane_valid[map_index].cpu().numpy()
    lanes = np.nonzero(valid)[0]
    length = road.lane_length[map_index].cpu().numpy()
    ds = road.lane_ds[map_index].cpu().numpy()
    xy = road.lane_xy[map_index].cpu().double().numpy()
    succ = road.lane_succ[map_index].cpu().numpy()
    points, offsets = [], [0]
    for i in lanes:
        n = int(round(length[i] / ds[i])) + 1
        points.append(xy[i, :n])
        offsets.append(offsets[-1] + n)
    return VectorMap(
        lane_ids=tuple(str(i) for i in lanes),
        points=np.concatenate(points),
        offsets=np.array(offsets),
        width=road.lane_width[map_index].cpu().numpy()[lanes],
        speed_limit=road.lane_speed_limit[map_index].cpu().numpy()[lanes],
        is_intersection=road.lane_kind[map_index].cpu().numpy()[lanes] == 2,
        left=road.lane_left[map_index].cpu().numpy()[lanes],
        right=road.lane_right[map_index].cpu().numpy()[lanes],
        successors=tuple(tuple(int(j) for j in succ[i] if j >= 0) for i in lanes),
    )


class RolloutRecorder:
    """Streams a rollout of `world` to `out_dir` (see the module docstring).

    Call `record(state, action, result)` after each `result = world.step(state, action)` with the state the
    action was chosen in, and `close()` at the end (or use it as a context manager). One host copy per
    decision; a part file every `flush_every` decisions (`flush_every * worlds * controlled` rows).
    """

    def __init__(
        self,
        out_dir: str | Path,
        world,
        flush_every: int = 256,
        seed: int = 0,
        pilot: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if flush_every < 1:
            raise ScenarioError(f"RolloutRecorder.flush_every: got {flush_every!r}; must be >= 1 decision")
        self.out = Path(out_dir)
        if self.out.exists() and any(self.out.glob("part-*.parquet")):
            raise ScenarioError(f"{self.out}: already holds a recording (part-*.parquet); choose an empty folder")
        self.out.mkdir(parents=True, exist_ok=True)
        self.world = world
        self.cfg = world.cfg
        self.flush_every = flush_every
        self.names = list(world.road.names) or [f"map-{i}" for i in range(world.road.num_maps)]
        self._buffer: list[dict[str, np.ndarray]] = []
        self.parts = 0
        self.rows = 0
        self.decisions = 0
        c, w = self.cfg.controlled, self.cfg.worlds
        dev = world.device
        self._world_idx = torch.arange(w, device=dev).view(w, 1).expand(w, c)
        self._slot_idx = torch.arange(c, device=dev).view(1, c).expand(w, c)
        self._index = {
            "format": RECORDING_FORMAT,
            "version": RECORDING_VERSION,
            "sim": to_dict(self.cfg),
            "decision_hz": self.cfg.decision_hz,
            "controlled": c,
            "worlds": w,
            "pilot": pilot,
            "seed": seed,
            "map_names": self.names,
            "maps": {n: roadmap_to_vector_map(world.road, i).to_json() for i, n in enumerate(self.names)},
            "metadata": metadata or {},
        }
        self._write_index()

    def _write_index(self) -> None:
        tmp = self.out / f".{INDEX_FILE}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(self._index))
        os.replace(tmp, self.out / INDEX_FILE)

    def record(self, state: WorldState, action: torch.Tensor, result: StepResult) -> None:
        """One decision of every world: `state` before the step, `action` `[W, C]` (or `[W, C, 2]`), its result."""
        c = self.cfg.controlled
        v = state.vehicles
        x, y, yaw = vehicle_pose_xy(self.world.road, state.map_id, v.lane, v.s, v.d, v.psi)
        wc = (state.map_id.shape[0], c)
        cols: dict[str, torch.Tensor] = {
            "world": self._world_idx,
            "slot": self._slot_idx,
            "episode": state.episode.view(-1, 1).expand(wc),
            "decision": state.decisions.view(-1, 1).expand(wc),
            "time_s": state.time_s.view(-1, 1).expand(wc),
            "seed": state.seed.view(-1, 1).expand(wc),
            "map_id": state.map_id.view(-1, 1).expand(wc),
            "lane": v.lane[:, :c],
            "s": v.s[:, :c],
            "d": v.d[:, :c],
            "x": x[:, :c],
            "y": y[:, :c],
            "yaw": yaw[:, :c],
            "speed": v.speed[:, :c],
            "length": v.length[:, :c],
            "width": v.width[:, :c],
            "active": state.active,
            "reward": result.reward,
            "terminated": result.terminated,
            "truncated": result.truncated,
            "done": result.terminated | result.truncated,
        }
        if self.cfg.action is ActionType.META:
            cols["action"] = action.reshape(wc).long()
        else:
            a = action.reshape(*wc, 2).float()
            cols["action_accel"], cols["action_steer"] = a[..., 0], a[..., 1]
        first_slot = self._slot_idx == 0
        for k, val in result.info.items():
            if val.dim() == 1:  # world-level [W]: on slot 0 only
                val = torch.where(
                    first_slot, val.view(-1, 1).expand(wc), torch.zeros((), dtype=val.dtype, device=val.device)
                )
            cols[f"info_{k}"] = val
        host = {k: t.reshape(-1).cpu().numpy() for k, t in cols.items()}
        self._buffer.append(host)
        self.decisions += 1
        if len(self._buffer) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        cols = {k: np.concatenate([b[k] for b in self._buffer]) for k in self._buffer[0]}
        names = np.asarray(self.names, dtype=object)
        table = pa.table(
            {
                **{k: _narrow(k, v) for k, v in cols.items()},
                "map": pa.array(names[cols["map_id"]].tolist(), pa.string()).dictionary_encode(),
            }
        )
        path = self.out / f"part-{self.parts:05d}.parquet"
        tmp = self.out / f".{path.name}.tmp-{os.getpid()}"
        try:
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self.parts += 1
        self.rows += table.num_rows
        self._buffer = []

    def close(self) -> dict[str, Any]:
        self.flush()
        self._index.update(parts=self.parts, rows=self.rows, decisions=self.decisions)
        self._write_index()
        return {"out": str(self.out), "parts": self.parts, "rows": self.rows, "decisions": self.decisions}

    def __enter__(self) -> RolloutRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _narrow(name: str, v: np.ndarray) -> np.ndarray:
    if name in ("world", "slot", "map_id", "lane", "decision"):
        return v.astype(np.int32)
    return v


def record_rollout(
    world,
    pilot,
    out_dir: str | Path,
    decisions: int,
    seed: int = 0,
    flush_every: int = 256,
    pilot_name: str = "",
    observe: bool = True,
) -> dict[str, Any]:
    """Drive `world` with `pilot` for `decisions` decisions from `world.reset(seed)`, recording every one.
    `observe=False` skips the observation (pilots that plan from the state, like the rule-based one)."""
    state = world.reset(seed)
    with torch.inference_mode():
        rec = RolloutRecorder(out_dir, world, flush_every=flush_every, seed=seed, pilot=pilot_name)
        for _ in range(decisions):
            obs = world.observe(state) if observe else None
            action = pilot.act(obs, state)
            result = world.step(state, action)
            rec.record(state, action, result)
            state = result.state
        return rec.close()


def read_recording_index(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / INDEX_FILE
    if not path.is_file():
        raise ScenarioError(f"{folder}: no {INDEX_FILE}; not a Fuyao recording folder")
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ScenarioError(f"{path}: not valid JSON ({err})") from None
    if index.get("format") != RECORDING_FORMAT:
        raise ScenarioError(f"{path}: field 'format': got {index.get('format')!r}; must be {RECORDING_FORMAT!r}")
    if index.get("version") != RECORDING_VERSION:
        raise ScenarioError(
            f"{path}: field 'version': got {index.get('version')!r}; this Fuyao reads {RECORDING_VERSION}"
        )
    return index


def recording_to_scenarios(folder: str | Path) -> list[Scenario]:
    """One `Scenario` per world episode of the recording in `folder` (see the module docstring)."""
    folder = Path(folder)
    index = read_recording_index(folder)
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        return []
    table = pads.dataset([str(p) for p in parts], format="parquet").to_table(
        columns=[
            "world",
            "slot",
            "episode",
            "decision",
            "x",
            "y",
            "yaw",
            "speed",
            "length",
            "width",
            "active",
            "done",
            "map",
        ]
    )
    col = {
        k: table.column(k).to_numpy()
        for k in ("world", "slot", "episode", "decision", "x", "y", "yaw", "speed", "length", "width", "active", "done")
    }
    maps = [str(v) for v in table.column("map").to_pylist()]
    hz = float(index["decision_hz"])
    order = np.lexsort((col["decision"], col["slot"], col["episode"], col["world"]))
    col = {k: v[order] for k, v in col.items()}
    maps = [maps[i] for i in order]
    key = np.stack([col["world"], col["episode"]], axis=1)
    starts = np.concatenate([[0], np.nonzero(np.any(key[1:] != key[:-1], axis=1))[0] + 1, [len(order)]])
    vmaps: dict[str, VectorMap] = {}
    out = []
    for lo, hi in zip(starts[:-1], starts[1:]):
        sl = slice(lo, hi)
        slot, dec, done = col["slot"][sl], col["decision"][sl].astype(np.int64), col["done"][sl]
        # A new track begins after each of a slot's episode ends (respawned agents are new agents).
        seg = np.zeros(hi - lo, dtype=np.int64)
        for s in np.unique(slot):
            m = slot == s
            seg[m] = np.concatenate([[0], np.cumsum(done[m][:-1])])
        track_key = slot.astype(np.int64) * (hi - lo + 1) + seg
        tracks, a = np.unique(track_key, return_inverse=True)
        t0 = int(dec.min())
        t = dec - t0
        steps = int(t.max()) + 1
        valid = np.zeros((len(tracks), steps), dtype=bool)
        valid[a, t] = col["active"][sl]
        kin = {}
        for name in ("x", "y", "yaw"):
            arr = np.full(valid.shape, np.nan)
            arr[a, t] = col[name][sl]
            kin[name] = arr
        speed = np.full(valid.shape, np.nan)
        speed[a, t] = col["speed"][sl]
        length, width = np.zeros(len(tracks)), np.zeros(len(tracks))
        length[a], width[a] = col["length"][sl], col["width"][sl]
        world, episode = int(col["world"][lo]), int(col["episode"][lo])
        name = maps[lo]
        if name not in vmaps and name in index.get("maps", {}):
            vmaps[name] = VectorMap.from_json(index["maps"][name], str(folder / INDEX_FILE))
        ids = tuple(
            f"slot{k // (hi - lo + 1)}" + (f"-{k % (hi - lo + 1)}" if k % (hi - lo + 1) else "") for k in tracks
        )
        if not valid.any():
            continue
        out.append(
            Scenario(
                scenario_id=f"{folder.name}-w{world}-e{episode}",
                timestamps=np.arange(steps) / hz,
                valid=valid,
                vx=speed * np.cos(kin["yaw"]),
                vy=speed * np.sin(kin["yaw"]),
                length=length,
                width=width,
                agent_type=np.full(len(tracks), AgentType.VEHICLE, dtype=np.int8),
                track_ids=ids,
                ego=0,
                map=vmaps.get(name),
                source="fuyao-recording",
                metadata={
                    "world": world,
                    "episode": episode,
                    "first_decision": t0,
                    "map": name,
                    "pilot": index.get("pilot", ""),
                    "seed": index.get("seed"),
                },
                origin=str(folder),
                **kin,
            )
        )
    return out
