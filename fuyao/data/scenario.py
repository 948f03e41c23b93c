"""The scenario format: logged tracks of every object, the log's vector map and signal states, on the host.

A `Scenario` is a frozen dataclass of numpy arrays (logs are read and converted on the host; the world takes
tensors built from them once). Frames as in `fuyao.roads.lanegraph`: world `x, y` in metres, `yaw` in radians
counter-clockwise from +x, time in seconds from the scenario's first step.

On disk a scenario is one Parquet file written by pyarrow (`write_scenario`, `read_scenario`):

- the rows are the tracks table in long format, one row per valid (track, step): `track` int32 (index into the
  track list), `t` int32 (step), `x`, `y` (m), `yaw` (rad), `vx`, `vy` (m/s) float64;
- the file's key-value metadata holds, under the key `fuyao.scenario`, one JSON object: `format`
  (`"fuyao.scenario"`), `version` (1), `scenario_id`, `source`, `ego`, `timestamps`, the per-track lists
  (`track_ids`, `types`, `length`, `width`), the `map`, the `signals` and free-form `metadata`.

JSON, never pickle: reading a scenario runs no code. Steps where a track is not valid are not stored; in memory
they hold NaN.

`resample(sc, hz)` moves a scenario to the world's tick (see its docstring for the interpolation rule).
"""

from __future__ import annotations

import enum
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FORMAT_NAME = "fuyao.scenario"
FORMAT_VERSION = 1
METADATA_KEY = FORMAT_NAME.encode()


class ScenarioError(ValueError):
    """A scenario (or a file that should hold one) that is not valid: the message names the file or origin,
    the field, the track and step where it applies, and what is allowed."""


class AgentType(enum.IntEnum):
    """What a track is. Importers map their datasets' classes onto these (see `docs/data.md`)."""

    VEHICLE = 0
    PEDESTRIAN = 1
    CYCLIST = 2
    OTHER = 3


class SignalState(enum.IntEnum):
    """A traffic light's state at one step."""

    UNKNOWN = 0
    RED = 1
    YELLOW = 2
    GREEN = 3
    RED_YELLOW = 4
    OFF = 5


