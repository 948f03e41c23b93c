"""ScenarioNet / MetaDrive scenario descriptions: one pickled dict per scenario (`*.pkl`).

```
{"id": str, "version": str, "length": T,
 "tracks": {id: {"type": "VEHICLE" | "PEDESTRIAN" | "CYCLIST" | ..., "metadata": {...},
                 "state": {"position": [T, 3], "heading": [T], "velocity": [T, 2], "length": [T], "width": [T],
                           "height": [T], "valid": [T]}}},
 "map_features": {id: {"type": "LANE_SURFACE_STREET" | "LANE_FREEWAY" | ..., "polyline": [P, 2 or 3],
                       "entry_lanes": [...], "exit_lanes": [...], "left_neighbor": [...], "right_neighbor": [...],
                       "speed_limit_kmh" | "speed_limit_mph": float, "width": ...}},
 "dynamic_map_states": {id: {"type": "TRAFFIC_LIGHT", "lane": lane id, "state": {"object_state": [T] str}}},
 "metadata": {"sdc_id": str, "ts": [T] s, "scenario_id": ..., "dataset": ..., ...}}
```

**Pickle runs code when it loads.** These files are read by `SafeUnpickler`, whose `find_class` accepts only what
numpy arrays and plain containers need (`numpy.core.multiarray._reconstruct` and its `numpy._core` twin,
`numpy.ndarray`, `numpy.dtype`, numpy scalars, and builtin `set`, `frozenset`, `bytearray`, `complex`);
anything else (`os.system`, `subprocess.Popen`, `builtins.eval`, any class) is refused with a `DataImportError`
before it is called. Only open files you trust even so.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from fuyao.data.importers.common import DataImportError, ImportResult
from fuyao.data.scenario import AgentType, Scenario, Signals, SignalState, VectorMap

ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("builtins", "complex"),
        ("_codecs", "encode"),  # protocol 2 writes bytes as _codecs.encode(text, "latin1")
    ]
)
TRACK_TYPES = {
    "VEHICLE": AgentType.VEHICLE,
    "PEDESTRIAN": AgentType.PEDESTRIAN,
    "CYCLIST": AgentType.CYCLIST,
    "OTHER": AgentType.OTHER,
    "TRAFFIC_CONE": AgentType.OTHER,
    "TRAFFIC_BARRIER": AgentType.OTHER,
    "GROUND_ANIMAL": AgentType.OTHER,
    "UNSET": AgentType.OTHER,
}
LANE_KINDS = {
    "LANE_SURFACE_STREET": "vehicle",
    "LANE_FREEWAY": "vehicle",
    "LANE_SURFACE_UNSTRUCTURE": "vehicle",
    "LANE_UNKNOWN": "vehicle",
    "LANE_BIKE_LANE": "bike",
}
MPH = 0.44704  # m/s
KMH = 1 / 3.6  # m/s


class SafeUnpickler(pickle.Unpickler):
    """A `pickle.Unpickler` that resolves only the globals in `ALLOWED_GLOBALS`."""

    def __init__(self, file, origin: str = "<pickle>") -> None:
        super().__init__(file)
        self.origin = origin

    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise DataImportError(
            f"{self.origin}: refused to load global {module}.{name} from the pickle: a scenario description holds "
            "only numpy arrays and plain containers (this file may be malicious, or not a ScenarioNet scenario)"
        )


def safe_load(data: bytes, origin: str = "<pickle>") -> Any:
    try:
        return SafeUnpickler(io.BytesIO(data), origin).load()
    except DataImportError:
        raise
    except Exception as err:  # noqa: BLE001 (any malformed pickle: truncated, bad opcode, ...)
        raise DataImportError(f"{origin}: not a readable pickle ({type(err).__name__}: {err})") from None


def import_scenarionet(path: str | Path) -> ImportResult:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataImportError(f"{path}: cannot read ({err})") from None
    desc = safe_load(raw, str(path))
    where = str(path)
    if not isinstance(desc, dict):
        raise DataImportError(f"{where}: top level is a {type(desc).__name__}; a scenario description is a dict")
    for key in ("tracks", "metadata"):
        if not isinstance(desc.get(key), dict):
            raise DataImportError(f"{where}: field {key!r} missing or not a dict")
    meta = desc["metadata"]
    tracks = desc["tracks"]
    if not tracks:
        raise DataImportError(f"{where}: 'tracks' is empty")
    result = ImportResult()
    ids = list(tracks)
    num_steps = int(desc.get("length") or len(next(iter(tracks.values()))["state"]["valid"]))
    shape = (len(ids), num_steps)
    valid = np.zeros(shape, dtype=bool)
    kin = {k: np.full(shape, np.nan) for k in ("x", "y", "yaw", "vx", "vy")}
    length, width, types = np.zeros(len(ids)), np.zeros(len(ids)), np.zeros(len(ids), dtype=np.int8)
    for a, tid in enumerate(ids):
        tr = tracks[tid]
        try:
            st = tr["state"]
            ok = np.asarray(st["valid"], dtype=bool).reshape(-1)
            pos = np.asarray(st["position"], dtype=np.float64).reshape(len(ok), -1)
            heading = np.asarray(st["heading"], dtype=np.float64).reshape(-1)
            vel = np.asarray(st["velocity"], dtype=np.float64).reshape(len(ok), -1)
            size_l = np.asarray(st["length"], dtype=np.float64).reshape(-1)
            size_w = np.asarray(st["width"], dtype=np.float64).reshape(-1)
        except (KeyError, TypeError, ValueError) as err:
            raise DataImportError(f"{where}: track {tid!r}: state field {err} missing or malformed") from None
        if len(ok) != num_steps:
            raise DataImportError(f"{where}: track {tid!r}: {len(ok)} steps; the scenario's length is {num_steps}")
        valid[a] = ok
        kin["x"][a], kin["y"][a], kin["yaw"][a] = pos[:, 0], pos[:, 1], heading
        kin["vx"][a], kin["vy"][a] = vel[:, 0], vel[:, 1]
        length[a] = float(np.nanmax(np.where(ok, size_l, np.nan))) if ok.any() else float(size_l.max(initial=0.0))
        width[a] = float(np.nanmax(np.where(ok, size_w, np.nan))) if ok.any() else float(size_w.max(initial=0.0))
        kind = TRACK_TYPES.get(str(tr.get("type", "OTHER")).upper())
        if kind is None:
            result.skipped[f"track type {tr.get('type')!r} (as other)"] += 1
            kind = AgentType.OTHER
        types[a] = kind
    sdc = str(meta.get("sdc_id"))
    keys = [str(i) for i in ids]
    if sdc not in keys:
        raise DataImportError(f"{where}: metadata.sdc_id {meta.get('sdc_id')!r} is not a track id")
    ts = np.asarray(meta.get("ts", np.arange(num_steps) * 0.1), dtype=np.float64).reshape(-1)
    if len(ts) != num_steps:
        raise DataImportError(f"{where}: metadata.ts has {len(ts)} entries; the scenario's length is {num_steps}")
    vmap, lane_index = _map(desc.get("map_features") or {}, where, result)
    signals = _signals(desc.get("dynamic_map_states") or {}, lane_index, num_steps, where, result)
    plain = {k: _plain(v) for k, v in meta.items() if k not in ("ts", "sdc_id")}
    scenario_id = str(desc.get("id") or meta.get("scenario_id") or path.stem)
    result.scenarios.append(
        Scenario(
            scenario_id=scenario_id,
            timestamps=ts - ts[0],
            valid=valid,
            length=length,
            width=width,
            agent_type=types,
            track_ids=tuple(keys),
            ego=keys.index(sdc),
            map=vmap,
            signals=signals,
            source="scenarionet",
            metadata={
                "scenarionet": plain,
                "version": str(desc.get("version")),
                "start_s": float(ts[0]),
                "file": path.name,
            },
            origin=where,
            **kin,
        )
    )
    return result


def _plain(v: Any) -> Any:
    """A JSON-able copy of metadata values (arrays become lists; anything else its string)."""
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size <= 1000 else f"<array {v.shape}>"
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_plain(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def _ids(value) -> list[str]:
    """Lane references: a list of ids, or of Waymo-style dicts with a `feature_id` (or `id`)."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        value = [value]
    out = []
    for v in value:
        if isinstance(v, dict):
            v = v.get("feature_id", v.get("id"))
        if v is not None:
            out.append(str(v))
    return out


