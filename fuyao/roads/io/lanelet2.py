"""Lanelet2 maps (its OSM XML format) as a Fuyao lane graph, read directly with `xml.etree.ElementTree` (the
`lanelet2` package is not needed), through `LaneGraphBuilder` as the SUMO importer does.

Lanelet2 keeps its rules in tags; this reader follows the defaults of Lanelet2's own loader and traffic rules
(`lanelet2_io`'s `OsmHandlerLoad`, `lanelet2_traffic_rules`' `GenericTrafficRules` and `GermanVehicle`, the one
vehicle rule set it ships), so a map means here what it means to Lanelet2. What becomes what (docs/maps.md has
the table):

- coordinates: a node's `local_x` / `local_y` tags (metres, the map's own frame, as Autoware writes them) when
  every node has them; else `lat` / `lon` projected onto the plane tangent to the WGS84 ellipsoid at the nodes'
  mean position (x east, y north, by the radii of curvature there: east-west distances at `dy` metres north or
  south of that point are off by about tan(lat) dy / 6371 km, 0.02% at 1 km in Germany, so Lanelet2 maps of a
  few junctions keep their lengths); heights (`ele`) are dropped;
- lanelets (`relation`s with `type=lanelet`) cars may use: `subtype` road, highway, play_street or exit, or none
  (Lanelet2 then means vehicles), or, where `participant:*` tags override that, `participant:vehicle=yes` or
  `participant:vehicle:car=yes`. Bounds are oriented as Lanelet2's
  `geometry::align` does (the left bound so that the right one lies on its right, then the right bound so that
  the left one lies on its left); the centre line is the middle of the bounds at equal fractions of their
  length (or the lanelet's `centerline` member), the width their mean distance;
- speed limits: a `speed_limit` regulatory element the lanelet references (`sign_type`, or its sign's subtype
  such as `de274-60`), else the lanelet's `speed_limit` tag (km/h unless it names a unit), else Lanelet2's
  German defaults by `location` and `subtype` (`Lanelet2ImportConfig.speed_limits_kmh`);
- successors: lanelet B follows A where B's left and right bounds begin where A's end (Lanelet2's
  `geometry::follows`: the same nodes), or, for maps whose lanelets share no node there, within
  `join_tolerance_m`;
- neighbours: A's right bound is B's left bound, run the same way (B is A's right neighbour); lane changes across
  it as Lanelet2 allows them: `type` line_thin / line_thick with `subtype` dashed both ways, dashed_solid and
  solid_dashed one way, `lane_change*` tags override, anything else (untagged lines included) none. A bound run
  the other way is an oncoming lane (no Fuyao neighbour);
- junctions: Lanelet2 does not mark them. Lanelets whose centre lines cross, merge (share a successor) or come
  within `conflict_threshold_m` of each other are foes; a lanelet with foes and a lanelet leading into it is a
  junction `connector`, and foes that touch make one Fuyao junction; its stop line is where the connector begins
  (a `ref_line` before that is noted). A connector's speed limit is capped where its turn (from the approach's
  heading to the exit's, over its length) asks more than `COMFORT_LAT_ACCEL` sideways, as the procedural city
  caps its turns: Lanelet2 gives a junction lanelet its road's limit, and Fuyao's drivers do not slow for curves.
  Chains of lanelets that only continue each other (one successor, whose one predecessor is the first, and the
  same on their neighbours, with the same lane changes) become one lane, named by the lanelets' ids joined by
  "+", so that car following sees along a street, not across pieces;
- right of way: a `right_of_way` regulatory element's `yield` lanelets give way to its `right_of_way`
  lanelets, each taken with the junction lanelets that continue it (Lanelet2 references the last lanelet before
  the junction); an `all_way_stop`'s lanelets go first come, first served. Where the map says nothing (Lanelet2:
  first come, first served) the geometric rule of the procedural city and SUMO's unregulated junctions decides,
  a total order so that no ring of cars waits for each other: straight and right turns before left turns
  (measured from the approach's heading to the exit's), then the lane that comes first in the file;
- traffic lights (`traffic_light` elements the approach lanelets reference): Lanelet2 stores no timing, so each
  signalised junction gets a default fixed-time program: each light's movements green in turn
  (`signal_green_s`), then yellow, then all red; of two foes green together the yielding one gets `g`;
- destinations: lanes with no successor, side-by-side ones together; more than `max_destinations` are grouped
  by the direction in which they leave the map's centre.

Left out and counted in the summary's `skipped`, never mangled: lanelets cars may not use (crosswalks,
walkways, bicycle and bus lanes, stairs, ... by subtype), two-way lanelets (`one_way=no`: one lane both
directions share), lanelets linked to no other that cross others (no approach to stop at), crossings of a
lanelet no lanelet leads into (Fuyao's conflicts belong to junction lanes entered from an approach), areas
(multipolygons), regulatory elements with no rule for cars (`traffic_sign`: right of way comes from
`right_of_way` elements; unknown subtypes), and their members that name a lanelet left out.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from fuyao.roads.io.sumo_net import ImportSummary, add_conflict, assign_destinations, no_conflicting_priority_greens
from fuyao.roads.junction import COMFORT_LAT_ACCEL
from fuyao.roads.lanegraph import LaneGraphBuilder, MapError
from fuyao.roads.signals import FIRST_COME, HAS_PRIORITY, YIELDS, Phase

IMPORTER_VERSION = 1  # part of the cache key: bump when the translation changes
KMH = 1.0 / 3.6  # m/s per km/h
# Lanelet2's GermanVehicle defaults, km/h by (location, subtype); highways' 130 is advisory in Germany.
GERMAN_SPEED_LIMITS_KMH = (
    ("urban", "road", 50.0),
    ("nonurban", "road", 100.0),
    ("urban", "highway", 130.0),
    ("nonurban", "highway", 130.0),
    ("urban", "play_street", 7.0),
    ("nonurban", "play_street", 7.0),
    ("urban", "exit", 50.0),
)
# Lanelet subtypes a car may use by Lanelet2's GenericTrafficRules ("" = no subtype tag: vehicles only).
CAR_SUBTYPES = {"", "road", "highway", "play_street", "exit"}
# German signs GermanVehicle reads as speed limits (`de274-60` is 60 km/h; `de274` alone a 30 km/h zone).
SIGN_SPEEDS_KMH = {"de274": 30.0, "de310": 50.0}
# Lane changes by line type and subtype, along the line's own direction: (to its left, to its right).
LINE_CHANGES = {"dashed": (True, True), "dashed_solid": (False, True), "solid_dashed": (True, False)}
LINE_TYPES = {"line_thin", "line_thick"}
# `one_way` overrides that apply to a car (Lanelet2 takes the tag naming the participant or a class above it).
ONE_WAY_CAR = ("one_way:vehicle:car", "one_way:vehicle")
TURN_LEFT_RAD = math.radians(30.0)  # a movement turning further left than this is a left turn
WGS84_A = 6378137.0  # m, semi-major axis
WGS84_E2 = 6.69437999014e-3  # first eccentricity squared
_VELOCITY = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+)\s*(km/h|kmh|kph|mph|m/s|mps)?\s*$")
_UNITS = {None: KMH, "km/h": KMH, "kmh": KMH, "kph": KMH, "mph": 0.44704, "m/s": 1.0, "mps": 1.0}


@dataclass(frozen=True)
class Lanelet2ImportConfig:
    """How a Lanelet2 map is translated. Distances in metres, times in seconds."""

    spacing_m: float = 2.0  # centre-line resampling
    join_tolerance_m: float = 0.1  # bound ends this close continue each other where they share no node
    conflict_threshold_m: float = 1.0  # centre lines closer than this cross or merge
    signal_green_s: float = 20.0  # default program: green per traffic light (Lanelet2 stores no timing)
    signal_yellow_s: float = 3.5  # as the procedural city's (1 s + v / (2 x 3 m/s^2) at 50 km/h)
    signal_all_red_s: float = 2.0
    max_destinations: int = 128
    speed_limits_kmh: tuple[tuple[str, str, float], ...] = GERMAN_SPEED_LIMITS_KMH

    def __post_init__(self) -> None:
        for name in ("spacing_m", "join_tolerance_m", "conflict_threshold_m", "signal_green_s", "signal_yellow_s"):
            if not getattr(self, name) > 0:
                raise MapError(f"Lanelet2ImportConfig.{name}: got {getattr(self, name)!r}; allowed: > 0")
        if not self.signal_all_red_s >= 0:
            raise MapError(f"Lanelet2ImportConfig.signal_all_red_s: got {self.signal_all_red_s!r}; allowed: >= 0 s")
        if self.max_destinations < 1:
            raise MapError(f"Lanelet2ImportConfig.max_destinations: got {self.max_destinations!r}; allowed: >= 1")
        for row in self.speed_limits_kmh:
            if len(row) != 3 or not isinstance(row[2], int | float) or not row[2] > 0:
                raise MapError(
                    f"Lanelet2ImportConfig.speed_limits_kmh: entry {row!r}; allowed: (location, subtype, km/h > 0)"
                )


@dataclass
class _Relation:
    id: str
    tags: dict[str, str]
    members: list[tuple[str, str, str]]  # (type, ref, role) in file order


@dataclass
class _Osm:
    xy: dict[str, np.ndarray]  # node id -> [2] m
    ways: dict[str, tuple[list[str], dict[str, str]]]  # way id -> (node ids, tags)
    relations: list[_Relation]
    frame: str  # how the coordinates were made (for the summary)


@dataclass
class _Bound:
    way: str
    reversed: bool  # used against the way's written direction
    nodes: list[str]  # in the lanelet's direction
    points: np.ndarray  # [P, 2] m, in the lanelet's direction


@dataclass
class _Lanelet:
    id: str
    tags: dict[str, str]
    left: _Bound
    right: _Bound
    centre: np.ndarray  # [P, 2] m
    width: float  # m
    speed_limit: float  # m/s
    regulatory: list[str]  # ids of the regulatory elements it references


def is_lanelet2(path: str | Path) -> bool:
    """Whether the OSM XML file at `path` is a Lanelet2 map: it holds a `<relation>` tagged `type=lanelet`
    (plain OpenStreetMap has none). Streams the file and stops at the first one. Malformed XML is a `MapError`
    naming the file, line and column."""
    path = Path(path)
    depth_relation = 0
    try:
        for event, elem in ET.iterparse(path, events=("start", "end")):
            if elem.tag == "relation":
                depth_relation += 1 if event == "start" else -1
            elif event == "end" and elem.tag == "tag" and depth_relation > 0:
                if elem.get("k") == "type" and elem.get("v") == "lanelet":
                    return True
            if event == "end" and elem.tag in ("node", "way", "relation"):
                elem.clear()  # large OSM extracts: keep memory flat
    except ET.ParseError as err:
        raise MapError(f"{path}: malformed XML at line {err.position[0]}, column {err.position[1]} ({err})") from None
    except OSError as err:
        raise MapError(f"{path}: cannot read ({err})") from None
    return False


def lanelet2_to_builder(
    path: str | Path, cfg: Lanelet2ImportConfig | None = None, name: str = ""
) -> tuple[LaneGraphBuilder, ImportSummary]:
    """Translate the Lanelet2 map at `path`. Returns the filled builder (call `.build()` for a `RoadMap`) and
    the summary of what was built and skipped (`lane_index`: lanelet id -> Fuyao lane)."""
    cfg = cfg or Lanelet2ImportConfig()
    path = Path(path)
    osm = _read_osm(path)
    summary = ImportSummary(source=str(path))
    summary.notes[osm.frame] += 1
    reader = _Reader(path, osm, cfg, summary)
    lanelets = reader.lanelets()
    b = LaneGraphBuilder(spacing=cfg.spacing_m, name=name or path.name.split(".")[0])
    _Translation(reader, lanelets, b).run()
    return b, summary


# ---- reading ------------------------------------------------------------------------------------------------


def _tags(elem: ET.Element) -> dict[str, str]:
    return {t.get("k", ""): t.get("v", "") for t in elem.findall("tag")}


def _read_osm(path: Path) -> _Osm:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise MapError(f"{path}: malformed XML at line {err.position[0]}, column {err.position[1]} ({err})") from None
    except OSError as err:
        raise MapError(f"{path}: cannot read ({err})") from None
    if root.tag != "osm":
        raise MapError(f"{path}: root element is <{root.tag}>; a Lanelet2 map's is <osm>")
    raw = []
    for node in root.iter("node"):
        nid = node.get("id")
        if nid is None:
            raise MapError(f"{path}: a <node> has no id attribute")
        tags = _tags(node)
        raw.append((nid, node.get("lat"), node.get("lon"), tags.get("local_x"), tags.get("local_y")))
    if not raw:
        raise MapError(f"{path}: no <node>; a Lanelet2 map's lanelets are bounded by ways of nodes")

    def number(nid: str, field: str, text: str | None) -> float:
        try:
            value = float(text)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise MapError(f"{path}: <node id={nid!r}>: {field} is {text!r}; must be a number") from None
        if not math.isfinite(value):
            raise MapError(f"{path}: <node id={nid!r}>: {field} is {text!r}; must be finite")
        return value

    xy: dict[str, np.ndarray] = {}
    if all(lx is not None and ly is not None for _, _, _, lx, ly in raw):
        for nid, _, _, lx, ly in raw:
            xy[nid] = np.array([number(nid, "tag local_x", lx), number(nid, "tag local_y", ly)])
        frame = "coordinates: the nodes' local_x / local_y tags (metres)"
    else:
        for nid, lat, lon, _, _ in raw:
            if lat is None or lon is None:
                raise MapError(
                    f"{path}: <node id={nid!r}>: no lat / lon attributes (and not every node has local_x / "
                    "local_y tags); a node needs one or the other"
                )
        lat = np.array([number(nid, "lat", a) for nid, a, _, _, _ in raw])
        lon = np.array([number(nid, "lon", o) for nid, _, o, _, _ in raw])
        bad = np.nonzero((np.abs(lat) > 90) | (np.abs(lon) > 180))[0]
        if bad.size:
            k = int(bad[0])
            raise MapError(
                f"{path}: <node id={raw[k][0]!r}>: lat {lat[k]!r}, lon {lon[k]!r}; allowed: |lat| <= 90, |lon| <= 180"
            )
        x, y, lat0, lon0 = _tangent_plane(lat, lon)
        for k, (nid, *_) in enumerate(raw):
            xy[nid] = np.array([x[k], y[k]])
        frame = f"coordinates: lat / lon on the plane tangent at lat {lat0:.7f}, lon {lon0:.7f} (x east, y north)"
    ways = {}
    for way in root.iter("way"):
        wid = way.get("id")
        if wid is None:
            raise MapError(f"{path}: a <way> has no id attribute")
        refs = [nd.get("ref") for nd in way.findall("nd")]
        for ref in refs:
            if ref not in xy:
                raise MapError(f"{path}: <way id={wid!r}>: <nd ref={ref!r}> names no <node> in the file")
        ways[wid] = (refs, _tags(way))
    relations = []
    for rel in root.iter("relation"):
        rid = rel.get("id")
        if rid is None:
            raise MapError(f"{path}: a <relation> has no id attribute")
        members = [(m.get("type", ""), m.get("ref", ""), m.get("role", "")) for m in rel.findall("member")]
        relations.append(_Relation(rid, _tags(rel), members))
    return _Osm(xy, ways, relations, frame)


def _tangent_plane(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """East / north metres of WGS84 positions (degrees) from their mean, by the ellipsoid's radii of curvature
    there (meridional M, prime vertical N): x = N cos(lat0) dlon, y = M dlat."""
    lat0, lon0 = float(lat.mean()), float(lon.mean())
    s = math.sin(math.radians(lat0))
    w = 1.0 - WGS84_E2 * s * s
    meridional = WGS84_A * (1.0 - WGS84_E2) / w**1.5
    prime = WGS84_A / math.sqrt(w)
    x = prime * math.cos(math.radians(lat0)) * np.radians(lon - lon0)
    y = meridional * np.radians(lat - lat0)
    return x, y, lat0, lon0


def parse_velocity(text: str) -> float | None:
    """A Lanelet2 velocity ("50", "50 km/h", "30 mph", "13.9 m/s"; no unit: km/h) in m/s, or None."""
    m = _VELOCITY.match(text)
    if m is None:
        return None
    return float(m.group(1)) * _UNITS[m.group(2)]


def _signed_distance(line: np.ndarray, p: np.ndarray) -> float:
    """Distance from `p` to the polyline `line [P, 2]`, positive where `p` lies left of the nearest segment
    (Lanelet2's `geometry::signedDistance`)."""
    a, ab = line[:-1], np.diff(line, axis=0)
    t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-18), 0.0, 1.0)
    d = np.linalg.norm(a + t[:, None] * ab - p, axis=1)
    k = int(np.argmin(d))
    cross = ab[k, 0] * (p - a[k])[1] - ab[k, 1] * (p - a[k])[0]
    return float(math.copysign(d[k], cross))