@dataclass(frozen=True)
class VectorMap:
    """The log's road as vector lanes. `L` lanes; centre lines are ragged, stored flat with offsets.

    Links are lane indices (into this map), -1 none. What the source gave is kept as given (a neighbour may
    run the other way, a successor may start a few metres away); `fuyao.data.logmap` checks them when it builds
    a Fuyao `RoadMap`.
    """

    lane_ids: tuple[str, ...]  # [L] the source's lane ids
    points: np.ndarray  # [Q, 2] float64 m, every lane's centre-line points, lane after lane
    offsets: np.ndarray  # [L + 1] int64, lane i's points are points[offsets[i]:offsets[i + 1]] (>= 2 each)
    width: np.ndarray  # [L] float64 m (NaN: unknown)
    speed_limit: np.ndarray  # [L] float64 m/s (NaN: unknown)
    is_intersection: np.ndarray  # [L] bool, the lane lies inside a junction (a connector)
    left: np.ndarray  # [L] int64, left neighbour lane index, -1 none
    right: np.ndarray  # [L] int64, right neighbour lane index, -1 none
    successors: tuple[tuple[int, ...], ...]  # [L] lanes that continue each lane
    kind: tuple[str, ...] = ()  # [L] "vehicle" (default), "bike", "bus", ... (the source's lane type)

    def __post_init__(self) -> None:
        n = len(self.lane_ids)
        object.__setattr__(self, "points", np.asarray(self.points, dtype=np.float64).reshape(-1, 2))
        object.__setattr__(self, "offsets", np.asarray(self.offsets, dtype=np.int64))
        for name, dtype in (("width", np.float64), ("speed_limit", np.float64), ("is_intersection", bool)):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=dtype).reshape(-1))
        for name in ("left", "right"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.int64).reshape(-1))
        object.__setattr__(self, "successors", tuple(tuple(int(j) for j in s) for s in self.successors))
        if not self.kind:
            object.__setattr__(self, "kind", ("vehicle",) * n)
        object.__setattr__(self, "kind", tuple(str(k) for k in self.kind))
        object.__setattr__(self, "lane_ids", tuple(str(i) for i in self.lane_ids))
        if self.offsets.shape != (n + 1,) or self.offsets[0] != 0 or self.offsets[-1] != len(self.points):
            raise ScenarioError(
                f"map.offsets: got shape {self.offsets.shape}; must be [{n + 1}] from 0 to {len(self.points)}"
            )
        if n and np.diff(self.offsets).min() < 2:
            bad = int(np.argmin(np.diff(self.offsets)))
            raise ScenarioError(
                f"map lane {self.lane_ids[bad]!r}: centre line has {np.diff(self.offsets)[bad]} points; needs >= 2"
            )
        for name in ("width", "speed_limit", "is_intersection", "left", "right"):
            if getattr(self, name).shape != (n,):
                raise ScenarioError(f"map.{name}: got shape {getattr(self, name).shape}; must be [{n}] (one per lane)")
        if len(self.successors) != n or len(self.kind) != n:
            raise ScenarioError(
                f"map.successors / map.kind: got {len(self.successors)} / {len(self.kind)}; must be {n}"
            )
        links = np.array([j for s in self.successors for j in s] + list(self.left) + list(self.right), dtype=np.int64)
        if links.size and (links.min() < -1 or links.max() >= n):
            raise ScenarioError(
                f"map links: lane index {int(links.max() if links.max() >= n else links.min())} out of range -1..{n - 1}"
            )
        if not np.isfinite(self.points).all():
            raise ScenarioError("map.points: NaN or infinite centre-line coordinates")

    @property
    def num_lanes(self) -> int:
        return len(self.lane_ids)

    def centre(self, i: int) -> np.ndarray:
        """Lane `i`'s centre line `[P, 2]` m."""
        return self.points[self.offsets[i] : self.offsets[i + 1]]

    def to_json(self) -> dict[str, Any]:
        return {
            "lane_ids": list(self.lane_ids),
            "points": self.points.reshape(-1).tolist(),
            "offsets": self.offsets.tolist(),
            "width": _floats(self.width),
            "speed_limit": _floats(self.speed_limit),
            "is_intersection": self.is_intersection.tolist(),
            "left": self.left.tolist(),
            "right": self.right.tolist(),
            "successors": [list(s) for s in self.successors],
            "kind": list(self.kind),
        }

    @staticmethod
    def from_json(data: dict[str, Any], where: str) -> VectorMap:
        fields = (
            "lane_ids",
            "points",
            "offsets",
            "width",
            "speed_limit",
            "is_intersection",
            "left",
            "right",
            "successors",
        )
        missing = [f for f in fields if f not in data]
        if missing:
            raise ScenarioError(f"{where}: map is missing fields {missing}")
        try:
            return VectorMap(
                lane_ids=tuple(data["lane_ids"]),
                points=np.asarray(data["points"], dtype=np.float64).reshape(-1, 2),
                offsets=np.asarray(data["offsets"], dtype=np.int64),
                width=_unfloats(data["width"]),
                speed_limit=_unfloats(data["speed_limit"]),
                is_intersection=np.asarray(data["is_intersection"], dtype=bool),
                left=np.asarray(data["left"], dtype=np.int64),
                right=np.asarray(data["right"], dtype=np.int64),
                successors=tuple(tuple(s) for s in data["successors"]),
                kind=tuple(data.get("kind", ())),
            )
        except ScenarioError as err:
            raise ScenarioError(f"{where}: {err}") from None
        except (TypeError, ValueError) as err:
            raise ScenarioError(f"{where}: map: {err}") from None