def _map(features: dict, where: str, result: ImportResult) -> tuple[VectorMap | None, dict[str, int]]:
    lanes = [(k, f) for k, f in features.items() if isinstance(f, dict) and str(f.get("type", "")).startswith("LANE")]
    others = len(features) - len(lanes)
    if others:
        result.skipped["map features other than lanes (lines, crosswalks, ...)"] += others
    if not lanes:
        return None, {}
    index = {str(k): i for i, (k, _) in enumerate(lanes)}
    points, offsets, width, speed, succ, left, right, kinds, inter = [], [0], [], [], [], [], [], [], []
    for k, f in lanes:
        try:
            poly = np.asarray(f["polyline"], dtype=np.float64)
            poly = poly.reshape(len(poly), -1)[:, :2]
        except (KeyError, TypeError, ValueError) as err:
            raise DataImportError(f"{where}: map feature {k!r}: polyline {err} missing or malformed") from None
        if len(poly) < 2:
            result.skipped["lane with fewer than 2 points"] += 1
            poly = np.concatenate([poly, poly + [[0.1, 0.0]]]) if len(poly) else np.zeros((2, 2))
        points.append(poly)
        offsets.append(offsets[-1] + len(poly))
        w = f.get("width")
        w = np.asarray(w, dtype=np.float64).reshape(-1) if w is not None else np.array([np.nan])
        width.append(float(np.nanmean(w)) if np.isfinite(w).any() else np.nan)
        if f.get("speed_limit_kmh") is not None:
            speed.append(float(f["speed_limit_kmh"]) * KMH)
        elif f.get("speed_limit_mph") is not None:
            speed.append(float(f["speed_limit_mph"]) * MPH)
        else:
            speed.append(np.nan)
        out = []
        for j in _ids(f.get("exit_lanes")):
            if j in index:
                out.append(index[j])
            else:
                result.skipped["map successor outside the map"] += 1
        succ.append(tuple(out))
        for key, side in (("left_neighbor", left), ("right_neighbor", right)):
            near = [index[j] for j in _ids(f.get(key)) if j in index]
            side.append(near[0] if near else -1)
        kinds.append(LANE_KINDS.get(str(f.get("type")), "vehicle"))
        inter.append(bool(f.get("interpolating", False)) or bool(f.get("is_intersection", False)))
    vmap = VectorMap(
        lane_ids=tuple(index),
        points=np.concatenate(points),
        offsets=np.array(offsets),
        width=np.array(width),
        speed_limit=np.array(speed),
        is_intersection=np.array(inter, dtype=bool),
        left=np.array(left),
        right=np.array(right),
        successors=tuple(succ),
        kind=tuple(kinds),
    )
    return vmap, index


