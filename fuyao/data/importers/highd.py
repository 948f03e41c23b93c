"""highD-style recordings: `XX_tracks.csv`, `XX_tracksMeta.csv`, `XX_recordingMeta.csv` (or the same names
without the `XX_` prefix) in one folder.

highD's image frame has `y` pointing down and `x, y` at the **upper-left corner** of the bounding box, whose
`width` runs along x (the vehicle's length) and `height` along y (the vehicle's width). Fuyao's frame has `y`
up, so the centre is `(x + width / 2, -(y + height / 2))` and `vy = -yVelocity`; the heading is the direction
of motion, `atan2(vy, vx)` (highD logs none). Time is `frame / frameRate`.

A recording is long (about 20 minutes): it is cut into windows of `window_s` seconds (default 20 s), one
scenario each, holding the tracks seen in it; the ego of each is its longest track (`metadata["ego_rule"]`).
The map is one straight lane per pair of neighbouring lane markings (`upperLaneMarkings` drive towards -x,
`lowerLaneMarkings` towards +x) spanning the recording's x range, with the recording's `speedLimit`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from fuyao.data.importers.common import DataImportError, ImportResult
from fuyao.data.scenario import AgentType, Scenario, VectorMap

TRACK_COLUMNS = ("frame", "id", "x", "y", "width", "height", "xVelocity", "yVelocity")
CLASSES = {"car": AgentType.VEHICLE, "truck": AgentType.VEHICLE, "bus": AgentType.VEHICLE, "van": AgentType.VEHICLE}


def find_highd_files(folder: Path) -> list[tuple[Path, Path | None, Path | None]]:
    """`(tracks, tracksMeta, recordingMeta)` for each recording in `folder`."""
    out = []
    for tracks in sorted(folder.glob("*tracks.csv")):
        prefix = tracks.name[: -len("tracks.csv")]
        meta = folder / f"{prefix}tracksMeta.csv"
        rec = folder / f"{prefix}recordingMeta.csv"
        out.append((tracks, meta if meta.is_file() else None, rec if rec.is_file() else None))
    return out


def _read_csv(path: Path, required: tuple[str, ...]) -> pa.Table:
    try:
        table = pcsv.read_csv(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise DataImportError(f"{path}: not a readable CSV file ({err})") from None
    missing = [c for c in required if c not in table.schema.names]
    if missing:
        raise DataImportError(f"{path}: columns {missing} are missing; got {table.schema.names}")
    return table


def import_highd(
    tracks_path: str | Path, meta_path: Path | None = None, rec_path: Path | None = None, window_s: float = 20.0
) -> ImportResult:
    tracks_path = Path(tracks_path)
    if meta_path is None or rec_path is None:
        found = [f for f in find_highd_files(tracks_path.parent) if f[0] == tracks_path]
        if found:
            meta_path, rec_path = meta_path or found[0][1], rec_path or found[0][2]
    if window_s <= 0:
        raise DataImportError(f"highD window_s: got {window_s!r}; must be > 0 s")
    result = ImportResult()
    table = _read_csv(tracks_path, TRACK_COLUMNS)
    frame_rate, speed_limit, upper, lower, rec_id = 25.0, np.nan, [], [], tracks_path.name.split("_")[0]
    if rec_path is not None:
        rec = _read_csv(rec_path, ("frameRate",)).to_pylist()[0]
        frame_rate = float(rec["frameRate"])
        if frame_rate <= 0:
            raise DataImportError(f"{rec_path}: frameRate: got {frame_rate!r}; must be > 0")
        limit = rec.get("speedLimit")
        speed_limit = float(limit) if limit is not None and float(limit) > 0 else np.nan
        upper, lower = _markings(rec.get("upperLaneMarkings")), _markings(rec.get("lowerLaneMarkings"))
        rec_id = str(rec.get("id", rec_id))
    else:
        result.skipped["recording without recordingMeta.csv (25 Hz assumed, no map)"] += 1
    classes: dict[int, str] = {}
    if meta_path is not None:
        for row in _read_csv(meta_path, ("id", "class")).select(["id", "class"]).to_pylist():
            classes[int(row["id"])] = str(row["class"]).lower()

    col = {c: table.column(c).to_numpy().astype(np.float64) for c in TRACK_COLUMNS}
    frame = col["frame"].astype(np.int64)
    vid = col["id"].astype(np.int64)
    for name in ("x", "y"):
        bad = ~np.isfinite(col[name])
        if bad.any():
            k = int(np.argmax(bad))
            raise DataImportError(f"{tracks_path}: track {vid[k]} frame {frame[k]}: {name} is NaN (CSV row {k + 2})")
    # highD lists each track's rows together, frame by frame: a frame that goes backwards is a broken file.
    same_file = vid[1:] == vid[:-1]
    back = same_file & (np.diff(frame) <= 0)
    if back.any():
        k = int(np.argmax(back)) + 1
        raise DataImportError(
            f"{tracks_path}: track {vid[k]}: frames go backwards or repeat at CSV row {k + 2} "
            f"({frame[k - 1]} then {frame[k]}); must increase"
        )
    order = np.lexsort((frame, vid))
    if ((vid[order][1:] == vid[order][:-1]) & (np.diff(frame[order]) == 0)).any():
        raise DataImportError(f"{tracks_path}: a (track id, frame) pair appears twice")
    cx = col["x"] + 0.5 * col["width"]
    cy = -(col["y"] + 0.5 * col["height"])
    vx, vy = col["xVelocity"], -col["yVelocity"]
    yaw = np.arctan2(vy, vx)
    ids = np.unique(vid)
    vmap = _lane_map(
        upper, lower, float(cx.min() - col["width"].max()), float(cx.max() + col["width"].max()), speed_limit
    )
    window = max(1, int(round(window_s * frame_rate)))
    f0 = int(frame.min())
    for w0 in range(f0, int(frame.max()) + 1, window):
        inside = (frame >= w0) & (frame < w0 + window)
        wid = np.unique(vid[inside])
        if wid.size == 0:
            continue
        a = np.searchsorted(wid, vid[inside])
        t = frame[inside] - w0
        steps = int(t.max()) + 1
        valid = np.zeros((wid.size, steps), dtype=bool)
        valid[a, t] = True
        kin = {}
        for name, arr in (("x", cx), ("y", cy), ("yaw", yaw), ("vx", vx), ("vy", vy)):
            out = np.full(valid.shape, np.nan)
            out[a, t] = arr[inside]
            kin[name] = out
        length = np.zeros(wid.size)
        width = np.zeros(wid.size)
        length[a], width[a] = col["width"][inside], col["height"][inside]
        types = []
        for i in wid:
            cls = classes.get(int(i), "car")
            if cls not in CLASSES:
                result.skipped[f"class {cls!r} (as other)"] += 1
            types.append(CLASSES.get(cls, AgentType.OTHER))
        result.scenarios.append(
            Scenario(
                scenario_id=f"highd-{rec_id}-{(w0 - f0) // window:04d}",
                timestamps=np.arange(steps) / frame_rate,
                valid=valid,
                length=length,
                width=width,
                agent_type=np.array(types, dtype=np.int8),
                track_ids=tuple(str(i) for i in wid),
                ego=int(np.argmax(valid.sum(axis=1))),
                map=vmap,
                source="highd",
                metadata={
                    "recording": rec_id,
                    "first_frame": int(w0),
                    "frame_rate": frame_rate,
                    "start_s": (w0 - f0) / frame_rate,
                    "ego_rule": "longest track in the window (highD logs no ego)",
                    "file": tracks_path.name,
                },
                origin=str(tracks_path),
                **kin,
            )
        )
    if ids.size == 0:
        raise DataImportError(f"{tracks_path}: no track rows")
    return result


def _markings(text) -> list[float]:
    if text is None:
        return []
    try:
        return [float(v) for v in str(text).split(";") if v.strip()]
    except ValueError:
        raise DataImportError(f"recordingMeta lane markings: got {text!r}; must be numbers separated by ';'") from None


def _lane_map(upper: list[float], lower: list[float], x0: float, x1: float, speed_limit: float) -> VectorMap | None:
    """Straight lanes between neighbouring markings (y flipped to Fuyao's frame). Upper lanes run towards -x."""
    lanes = []  # (centre [2, 2], width, direction)
    for marks, direction in ((upper, -1), (lower, +1)):
        for a, b in zip(marks[:-1], marks[1:]):
            y = -(a + b) / 2
            pts = np.array([[x0, y], [x1, y]]) if direction > 0 else np.array([[x1, y], [x0, y]])
            lanes.append((pts, abs(b - a), direction, y))
    if not lanes:
        return None
    left = [-1] * len(lanes)
    right = [-1] * len(lanes)
    for i, (_, _, di, yi) in enumerate(lanes):
        for j, (_, _, dj, yj) in enumerate(lanes):
            if i != j and di == dj and abs(abs(yi - yj) - 0.5 * (lanes[i][1] + lanes[j][1])) < 0.5:
                # Left of a lane is +y when driving towards +x, -y when driving towards -x.
                if (yj - yi) * di > 0:
                    left[i] = j
                else:
                    right[i] = j
    return VectorMap(
        lane_ids=tuple(f"{'upper' if d < 0 else 'lower'}-{k}" for k, (_, _, d, _) in enumerate(lanes)),
        points=np.concatenate([p for p, _, _, _ in lanes]),
        offsets=np.arange(len(lanes) + 1) * 2,
        width=np.array([w for _, w, _, _ in lanes]),
        speed_limit=np.full(len(lanes), speed_limit),
        is_intersection=np.zeros(len(lanes), dtype=bool),
        left=np.array(left),
        right=np.array(right),
        successors=tuple(() for _ in lanes),
    )
