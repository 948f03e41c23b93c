"""Argoverse 2 motion forecasting: `scenario_<id>.parquet` and its `log_map_archive_*.json` vector map.

The scenario file is a long table (one row per track and timestep: `track_id`, `object_type`, `timestep`,
`position_x/y`, `heading`, `velocity_x/y`, `start_timestamp` and `end_timestamp` in ns, `num_timestamps`, ...);
the ego is the track named `AV`. The dataset logs no box sizes: each type gets `DEFAULT_SIZE_M`. The map is the
`log_map_archive_<id>.json` beside the scenario (else the only `log_map_archive_*.json` there); lane centre
lines are the map's `centerline` where given, else the middle of the two boundaries. Argoverse 2 maps carry no
speed limits (NaN here).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fuyao.data.importers.common import DEFAULT_SIZE_M, DataImportError, ImportResult, centre_from_bounds
from fuyao.data.scenario import AgentType, Scenario, VectorMap

COLUMNS = ("track_id", "object_type", "timestep", "position_x", "position_y", "heading", "velocity_x", "velocity_y")
EGO_TRACK = "AV"
OBJECT_TYPES: dict[str, AgentType] = {
    "vehicle": AgentType.VEHICLE,
    "bus": AgentType.VEHICLE,
    "pedestrian": AgentType.PEDESTRIAN,
    "cyclist": AgentType.CYCLIST,
    "motorcyclist": AgentType.CYCLIST,
    "riderless_bicycle": AgentType.CYCLIST,
    "static": AgentType.OTHER,
    "background": AgentType.OTHER,
    "construction": AgentType.OTHER,
    "unknown": AgentType.OTHER,
}
BUS_SIZE_M = (12.0, 2.6)
LANE_KINDS = {"VEHICLE": "vehicle", "BIKE": "bike", "BUS": "bus"}


def is_av2_table(path: str | Path) -> bool:
    try:
        names = set(pq.read_schema(path).names)
    except (OSError, pa.ArrowInvalid):
        return False
    return set(COLUMNS) <= names


def import_argoverse2(path: str | Path, map_path: str | Path | None = None) -> ImportResult:
    """One Argoverse 2 scenario (and its map, found beside it unless `map_path` is given)."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise DataImportError(f"{path}: not a readable Parquet file ({err})") from None
    missing = [c for c in COLUMNS if c not in table.schema.names]
    if missing:
        raise DataImportError(f"{path}: Argoverse 2 scenario columns {missing} are missing; got {table.schema.names}")
    result = ImportResult()
    track_col = np.asarray(table.column("track_id").to_pylist(), dtype=object)
    ids, first = np.unique(track_col, return_index=True)
    order = np.argsort(first)  # tracks in the order the file lists them
    ids = ids[order]
    index = {tid: k for k, tid in enumerate(ids)}
    track = np.array([index[t] for t in track_col], dtype=np.int64)
    step = table.column("timestep").to_numpy().astype(np.int64)
    if step.min() < 0:
        raise DataImportError(f"{path}: column 'timestep': negative value {int(step.min())}")
    num_steps = int(step.max()) + 1
    if "num_timestamps" in table.schema.names:
        num_steps = max(num_steps, int(table.column("num_timestamps")[0].as_py()))
    dt = 0.1  # s, Argoverse 2 motion forecasting is 10 Hz
    if {"start_timestamp", "end_timestamp"} <= set(table.schema.names) and num_steps > 1:
        t0, t1 = table.column("start_timestamp")[0].as_py(), table.column("end_timestamp")[0].as_py()
        if t1 > t0:
            dt = (t1 - t0) / 1e9 / (num_steps - 1)
    shape = (len(ids), num_steps)
    valid = np.zeros(shape, dtype=bool)
    if np.any(np.bincount(track * num_steps + step, minlength=shape[0] * shape[1]) > 1):
        raise DataImportError(f"{path}: a (track_id, timestep) pair appears twice")
    valid[track, step] = True
    kin = {}
    for name, col in (
        ("x", "position_x"),
        ("y", "position_y"),
        ("yaw", "heading"),
        ("vx", "velocity_x"),
        ("vy", "velocity_y"),
    ):
        arr = np.full(shape, np.nan)
        arr[track, step] = table.column(col).to_numpy()
        kin[name] = arr
    raw_types = np.empty(len(ids), dtype=object)
    raw_types[track] = np.asarray(table.column("object_type").to_pylist(), dtype=object)
    types = np.empty(len(ids), dtype=np.int8)
    length = np.empty(len(ids))
    width = np.empty(len(ids))
    for k, name in enumerate(raw_types):
        kind = OBJECT_TYPES.get(str(name))
        if kind is None:
            result.skipped[f"unknown object_type {name!r} (as other)"] += 1
            kind = AgentType.OTHER
        types[k] = kind
        length[k], width[k] = BUS_SIZE_M if name == "bus" else DEFAULT_SIZE_M[kind]
    if EGO_TRACK not in index:
        raise DataImportError(f"{path}: no track {EGO_TRACK!r} (the ego); track ids are {list(ids[:5])}...")
    scenario_id = _first(table, "scenario_id") or path.stem.removeprefix("scenario_")
    metadata = {
        "city": _first(table, "city"),
        "focal_track_id": _first(table, "focal_track_id"),
        "start_timestamp_ns": _first(table, "start_timestamp"),
        "sizes": "default per type (Argoverse 2 logs no box sizes)",
        "file": path.name,
    }
    vmap = None
    map_file = Path(map_path) if map_path is not None else find_map(path, scenario_id)
    if map_file is not None:
        vmap, skipped = read_av2_map(map_file)
        result.skipped.update(skipped)
        metadata["map_file"] = map_file.name
    else:
        result.skipped["scenario without a log_map_archive_*.json map"] += 1
    result.scenarios.append(
        Scenario(
            scenario_id=str(scenario_id),
            timestamps=np.arange(num_steps) * dt,
            valid=valid,
            length=length,
            width=width,
            agent_type=types,
            track_ids=tuple(str(i) for i in ids),
            ego=index[EGO_TRACK],
            map=vmap,
            source="argoverse2",
            metadata=metadata,
            origin=str(path),
            **kin,
        )
    )
    return result