@dataclass(frozen=True)
class Signals:
    """Traffic lights over time: `S` signals, each governing some lanes of the map."""

    signal_ids: tuple[str, ...]  # [S] the source's ids
    lanes: tuple[tuple[int, ...], ...]  # [S] map lane indices each signal governs (may be empty)
    state: np.ndarray  # [S, T] int8 `SignalState`

    def __post_init__(self) -> None:
        object.__setattr__(self, "signal_ids", tuple(str(i) for i in self.signal_ids))
        object.__setattr__(self, "lanes", tuple(tuple(int(j) for j in s) for s in self.lanes))
        object.__setattr__(self, "state", np.asarray(self.state, dtype=np.int8).reshape(len(self.signal_ids), -1))
        if len(self.lanes) != len(self.signal_ids):
            raise ScenarioError(
                f"signals.lanes: got {len(self.lanes)} entries; must be {len(self.signal_ids)} (one per signal)"
            )
        allowed = [s.value for s in SignalState]
        if self.state.size and not np.isin(self.state, allowed).all():
            raise ScenarioError(
                f"signals.state: values {sorted(set(self.state.ravel().tolist()) - set(allowed))}; allowed {allowed}"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "signal_ids": list(self.signal_ids),
            "lanes": [list(s) for s in self.lanes],
            "state": self.state.tolist(),
        }

    @staticmethod
    def from_json(data: dict[str, Any], num_steps: int, where: str) -> Signals:
        try:
            state = np.asarray(data["state"], dtype=np.int8).reshape(len(data["signal_ids"]), num_steps)
            return Signals(tuple(data["signal_ids"]), tuple(tuple(s) for s in data["lanes"]), state)
        except (KeyError, TypeError, ValueError) as err:
            raise ScenarioError(f"{where}: signals: {type(err).__name__}: {err}") from None


@dataclass(frozen=True)
class Scenario:
    """One logged scene: `A` tracks over `T` steps. Invalid steps hold NaN in every kinematic field.

    Built only valid: the constructor checks shapes, that timestamps increase, that positions are finite at
    every valid step, and raises `ScenarioError` naming `origin` (the file it came from), the track and step.
    """

    scenario_id: str
    timestamps: np.ndarray  # [T] float64 s, strictly increasing (from 0 by convention)
    x: np.ndarray  # [A, T] float64 m, centre of the object's box
    y: np.ndarray  # [A, T] float64 m
    yaw: np.ndarray  # [A, T] float64 rad, heading of the box, counter-clockwise from +x
    vx: np.ndarray  # [A, T] float64 m/s, world frame
    vy: np.ndarray  # [A, T] float64 m/s
    valid: np.ndarray  # [A, T] bool, the object was observed at this step
    length: np.ndarray  # [A] float64 m
    width: np.ndarray  # [A] float64 m
    agent_type: np.ndarray  # [A] int8 `AgentType`
    track_ids: tuple[str, ...]  # [A] the source's ids
    ego: int  # index of the ego (the logging vehicle) in the tracks
    map: VectorMap | None = None
    signals: Signals | None = None
    source: str = ""  # "argoverse2", "commonroad", "highd", "scenarionet", "fuyao-recording", ...
    metadata: dict[str, Any] = field(default_factory=dict)  # JSON-able: city, recording, ego rule, ...
    origin: str = field(default="", compare=False)  # the file it was read from (for error messages only)

    def __post_init__(self) -> None:
        where = self.origin or f"scenario {self.scenario_id!r}"
        ts = np.asarray(self.timestamps, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "timestamps", ts)
        num_steps = ts.shape[0]
        valid = np.asarray(self.valid, dtype=bool)
        num_tracks = valid.shape[0] if valid.ndim == 2 else -1
        if valid.shape != (num_tracks, num_steps):
            raise ScenarioError(f"{where}: valid: got shape {valid.shape}; must be [A, T = {num_steps}]")
        object.__setattr__(self, "valid", valid)
        for name in ("x", "y", "yaw", "vx", "vy"):
            arr = np.array(getattr(self, name), dtype=np.float64)  # a copy: invalid steps become NaN below
            if arr.shape != valid.shape:
                raise ScenarioError(f"{where}: {name}: got shape {arr.shape}; must be [A, T] = {list(valid.shape)}")
            arr[~valid] = np.nan
            object.__setattr__(self, name, arr)
        for name, dtype in (("length", np.float64), ("width", np.float64), ("agent_type", np.int8)):
            arr = np.asarray(getattr(self, name), dtype=dtype).reshape(-1)
            if arr.shape != (num_tracks,):
                raise ScenarioError(f"{where}: {name}: got shape {arr.shape}; must be [A = {num_tracks}]")
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "track_ids", tuple(str(i) for i in self.track_ids))
        if len(self.track_ids) != num_tracks:
            raise ScenarioError(f"{where}: track_ids: got {len(self.track_ids)}; must be {num_tracks} (one per track)")
        if len(set(self.track_ids)) != num_tracks:
            raise ScenarioError(f"{where}: track_ids: not unique")
        allowed = [t.value for t in AgentType]
        if num_tracks and not np.isin(self.agent_type, allowed).all():
            raise ScenarioError(f"{where}: agent_type: got {sorted(set(self.agent_type.tolist()))}; allowed {allowed}")
        if not np.isfinite(ts).all():
            raise ScenarioError(f"{where}: timestamps: NaN or infinite at step {int(np.argmin(np.isfinite(ts)))}")
        back = np.nonzero(np.diff(ts) <= 0)[0]
        if back.size:
            k = int(back[0]) + 1
            raise ScenarioError(
                f"{where}: timestamps go backwards (or repeat) at step {k}: {ts[k - 1]!r} s then {ts[k]!r} s; "
                "must be strictly increasing"
            )
        for name in ("x", "y", "yaw"):
            bad = valid & ~np.isfinite(getattr(self, name))
            if bad.any():
                a, t = (int(i[0]) for i in np.nonzero(bad))
                raise ScenarioError(
                    f"{where}: track {self.track_ids[a]!r} step {t}: {name} is NaN or infinite where valid"
                )
        if num_tracks and not 0 <= self.ego < num_tracks:
            raise ScenarioError(f"{where}: ego: got {self.ego}; allowed 0 to {num_tracks - 1} (a track index)")
        if self.signals is not None and self.signals.state.shape[1] != num_steps:
            raise ScenarioError(
                f"{where}: signals.state: got {self.signals.state.shape[1]} steps; must be T = {num_steps}"
            )
        if not isinstance(self.metadata, dict):
            raise ScenarioError(f"{where}: metadata: got {type(self.metadata).__name__}; must be a dict")

    @property
    def num_tracks(self) -> int:
        return self.valid.shape[0]

    @property
    def num_steps(self) -> int:
        return self.valid.shape[1]


