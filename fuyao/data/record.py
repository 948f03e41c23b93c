"""Recording rollouts of the batched world to partitioned Parquet, and recordings back into `Scenario`s.

A recording is a folder:

- `_recording.json`: `format` (`"fuyao.recording"`), `version` (1), the resolved `SimConfig`, `decision_hz`,
  the pilot, the seed, the map names and the maps themselves as vector lanes (`VectorMap.to_json`), the
  observation (`observation`: its `shape` and `layout`, the repr of `fuyao.sim.observe.observation_layout`, or
  None when recorded without), and at close the counts;
- `part-00000.parquet`, `part-00001.parquet`, ...: one row per (decision, world, controlled slot), written
  every `flush_every` decisions so memory stays bounded. Read them all with `pyarrow.dataset.dataset(folder)`.

A row describes one decision of one controlled vehicle: the state the action was chosen in (`world`, `slot`,
`episode`, `decision` (index in the episode), `time_s`, `seed` (the world's key), `map_id`, `map`, `lane`, `s`,
`d`, `x`, `y`, `yaw`, `speed`, `length`, `width`, `active`), the `action` (meta: `action`; continuous:
`action_accel`, `action_steer`, normalised), what the driver saw (`obs`, the flattened observation as a
fixed-size list of float32, and for meta actions `action_mask`, the available actions as bits `1 << action`;
both only when the recording has observations), and its outcome: `reward`, `terminated`, `truncated`, `done`, and
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
from fuyao.pilots.base import noisy_action
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
        observations: bool = False,
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
            "observation": observation_index(self.cfg) if observations else None,
        }
        self.observations = observations
        self._write_index()

    def _write_index(self) -> None:
        tmp = self.out / f".{INDEX_FILE}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(self._index))
        os.replace(tmp, self.out / INDEX_FILE)

    def record(
        self,
        state: WorldState,
        action: torch.Tensor,
        result: StepResult,
        obs: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        executed: torch.Tensor | None = None,
    ) -> None:
        """One decision of every world: `state` before the step, `action` `[W, C]` (or `[W, C, 2]`), its result;
        with `observations`, also what the drivers saw, `obs` `[W, C, *obs_shape]`, and (meta) `mask` `[W, C, 5]`;
        `executed`: the action the world stepped where it is not `action` (noise injection: `action` is the
        pilot's label, `action_executed*` what moved the car)."""
        c = self.cfg.controlled
        if self.observations and (obs is None or (self.cfg.action is ActionType.META and mask is None)):
            raise ScenarioError(f"{self.out}: this recording has observations; record() needs obs (and mask)")
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
            if executed is not None:
                cols["action_executed"] = executed.reshape(wc).long()
        else:
            a = action.reshape(*wc, 2).float()
            cols["action_accel"], cols["action_steer"] = a[..., 0], a[..., 1]
            if executed is not None:
                e = executed.reshape(*wc, 2).float()
                cols["action_executed_accel"], cols["action_executed_steer"] = e[..., 0], e[..., 1]
        first_slot = self._slot_idx == 0
        for k, val in result.info.items():
            if val.dim() == 1:  # world-level [W]: on slot 0 only
                val = torch.where(
                    first_slot, val.view(-1, 1).expand(wc), torch.zeros((), dtype=val.dtype, device=val.device)
                )
            cols[f"info_{k}"] = val
        host = {k: t.reshape(-1).cpu().numpy() for k, t in cols.items()}
        if self.observations:
            host["obs"] = obs.reshape(wc[0] * c, -1).float().cpu().numpy()
            if mask is not None:
                host["action_mask"] = pack_mask(mask).reshape(-1).cpu().numpy()
        self._buffer.append(host)
        self.decisions += 1
        if len(self._buffer) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        cols = {k: np.concatenate([b[k] for b in self._buffer]) for k in self._buffer[0]}
        self.rows += write_part(self.out, self.parts, cols, self.names)
        self.parts += 1
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


def _column(name: str, v: np.ndarray) -> pa.Array:
    if name == "obs":  # [rows, F] -> a fixed-size list column
        return pa.FixedSizeListArray.from_arrays(pa.array(v.astype(np.float32).reshape(-1)), v.shape[1])
    return pa.array(_narrow(name, v))


def write_part(
    out: Path, part: int, cols: dict[str, np.ndarray], names: list[str], extra: dict[str, np.ndarray] | None = None
) -> int:
    """Write `part-{part:05d}.parquet` in `out` atomically (a temporary file, then a rename); its row count.
    `extra`: string columns (dictionary-encoded), beside `map`."""
    strings = {"map": np.asarray(names, dtype=object)[cols["map_id"]], **(extra or {})}
    table = pa.table(
        {
            **{k: _column(k, v) for k, v in cols.items()},
            **{k: pa.array([str(x) for x in v], pa.string()).dictionary_encode() for k, v in strings.items()},
        }
    )
    path = out / f"part-{part:05d}.parquet"
    tmp = out / f".{path.name}.tmp-{os.getpid()}"
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return table.num_rows


def pack_mask(mask: torch.Tensor) -> torch.Tensor:
    """Available meta actions `[..., 5]` bool as bits `[...]` uint8 (bit a: action a)."""
    bits = 1 << torch.arange(mask.shape[-1], device=mask.device)
    return (mask.long() * bits).sum(-1).to(torch.uint8)


def unpack_mask(bits: torch.Tensor, actions: int = 5) -> torch.Tensor:
    return (bits.long().unsqueeze(-1) >> torch.arange(actions, device=bits.device)) & 1 == 1


def observation_index(cfg) -> dict[str, Any]:
    """What a recording's `obs` column holds: the shape and the layout's repr (compared before training on it)."""
    from fuyao.sim.observe import observation_layout, observation_shape

    return {
        "shape": list(observation_shape(cfg)),
        "layout": repr(observation_layout(cfg)),
        "type": cfg.observation.value,
    }


def record_rollout(
    world,
    pilot,
    out_dir: str | Path,
    decisions: int,
    seed: int = 0,
    flush_every: int = 256,
    pilot_name: str = "",
    observations: bool = True,
    action_noise: float = 0.0,
) -> dict[str, Any]:
    """Drive `world` with `pilot` for `decisions` decisions from `world.reset(seed)`, recording every one.
    `observations=False` neither records nor computes the observation where the pilot plans from the state
    (the rule-based pilot): a smaller recording, but not one to clone from.

    `action_noise` > 0 injects noise into what is driven while the pilot's own action stays the label (DART,
    Laskey et al. 2017): the demonstrations then show how the pilot recovers from the states its mistakes lead
    to, which offline behaviour cloning cannot otherwise see. Meta actions: with probability `action_noise`
    the world steps a uniformly drawn available action instead; continuous: Gaussian noise of that standard
    deviation (normalised units), clipped to [-1, 1]. Seeded by `seed`."""
    if not 0.0 <= action_noise <= 1.0:
        raise ScenarioError(f"record_rollout.action_noise: got {action_noise!r}; must be in [0, 1]")
    state = world.reset(seed)
    from fuyao.pilots.rule_based import RuleBasedPilot

    needs_obs = getattr(pilot, "needs_observation", not isinstance(pilot, RuleBasedPilot))
    meta = world.cfg.action is ActionType.META
    g = torch.Generator(device=world.device).manual_seed(seed)
    with torch.inference_mode():
        rec = RolloutRecorder(
            out_dir,
            world,
            flush_every=flush_every,
            seed=seed,
            pilot=pilot_name,
            observations=observations,
            metadata={"action_noise": action_noise},
        )
        for _ in range(decisions):
            obs = world.observe(state) if observations or needs_obs else None
            mask = world.action_mask(state) if (observations or action_noise) and meta else None
            action = pilot.act(obs, state)
            executed = noisy_action(action, mask, action_noise, g) if action_noise else None
            result = world.step(state, action if executed is None else executed)
            rec.record(state, action, result, obs if observations else None, mask if observations else None, executed)
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