def _middle(points: np.ndarray) -> np.ndarray:
    return points[len(points) // 2] if len(points) > 2 else 0.5 * (points[0] + points[-1])


def _at_fractions(points: np.ndarray, n: int) -> np.ndarray:
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    f = np.linspace(0.0, 1.0, n) * cum[-1]
    return np.stack([np.interp(f, cum, points[:, 0]), np.interp(f, cum, points[:, 1])], axis=1)


def _length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum()) if len(points) > 1 else 0.0


def _heading(vec: np.ndarray) -> float:
    return math.atan2(float(vec[1]), float(vec[0]))


class _Reader:
    """The lanelets and regulatory elements of one file, with errors that name the file and element."""

    def __init__(self, path: Path, osm: _Osm, cfg: Lanelet2ImportConfig, summary: ImportSummary) -> None:
        self.path, self.osm, self.cfg, self.summary = path, osm, cfg, summary
        self.regulatory = {r.id: r for r in osm.relations if r.tags.get("type") == "regulatory_element"}
        self.relation_ids = {r.id for r in osm.relations}
        self.limits = {(loc, sub): float(kmh) * KMH for loc, sub, kmh in cfg.speed_limits_kmh}

    def fail(self, what: str) -> MapError:
        return MapError(f"{self.path}: {what}")

    def lanelets(self) -> list[_Lanelet]:
        out = []
        relations = [r for r in self.osm.relations if r.tags.get("type") == "lanelet"]
        for rel in self.osm.relations:
            kind = rel.tags.get("type")
            if kind == "multipolygon":
                self.summary.skipped[f"area (multipolygon, subtype {rel.tags.get('subtype', 'none')})"] += 1
            elif kind not in ("lanelet", "regulatory_element"):
                self.summary.skipped[f"relation of type {kind or 'none'} (not a lanelet)"] += 1
        for rel in relations:
            left = self._bound(rel, "left")
            right = self._bound(rel, "right")
            why = self._closed_to_cars(rel)
            if why is not None:
                self.summary.skipped[why] += 1
                continue
            out.append(self._lanelet(rel, left, right))
        if not out:
            seen = Counter(r.tags.get("subtype", "none") for r in relations)
            raise self.fail(
                f"no lanelet cars may use ({len(relations)} lanelets, subtypes {dict(sorted(seen.items()))}); "
                f"drivable subtypes are {sorted(s for s in CAR_SUBTYPES if s)} or none; nothing to import"
            )
        return out

    def _bound(self, rel: _Relation, role: str) -> str:
        refs = [(kind, ref) for kind, ref, r in rel.members if r == role]
        if len(refs) != 1:
            raise self.fail(
                f"<relation id={rel.id!r}> (lanelet): {len(refs)} members with role {role!r}; a lanelet needs "
                f"exactly one {role} bound (a way)"
            )
        kind, ref = refs[0]
        if kind != "way" or ref not in self.osm.ways:
            raise self.fail(
                f"<relation id={rel.id!r}> (lanelet): {role} bound {kind} {ref!r} names no <way> in the file"
            )
        if len(self.osm.ways[ref][0]) < 2:
            raise self.fail(
                f"<relation id={rel.id!r}> (lanelet): {role} bound <way id={ref!r}> has "
                f"{len(self.osm.ways[ref][0])} nodes; a bound needs >= 2"
            )
        return ref

    def _closed_to_cars(self, rel: _Relation) -> str | None:
        """Why cars may not use this lanelet (Lanelet2's `canPass` for a car), or None if they may."""
        tags = rel.tags
        overrides = {k: v for k, v in tags.items() if k.startswith("participant:")}
        if overrides:
            # Lanelet2 takes the tag that names the participant or a class above it (vehicle:car, vehicle).
            for key in ("participant:vehicle:car", "participant:vehicle"):
                if key in overrides:
                    return None if overrides[key] == "yes" else "lanelet closed to cars (participant tags)"
            return "lanelet closed to cars (participant tags)"
        subtype = tags.get("subtype", "")
        if subtype not in CAR_SUBTYPES:
            return f"{subtype} lanelet (not for cars)"
        one_way = tags.get("one_way", next((tags[k] for k in ONE_WAY_CAR if k in tags), "yes"))
        if one_way == "no":
            return "two-way lanelet (one_way=no: one lane both directions share)"
        return None

    def _lanelet(self, rel: _Relation, left_way: str, right_way: str) -> _Lanelet:
        lnodes, rnodes = self.osm.ways[left_way][0], self.osm.ways[right_way][0]
        lp = np.array([self.osm.xy[n] for n in lnodes])
        rp = np.array([self.osm.xy[n] for n in rnodes])
        # Lanelet2's `geometry::align`: each bound turned so that the other lies on its correct side.
        lrev = not _signed_distance(lp, _middle(rp)) < 0
        if lrev:
            lp, lnodes = lp[::-1], lnodes[::-1]
        rrev = not _signed_distance(rp, _middle(lp)) > 0
        if rrev:
            rp, rnodes = rp[::-1], rnodes[::-1]
        left = _Bound(left_way, lrev, list(lnodes), lp)
        right = _Bound(right_way, rrev, list(rnodes), rp)
        if _length(lp) < 1e-3 or _length(rp) < 1e-3:
            raise self.fail(f"<relation id={rel.id!r}> (lanelet): a bound has zero length; a lane needs a length")
        n = max(len(lp), len(rp), int(math.ceil(max(_length(lp), _length(rp)) / 0.5)) + 1)
        lf, rf = _at_fractions(lp, n), _at_fractions(rp, n)
        width = float(np.linalg.norm(lf - rf, axis=1).mean())
        centre = 0.5 * (lf + rf)
        centre_refs = [(kind, ref) for kind, ref, role in rel.members if role == "centerline"]
        if centre_refs:
            kind, ref = centre_refs[0]
            if kind != "way" or ref not in self.osm.ways or len(self.osm.ways[ref][0]) < 2:
                raise self.fail(
                    f"<relation id={rel.id!r}> (lanelet): centerline {kind} {ref!r} is not a way of 2+ nodes"
                )
            given = np.array([self.osm.xy[k] for k in self.osm.ways[ref][0]])
            start = 0.5 * (lp[0] + rp[0])
            if np.linalg.norm(given[-1] - start) < np.linalg.norm(given[0] - start):
                given = given[::-1]
            centre = given
        if _length(centre) < 1e-3:
            raise self.fail(f"<relation id={rel.id!r}> (lanelet): its centre line has zero length")
        regulatory = []
        for kind, ref, role in rel.members:
            if role != "regulatory_element":
                continue
            if ref not in self.regulatory:
                raise self.fail(
                    f"<relation id={rel.id!r}> (lanelet): regulatory_element {kind} {ref!r} names no relation "
                    "tagged type=regulatory_element in the file"
                )
            regulatory.append(ref)
        speed = self._speed_limit(rel, regulatory)
        return _Lanelet(rel.id, rel.tags, left, right, centre, width, speed, regulatory)

    def _speed_limit(self, rel: _Relation, regulatory: list[str]) -> float:
        """m/s, as GermanVehicle reads it: a speed_limit element, else the `speed_limit` tag, else the default."""
        for rid in regulatory:
            reg = self.regulatory[rid]
            if reg.tags.get("subtype") != "speed_limit":
                continue
            sign = reg.tags.get("sign_type")
            if sign is None:
                refs = [ref for kind, ref, role in reg.members if role == "refers" and kind == "way"]
                signs = [self.osm.ways[r][1].get("subtype") for r in refs if r in self.osm.ways]
                sign = next((s for s in signs if s), None)
            if sign is None:
                raise self.fail(
                    f"<relation id={rid!r}> (speed_limit): no sign_type tag and no referred sign with a subtype; "
                    "a speed limit needs one (e.g. sign_type='50 km/h' or a sign of subtype de274-50)"
                )
            value = _sign_speed(sign)
            if value is None or not value > 0:
                raise self.fail(
                    f"<relation id={rid!r}> (speed_limit): sign {sign!r} is no speed; allowed: de274-NN, de274, "
                    "de310 or a velocity such as '50 km/h'"
                )
            return value
        if "speed_limit" in rel.tags:
            value = parse_velocity(rel.tags["speed_limit"])
            if value is None or not value > 0:
                raise self.fail(
                    f"<relation id={rel.id!r}> (lanelet): speed_limit {rel.tags['speed_limit']!r}; allowed: a "
                    "velocity > 0 such as '50', '50 km/h', '30 mph' or '13.9 m/s' (no unit: km/h)"
                )
            return value
        location = rel.tags.get("location", "urban")
        subtype = rel.tags.get("subtype", "road")
        if (location, subtype) not in self.limits:
            raise self.fail(
                f"<relation id={rel.id!r}> (lanelet): no speed limit for location {location!r} and subtype "
                f"{subtype!r} (no speed_limit tag or element); Lanelet2ImportConfig.speed_limits_kmh has "
                f"{sorted(self.limits)}"
            )
        return self.limits[(location, subtype)]

    def lane_change(self, bound: _Bound) -> tuple[bool, bool]:
        """Whether a car may cross `bound` (to its left, to its right) along the lanelet's direction: Lanelet2's
        `laneChangeType` for a vehicle, `lane_change*` tags first, then the line's type and subtype."""
        tags = self.osm.ways[bound.way][1]
        if "lane_change" in tags:
            both = tags["lane_change"] == "yes"
            along = (both, both)
        elif "lane_change:left" in tags:
            # (Lanelet2: with lane_change:left=no nothing is allowed, whatever lane_change:right says.)
            left_ok = tags["lane_change:left"] == "yes"
            along = (left_ok, left_ok and tags.get("lane_change:right") == "yes")
        elif "lane_change:right" in tags:
            along = (False, tags["lane_change:right"] == "yes")
        elif tags.get("type") in LINE_TYPES:
            along = LINE_CHANGES.get(tags.get("subtype", ""), (False, False))
        else:
            along = (False, False)
        return (along[1], along[0]) if bound.reversed else along