def scenarios_equal(a: Scenario, b: Scenario) -> bool:
    """Field-by-field equality (NaN equals NaN at invalid steps)."""
    for name in ("timestamps", "x", "y", "yaw", "vx", "vy", "length", "width"):
        if not np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True):
            return False
    if not (np.array_equal(a.valid, b.valid) and np.array_equal(a.agent_type, b.agent_type)):
        return False
    if (a.scenario_id, a.track_ids, a.ego, a.source, a.metadata) != (
        b.scenario_id,
        b.track_ids,
        b.ego,
        b.source,
        b.metadata,
    ):
        return False
    if (a.map is None) != (b.map is None) or (a.signals is None) != (b.signals is None):
        return False
    if a.map is not None and json.dumps(a.map.to_json()) != json.dumps(b.map.to_json()):
        return False
    return a.signals is None or json.dumps(a.signals.to_json()) == json.dumps(b.signals.to_json())


# ---- Parquet ------------------------------------------------------------------------------------------------

TRACK_SCHEMA = pa.schema(
    [
        ("track", pa.int32()),
        ("t", pa.int32()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("yaw", pa.float64()),
        ("vx", pa.float64()),
        ("vy", pa.float64()),
    ]
)


def _floats(a: np.ndarray) -> list[float | None]:
    """JSON has no NaN: unknown values are null."""
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(a, dtype=np.float64).tolist()]


