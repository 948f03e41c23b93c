"""Lanelet2 maps (OSM XML) read directly into Fuyao maps (`fuyao.roads.io.lanelet2`).

Differential checks read the shared Lanelet2 files a second way, in this file (their own node orientation and
linking rules, a spherical projection): lane counts, successor links, neighbours and right of way must match.
Small hand-built maps (a plus junction, a two-lane road cut into pieces) cover what those files lack: traffic
lights, an all-way stop, lane markings, chains of lanelets, local_x / local_y coordinates. The shared files live
beside the repository (../shared/data) and are skipped where absent: a user's clone has no ../shared.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from fuyao.roads.io import mapfile
from fuyao.roads.io.importer import import_map
from fuyao.roads.io.lanelet2 import GERMAN_SPEED_LIMITS_KMH, Lanelet2ImportConfig, is_lanelet2, lanelet2_to_builder
from fuyao.roads.io.sumo_net import SumoImportConfig
from fuyao.roads.lanegraph import MapError
from fuyao.roads.signals import FIRST_COME, HAS_PRIORITY, LETTERS, YIELDS
from tests.map_driving import drive_imported_map

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
URBAN = "lanelet2/urban-1_lanelets_utm.osm"
PRIORITY = "lanelet2/traffic_priority_lanelets_utm.osm"
EARTH_M = 6371008.8  # mean radius: the test's own (spherical) projection


def shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.is_file():
        pytest.skip(f"{path} absent: the shared test data lives beside the repository (../shared/data)")
    return path


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FUYAO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ---- the shared files, read a second way ------------------------------------------------------------------


class XmlLanelets:
    """A Lanelet2 file read with ElementTree only: drivable lanelets, their oriented bounds and links.

    Orientation: the bounds are turned so that their first points face each other and the right bound's ends
    lie to the right of the left bound's first and last segments, across the lanelet's end cross-sections (not
    the importer's nearest-segment rule at the bounds' middles). Projection: equirectangular on a sphere about
    the first node (not the importer's ellipsoid about the mean)."""

    DRIVABLE = {None, "road", "highway", "play_street", "exit"}

    def __init__(self, path: Path) -> None:
        root = ET.parse(path).getroot()
        lat0 = lon0 = None
        self.xy = {}
        for node in root.iter("node"):
            lat, lon = float(node.get("lat")), float(node.get("lon"))
            if lat0 is None:
                lat0, lon0 = lat, lon
            self.xy[node.get("id")] = np.array(
                [
                    EARTH_M * math.radians(lon - lon0) * math.cos(math.radians(lat0)),
                    EARTH_M * math.radians(lat - lat0),
                ]
            )
        self.ways = {w.get("id"): [nd.get("ref") for nd in w.findall("nd")] for w in root.iter("way")}
        self.relations = {}
        for rel in root.iter("relation"):
            tags = {t.get("k"): t.get("v") for t in rel.findall("tag")}
            members = [(m.get("ref"), m.get("role")) for m in rel.findall("member")]
            self.relations[rel.get("id")] = (tags, members)
        self.lanelets = {}  # id -> (left nodes, right nodes), in driving order
        for rid, (tags, members) in self.relations.items():
            if tags.get("type") != "lanelet" or tags.get("subtype") not in self.DRIVABLE:
                continue
            left = list(self.ways[next(ref for ref, role in members if role == "left")])
            right = list(self.ways[next(ref for ref, role in members if role == "right")])
            if self._d(left[0], right[0]) + self._d(left[-1], right[-1]) > self._d(left[0], right[-1]) + self._d(
                left[-1], right[0]
            ):
                right = right[::-1]
            if self._side(left[0], left[1], right[0]) + self._side(left[-2], left[-1], right[-1]) > 0:
                left, right = left[::-1], right[::-1]  # the right bound lies left: the lanelet runs the other way
            self.lanelets[rid] = (left, right)

    def _side(self, a: str, b: str, p: str) -> float:
        """+1 where node `p` lies left of the line from node `a` to node `b`, -1 right."""
        ab, ap = self.xy[b] - self.xy[a], self.xy[p] - self.xy[a]
        return float(np.sign(ab[0] * ap[1] - ab[1] * ap[0]))

    def _d(self, a: str, b: str) -> float:
        return float(np.linalg.norm(self.xy[a] - self.xy[b]))

    def successors(self, rid: str) -> list[str]:
        """Lanelets whose bounds begin where this one's end: the same nodes, or within 0.1 m."""
        left, right = self.lanelets[rid]
        return [
            other
            for other, (ol, orr) in self.lanelets.items()
            if other != rid and self._d(left[-1], ol[0]) <= 0.1 and self._d(right[-1], orr[0]) <= 0.1
        ]

    def linked(self, rid: str) -> bool:
        return bool(self.successors(rid)) or any(rid in self.successors(o) for o in self.lanelets)

    def shared_bounds(self, ids: list[str]) -> tuple[int, int]:
        """(pairs side by side running the same way, pairs running opposite ways) among lanelets `ids`."""
        same = opposite = 0
        ids = sorted(ids)
        for i, a in enumerate(ids):
            for c in ids[i + 1 :]:
                for x in self.lanelets[a]:
                    for y in self.lanelets[c]:
                        if x == y:
                            same += 1
                        elif x == y[::-1]:
                            opposite += 1
        return same, opposite


@pytest.mark.parametrize(
    ("rel", "skipped"),
    [
        (URBAN, {"lanelet linked to no other that crosses others (no approach to stop at)": 1}),
        (
            PRIORITY,
            {
                "bicycle_lane lanelet (not for cars)": 1,
                "bus_lane lanelet (not for cars)": 1,
                "crosswalk lanelet (not for cars)": 1,
                "walkway lanelet (not for cars)": 3,
                "lanelet linked to no other that crosses others (no approach to stop at)": 1,
            },
        ),
    ],
)
def test_shared_maps_import_with_the_lanes_and_links_of_the_xml(tmp_path, rel, skipped):
    src = shared(rel)
    result = import_map(src, tmp_path / "map.npz")
    header, s = result.header, result.header["summary"]
    assert header["source_type"] == "Lanelet2" and header["netconvert_options"] == []
    xml = XmlLanelets(src)
    kept = [rid for rid in xml.lanelets if xml.linked(rid)]
    b, _ = mapfile.load_builder(result.out)
    road = mapfile.load_map(result.out)
    names = [lane.name for lane in b.lanes]
    # No chains in these files: one Fuyao lane per drivable lanelet that links to another.
    assert sorted(names) == sorted(kept)
    assert s["lanes"] + s["connectors"] == len(kept) == int(road.lane_valid.sum())
    assert s["skipped"] == skipped
    # Successor links, lanelet by lanelet.
    for i, name in enumerate(names):
        got = {names[j] for j in road.lane_succ[0, i].tolist() if j >= 0}
        assert got == set(xml.successors(name)), name
    assert int((road.lane_succ[0] >= 0).sum()) == sum(len(xml.successors(r)) for r in kept) > 0
    # Neighbours: none side by side the same way in these files (the walkways' shared curbs are left out);
    # oncoming lanes share their centre lines.
    same, opposite = xml.shared_bounds(kept)
    assert same == 0 and int((road.lane_left[0] >= 0).sum()) == int((road.lane_right[0] >= 0).sum()) == 0
    assert s["notes"]["oncoming lanelets side by side (one bound run both ways)"] == opposite > 0
    # One junction, whose lanes are exactly the lanelets with both a way in and a way out that cross others.
    assert s["junctions"] == 1 and s["conflicts"] > 0 and s["destinations"] == 4
    for i, name in enumerate(names):
        inside = bool(xml.successors(name)) and any(name in xml.successors(o) for o in xml.lanelets)
        assert (b.lanes[i].kind == "connector") == inside, name


def test_right_of_way_comes_from_the_regulatory_element():
    """traffic_priority: the `yield` arms' movements through the junction give way to the `right_of_way` arms'
    wherever they cross or merge."""
    src = shared(PRIORITY)
    xml = XmlLanelets(src)
    (element,) = [m for tags, m in xml.relations.values() if tags.get("subtype") == "right_of_way"]
    yield_arms = [ref for ref, role in element if role == "yield"]
    priority_arms = [ref for ref, role in element if role == "right_of_way"]
    assert len(yield_arms) == len(priority_arms) == 2
    yielding = {s for arm in yield_arms for s in xml.successors(arm)}
    priority = {s for arm in priority_arms for s in xml.successors(arm)}
    assert len(yielding) == 6 and len(priority) == 5  # (the highway's straight lanelet runs against its arm)
    b, summary = lanelet2_to_builder(src)
    road = b.build()
    names = [lane.name for lane in b.lanes]
    checked, gave_way = 0, set()
    for i, name in enumerate(names):
        for k, other in enumerate(road.conflict_lane[0, i].tolist()):
            if other < 0:
                continue
            rule = int(road.conflict_yield[0, i, k])
            if name in yielding and names[other] in priority:
                assert rule == YIELDS, (name, names[other])
                gave_way.add(name)
                checked += 1
            elif name in priority and names[other] in yielding:
                assert rule == HAS_PRIORITY, (name, names[other])
    # Every yielding movement meets a priority one but the right turn into the highway's south-east arm, which
    # only the other side road's left turn joins (the highway's straight-on lanelet there is left out).
    assert gave_way == yielding - {"-1775303"}
    assert summary.notes["conflicts with right of way from right_of_way elements"] == checked
    # Pairs the element does not decide (the highway's own left turn against its straight on) go by the
    # geometric rule, which never leaves first come, first served.
    assert not (road.conflict_yield[0][road.conflict_lane[0] >= 0] == FIRST_COME).any()


def test_projection_keeps_distances():
    """Node-to-node distances of the importer's tangent plane against the haversine distance on a sphere."""
    src = shared(URBAN)
    b, _ = lanelet2_to_builder(src)
    root = ET.parse(src).getroot()
    ll = {
        n.get("id"): (math.radians(float(n.get("lat"))), math.radians(float(n.get("lon")))) for n in root.iter("node")
    }
    xml = XmlLanelets(src)
    checked = 0
    for rid, (left, right) in xml.lanelets.items():
        lane = next((lane for lane in b.lanes if lane.name == rid), None)
        if lane is None:
            continue
        (p1, l1), (p2, l2) = ll[left[0]], ll[left[-1]]
        hav = (
            2
            * EARTH_M
            * math.asin(
                math.sqrt(math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin((l2 - l1) / 2) ** 2)
            )
        )
        (q1, m1), (q2, m2) = ll[right[0]], ll[right[-1]]
        hav_r = (
            2
            * EARTH_M
            * math.asin(
                math.sqrt(math.sin((q2 - q1) / 2) ** 2 + math.cos(q1) * math.cos(q2) * math.sin((m2 - m1) / 2) ** 2)
            )
        )
        if lane.kind == "road":  # straight arms: the centre line's chord is the mean of the bounds' chords
            chord = float(np.linalg.norm(lane.centre[-1] - lane.centre[0]))
            assert chord == pytest.approx(0.5 * (hav + hav_r), rel=0.01), rid
            checked += 1
    assert checked == 8


@pytest.mark.slow
def test_urban_map_drives(tmp_path):
    """urban-1 at its own speeds (50 km/h): 20 simulated seconds in 4 worlds, no crash, the pilot on its way."""
    out = import_map(shared(URBAN), tmp_path / "urban.npz").out
    stats = drive_imported_map(out, 20.0, worlds=4, vehicles=16)
    assert stats["background_crashes"] == stats["collisions"] == 0
    assert stats["progress_m"] > 200.0 and stats["arrived"] > 0
    assert stats["present"] >= 0.75 * stats["present_at_start"] > 0


@pytest.mark.slow
def test_priority_junction_drives_at_urban_speeds(tmp_path):
    """traffic_priority's arms are 17 to 28 m long but tagged highway (Lanelet2: 130 km/h) and nonurban road
    (100 km/h): the reset places cars 12 m apart at those speeds behind a slow controlled car, which they hit.
    At urban speeds, set through the config, the junction's right of way keeps every car apart."""
    urban = tuple((loc, sub, 50.0) for loc, sub, _ in GERMAN_SPEED_LIMITS_KMH)
    out = import_map(shared(PRIORITY), tmp_path / "p.npz", cfg=Lanelet2ImportConfig(speed_limits_kmh=urban)).out
    stats = drive_imported_map(out, 20.0, worlds=4, vehicles=6)
    assert stats["background_crashes"] == stats["collisions"] == 0
    assert stats["progress_m"] > 100.0 and stats["arrived"] > 0


def test_plain_osm_is_not_lanelet2():
    assert not is_lanelet2(shared("osm/garching_intersection.osm"))
    assert is_lanelet2(shared(URBAN)) and is_lanelet2(shared(PRIORITY))


# ---- hand-built maps ----------------------------------------------------------------------------------------


class Map:
    """A Lanelet2 map written point by point, in metres (local_x / local_y tags, as Autoware writes them; lat /
    lon all zero, so a reader that used them would see every node in one place). Points at one place are one
    node, so bounds that meet share their nodes, as Lanelet2's `follows` wants."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[float, float], int] = {}
        self.ways: list[tuple[int, list[int], dict]] = []
        self.relations: list[tuple[int, dict, list[tuple[str, int, str]]]] = []
        self.next_id = 1

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def way(self, points, **tags) -> int:
        ids = []
        for x, y in points:
            key = (round(float(x), 3), round(float(y), 3))
            if key not in self.nodes:
                self.nodes[key] = self._id()
            ids.append(self.nodes[key])
        wid = self._id()
        self.ways.append((wid, ids, tags))
        return wid

    def relation(self, tags: dict, members: list[tuple[str, int, str]]) -> int:
        rid = self._id()
        self.relations.append((rid, tags, members))
        return rid

    def lanelet(self, left: int, right: int, **tags) -> int:
        return self.relation({"type": "lanelet", **tags}, [("way", left, "left"), ("way", right, "right")])

    def xml(self) -> str:
        out = ["<?xml version='1.0' encoding='UTF-8'?>", "<osm version='0.6' generator='fuyao-test'>"]
        for (x, y), nid in self.nodes.items():
            out.append(
                f"  <node id='{nid}' lat='0' lon='0'><tag k='local_x' v='{x}'/><tag k='local_y' v='{y}'/></node>"
            )
        for wid, ids, tags in self.ways:
            out.append(f"  <way id='{wid}'>")
            out += [f"    <nd ref='{n}'/>" for n in ids]
            out += [f"    <tag k='{k}' v='{v}'/>" for k, v in tags.items()]
            out.append("  </way>")
        for rid, tags, members in self.relations:
            out.append(f"  <relation id='{rid}'>")
            out += [f"    <member type='{t}' ref='{r}' role='{role}'/>" for t, r, role in members]
            out += [f"    <tag k='{k}' v='{v}'/>" for k, v in tags.items()]
            out.append("  </relation>")
        out.append("</osm>")
        return "\n".join(out)

    def write(self, path: Path) -> Path:
        path.write_text(self.xml())
        return path


ARMS = {"E": 0.0, "N": 90.0, "W": 180.0, "S": 270.0}


def _bezier(p0, p1, p2, n: int = 9) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _meet(p, d, q, e) -> np.ndarray:
    """Where the line through `p` along `d` meets the one through `q` along `e` (None if parallel)."""
    det = d[0] * (-e[1]) - d[1] * (-e[0])
    if abs(det) < 1e-9:
        return None
    s = ((q - p)[0] * (-e[1]) - (q - p)[1] * (-e[0])) / det
    return p + s * d


def plus_junction(control: str = "none", arm_m: float = 60.0, w: float = 3.5, h: float = 10.0) -> tuple[Map, dict]:
    """A four-arm junction of one lane each way (right-hand traffic), its 12 movements drawn as Bezier bounds.
    `control`: "none", "lights" (a traffic light per approach) or "all_way_stop". Returns the map and, per
    movement lanelet id, (from arm, to arm, turn: straight / left / right)."""
    m = Map()
    u = {a: np.array([math.cos(math.radians(t)), math.sin(math.radians(t))]) for a, t in ARMS.items()}
    n = {a: np.array([-v[1], v[0]]) for a, v in u.items()}
    approach = {}
    for a in ARMS:
        centre = m.way([h * u[a], (h + arm_m) * u[a]], type="line_thin", subtype="solid")
        right_in = m.way([(h + arm_m) * u[a] + w * n[a], h * u[a] + w * n[a]], type="curbstone", subtype="high")
        right_out = m.way([h * u[a] - w * n[a], (h + arm_m) * u[a] - w * n[a]], type="curbstone", subtype="high")
        approach[a] = m.lanelet(centre, right_in, subtype="road")
        m.lanelet(centre, right_out, subtype="road")
    if control == "lights":
        for a in ARMS:
            light = m.way([h * u[a] + 2 * w * n[a], h * u[a] + 2.2 * w * n[a]], type="traffic_light")
            stop = m.way([h * u[a], h * u[a] + w * n[a]], type="stop_line")
            reg = m.relation(
                {"type": "regulatory_element", "subtype": "traffic_light"},
                [("way", light, "refers"), ("way", stop, "ref_line")],
            )
            rid, tags, members = next(r for r in m.relations if r[0] == approach[a])
            members.append(("relation", reg, "regulatory_element"))
    elif control == "all_way_stop":
        reg = m.relation(
            {"type": "regulatory_element", "subtype": "all_way_stop"},
            [("relation", approach[a], "yield") for a in ARMS],
        )
        for a in ARMS:
            next(r for r in m.relations if r[0] == approach[a])[2].append(("relation", reg, "regulatory_element"))
    movements = {}
    for a in ARMS:
        for b in ARMS:
            if a == b:
                continue
            turn = {180.0: "straight", 90.0: "right", 270.0: "left"}[(ARMS[b] - ARMS[a]) % 360.0]
            bounds = []
            for start, end in ((h * u[a], h * u[b]), (h * u[a] + w * n[a], h * u[b] - w * n[b])):
                corner = _meet(start, -u[a], end, u[b])
                pts = np.stack([start, end]) if corner is None else _bezier(start, corner, end)
                bounds.append(m.way(pts, type="virtual"))
            movements[str(m.lanelet(bounds[0], bounds[1]))] = (a, b, turn)
    return m, movements


@pytest.mark.parametrize("control", ["none", "lights", "all_way_stop"])
def test_plus_junction_right_of_way_and_program(tmp_path, control):
    """12 movements, one junction; lights: each approach green in turn (green, yellow, all red); an all-way
    stop: first come, first served; no control: left turns give way to straight on and right turns."""
    osm, movements = plus_junction(control)
    b, summary = lanelet2_to_builder(osm.write(tmp_path / "plus.osm"))
    road = b.build()
    names = [lane.name for lane in b.lanes]
    assert summary.lanes == 8 and summary.connectors == 12 and summary.junctions == 1
    assert summary.notes["coordinates: the nodes' local_x / local_y tags (metres)"] == 1
    assert sorted(n for n in names if n in movements) == sorted(movements)
    conflicts = [
        (names[i], names[o], int(road.conflict_yield[0, i, k]))
        for i in range(len(names))
        for k, o in enumerate(road.conflict_lane[0, i].tolist())
        if o >= 0
    ]
    assert len(conflicts) == 2 * summary.conflicts > 0
    if control == "all_way_stop":
        assert {rule for _, _, rule in conflicts} == {FIRST_COME}
    else:
        for x, y, rule in conflicts:
            if movements[x][2] == "left" and movements[y][2] != "left":
                assert rule == YIELDS, (movements[x], movements[y])
            assert rule != FIRST_COME
    if control != "lights":
        assert summary.signals == 0 and int(road.junction_num_phases.sum()) == 0
        return
    # The program, read from the letters: every light's movements (those from one approach) are green together
    # in one phase, then yellow, then all are red; nothing else is ever green.
    assert summary.signals == 1
    j = int(road.lane_junction[0, names.index(next(iter(movements)))])
    count = int(road.junction_num_phases[0, j])
    assert count == 12
    assert road.junction_phase_s[0, j, :count].tolist() == pytest.approx([20.0, 3.5, 2.0] * 4)
    letters = {names[i]: road.lane_signal[0, i, :count].tolist() for i in range(len(names)) if names[i] in movements}
    green, yellow, red = int(LETTERS["G"]), int(LETTERS["y"]), int(LETTERS["r"])
    seen = []
    for k in range(0, count, 3):
        go = {x for x, s in letters.items() if s[k] == green}
        assert len({movements[x][0] for x in go}) == 1 and len(go) == 3  # one approach, all its movements
        assert {x for x, s in letters.items() if s[k + 1] == yellow} == go
        assert all(s[k + 2] == red for s in letters.values())
        assert all(s[k] == red for x, s in letters.items() if x not in go)
        seen.append(movements[next(iter(go))][0])
    assert sorted(seen) == sorted(ARMS)


@pytest.mark.slow
def test_plus_junction_with_lights_drives(tmp_path):
    """The default program, with short greens so that 20 s see every light: no crash, no red run."""
    osm, _ = plus_junction("lights", arm_m=80.0)
    src = osm.write(tmp_path / "plus.osm")
    out = import_map(src, tmp_path / "plus.npz", cfg=Lanelet2ImportConfig(signal_green_s=8.0)).out
    stats = drive_imported_map(out, 20.0, worlds=4, vehicles=12)
    assert stats["background_crashes"] == stats["collisions"] == stats["red_light"] == 0
    assert stats["phase_states"] > 1 and stats["progress_m"] > 100.0


def two_lane_road(middle: dict, pieces: int = 3, piece_m: float = 50.0, w: float = 3.5, reverse_middle: bool = False):
    """Two lanes eastward (right y in [0, w], left [w, 2w]) and one westward above them, each cut into
    `pieces` lanelets; the line between the eastward lanes carries the tags `middle` (per piece: a dict, or a
    list of dicts), drawn westward if `reverse_middle`."""
    m = Map()
    ids = {"right": [], "left": [], "west": []}
    for k in range(pieces):
        x0, x1 = k * piece_m, (k + 1) * piece_m
        tags = middle[k] if isinstance(middle, list) else middle
        bottom = m.way([(x0, 0.0), (x1, 0.0)], type="road_border")
        mid_pts = [(x1, w), (x0, w)] if reverse_middle else [(x0, w), (x1, w)]
        mid = m.way(mid_pts, **tags)
        top = m.way([(x0, 2 * w), (x1, 2 * w)], type="line_thin", subtype="solid")
        far = m.way([(x0, 3 * w), (x1, 3 * w)], type="road_border")
        ids["right"].append(m.lanelet(mid, bottom, subtype="road"))
        ids["left"].append(m.lanelet(top, mid, subtype="road"))
        ids["west"].append(m.lanelet(top, far, subtype="road"))
    return m, ids


@pytest.mark.parametrize(
    ("middle", "reverse", "right_to_left", "left_to_right"),
    [
        ({"type": "line_thin", "subtype": "dashed"}, False, True, True),
        ({"type": "line_thin", "subtype": "solid"}, False, False, False),
        ({}, False, False, False),  # Lanelet2: a line it cannot type forbids lane changes
        ({"type": "line_thick", "subtype": "dashed_solid"}, False, False, True),  # dashed on the line's right
        ({"type": "line_thick", "subtype": "dashed_solid"}, True, True, False),  # ... drawn the other way
        ({"type": "virtual", "lane_change": "yes"}, False, True, True),
    ],
)
def test_lanelets_in_a_row_become_one_lane_with_the_markings_lane_changes(
    tmp_path, middle, reverse, right_to_left, left_to_right
):
    osm, ids = two_lane_road(middle, reverse_middle=reverse)
    b, summary = lanelet2_to_builder(osm.write(tmp_path / "road.osm"))
    road = b.build()
    names = {lane.name: i for i, lane in enumerate(b.lanes)}
    chain = {side: "+".join(str(x) for x in (v if side != "west" else v[::-1])) for side, v in ids.items()}
    assert set(names) == set(chain.values())  # three lanes of three lanelets each
    assert summary.notes["lanelets joined where they only continue each other"] == 6
    right, left, west = (names[chain[s]] for s in ("right", "left", "west"))
    assert float(road.lane_length[0, right]) == pytest.approx(150.0, abs=1e-3)
    assert float(road.lane_width[0, left]) == pytest.approx(3.5, abs=1e-6)
    assert int(road.lane_left[0, right]) == left and int(road.lane_right[0, left]) == right
    assert int(road.lane_left[0, left]) == -1 and int(road.lane_right[0, west]) == -1  # oncoming: no neighbour
    assert summary.notes["oncoming lanelets side by side (one bound run both ways)"] == 3
    assert bool(road.lane_change_left_ok[0, right]) == right_to_left
    assert bool(road.lane_change_right_ok[0, left]) == left_to_right
    # The two eastward lanes leave the map side by side: one destination; the westward lane another.
    assert summary.destinations == 2 and int(road.lane_exit_group[0, right]) == int(road.lane_exit_group[0, left])
    assert float(road.lane_speed_limit[0, right]) == pytest.approx(50.0 / 3.6)


def test_a_marking_that_changes_keeps_the_pieces_apart(tmp_path):
    """A solid stretch in the middle: the eastward lanes stay three pieces each (neighbours piece by piece,
    changes as each piece's line allows); the westward lane, with no neighbour, is still one lane."""
    dashed = {"type": "line_thin", "subtype": "dashed"}
    osm, ids = two_lane_road([dashed, {"type": "line_thin", "subtype": "solid"}, dashed])
    b, summary = lanelet2_to_builder(osm.write(tmp_path / "road.osm"))
    road = b.build()
    names = {lane.name: i for i, lane in enumerate(b.lanes)}
    assert len(names) == 7 and "+".join(str(x) for x in ids["west"][::-1]) in names
    for k in range(3):
        right, left = names[str(ids["right"][k])], names[str(ids["left"][k])]
        assert int(road.lane_left[0, right]) == left
        assert bool(road.lane_change_left_ok[0, right]) == (k != 1)
        if k < 2:
            assert road.lane_succ[0, right].tolist()[0] == names[str(ids["right"][k + 1])]


def test_speed_limits_from_tags_and_elements(tmp_path):
    """A lanelet's speed_limit tag (km/h unless it names a unit), a speed_limit element's sign, the default by
    location; joined pieces keep the lowest."""
    osm, ids = two_lane_road({"type": "line_thin", "subtype": "solid"}, pieces=1)
    sign = osm.way([(10.0, -2.0), (10.0, -2.5)], type="traffic_sign", subtype="de274-60")
    reg = osm.relation({"type": "regulatory_element", "subtype": "speed_limit"}, [("way", sign, "refers")])
    for rid, tags, members in osm.relations:
        if rid == ids["right"][0]:
            members.append(("relation", reg, "regulatory_element"))
            tags["speed_limit"] = "30"  # the element wins, as in Lanelet2's GermanVehicle
        elif rid == ids["left"][0]:
            tags["speed_limit"] = "20 mph"
        elif rid == ids["west"][0]:
            tags["location"] = "nonurban"
    b, _ = lanelet2_to_builder(osm.write(tmp_path / "road.osm"))
    speed = {lane.name: lane.speed_limit for lane in b.lanes}
    assert speed[str(ids["right"][0])] == pytest.approx(60 / 3.6)
    assert speed[str(ids["left"][0])] == pytest.approx(20 * 0.44704)
    assert speed[str(ids["west"][0])] == pytest.approx(100 / 3.6)


def test_lanelets_cars_may_not_use_are_skipped_and_counted(tmp_path):
    osm, ids = two_lane_road({"type": "line_thin", "subtype": "solid"}, pieces=1)
    for rid, tags, _ in osm.relations:
        if rid == ids["west"][0]:
            tags["one_way"] = "no"
        elif rid == ids["left"][0]:
            tags["participant:vehicle"] = "no"
            tags["participant:bicycle"] = "yes"
    kerb = osm.way([(0.0, -3.0), (50.0, -3.0)])
    osm.lanelet(osm.ways[0][0], kerb, subtype="walkway")
    b, summary = lanelet2_to_builder(osm.write(tmp_path / "road.osm"))
    assert [lane.name for lane in b.lanes] == [str(ids["right"][0])]
    assert summary.skipped == {
        "two-way lanelet (one_way=no: one lane both directions share)": 1,
        "lanelet closed to cars (participant tags)": 1,
        "walkway lanelet (not for cars)": 1,
    }


@pytest.mark.slow
def test_import_is_cached_and_the_cli_reports_it(tmp_path):
    osm, _ = plus_junction("lights")
    src = osm.write(tmp_path / "plus.osm")
    first = import_map(src, tmp_path / "a.npz")
    again = import_map(src, tmp_path / "b.npz")
    assert not first.cached and again.cached
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert first.header["source_type"] == "Lanelet2" and first.header["import_config"]["signal_green_s"] == 20.0
    other = import_map(src, tmp_path / "c.npz", cfg=Lanelet2ImportConfig(signal_green_s=30.0))
    assert not other.cached  # the config is part of the key
    env = {"FUYAO_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "fuyao.cli", "maps", "import", str(src), "--out", str(tmp_path / "cli"), "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["cached"] and report["out"] == str(tmp_path / "cli.npz")
    assert (report["lanes"], report["connectors"], report["signals"]) == (8, 12, 1)


# ---- bad input -----------------------------------------------------------------------------------------------


def _road_xml() -> tuple[str, dict]:
    osm, ids = two_lane_road({"type": "line_thin", "subtype": "dashed"}, pieces=1)
    return osm.xml(), ids


def test_bad_files_are_errors_naming_the_file_and_element(tmp_path):
    text, ids = _road_xml()
    right = ids["right"][0]

    def fails(content: str, pattern: str, name: str = "bad.osm") -> None:
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(MapError, match=pattern):
            import_map(path, tmp_path / "out.npz")
        assert not (tmp_path / "out.npz").exists()

    fails(text[: len(text) // 2], r"bad\.osm: malformed XML at line \d+, column \d+")
    root = ET.fromstring(text)
    # A lanelet without its right bound.
    rel = next(r for r in root.iter("relation") if r.get("id") == str(right))
    rel.remove(next(m for m in rel.findall("member") if m.get("role") == "right"))
    fails(
        ET.tostring(root, encoding="unicode"),
        rf"bad\.osm: <relation id='{right}'> \(lanelet\): 0 members with role 'right'; a lanelet needs exactly one",
    )
    # A way through a node the file does not have.
    root = ET.fromstring(text)
    way = next(iter(root.iter("way")))
    way.find("nd").set("ref", "999999")
    fails(ET.tostring(root, encoding="unicode"), rf"<way id='{way.get('id')}'>: <nd ref='999999'> names no <node>")
    # No lanelet a car may use.
    root = ET.fromstring(text)
    for r in root.iter("relation"):
        next(t for t in r.findall("tag") if t.get("k") == "subtype").set("v", "crosswalk")
    fails(ET.tostring(root, encoding="unicode"), r"bad\.osm: no lanelet cars may use \(3 lanelets, subtypes")
    # A speed limit that is no speed, and a reference to a regulatory element that is not there.
    root = ET.fromstring(text)
    rel = next(r for r in root.iter("relation") if r.get("id") == str(right))
    ET.SubElement(rel, "tag", k="speed_limit", v="fast")
    fails(ET.tostring(root, encoding="unicode"), rf"<relation id='{right}'> \(lanelet\): speed_limit 'fast'; allowed")
    root = ET.fromstring(text)
    rel = next(r for r in root.iter("relation") if r.get("id") == str(right))
    ET.SubElement(rel, "member", type="relation", ref="777", role="regulatory_element")
    fails(ET.tostring(root, encoding="unicode"), r"regulatory_element relation '777' names no relation")
    # A node with neither lat / lon nor local coordinates.
    root = ET.fromstring(text)
    node = next(iter(root.iter("node")))
    for key in ("lat", "lon"):
        del node.attrib[key]
    node.remove(node.find("tag"))
    fails(ET.tostring(root, encoding="unicode"), rf"<node id='{node.get('id')}'>: no lat / lon attributes")
    # The SUMO reader's config for a Lanelet2 file.
    path = tmp_path / "good.osm"
    path.write_text(text)
    with pytest.raises(MapError, match=r"good\.osm: cfg: got a SumoImportConfig for a Lanelet2 file"):
        import_map(path, cfg=SumoImportConfig())
    with pytest.raises(MapError, match=r"Lanelet2ImportConfig\.conflict_threshold_m: got 0"):
        Lanelet2ImportConfig(conflict_threshold_m=0)


def test_local_coordinates_win_over_lat_lon(tmp_path):
    """The hand-built maps' lat / lon are all zero: only local_x / local_y give them any length."""
    text, _ = _road_xml()
    (tmp_path / "road.osm").write_text(text)
    b, _ = lanelet2_to_builder(tmp_path / "road.osm")
    assert b.lanes[0].length == pytest.approx(50.0)
    root = ET.fromstring(text)
    next(iter(root.iter("node"))).remove(next(iter(root.iter("node"))).find("tag"))  # one node without local_x
    (tmp_path / "mixed.osm").write_text(ET.tostring(root, encoding="unicode"))
    with pytest.raises(MapError, match=r"mixed\.osm: <relation id='\d+'> \(lanelet\): a bound has zero length"):
        lanelet2_to_builder(tmp_path / "mixed.osm")