def _sign_speed(sign: str) -> float | None:
    if sign in SIGN_SPEEDS_KMH:
        return SIGN_SPEEDS_KMH[sign] * KMH
    m = re.fullmatch(r"de274-(\d+)", sign)
    if m:
        return float(m.group(1)) * KMH
    return parse_velocity(sign)


# ---- translation --------------------------------------------------------------------------------------------


class _Translation:
    """Lanelets -> lanes, links, junctions, conflicts, right of way, programs, destinations (in that order)."""

    def __init__(self, reader: _Reader, lanelets: list[_Lanelet], b: LaneGraphBuilder) -> None:
        self.r, self.b, self.cfg, self.summary = reader, b, reader.cfg, reader.summary
        self.ll = lanelets
        self.index = {x.id: k for k, x in enumerate(lanelets)}

    def run(self) -> None:
        self.link_lanelets()
        self.find_foes()
        self.join_chains()
        self.add_lanes()
        self.add_junctions()
        self.add_right_of_way()
        self.add_signals()
        self.finish()

    # Lanelet graph.
    def link_lanelets(self) -> None:
        n = len(self.ll)
        self.succ: list[list[int]] = [[] for _ in range(n)]
        self.pred: list[list[int]] = [[] for _ in range(n)]
        tol = self.cfg.join_tolerance_m
        starts = np.array([np.concatenate([x.left.points[0], x.right.points[0]]) for x in self.ll])
        by_nodes = defaultdict(list)
        for k, x in enumerate(self.ll):
            by_nodes[(x.left.nodes[0], x.right.nodes[0])].append(k)
        tree = cKDTree(starts)
        for a, x in enumerate(self.ll):
            found = set(by_nodes.get((x.left.nodes[-1], x.right.nodes[-1]), []))
            end = np.concatenate([x.left.points[-1], x.right.points[-1]])
            for c in tree.query_ball_point(end, r=2.0 * tol):
                y = self.ll[c]
                near = (
                    np.linalg.norm(y.left.points[0] - x.left.points[-1]) <= tol
                    and np.linalg.norm(y.right.points[0] - x.right.points[-1]) <= tol
                )
                if near and c not in found:
                    found.add(c)
                    self.summary.notes[
                        "successor by position (bounds' ends within join_tolerance_m, no shared node)"
                    ] += 1
            for c in sorted(found):
                if c != a:
                    self.succ[a].append(c)
                    self.pred[c].append(a)
        # Neighbours: A's right bound is B's left, run the same way (Lanelet2's `leftOf`). Lanes of opposite
        # directions share their left bounds (or, in left-hand traffic, their right ones) run opposite ways.
        self.left = [-1] * n
        self.right = [-1] * n
        users = defaultdict(list)  # way -> (lanelet, side, reversed)
        for k, x in enumerate(self.ll):
            users[x.left.way].append((k, "left", x.left.reversed))
            users[x.right.way].append((k, "right", x.right.reversed))
        for way_users in users.values():
            for i, (a, side_a, rev_a) in enumerate(way_users):
                for c, side_c, rev_c in way_users[i + 1 :]:
                    if a == c:
                        continue
                    if side_a == side_c and rev_a != rev_c:
                        self.summary.notes["oncoming lanelets side by side (one bound run both ways)"] += 1
                    elif side_a != side_c and rev_a == rev_c:
                        lft, rgt = (c, a) if side_a == "left" else (a, c)
                        if self.right[lft] >= 0 or self.left[rgt] >= 0:
                            self.summary.skipped["neighbour taken by another lanelet (a bound shared three ways)"] += 1
                            continue
                        self.right[lft], self.left[rgt] = rgt, lft

    def find_foes(self) -> None:
        """Pairs of lanelets that cross, merge or touch, not counting lanelets that continue each other, start
        from one lanelet (a fork) or lie side by side."""
        n = len(self.ll)
        thr = self.cfg.conflict_threshold_m
        lo = np.array([x.centre.min(axis=0) for x in self.ll]) - thr
        hi = np.array([x.centre.max(axis=0) for x in self.ll]) + thr
        order = np.argsort(lo[:, 0])
        self.foes: list[set[int]] = [set() for _ in range(n)]
        for i, a in enumerate(order):
            for c in order[i + 1 :]:
                if lo[c, 0] > hi[a, 0]:
                    break
                if lo[c, 1] > hi[a, 1] or lo[a, 1] > hi[c, 1]:
                    continue
                a_, c_ = int(a), int(c)
                if self._related(a_, c_):
                    continue
                merge = bool(set(self.succ[a_]) & set(self.succ[c_]))
                if merge or _cross_or_touch(self.ll[a_].centre, self.ll[c_].centre, thr):
                    self.foes[a_].add(c_)
                    self.foes[c_].add(a_)
        # Lanelets linked to no other that cross others: no approach to stop at and none after (in the test
        # maps, a lanelet drawn against the way its neighbours run, or a cycle path left without a subtype).
        self.dropped = set()
        for k in range(n):
            if self.foes[k] and not self.pred[k] and not self.succ[k]:
                self.dropped.add(k)
                self.summary.skipped["lanelet linked to no other that crosses others (no approach to stop at)"] += 1
        for k in self.dropped:
            for c in self.foes[k]:
                self.foes[c].discard(k)
            self.foes[k] = set()
            for side in (self.left, self.right):
                if side[k] >= 0:
                    (self.right if side is self.left else self.left)[side[k]] = -1
                    side[k] = -1
        self.is_connector = [bool(self.foes[k]) and bool(self.pred[k]) for k in range(n)]
        for k in range(n):
            if self.foes[k] and not self.is_connector[k]:
                self.summary.skipped["crossing outside a junction (no lanelet leads into it: not represented)"] += 1

    def _related(self, a: int, c: int) -> bool:
        """Lanelets that meet by design: one continues the other (directly or through one lanelet between), both
        leave one lanelet (a fork: cars on both come from it in order), or they share a bound. Two that enter
        one lanelet (a merge) are foes."""
        if c in self.succ[a] or c in self.pred[a]:
            return True
        if any(c in self.succ[s] for s in self.succ[a]) or any(c in self.pred[p] for p in self.pred[a]):
            return True
        if set(self.pred[a]) & set(self.pred[c]):
            return True
        x, y = self.ll[a], self.ll[c]
        return bool({x.left.way, x.right.way} & {y.left.way, y.right.way})

    def join_chains(self) -> None:
        """Chains of lanelets that only continue each other, and whose neighbours do the same, as one lane."""
        n = len(self.ll)
        live = [k not in self.dropped for k in range(n)]
        nxt = {}
        for a in range(n):
            if not live[a] or len(self.succ[a]) != 1:
                continue
            c = self.succ[a][0]
            if c != a and live[c] and self.pred[c] == [a] and self.is_connector[a] == self.is_connector[c]:
                nxt[a] = c
        changes = [self._changes(k) for k in range(n)]
        while True:
            bad = []
            for a, c in nxt.items():
                for side in (self.left, self.right):
                    na, nc = side[a], side[c]
                    if (na < 0) != (nc < 0) or (na >= 0 and nxt.get(na) != nc):
                        bad.append(a)
                        break
                else:
                    if changes[a] != changes[c]:
                        bad.append(a)
            if not bad:
                break
            for a in bad:
                nxt.pop(a, None)
        prv = {c: a for a, c in nxt.items()}
        self.chains: list[list[int]] = []
        seen = set()
        for k in list(range(n)):
            if not live[k] or k in seen or k in prv:
                continue
            chain = [k]
            while chain[-1] in nxt and nxt[chain[-1]] not in seen and nxt[chain[-1]] != k:
                chain.append(nxt[chain[-1]])
            seen.update(chain)
            self.chains.append(chain)
        for k in range(n):  # rings of lanelets that only continue each other: cut where the file first has one
            if live[k] and k not in seen:
                chain = [k]
                while nxt[chain[-1]] not in seen and nxt[chain[-1]] != k:
                    chain.append(nxt[chain[-1]])
                seen.update(chain)
                self.chains.append(chain)
        joined = sum(len(c) - 1 for c in self.chains)
        if joined:
            self.summary.notes["lanelets joined where they only continue each other"] += joined

    def _changes(self, k: int) -> tuple[bool, bool]:
        """(may change to the left neighbour, to the right one) from lanelet `k`."""
        to_left = self.left[k] >= 0 and self.r.lane_change(self.ll[k].left)[0]
        to_right = self.right[k] >= 0 and self.r.lane_change(self.ll[k].right)[1]
        return (bool(to_left), bool(to_right))

    # Fuyao lanes.
    def add_lanes(self) -> None:
        self.lane_of: dict[int, int] = {}  # lanelet -> Fuyao lane
        self.chain_of: dict[int, list[int]] = {}  # Fuyao lane -> its lanelets in driving order
        for chain in self.chains:
            parts = [self.ll[chain[0]].centre] + [self.ll[k].centre[1:] for k in chain[1:]]
            centre = np.concatenate(parts)
            lengths = np.array([_length(self.ll[k].centre) for k in chain])
            width = float((np.array([self.ll[k].width for k in chain]) * lengths).sum() / lengths.sum())
            speeds = [self.ll[k].speed_limit for k in chain]
            if len(set(speeds)) > 1:
                self.summary.notes["lanelets of different speed limits joined (the lowest kept)"] += 1
            speed = min(speeds)
            connector = self.is_connector[chain[0]]
            if connector:
                turn_speed = self._turn_speed(chain, centre)
                if turn_speed < speed:
                    speed = turn_speed
                    self.summary.notes[
                        f"junction lane's speed limit from its turn ({COMFORT_LAT_ACCEL:g} m/s^2 sideways)"
                    ] += 1
            lane = self.b.add_lane(
                centre,
                width,
                speed,
                kind="connector" if connector else "road",
                name="+".join(self.ll[k].id for k in chain),
            )
            self.chain_of[lane] = chain
            for k in chain:
                self.lane_of[k] = lane
                self.summary.lane_index[self.ll[k].id] = lane
        for chain in self.chains:
            a = self.lane_of[chain[-1]]
            for k in self.succ[chain[-1]]:  # (a lanelet left out has no links: every successor has a lane)
                try:
                    self.b.connect(a, self.lane_of[k])
                except MapError:  # only where a `centerline` member ends away from the bounds' midpoint
                    self.summary.skipped["successor whose centre line starts > 0.5 m from the end of the last"] += 1
        # Neighbours over their whole length: the heads of two chains that lie side by side (chains are cut so
        # that the lanelets beside one chain form one chain too).
        heads = {chain[0] for chain in self.chains}
        for chain in self.chains:
            head, other = chain[0], self.right[chain[0]]
            if other < 0 or other not in self.lane_of:
                continue
            if other not in heads:
                self.summary.skipped["neighbour over part of a lane (lanelets beside a chain split elsewhere)"] += 1
                continue
            to_right = self._changes(head)[1]
            to_left = self._changes(other)[0]
            self.b.neighbours(self.lane_of[head], self.lane_of[other], to_right, to_left)

    def _turn(self, chain: list[int], centre: np.ndarray) -> float:
        """Radians turned (left positive) from the approach's heading where the chain begins to the exit's where
        it ends; its own ends' headings where it has no approach or exit."""
        first, last = chain[0], chain[-1]
        if self.pred[first]:
            p = self.ll[self.pred[first][0]].centre
            h0 = _heading(p[-1] - p[-2])
        else:
            h0 = _heading(centre[1] - centre[0])
        if self.succ[last]:
            s = self.ll[self.succ[last][0]].centre
            h1 = _heading(s[1] - s[0])
        else:
            h1 = _heading(centre[-1] - centre[-2])
        return (h1 - h0 + math.pi) % (2 * math.pi) - math.pi

    def _turn_speed(self, chain: list[int], centre: np.ndarray) -> float:
        """The speed at which the chain's mean curvature (its turn over its length) takes `COMFORT_LAT_ACCEL`
        sideways: the turn as a whole, since hand-drawn junction bounds kink at every node."""
        kappa = abs(self._turn(chain, centre)) / max(_length(centre), 1e-3)
        return math.sqrt(COMFORT_LAT_ACCEL / kappa) if kappa > 1e-6 else math.inf

    # Junctions and conflicts.
    def add_junctions(self) -> None:
        b = self.b
        pairs = set()
        for a in range(len(self.ll)):
            for c in self.foes[a]:
                la, lc = self.lane_of.get(a), self.lane_of.get(c)
                if la is None or lc is None or la == lc:
                    continue
                if b.lanes[la].kind == "connector" and b.lanes[lc].kind == "connector":
                    pairs.add((min(la, lc), max(la, lc)))
        # One Fuyao junction per set of connectors that touch through their conflicts.
        junctions = _UnionFind([lane for lane, x in enumerate(b.lanes) if x.kind == "connector"])
        for x, y in pairs:
            junctions.join(x, y)
        for members in sorted(junctions.groups().values()):
            ids = "+".join(b.lanes[m].name.split("+")[0] for m in members[:3])
            j = b.add_junction(f"junction of lanelets {ids}{'+...' if len(members) > 3 else ''}")
            for m in members:
                b.lanes[m].junction = j
                b.junctions[j].links.append(m)
        for x, y in sorted(pairs):
            if not add_conflict(b, x, y, self.cfg.conflict_threshold_m):
                self.summary.skipped["conflict of lanes that leave one lane (a fork)"] += 1
        self.summary.conflicts = len(b.conflicts)

    def _movements(self, k: int) -> set[int]:
        """The junction lanes lanelet `k` takes part in: its own lane if that is a connector, and the connectors
        that continue it, through the junction."""
        lane = self.lane_of.get(k)
        if lane is None:
            return set()
        out, todo = set(), [lane]
        if self.b.lanes[lane].kind != "connector":
            todo = [s for s in self.b.lanes[lane].successors if self.b.lanes[s].kind == "connector"]
        while todo:
            x = todo.pop()
            if x in out:
                continue
            out.add(x)
            todo += [s for s in self.b.lanes[x].successors if self.b.lanes[s].kind == "connector"]
        return out

    def _members(self, reg: _Relation, role: str) -> list[int]:
        out = []
        for kind, ref, r in reg.members:
            if r != role:
                continue
            if kind != "relation" or ref not in self.r.relation_ids:
                raise self.r.fail(
                    f"<relation id={reg.id!r}> ({reg.tags.get('subtype')}): {role} member {kind} {ref!r} names no "
                    "<relation> in the file"
                )
            if ref in self.index and self.index[ref] in self.lane_of:
                out.append(self.index[ref])
            else:
                self.summary.skipped[f"{reg.tags.get('subtype')} member naming a lanelet left out"] += 1
        return out

    def add_right_of_way(self) -> None:
        b = self.b
        rule: dict[tuple[int, int], int] = {}  # (lane a, lane b) -> YIELDS / HAS_PRIORITY / FIRST_COME for a
        by_map = Counter()
        for reg in self.r.regulatory.values():
            subtype = reg.tags.get("subtype")
            if subtype == "right_of_way":
                yield_ = set().union(*(self._movements(k) for k in self._members(reg, "yield")))
                priority = set().union(*(self._movements(k) for k in self._members(reg, "right_of_way")))
                if any(role == "ref_line" for _, _, role in reg.members):
                    self.summary.notes["right_of_way ref_line (stop line) taken where the junction lane begins"] += 1
                for x, y, _, _ in b.conflicts:
                    for p, q in ((x, y), (y, x)):
                        if p in yield_ and q in priority and not (q in yield_ and p in priority):
                            if rule.get((p, q)) == HAS_PRIORITY:
                                self.summary.notes["right_of_way elements that contradict (heuristic kept)"] += 1
                                continue
                            rule[(p, q)], rule[(q, p)] = YIELDS, HAS_PRIORITY
                            by_map["right_of_way"] += 1
            elif subtype == "all_way_stop":
                stop = set().union(*(self._movements(k) for k in self._members(reg, "yield")))
                self.summary.notes["all_way_stop: first come, first served (no full stop)"] += 1
                for x, y, _, _ in b.conflicts:
                    if x in stop and y in stop and (x, y) not in rule:
                        rule[(x, y)] = rule[(y, x)] = FIRST_COME
                        by_map["all_way_stop"] += 1
            elif subtype in ("traffic_light", "speed_limit"):
                continue  # read where lanelets reference them
            elif subtype == "traffic_sign":
                self.summary.skipped["traffic_sign element (right of way comes from right_of_way elements)"] += 1
            else:
                self.summary.skipped[f"regulatory element of subtype {subtype or 'none'}"] += 1
        turn = {lane: self._lane_turn(lane) for lane, x in enumerate(b.lanes) if x.kind == "connector"}
        heuristic = 0
        for x, y, _, _ in b.conflicts:
            if (x, y) in rule:
                continue
            rank_x = (0 if turn[x] > TURN_LEFT_RAD else 1, -x)
            rank_y = (0 if turn[y] > TURN_LEFT_RAD else 1, -y)
            rule[(x, y)] = YIELDS if rank_x < rank_y else HAS_PRIORITY
            rule[(y, x)] = -rule[(x, y)]
            heuristic += 1
        for (x, y), value in rule.items():
            if value != FIRST_COME:
                b.set_right_of_way(x, y, a_yields=value == YIELDS)
        if by_map["right_of_way"]:
            self.summary.notes["conflicts with right of way from right_of_way elements"] += by_map["right_of_way"]
        if heuristic:
            self.summary.notes[
                "conflicts the map gives no right of way (straight and right turns first, then file order)"
            ] += heuristic

    def _lane_turn(self, lane: int) -> float:
        return self._turn(self.chain_of[lane], self.b.lanes[lane].centre)

    # Signals.
    def add_signals(self) -> None:
        b = self.b
        group_of: dict[int, str] = {}  # connector -> traffic_light element id
        for k, x in enumerate(self.ll):
            for rid in x.regulatory:
                if self.r.regulatory[rid].tags.get("subtype") != "traffic_light":
                    continue
                for lane in sorted(self._movements(k)):
                    if group_of.setdefault(lane, rid) != rid:
                        self.summary.notes["junction lane reached under two traffic lights (the first kept)"] += 1
        lights = {rid for k, x in enumerate(self.ll) for rid in x.regulatory}
        for rid in lights:
            if self.r.regulatory[rid].tags.get("subtype") == "traffic_light" and rid not in group_of.values():
                self.summary.skipped["traffic_light element governing no junction lane"] += 1
        pairs = defaultdict(list)
        for x, y, _, _ in b.conflicts:
            if b.lanes[x].junction >= 0 and b.lanes[x].junction == b.lanes[y].junction:
                pairs[b.lanes[x].junction].append((x, y))
        cfg = self.cfg
        for j, junction in enumerate(b.junctions):
            groups = list(dict.fromkeys(group_of[lane] for lane in junction.links if lane in group_of))
            if not groups:
                continue

            def state(go: str | None, letter: str, junction=junction) -> str:
                return "".join(
                    "O" if lane not in group_of else letter if group_of[lane] == go else "r" for lane in junction.links
                )

            phases = []
            for g in groups:
                phases += [Phase(cfg.signal_green_s, state(g, "G")), Phase(cfg.signal_yellow_s, state(g, "y"))]
                if cfg.signal_all_red_s > 0:
                    phases.append(Phase(cfg.signal_all_red_s, state(None, "r")))
            phases = no_conflicting_priority_greens(b, j, phases, pairs.get(j, []), self.summary)
            b.set_program(j, phases)
            self.summary.signals += 1
            self.summary.notes[
                "traffic lights: Lanelet2 stores no timing (default fixed-time program, each light green in turn)"
            ] += 1

    # Entries, destinations, counts.
    def finish(self) -> None:
        b = self.b
        for lane in b.lanes:
            if lane.kind != "road" or lane.predecessors:
                continue
            # A lane that begins where the road widens (a turn pocket) is reached by changing into it from a lane
            # that has a way in, not entered from outside.
            from_left = lane.left >= 0 and b.lanes[lane.left].predecessors and b.lanes[lane.left].change_right_ok
            from_right = lane.right >= 0 and b.lanes[lane.right].predecessors and b.lanes[lane.right].change_left_ok
            if from_left or from_right:
                lane.entry = False
                self.summary.notes["lane that begins inside the map (entered by a lane change, not by inflow)"] += 1
        # Destinations: lanes with no successor, side-by-side ones together (one street leaving the map).
        sinks = [i for i, lane in enumerate(b.lanes) if not lane.successors]
        streets = _UnionFind(sinks)
        for i in sinks:
            for j in (b.lanes[i].left, b.lanes[i].right):
                if j in streets.parent:
                    streets.join(i, j)
        street_lanes = {str(k): v for k, v in streets.groups().items()}
        if not street_lanes:  # a ring: `assign_destinations` makes the longest lane the destination
            street_lanes = {str(i): [i] for i in range(len(b.lanes))}
        self.summary.destinations = assign_destinations(b, street_lanes, self.cfg.max_destinations, self.summary)
        self.summary.lanes = sum(lane.kind == "road" for lane in b.lanes)
        self.summary.connectors = sum(lane.kind == "connector" for lane in b.lanes)
        self.summary.junctions = sum(bool(j.links) for j in b.junctions)