def _unfloats(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def scenario_table(sc: Scenario) -> pa.Table:
    """The scenario as a pyarrow table in the file's schema, its header in the schema metadata."""
    track, t = np.nonzero(sc.valid)
    cols = {"track": track.astype(np.int32), "t": t.astype(np.int32)}
    for name in ("x", "y", "yaw", "vx", "vy"):
        cols[name] = getattr(sc, name)[track, t]
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "scenario_id": sc.scenario_id,
        "source": sc.source,
        "ego": int(sc.ego),
        "timestamps": sc.timestamps.tolist(),
        "track_ids": list(sc.track_ids),
        "types": [AgentType(int(v)).name.lower() for v in sc.agent_type],
        "length": _floats(sc.length),
        "width": _floats(sc.width),
        "map": sc.map.to_json() if sc.map is not None else None,
        "signals": sc.signals.to_json() if sc.signals is not None else None,
        "metadata": sc.metadata,
    }
    try:
        blob = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ScenarioError(f"scenario {sc.scenario_id!r}: metadata is not JSON-able ({err})") from None
    return pa.table(cols, schema=TRACK_SCHEMA.with_metadata({METADATA_KEY: blob.encode()}))


def write_scenario(path: str | Path, sc: Scenario) -> Path:
    """Write `sc` to `path` (one Parquet file) atomically: a temporary file in the same folder, renamed over
    `path` only once complete, so a failed write leaves any earlier file untouched. Returns the path."""
    path = Path(path)
    table = scenario_table(sc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def is_scenario_file(path: str | Path) -> bool:
    """Whether `path` is a Parquet file with a `fuyao.scenario` header."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return False
    return METADATA_KEY in meta


def read_scenario(path: str | Path) -> Scenario:
    """Read a scenario written by `write_scenario`, checking its schema and version (`ScenarioError`s name the
    file and the field)."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such file")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise ScenarioError(f"{path}: not a readable Parquet file ({err})") from None
    meta = table.schema.metadata or {}
    if METADATA_KEY not in meta:
        raise ScenarioError(f"{path}: no {FORMAT_NAME!r} header in the Parquet metadata; not a Fuyao scenario file")
    try:
        header = json.loads(meta[METADATA_KEY])
    except json.JSONDecodeError as err:
        raise ScenarioError(f"{path}: {FORMAT_NAME} header is not valid JSON ({err})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ScenarioError(
            f"{path}: header field 'format': got {header.get('format') if isinstance(header, dict) else header!r}; must be {FORMAT_NAME!r}"
        )
    if header.get("version") != FORMAT_VERSION:
        raise ScenarioError(
            f"{path}: header field 'version': got {header.get('version')!r}; this Fuyao reads version {FORMAT_VERSION}"
        )
    for name in TRACK_SCHEMA.names:
        if name not in table.schema.names:
            raise ScenarioError(f"{path}: tracks table has no column {name!r}; columns must be {TRACK_SCHEMA.names}")
        got = table.schema.field(name).type
        if got != TRACK_SCHEMA.field(name).type:
            raise ScenarioError(f"{path}: column {name!r}: type {got}; must be {TRACK_SCHEMA.field(name).type}")
    required = (
        "scenario_id",
        "source",
        "ego",
        "timestamps",
        "track_ids",
        "types",
        "length",
        "width",
        "map",
        "signals",
        "metadata",
    )
    for name in required:
        if name not in header:
            raise ScenarioError(f"{path}: header field {name!r} is missing")
    timestamps = np.asarray(header["timestamps"], dtype=np.float64)
    num_tracks, num_steps = len(header["track_ids"]), len(timestamps)
    track = table.column("track").to_numpy()
    t = table.column("t").to_numpy()
    if track.size and (track.min() < 0 or track.max() >= num_tracks or t.min() < 0 or t.max() >= num_steps):
        raise ScenarioError(f"{path}: column 'track' or 't' out of range (tracks {num_tracks}, steps {num_steps})")
    valid = np.zeros((num_tracks, num_steps), dtype=bool)
    valid[track, t] = True
    kin = {}
    for name in ("x", "y", "yaw", "vx", "vy"):
        arr = np.full((num_tracks, num_steps), np.nan)
        arr[track, t] = table.column(name).to_numpy()
        kin[name] = arr
    try:
        types = np.array([AgentType[s.upper()].value for s in header["types"]], dtype=np.int8)
    except KeyError as err:
        raise ScenarioError(
            f"{path}: header field 'types': unknown type {err}; allowed {[t.name.lower() for t in AgentType]}"
        ) from None
    vmap = VectorMap.from_json(header["map"], str(path)) if header["map"] is not None else None
    signals = Signals.from_json(header["signals"], num_steps, str(path)) if header["signals"] is not None else None
    return Scenario(
        scenario_id=str(header["scenario_id"]),
        timestamps=timestamps,
        valid=valid,
        length=_unfloats(header["length"]),
        width=_unfloats(header["width"]),
        agent_type=types,
        track_ids=tuple(header["track_ids"]),
        ego=int(header["ego"]),
        map=vmap,
        signals=signals,
        source=str(header["source"]),
        metadata=header["metadata"],
        origin=str(path),
        **kin,
    )


