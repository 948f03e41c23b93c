"""The Fuyao map file: a lane graph as written by `fuyao maps import`, loadable without executing code.

One `.npz` (numpy's zip of arrays, read with `allow_pickle=False`), holding the builder's lanes, links,
conflicts, right of way and signal programs (not the packed `RoadMap`: the map is rebuilt through
`LaneGraphBuilder.build` on load, so its checks run again and the file does not depend on `RoadMap`'s tensor
layout). Arrays (L lanes, Q points in all, K conflicts, R right-of-way entries, J junctions, H phases):

    points [Q, 2] float64 m, lane_offsets [L + 1] int64      centre lines, lane i = points[off[i]:off[i+1]]
    width, speed_limit, road_s0, change_until, change_from [L] float64 (m, m/s; change_until inf = none)
    kind [L] int8 (0 road, 1 ramp, 2 connector), left, right, exit_group, junction [L] int64 (-1 none)
    change_left_ok, change_right_ok [L] bool, entry [L] int8 (inflow enters here: 1 yes, 0 no, -1 if no predecessor)
    succ, succ_offsets / pred, pred_offsets                     successors and predecessors, in order (CSR)
    conflict_lanes [K, 2] int64, conflict_s [K, 2] float64 m
    right_of_way [R, 3] int64: lane a, lane b, `roads.signals` code for a
    link, link_offsets                                          each junction's connector lanes, in link order
    phase_offsets [J + 1] int64, phase_s, phase_min_s, phase_max_s [H] float64 s (NaN: not actuated)
    meta: uint8, UTF-8 JSON: format, version, name, spacing_m, lane names, junction names, phase states,
          the import summary and the source file's SHA-256

`save_map` writes a temporary file beside the target and renames it over the target when complete: a failed
write leaves any earlier file as it was.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from fuyao.roads.lanegraph import MAP_CITY, Junction, Lane, LaneGraphBuilder, MapError, RoadMap
from fuyao.roads.signals import Phase

FORMAT = "fuyao.map"
VERSION = 1
SUFFIX = ".npz"
KINDS = ("road", "ramp", "connector")
ARRAYS = (
    "points",
    "lane_offsets",
    "width",
    "speed_limit",
    "road_s0",
    "change_until",
    "change_from",
    "kind",
    "left",
    "right",
    "exit_group",
    "junction",
    "change_left_ok",
    "change_right_ok",
    "entry",
    "succ",
    "succ_offsets",
    "pred",
    "pred_offsets",
    "conflict_lanes",
    "conflict_s",
    "right_of_way",
    "link",
    "link_offsets",
    "phase_offsets",
    "phase_s",
    "phase_min_s",
    "phase_max_s",
)


def _csr(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(x) for x in lists])
    flat = np.array([v for x in lists for v in x], dtype=np.int64)
    return flat, offsets


def save_map(path: str | Path, builder: LaneGraphBuilder, meta: dict | None = None) -> Path:
    """Write `builder`'s lane graph to `path` (atomically). `meta` (JSON-able) is stored beside it."""
    path = Path(path)
    lanes = builder.lanes
    succ, succ_off = _csr([lane.successors for lane in lanes])
    pred, pred_off = _csr([lane.predecessors for lane in lanes])
    link, link_off = _csr([j.links for j in builder.junctions])
    phases = [ph for j in builder.junctions for ph in j.phases]
    arrays = {
        "points": np.concatenate([lane.centre for lane in lanes]).astype(np.float64),
        "lane_offsets": np.concatenate([[0], np.cumsum([len(lane.centre) for lane in lanes])]).astype(np.int64),
        "width": np.array([lane.width for lane in lanes]),
        "speed_limit": np.array([lane.speed_limit for lane in lanes]),
        "road_s0": np.array([lane.road_s0 for lane in lanes]),
        "change_until": np.array([lane.change_until for lane in lanes]),
        "change_from": np.array([lane.change_from for lane in lanes]),
        "kind": np.array([KINDS.index(lane.kind) for lane in lanes], dtype=np.int8),
        "left": np.array([lane.left for lane in lanes], dtype=np.int64),
        "right": np.array([lane.right for lane in lanes], dtype=np.int64),
        "exit_group": np.array([lane.exit_group for lane in lanes], dtype=np.int64),
        "junction": np.array([lane.junction for lane in lanes], dtype=np.int64),
        "change_left_ok": np.array([lane.change_left_ok for lane in lanes], dtype=bool),
        "change_right_ok": np.array([lane.change_right_ok for lane in lanes], dtype=bool),
        "entry": np.array([-1 if lane.entry is None else int(lane.entry) for lane in lanes], dtype=np.int8),
        "succ": succ,
        "succ_offsets": succ_off,
        "pred": pred,
        "pred_offsets": pred_off,
        "conflict_lanes": np.array([(a, b) for a, b, _, _ in builder.conflicts], dtype=np.int64).reshape(-1, 2),
        "conflict_s": np.array([(sa, sb) for _, _, sa, sb in builder.conflicts], dtype=np.float64).reshape(-1, 2),
        "right_of_way": np.array([(a, b, v) for (a, b), v in builder.right_of_way.items()], dtype=np.int64).reshape(
            -1, 3
        ),
        "link": link,
        "link_offsets": link_off,
        "phase_offsets": np.concatenate([[0], np.cumsum([len(j.phases) for j in builder.junctions])]).astype(np.int64),
        "phase_s": np.array([ph.duration_s for ph in phases], dtype=np.float64),
        "phase_min_s": np.array([math.nan if ph.min_s is None else ph.min_s for ph in phases], dtype=np.float64),
        "phase_max_s": np.array([math.nan if ph.max_s is None else ph.max_s for ph in phases], dtype=np.float64),
    }
    header = {
        "format": FORMAT,
        "version": VERSION,
        "name": builder.name,
        "spacing_m": builder.spacing,
        "lane_names": [lane.name for lane in lanes],
        "junction_names": [j.name for j in builder.junctions],
        "phase_states": [ph.state for ph in phases],
        **(meta or {}),
    }
    arrays["meta"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file (mkstemp makes it private)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _open(path: Path):
    if not path.is_file():
        raise MapError(f"{path}: no such map file (write one with `fuyao maps import FILE --out NAME`)")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise MapError(f"{path}: not a Fuyao map file (an .npz written by `fuyao maps import`): {err}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise MapError(f"{path}: not a Fuyao map file: holds one array, not an .npz archive")
    return data


def read_header(path: str | Path) -> dict:
    """The map file's JSON header (format, version, name, summary, ...), checked; reads no lane arrays."""
    path = Path(path)
    data = _open(path)
    with data:
        return _header(path, data)


def _header(path: Path, data) -> dict:
    if "meta" not in data.files:
        raise MapError(f"{path}: not a Fuyao map file: no 'meta' entry (entries: {sorted(data.files)[:8]})")
    try:
        meta = data["meta"]
    except ValueError:
        raise MapError(f"{path}: field 'meta': a pickled object; map files hold no pickles") from None
    try:
        header = json.loads(bytes(meta).decode())
    except (ValueError, UnicodeDecodeError) as err:
        raise MapError(f"{path}: field 'meta': not UTF-8 JSON ({err})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        got = header.get("format") if isinstance(header, dict) else header
        raise MapError(f"{path}: field 'meta.format': got {got!r}; allowed: {FORMAT!r}")
    if header.get("version") != VERSION:
        raise MapError(f"{path}: field 'meta.version': got {header.get('version')!r}; allowed: {VERSION}")
    return header


def load_builder(path: str | Path) -> tuple[LaneGraphBuilder, dict]:
    """The lane graph stored at `path`, as a builder, and the file's header. Errors name the file and field."""
    path = Path(path)
    data = _open(path)
    with data:
        header = _header(path, data)
        missing = [k for k in ARRAYS if k not in data.files]
        if missing:
            raise MapError(f"{path}: fields {missing} missing; a map file of version {VERSION} has {list(ARRAYS)}")
        try:
            a = {k: data[k] for k in ARRAYS}
        except (ValueError, OSError, zipfile.BadZipFile) as err:
            raise MapError(f"{path}: an array cannot be read ({err})") from None
    try:
        return _rebuild(a, header), header
    except (IndexError, KeyError, TypeError, ValueError) as err:
        if isinstance(err, MapError):
            raise MapError(f"{path}: {err}") from None
        raise MapError(f"{path}: arrays inconsistent with each other ({type(err).__name__}: {err})") from None


def _rebuild(a: dict, header: dict) -> LaneGraphBuilder:
    b = LaneGraphBuilder(spacing=float(header["spacing_m"]), name=str(header["name"]))
    off = a["lane_offsets"]
    num_lanes = len(off) - 1
    names = header["lane_names"]
    for key in ("width", "speed_limit", "kind", "left", "right", "exit_group", "junction", "entry"):
        if len(a[key]) != num_lanes:
            raise MapError(f"field {key!r} has {len(a[key])} entries; lane_offsets gives {num_lanes} lanes")
    for i in range(num_lanes):
        centre = a["points"][off[i] : off[i + 1]]
        if len(centre) < 2:
            raise MapError(f"field 'lane_offsets': lane {i} has {len(centre)} points; a lane needs >= 2")
        b.lanes.append(
            Lane(
                centre=np.array(centre),
                width=float(a["width"][i]),
                speed_limit=float(a["speed_limit"][i]),
                kind=KINDS[int(a["kind"][i])],
                successors=a["succ"][a["succ_offsets"][i] : a["succ_offsets"][i + 1]].tolist(),
                predecessors=a["pred"][a["pred_offsets"][i] : a["pred_offsets"][i + 1]].tolist(),
                left=int(a["left"][i]),
                right=int(a["right"][i]),
                change_left_ok=bool(a["change_left_ok"][i]),
                change_right_ok=bool(a["change_right_ok"][i]),
                road_s0=float(a["road_s0"][i]),
                exit_group=int(a["exit_group"][i]),
                name=str(names[i]),
                change_until=float(a["change_until"][i]),
                change_from=float(a["change_from"][i]),
                junction=int(a["junction"][i]),
                entry=None if a["entry"][i] < 0 else bool(a["entry"][i]),
            )
        )
    for i, lane in enumerate(b.lanes):
        for j in lane.successors + lane.predecessors:
            if not 0 <= j < num_lanes:
                raise MapError(f"field 'succ'/'pred': lane {i} links to lane {j}; lanes are 0 to {num_lanes - 1}")
    b.conflicts = [
        (int(x), int(y), float(sx), float(sy)) for (x, y), (sx, sy) in zip(a["conflict_lanes"], a["conflict_s"])
    ]
    b.right_of_way = {(int(x), int(y)): int(v) for x, y, v in a["right_of_way"]}
    states = header["phase_states"]
    ph_off, lk_off = a["phase_offsets"], a["link_offsets"]
    for j, jname in enumerate(header["junction_names"]):
        phases = [
            Phase(
                float(a["phase_s"][k]),
                str(states[k]),
                None if math.isnan(a["phase_min_s"][k]) else float(a["phase_min_s"][k]),
                None if math.isnan(a["phase_max_s"][k]) else float(a["phase_max_s"][k]),
            )
            for k in range(ph_off[j], ph_off[j + 1])
        ]
        b.junctions.append(Junction(name=str(jname), links=a["link"][lk_off[j] : lk_off[j + 1]].tolist()))
        if phases:
            b.set_program(j, phases)
    return b


def build_imported(builder: LaneGraphBuilder) -> RoadMap:
    """Pack an imported map: spawning anywhere, random trips between its destinations, as a city."""
    return builder.build(spawn_window=(0.0, 1.0e9), kind=MAP_CITY, trips=True)


def load_map(path: str | Path) -> RoadMap:
    """The one-map `RoadMap` stored at `path` (a file written by `save_map` / `fuyao maps import`)."""
    builder, _ = load_builder(path)
    try:
        return build_imported(builder)
    except MapError as err:
        raise MapError(f"{path}: {err}") from None


def file_sha256(path: str | Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


__all__ = ["FORMAT", "SUFFIX", "VERSION", "file_sha256", "load_builder", "load_map", "read_header", "save_map"]