def _light_state(text: Any) -> SignalState:
    t = str(text).upper()
    if "FLASHING" in t:
        return SignalState.UNKNOWN
    if "STOP" in t or "RED" in t:
        return SignalState.RED
    if "CAUTION" in t or "YELLOW" in t:
        return SignalState.YELLOW
    if "GO" in t or "GREEN" in t:
        return SignalState.GREEN
    return SignalState.UNKNOWN


def _signals(
    states: dict, lane_index: dict[str, int], num_steps: int, where: str, result: ImportResult
) -> Signals | None:
    ids, lanes, rows = [], [], []
    for k, s in states.items():
        if not isinstance(s, dict) or str(s.get("type", "TRAFFIC_LIGHT")) != "TRAFFIC_LIGHT":
            result.skipped["dynamic map state that is not a traffic light"] += 1
            continue
        seq = (s.get("state") or {}).get("object_state")
        if seq is None:
            raise DataImportError(f"{where}: dynamic_map_states {k!r}: state.object_state is missing")
        seq = list(seq)
        if len(seq) != num_steps:
            raise DataImportError(f"{where}: dynamic_map_states {k!r}: {len(seq)} states; the scenario has {num_steps}")
        ids.append(str(k))
        lane = _ids(s.get("lane"))
        lanes.append(tuple(lane_index[j] for j in lane if j in lane_index))
        rows.append([_light_state(v) for v in seq])
    if not ids:
        return None
    return Signals(tuple(ids), tuple(lanes), np.array(rows, dtype=np.int8))