class _UnionFind:
    """Groups of items joined pairwise (junctions from conflicts, streets from side-by-side sinks)."""

    def __init__(self, items: list[int]) -> None:
        self.parent = {i: i for i in items}

    def root(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, x: int, y: int) -> None:
        self.parent[self.root(x)] = self.root(y)

    def groups(self) -> dict[int, list[int]]:
        """Root -> members, each list sorted, in the order of their first member."""
        out = defaultdict(list)
        for i in sorted(self.parent):
            out[self.root(i)].append(i)
        return dict(out)


def _cross_or_touch(p: np.ndarray, q: np.ndarray, threshold: float) -> bool:
    """Whether polylines `p [P, 2]` and `q [Q, 2]` cross (a proper intersection of two segments) or come closer
    than `threshold` m (a vertex of one to a segment of the other)."""
    a0, a1 = p[:-1, None], p[1:, None]
    b0, b1 = q[None, :-1], q[None, 1:]

    def orient(u, v, w):
        return (v[..., 0] - u[..., 0]) * (w[..., 1] - u[..., 1]) - (v[..., 1] - u[..., 1]) * (w[..., 0] - u[..., 0])

    # Each segment's ends lie strictly on both sides of the other's line.
    crossing = (orient(a0, a1, b0) * orient(a0, a1, b1) < 0) & (orient(b0, b1, a0) * orient(b0, b1, a1) < 0)
    if bool(crossing.any()):
        return True
    return min(_vertex_segment_min(p, q), _vertex_segment_min(q, p)) < threshold


def _vertex_segment_min(p: np.ndarray, q: np.ndarray) -> float:
    """The smallest distance from a vertex of `p` to a segment of `q`."""
    a, ab = q[:-1][None], np.diff(q, axis=0)[None]
    v = p[:, None]
    t = np.clip(((v - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-18), 0.0, 1.0)
    return float(np.linalg.norm(a + t[..., None] * ab - v, axis=-1).min())


__all__ = [
    "IMPORTER_VERSION",
    "Lanelet2ImportConfig",
    "is_lanelet2",
    "lanelet2_to_builder",
    "parse_velocity",
]