# ---- resampling ---------------------------------------------------------------------------------------------


def resample(sc: Scenario, hz: float) -> Scenario:
    """The scenario at `hz` steps per second from its first timestamp to its last (the world's tick: 15 Hz).

    Interpolation between the two logged steps `i`, `i + 1` around each new time `tau`, with
    `w = (tau - t_i) / (t_{i+1} - t_i)`:
    - `x, y, vx, vy`: linear, `(1 - w) * v_i + w * v_{i+1}`;
    - `yaw`: along the shorter way round, `yaw_i + w * wrap(yaw_{i+1} - yaw_i)`, wrapped to [-pi, pi);
    - `valid`: only where both neighbours are valid (a new time that falls exactly on a logged step takes that
      step's validity), so no track is extended past what was observed;
    - signal states: the last logged state at or before `tau` (lights switch, they do not blend).
    The scenario is checked first (timestamps that go backwards, NaN positions at valid steps are
    `ScenarioError`s naming the file, track and step: the constructor's checks).
    """
    if not hz > 0 or not math.isfinite(hz):
        raise ScenarioError(f"resample: hz: got {hz!r}; must be > 0 steps per second")
    ts = sc.timestamps
    if ts.size < 2:
        return sc
    num_new = int(math.floor((ts[-1] - ts[0]) * hz + 1e-6)) + 1
    tau = ts[0] + np.arange(num_new) / hz
    i = np.clip(np.searchsorted(ts, tau, side="right") - 1, 0, ts.size - 2)  # [T'] left neighbour
    w = (tau - ts[i]) / (ts[i + 1] - ts[i])  # [T'] in [0, 1]
    exact_left = np.isclose(w, 0.0, atol=1e-9)
    exact_right = np.isclose(w, 1.0, atol=1e-9)
    v0, v1 = sc.valid[:, i], sc.valid[:, i + 1]
    valid = np.where(exact_left, v0, np.where(exact_right, v1, v0 & v1))

    def lerp(a: np.ndarray) -> np.ndarray:
        a0, a1 = a[:, i], a[:, i + 1]
        out = (1.0 - w) * a0 + w * a1
        out = np.where(exact_left, a0, np.where(exact_right, a1, out))
        return np.where(valid, out, np.nan)

    y0, y1 = sc.yaw[:, i], sc.yaw[:, i + 1]
    dyaw = np.remainder(y1 - y0 + np.pi, 2 * np.pi) - np.pi
    yaw = np.where(exact_left, y0, np.where(exact_right, y1, y0 + w * dyaw))
    yaw = np.where(valid, np.remainder(yaw + np.pi, 2 * np.pi) - np.pi, np.nan)
    signals = None
    if sc.signals is not None:
        held = np.clip(np.searchsorted(ts, tau + 1e-9, side="right") - 1, 0, ts.size - 1)
        signals = Signals(sc.signals.signal_ids, sc.signals.lanes, sc.signals.state[:, held])
    return Scenario(
        scenario_id=sc.scenario_id,
        timestamps=tau,
        x=lerp(sc.x),
        y=lerp(sc.y),
        yaw=yaw,
        vx=lerp(sc.vx),
        vy=lerp(sc.vy),
        valid=valid,
        length=sc.length,
        width=sc.width,
        agent_type=sc.agent_type,
        track_ids=sc.track_ids,
        ego=sc.ego,
        map=sc.map,
        signals=signals,
        source=sc.source,
        metadata={**sc.metadata, "resampled_hz": float(hz)},
        origin=sc.origin,
    )