def _first(table: pa.Table, name: str):
    if name not in table.schema.names or table.num_rows == 0:
        return None
    return table.column(name)[0].as_py()


def find_map(path: Path, scenario_id: str) -> Path | None:
    exact = path.parent / f"log_map_archive_{scenario_id}.json"
    if exact.is_file():
        return exact
    found = sorted(path.parent.glob("log_map_archive_*.json"))
    return found[0] if len(found) == 1 else None


def read_av2_map(path: str | Path) -> tuple[VectorMap, dict[str, int]]:
    """An Argoverse 2 `log_map_archive_*.json` as vector lanes; links to lanes outside the archive are dropped
    and counted."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataImportError(f"{path}: not a readable JSON map ({err})") from None
    segments = data.get("lane_segments") if isinstance(data, dict) else None
    if not isinstance(segments, dict):
        raise DataImportError(f"{path}: field 'lane_segments' missing or not an object; not an Argoverse 2 map")
    skipped: dict[str, int] = {}
    ids = list(segments)
    index = {str(segments[k].get("id", k)): i for i, k in enumerate(ids)}
    points, offsets, widths, inter, kinds, succ, left, right = [], [0], [], [], [], [], [], []

    def link(value, what):
        if value is None:
            return -1
        j = index.get(str(value))
        if j is None:
            skipped[f"map {what} outside the map"] = skipped.get(f"map {what} outside the map", 0) + 1
            return -1
        return j

    for k in ids:
        seg = segments[k]
        try:
            lb = np.array([[p["x"], p["y"]] for p in seg["left_lane_boundary"]], dtype=np.float64)
            rb = np.array([[p["x"], p["y"]] for p in seg["right_lane_boundary"]], dtype=np.float64)
            centre, width = centre_from_bounds(lb, rb)
            if seg.get("centerline"):
                centre = np.array([[p["x"], p["y"]] for p in seg["centerline"]], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as err:
            raise DataImportError(f"{path}: lane segment {k}: boundary field {err} missing or malformed") from None
        points.append(centre)
        offsets.append(offsets[-1] + len(centre))
        widths.append(width)
        inter.append(bool(seg.get("is_intersection", False)))
        kinds.append(LANE_KINDS.get(str(seg.get("lane_type", "VEHICLE")), str(seg.get("lane_type")).lower()))
        succ.append(tuple(j for j in (link(s, "successor") for s in seg.get("successors") or ()) if j >= 0))
        left.append(link(seg.get("left_neighbor_id"), "neighbour"))
        right.append(link(seg.get("right_neighbor_id"), "neighbour"))
    vmap = VectorMap(
        lane_ids=tuple(str(segments[k].get("id", k)) for k in ids),
        points=np.concatenate(points) if points else np.zeros((0, 2)),
        offsets=np.array(offsets),
        width=np.array(widths),
        speed_limit=np.full(len(ids), np.nan),
        is_intersection=np.array(inter, dtype=bool),
        left=np.array(left),
        right=np.array(right),
        successors=tuple(succ),
        kind=tuple(kinds),
    )
    return vmap, skipped
