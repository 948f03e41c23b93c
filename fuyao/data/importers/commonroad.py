"""CommonRoad XML (2018b / 2020a): dynamic obstacles with trajectories, lanelets as map lanes, traffic lights
with cycles as signal states over time.

- Time is `time step * timeStepSize` (the root's attribute, 0.1 s by default), from step 0 to the last state.
- An obstacle's states are its `initialState` and its `trajectory`; `position/point`, `orientation`, `velocity`
  (speed along the heading) and `time` are `exact` values (an interval takes its midpoint). The shape's
  `rectangle` gives length and width (a `circle` its diameter for both).
- Lanelets: the centre line is the middle of `leftBound` and `rightBound`; `successor` links and
  `adjacentLeft/Right` with `drivingDir="same"` become successors and neighbours. A lanelet named as an
  `outgoing*` of an intersection's incoming is an intersection lane. Speed limits come from traffic signs of
  type 274 / `MAX_SPEED` where the file has them (else NaN).
- Traffic lights: each `cycle` (`cycleElement`s of `duration` time steps and a `color`, a `timeOffset`)
  repeats from step 0; the lanelets whose `trafficLightRef` names a light are its lanes.
- CommonRoad logs no ego (the planning problem's vehicle has no trajectory): the ego is the longest track
  (`metadata["ego_rule"]`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from fuyao.data.importers.common import DataImportError, ImportResult, centre_from_bounds
from fuyao.data.scenario import AgentType, Scenario, Signals, SignalState, VectorMap

OBSTACLE_TYPES: dict[str, AgentType] = {
    "car": AgentType.VEHICLE,
    "truck": AgentType.VEHICLE,
    "bus": AgentType.VEHICLE,
    "taxi": AgentType.VEHICLE,
    "priorityVehicle": AgentType.VEHICLE,
    "parkedVehicle": AgentType.VEHICLE,
    "constructionZone": AgentType.OTHER,
    "bicycle": AgentType.CYCLIST,
    "motorcycle": AgentType.CYCLIST,
    "pedestrian": AgentType.PEDESTRIAN,
    "train": AgentType.OTHER,
    "unknown": AgentType.OTHER,
}
COLORS: dict[str, SignalState] = {
    "red": SignalState.RED,
    "yellow": SignalState.YELLOW,
    "green": SignalState.GREEN,
    "redYellow": SignalState.RED_YELLOW,
    "inactive": SignalState.OFF,
}
MAX_SPEED_SIGNS = {"274", "MAX_SPEED", "R2-1"}


def import_commonroad(path: str | Path) -> ImportResult:
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise DataImportError(
            f"{path}: malformed XML at line {err.position[0]}, column {err.position[1]} ({err})"
        ) from None
    except OSError as err:
        raise DataImportError(f"{path}: cannot read ({err})") from None
    if root.tag != "commonRoad":
        raise DataImportError(f"{path}: root element is <{root.tag}>; a CommonRoad file's is <commonRoad>")
    reader = _Reader(path)
    dt = reader.number(root, "timeStepSize", attribute=True, default=0.1)
    result = ImportResult()
    vmap, lane_index = reader.lanelets(root, result)
    tracks = reader.obstacles(root, result)
    if not tracks:
        raise DataImportError(f"{path}: no <dynamicObstacle> with a trajectory; nothing to import")
    num_steps = max(int(max(s)) for _, _, _, _, s in tracks) + 1
    shape = (len(tracks), num_steps)
    valid = np.zeros(shape, dtype=bool)
    kin = {k: np.full(shape, np.nan) for k in ("x", "y", "yaw", "vx", "vy")}
    for a, (_, _, _, states, steps) in enumerate(tracks):
        steps = np.asarray(steps, dtype=np.int64)
        x, y, yaw, speed = np.asarray(states, dtype=np.float64).T
        valid[a, steps] = True
        kin["x"][a, steps], kin["y"][a, steps], kin["yaw"][a, steps] = x, y, yaw
        kin["vx"][a, steps], kin["vy"][a, steps] = speed * np.cos(yaw), speed * np.sin(yaw)
    signals = reader.traffic_lights(root, num_steps, lane_index, result)
    ego = int(np.argmax(valid.sum(axis=1)))
    benchmark = root.get("benchmarkID") or path.stem
    result.scenarios.append(
        Scenario(
            scenario_id=benchmark,
            timestamps=np.arange(num_steps) * dt,
            valid=valid,
            length=np.array([t[1] for t in tracks]),
            width=np.array([t[2] for t in tracks]),
            agent_type=np.array([t[0][1] for t in tracks], dtype=np.int8),
            track_ids=tuple(t[0][0] for t in tracks),
            ego=ego,
            map=vmap,
            signals=signals,
            source="commonroad",
            metadata={
                "commonroad_version": root.get("commonRoadVersion"),
                "ego_rule": "longest track (CommonRoad logs no ego)",
                "file": path.name,
            },
            origin=str(path),
            **kin,
        )
    )
    return result


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, what: str) -> DataImportError:
        return DataImportError(f"{self.path}: {what}")

    def number(self, elem: ET.Element, name: str, attribute: bool = False, default: float | None = None) -> float:
        text = elem.get(name) if attribute else elem.findtext(name)
        if text is None:
            if default is not None:
                return default
            raise self.fail(f"<{elem.tag} id={elem.get('id')!r}>: <{name}> is missing")
        try:
            return float(text)
        except ValueError:
            raise self.fail(
                f"<{elem.tag} id={elem.get('id')!r}>: <{name}> is {text.strip()!r}; must be a number"
            ) from None

    def value(self, elem: ET.Element | None, owner: ET.Element, name: str) -> float:
        """An `exact` value, or the midpoint of `intervalStart` / `intervalEnd`."""
        if elem is None:
            raise self.fail(f"<{owner.tag} id={owner.get('id')!r}>: <{name}> is missing")
        if elem.find("exact") is not None:
            return self.number(elem, "exact")
        if elem.find("intervalStart") is not None:
            return 0.5 * (self.number(elem, "intervalStart") + self.number(elem, "intervalEnd"))
        raise self.fail(f"<{owner.tag} id={owner.get('id')!r}>: <{name}> has neither <exact> nor an interval")

    def points(self, elem: ET.Element | None, owner: ET.Element, name: str) -> np.ndarray:
        if elem is None:
            raise self.fail(f"<lanelet id={owner.get('id')!r}>: <{name}> is missing")
        pts = [(self.number(p, "x"), self.number(p, "y")) for p in elem.findall("point")]
        if len(pts) < 2:
            raise self.fail(f"<lanelet id={owner.get('id')!r}>: <{name}> has {len(pts)} points; needs >= 2")
        return np.array(pts)

    def lanelets(self, root: ET.Element, result: ImportResult) -> tuple[VectorMap | None, dict[str, int]]:
        lanelets = root.findall("lanelet")
        if not lanelets:
            result.skipped["file without lanelets (no map)"] += 1
            return None, {}
        ids = [ll.get("id") for ll in lanelets]
        if None in ids:
            raise self.fail("a <lanelet> has no id attribute")
        index = {i: k for k, i in enumerate(ids)}
        limits = self.speed_limits(root)
        inter = set()
        for it in root.findall("intersection"):
            for inc in it.findall("incoming"):
                for tag in ("outgoingLeft", "outgoingRight", "outgoingStraight"):
                    inter.update(e.get("ref") for e in inc.findall(tag))
        points, offsets, widths, succ, left, right, speed = [], [0], [], [], [], [], []
        for ll in lanelets:
            centre, width = centre_from_bounds(
                self.points(ll.find("leftBound"), ll, "leftBound"), self.points(ll.find("rightBound"), ll, "rightBound")
            )
            points.append(centre)
            offsets.append(offsets[-1] + len(centre))
            widths.append(width)
            out = []
            for s in ll.findall("successor"):
                if s.get("ref") in index:
                    out.append(index[s.get("ref")])
                else:
                    result.skipped["lanelet successor not in the file"] += 1
            succ.append(tuple(out))
            for tag, side in (("adjacentLeft", left), ("adjacentRight", right)):
                adj = ll.find(tag)
                ok = adj is not None and adj.get("drivingDir", "same") == "same" and adj.get("ref") in index
                side.append(index[adj.get("ref")] if ok else -1)
            refs = [r.get("ref") for r in ll.findall("trafficSignRef")]
            speed.append(min((limits[r] for r in refs if r in limits), default=np.nan))
        vmap = VectorMap(
            lane_ids=tuple(ids),
            points=np.concatenate(points),
            offsets=np.array(offsets),
            width=np.array(widths),
            speed_limit=np.array(speed),
            is_intersection=np.array([i in inter for i in ids], dtype=bool),
            left=np.array(left),
            right=np.array(right),
            successors=tuple(succ),
        )
        return vmap, index

    def speed_limits(self, root: ET.Element) -> dict[str, float]:
        """Traffic sign id -> the smallest max-speed value on it (m/s)."""
        out = {}
        for sign in root.findall("trafficSign"):
            for el in sign.findall("trafficSignElement"):
                if (el.findtext("trafficSignID") or "").strip() in MAX_SPEED_SIGNS:
                    for v in el.findall("additionalValue"):
                        try:
                            out[sign.get("id")] = min(out.get(sign.get("id"), np.inf), float(v.text))
                        except (TypeError, ValueError):
                            raise self.fail(
                                f"<trafficSign id={sign.get('id')!r}>: speed {v.text!r} is not a number"
                            ) from None
        return out

    def obstacles(self, root: ET.Element, result: ImportResult) -> list:
        tracks = []
        for ob in root.findall("dynamicObstacle"):
            oid = ob.get("id")
            if oid is None:
                raise self.fail("a <dynamicObstacle> has no id attribute")
            kind_name = (ob.findtext("type") or "unknown").strip()
            kind = OBSTACLE_TYPES.get(kind_name)
            if kind is None:
                result.skipped[f"obstacle type {kind_name!r} (as other)"] += 1
                kind = AgentType.OTHER
            shape = ob.find("shape")
            rect = shape.find("rectangle") if shape is not None else None
            circle = shape.find("circle") if shape is not None else None
            if rect is not None:
                length, width = self.number(rect, "length"), self.number(rect, "width")
            elif circle is not None:
                length = width = 2 * self.number(circle, "radius")
            else:
                raise self.fail(f"<dynamicObstacle id={oid!r}>: <shape> has no <rectangle> or <circle>")
            elems = [ob.find("initialState")] + ob.findall("trajectory/state")
            if elems[0] is None:
                raise self.fail(f"<dynamicObstacle id={oid!r}>: <initialState> is missing")
            if len(elems) == 1:
                result.skipped["obstacle without a trajectory (initial state only)"] += 1
            states, steps = [], []
            for st in elems:
                point = st.find("position/point")
                if point is None:
                    raise self.fail(f"<dynamicObstacle id={oid!r}>: a state has no <position><point>")
                step = self.value(st.find("time"), ob, "time")
                if step < 0 or step != int(step):
                    raise self.fail(f"<dynamicObstacle id={oid!r}>: time step {step!r}; must be a whole number >= 0")
                if len(steps) == 1 and int(step) == steps[0]:
                    # Some files repeat the initial state as the trajectory's first: the trajectory's wins.
                    states.pop()
                    steps.pop()
                if steps and int(step) <= steps[-1]:
                    raise self.fail(
                        f"<dynamicObstacle id={oid!r}>: time steps go backwards or repeat ({steps[-1]} then {int(step)})"
                    )
                velocity = st.find("velocity")
                speed = self.value(velocity, ob, "velocity") if velocity is not None else np.nan
                states.append(
                    (
                        self.number(point, "x"),
                        self.number(point, "y"),
                        self.value(st.find("orientation"), ob, "orientation"),
                        speed,
                    )
                )
                steps.append(int(step))
            tracks.append(((oid, kind), length, width, states, steps))
        return tracks

    def traffic_lights(
        self, root: ET.Element, num_steps: int, lane_index: dict[str, int], result: ImportResult
    ) -> Signals | None:
        lights = root.findall("trafficLight")
        if not lights:
            return None
        governed: dict[str, list[int]] = {}
        for ll in root.findall("lanelet"):
            for ref in ll.findall("trafficLightRef"):
                governed.setdefault(ref.get("ref"), []).append(lane_index[ll.get("id")])
        ids, lanes, states = [], [], []
        steps = np.arange(num_steps)
        for tl in lights:
            tid = tl.get("id")
            cycle = tl.find("cycle")
            if cycle is None or not cycle.findall("cycleElement"):
                raise self.fail(f"<trafficLight id={tid!r}>: no <cycle> of <cycleElement>s")
            durations, colors = [], []
            for el in cycle.findall("cycleElement"):
                durations.append(int(self.number(el, "duration")))
                color = (el.findtext("color") or "").strip()
                if color not in COLORS:
                    raise self.fail(f"<trafficLight id={tid!r}>: color {color!r}; allowed {sorted(COLORS)}")
                colors.append(COLORS[color])
            if min(durations) <= 0:
                raise self.fail(f"<trafficLight id={tid!r}>: cycle durations {durations}; must be > 0 time steps")
            offset = int(self.number(cycle, "timeOffset", default=0.0))
            ends = np.cumsum(durations)
            phase = np.searchsorted(ends, np.remainder(steps - offset, ends[-1]), side="right")
            state = np.array(colors, dtype=np.int8)[phase]
            if (tl.findtext("active") or "true").strip() == "false":
                state[:] = SignalState.OFF
            ids.append(tid)
            lanes.append(tuple(governed.get(tid, ())))
            states.append(state)
            if tid not in governed:
                result.skipped["traffic light governing no lanelet"] += 1
        return Signals(tuple(ids), tuple(lanes), np.stack(states))
