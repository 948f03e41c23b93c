"""Real maps: SUMO networks (and OpenStreetMap / OpenDRIVE through netconvert) as Fuyao maps.

Differential checks read the SUMO file a second way (ElementTree, independently of the importer's sumolib):
lane lengths, connections, signal programs and right of way must match. Networks come from the eclipse-sumo
wheel (`sumo/tools/game/`) and from `../shared/data` (skipped where absent: a user's clone has no ../shared).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

sumolib = pytest.importorskip("sumolib", reason="needs sumolib (pip install 'fuyao[maps]')")
sumo = pytest.importorskip("sumo", reason="needs eclipse-sumo (pip install 'fuyao[maps]')")

from fuyao.presets import preset  # noqa: E402
from fuyao.roads.io import mapfile  # noqa: E402
from fuyao.roads.io.importer import import_map  # noqa: E402
from fuyao.roads.io.sumo_net import sumo_net_to_builder  # noqa: E402
from fuyao.roads.lanegraph import MapError, RoadMap  # noqa: E402
from fuyao.roads.signals import HAS_PRIORITY, LETTERS, YIELDS  # noqa: E402
from fuyao.sim.config import ConfigError, MapKind, SimConfig  # noqa: E402
from fuyao.sim.signals import advance_clock  # noqa: E402
from fuyao.sim.world import build_bank  # noqa: E402
from tests.map_driving import drive_imported_map  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GAME = Path(sumo.SUMO_HOME) / "tools" / "game"
SHARED = ROOT.parent / "shared" / "data"
NETGENERATE = Path(sumo.SUMO_HOME) / "bin" / "netgenerate"


def game(name: str) -> Path:
    files = sorted((GAME / name).glob("*.net.xml"))
    if not files:
        pytest.skip(f"no SUMO example network {name!r} under {GAME}")
    return files[0]


def shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.is_file():
        pytest.skip(f"{path} absent: the shared test data lives beside the repository (../shared/data)")
    return path


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FUYAO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def cross():
    b, summary = sumo_net_to_builder(game("cross"))
    return b, summary, mapfile.build_imported(b)


def _shape_length(shape: str) -> float:
    pts = np.array([[float(v) for v in p.split(",")[:2]] for p in shape.split()])
    return float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())


def test_lane_lengths_connections_and_programs_equal_the_network(cross):
    b, summary, road = cross
    root = ET.parse(game("cross")).getroot()
    lanes = {
        ln.get("id"): ln for e in root.iter("edge") if e.get("function") in (None, "internal") for ln in e.iter("lane")
    }
    length = road.lane_length[0]
    # Road lanes: SUMO's length attribute.
    for sumo_id, i in summary.lane_index.items():
        assert float(length[i]) == pytest.approx(float(lanes[sumo_id].get("length")), rel=0.01, abs=0.05), sumo_id
    # Connections: every one except turnarounds, as a connector between the right lanes, as long as the shapes of
    # its chain of internal lanes (SUMO's `length` of an internal lane is nominal: the same for every lane of a
    # fan of connections, whatever its shape).
    expected = {}
    via_next = {(c.get("from"), c.get("fromLane")): c.get("via") for c in root.iter("connection")}
    for c in root.iter("connection"):
        if c.get("from").startswith(":") or c.get("dir") == "t":
            continue
        chain, via = [], c.get("via")
        while via:
            chain.append(via)
            edge, lane = via.rsplit("_", 1)
            via = via_next.get((edge, lane))
        key = f"{c.get('from')}_{c.get('fromLane')}->{c.get('to')}_{c.get('toLane')}"
        expected[key] = (sum(_shape_length(lanes[v].get("shape")) for v in chain), c)
    assert set(summary.connector_index) == set(expected)
    names = [lane.name for lane in b.lanes]
    for key, lane in summary.connector_index.items():
        want, _ = expected[key]
        assert float(length[lane]) == pytest.approx(want, rel=0.03, abs=0.3), key
        src, dst = key.split("->")
        pred = int(road.lane_pred[0, lane])
        assert names[pred] == src and names[int(road.lane_succ[0, lane, 0])] == dst
    # Traffic enters at the lanes of the edges that start at the map's boundary (dead ends), only there.
    fringe = {j.get("id") for j in root.iter("junction") if j.get("type") == "dead_end"}
    starts = {e.get("id") for e in root.iter("edge") if e.get("from") in fringe}
    entries = {names[i] for i in torch.nonzero(road.lane_is_source[0]).flatten().tolist()}
    assert entries == {i for i in summary.lane_index if i.rsplit("_", 1)[0] in starts} != set()
    # The light's program: durations, and every connector's letter in every phase from its linkIndex.
    (tl,) = list(root.iter("tlLogic"))
    phases = tl.findall("phase")
    (j,) = [k for k, jn in enumerate(b.junctions) if jn.phases]
    assert int(road.junction_num_phases[0, j]) == len(phases)
    assert road.junction_phase_s[0, j, : len(phases)].tolist() == [float(p.get("duration")) for p in phases]
    signalised = [(key, lane) for key, lane in summary.connector_index.items() if expected[key][1].get("tl")]
    assert len(signalised) == len(b.junctions[j].links) == 12
    for key, lane in signalised:
        conn = expected[key][1]
        for k, ph in enumerate(phases):
            letter = ph.get("state")[int(conn.get("linkIndex"))]
            assert int(road.lane_signal[0, lane, k]) == int(LETTERS[letter]), (key, k)


def test_right_of_way_follows_foes_and_response(cross):
    """Every pair SUMO marks as foes conflicts in Fuyao, yielding as the response bits say."""
    b, summary, road = cross
    root = ET.parse(game("cross")).getroot()
    checked = 0
    for junction in root.iter("junction"):
        internal = (junction.get("intLanes") or "").split()
        requests = {int(r.get("index")): r for r in junction.findall("request")}
        lane_of = {}
        for key, lane in summary.connector_index.items():
            for x in internal:
                # A connector contains the internal lanes of its chain; its name is from->to.
                if any(x == v for v in _chain_of(root, key)):
                    lane_of[internal.index(x)] = lane
        for i, ri in requests.items():
            for k, rk in requests.items():
                if k <= i or i not in lane_of or k not in lane_of:
                    continue
                foes = ri.get("foes")[::-1][k] == "1" or rk.get("foes")[::-1][i] == "1"
                a, c = lane_of[i], lane_of[k]
                row = road.conflict_lane[0, a].tolist()
                assert (c in row) == foes, (junction.get("id"), i, k)
                if foes:
                    i_yields = ri.get("response")[::-1][k] == "1"
                    k_yields = rk.get("response")[::-1][i] == "1"
                    want = YIELDS if i_yields and not k_yields else HAS_PRIORITY if k_yields and not i_yields else 0
                    assert int(road.conflict_yield[0, a, row.index(c)]) == want
                    checked += 1
    assert checked >= 10


def _chain_of(root, key: str) -> list[str]:
    src, dst = key.split("->")
    fe, fl = src.rsplit("_", 1)
    for c in root.iter("connection"):
        if c.get("from") == fe and c.get("fromLane") == fl and f"{c.get('to')}_{c.get('toLane')}" == dst:
            chain, via = [], c.get("via")
            while via:
                chain.append(via)
                e, ln = via.rsplit("_", 1)
                nxt = [x for x in root.iter("connection") if x.get("from") == e and x.get("fromLane") == ln]
                via = nxt[0].get("via") if nxt else None
            return chain
    return []


def test_signals_run_their_program(cross):
    """The junction's clock steps through the imported phases at the imported durations."""
    _, _, road = cross
    (j,) = torch.nonzero(road.junction_num_phases[0]).flatten().tolist()
    cfg = preset("city", worlds=1, vehicles=4)
    from fuyao.sim.state import SignalClock

    num_j = road.junction_phase_s.shape[1]
    clock = SignalClock(
        phase=torch.zeros(1, num_j, dtype=torch.int64), time_s=torch.zeros(1, num_j), scale=torch.ones(1, num_j)
    )
    durations = road.junction_phase_s[0, j, : int(road.junction_num_phases[0, j])].tolist()
    m = torch.zeros(1, dtype=torch.int64)
    seen, changes = [0], []
    for t in range(1, int(sum(durations) / cfg.dt) + 2):
        clock = advance_clock(clock, road, m, cfg.dt)
        if int(clock.phase[0, j]) != seen[-1]:
            seen.append(int(clock.phase[0, j]))
            changes.append(t * cfg.dt)
    assert seen == list(range(len(durations))) + [0]
    assert np.allclose(changes, np.cumsum(durations), atol=cfg.dt + 1e-4)


def test_lanes_closed_to_cars_are_skipped_and_counted():
    path = game("bs3d")
    _, summary = sumo_net_to_builder(path)
    net = sumolib.net.readNet(str(path))
    classes = Counter()
    cars = 0
    for edge in net.getEdges(withInternal=False):
        for lane in edge.getLanes():
            if lane.allows("passenger"):
                cars += 1
            else:
                classes[frozenset(lane.getPermissions())] += 1
    assert len(summary.lane_index) == cars
    assert summary.skipped["pedestrian path"] == classes[frozenset({"pedestrian"})] > 0
    rails = sum(n for k, n in classes.items() if k and k <= {"rail_urban", "rail_electric", "rail", "tram"})
    assert summary.skipped["rail or tram track"] == rails > 0
    assert summary.skipped["lane for delivery only"] == classes[frozenset({"delivery"})] > 0
    assert summary.skipped["turnaround (U-turn) connection"] > 0


def test_map_file_round_trip_equals_the_built_map(tmp_path, cross):
    b, summary, road = cross
    path = mapfile.save_map(tmp_path / "cross.npz", b, {"summary": summary.to_json()})
    loaded = mapfile.load_map(path)
    for f in dataclasses.fields(RoadMap):
        x, y = getattr(road, f.name), getattr(loaded, f.name)
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, y), f.name
    assert loaded.route.cost.shape == road.route.cost.shape and torch.equal(loaded.route.cost, road.route.cost)
    # No pickle anywhere: numpy refuses object arrays with allow_pickle=False, and this loads.
    with np.load(path, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
    assert mapfile.read_header(path)["summary"]["lanes"] == summary.lanes


def test_import_is_cached_by_content(tmp_path, cache_dir):
    src = tmp_path / "cross.net.xml"
    src.write_bytes(game("cross").read_bytes())
    first = import_map(src, tmp_path / "a.npz")
    again = import_map(src, tmp_path / "b.npz")
    assert not first.cached and again.cached
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    src.write_text(src.read_text().replace('speed="13.89"', 'speed="12.00"', 1))
    assert not import_map(src, tmp_path / "c.npz").cached


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('<net version="1.20">\n  <edge id="a" function="internal">\n', r"bad\.net\.xml line 3: not a readable SUMO"),
        ("<net><edge id='a'/></net>", r"bad\.net\.xml: not a readable SUMO network \(KeyError: 'version'\)"),
        ("not xml at all", r"bad\.net\.xml line 1: not a readable SUMO network"),
    ],
)
def test_malformed_network_is_an_error_naming_the_file(tmp_path, content, message):
    bad = tmp_path / "bad.net.xml"
    bad.write_text(content)
    with pytest.raises(MapError, match=message):
        import_map(bad, tmp_path / "out.npz")


def test_missing_unsupported_and_zero_length_lane(tmp_path):
    with pytest.raises(MapError, match=r"nope\.net\.xml: no such file"):
        import_map(tmp_path / "nope.net.xml")
    other = tmp_path / "map.txt"
    other.write_text("x")
    with pytest.raises(MapError, match=r"map\.txt: unsupported map file type; allowed: \.net\.xml"):
        import_map(other)
    text = game("cross").read_text()
    root = ET.fromstring(text)
    lane = next(ln for e in root.iter("edge") if e.get("function") is None for ln in e.iter("lane"))
    first = lane.get("shape").split()[0]
    bad = tmp_path / "zero.net.xml"
    bad.write_text(text.replace(f'shape="{lane.get("shape")}"', f'shape="{first} {first}"', 1))
    with pytest.raises(MapError, match=rf"zero\.net\.xml: lane '{lane.get('id')}' .*has zero length"):
        import_map(bad)


def test_failed_import_keeps_the_earlier_file(tmp_path, monkeypatch):
    out = tmp_path / "map.npz"
    import_map(game("cross"), out)
    before = out.read_bytes()
    bad = tmp_path / "half.net.xml"
    bad.write_text(game("cross").read_text()[:5000])  # cut off half way
    with pytest.raises(MapError):
        import_map(bad, out)
    assert out.read_bytes() == before

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", fail)
    with pytest.raises(OSError, match="disk full"):
        import_map(game("grid6"), out, use_cache=False)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["half.net.xml", "map.npz"]


def test_sim_map_takes_a_kind_or_a_map_file(tmp_path):
    out = import_map(game("cross"), tmp_path / "cross.npz").out
    cfg = SimConfig(map=str(out))
    assert cfg.map_file == out and cfg.has_city and cfg.junction_features
    assert SimConfig(map="city").map is MapKind.CITY
    assert build_bank(cfg).lane_xy.shape[1] == mapfile.load_map(out).lane_xy.shape[1]
    from fuyao.configio import from_dict, to_dict

    saved = json.loads(json.dumps(to_dict(cfg)))  # as beside a checkpoint
    assert saved["map"] == str(out) and from_dict(SimConfig, saved, "config.json") == cfg
    with pytest.raises(
        ConfigError,
        match=r"SimConfig\.map: got '.*missing\.npz'; allowed: 'highway', .*or.*"
        r"no such file",
    ):
        SimConfig(map=str(tmp_path / "missing.npz"))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ConfigError, match=r"SimConfig\.map: got '.*junk\.npz'.*this file is not one: .*not a Fuyao"):
        SimConfig(map=str(junk))
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ConfigError, match=r"no 'meta' entry"):
        SimConfig(map=str(other))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta=np.array([{"format": "fuyao.map"}], dtype=object))
    with pytest.raises(ConfigError, match=r"pickled\.npz: field 'meta': a pickled object; map files hold no pickles"):
        SimConfig(map=str(pickled))


def test_netgenerate_grid_has_a_destination_per_leaving_street(tmp_path):
    net = tmp_path / "grid.net.xml"
    subprocess.run(
        [str(NETGENERATE), "--grid", "--grid.number", "3", "--grid.length", "120", "--grid.attach-length", "80",
         "-L", "2", "--tls.guess", "--no-turnarounds", "--output-file", str(net), "--no-warnings"],
        check=True, capture_output=True,
    )  # fmt: skip
    b, summary = sumo_net_to_builder(net)
    road = b.build()
    assert summary.destinations == 12  # 3 streets leave each side
    road_lanes = road.lane_kind[0] == 0
    reachable = (road.route.cost[0] < 1e8).any(dim=1)
    assert bool(reachable[road_lanes].all())  # every street lane has somewhere to go
    assert summary.signals >= 1 and summary.conflicts > 0


NETCONVERT = Path(sumo.SUMO_HOME) / "bin" / "netconvert"


def test_edges_that_only_continue_each_other_become_one_lane(tmp_path):
    """A -> B -> C, two lanes each, B a bend with nothing else: one Fuyao lane per position, as long as both
    edges and the internal lane between them; C -> D with a side street at C stays apart."""
    (tmp_path / "n.nod.xml").write_text(
        '<nodes><node id="A" x="0" y="0"/><node id="B" x="100" y="0"/><node id="C" x="150" y="60"/>'
        '<node id="D" x="250" y="60"/><node id="E" x="150" y="160"/></nodes>'
    )
    (tmp_path / "n.edg.xml").write_text(
        '<edges><edge id="AB" from="A" to="B" numLanes="2" speed="13.9"/>'
        '<edge id="BC" from="B" to="C" numLanes="2" speed="10"/>'
        '<edge id="CD" from="C" to="D" numLanes="2" speed="13.9"/>'
        '<edge id="EC" from="E" to="C" numLanes="1" speed="13.9"/></edges>'
    )
    net = tmp_path / "n.net.xml"
    subprocess.run(
        [str(NETCONVERT), "-n", str(tmp_path / "n.nod.xml"), "-e", str(tmp_path / "n.edg.xml"), "-o", str(net),
         "--no-turnarounds", "--no-warnings"],
        check=True, capture_output=True,
    )  # fmt: skip
    b, summary = sumo_net_to_builder(net)
    names = {lane.name: i for i, lane in enumerate(b.lanes) if lane.kind == "road"}
    assert {"AB_0+BC_0", "AB_1+BC_1", "CD_0", "CD_1", "EC_0"} == set(names)
    assert summary.notes["edges joined where they only continue each other"] == 1
    root = ET.parse(net).getroot()
    lanes = {ln.get("id"): ln for ln in root.iter("lane")}
    via = next(c.get("via") for c in root.iter("connection") if c.get("from") == "AB" and c.get("fromLane") == "0")
    want = sum(_shape_length(lanes[x].get("shape")) for x in ("AB_0", via, "BC_0"))
    assert b.lanes[names["AB_0+BC_0"]].length == pytest.approx(want, abs=0.05)
    assert b.lanes[names["AB_0+BC_0"]].speed_limit == pytest.approx(10.0)  # the lowest of the joined lanes
    assert b.lanes[names["AB_1+BC_1"]].right == names["AB_0+BC_0"]  # still neighbours
    assert summary.lane_index["AB_0"] == summary.lane_index["BC_0"] == names["AB_0+BC_0"]


def _float_or_none(text: str | None) -> float | None:
    return None if text is None else float(text)


def test_actuated_programs_keep_their_bounds(tmp_path):
    net = tmp_path / "actuated.net.xml"
    subprocess.run(
        [str(NETGENERATE), "--grid", "--grid.number", "2", "--grid.length", "120", "--grid.attach-length", "80",
         "-j", "traffic_light", "--tls.default-type", "actuated", "--output-file", str(net), "--no-warnings"],
        check=True, capture_output=True,
    )  # fmt: skip
    b, summary = sumo_net_to_builder(net)
    programs = {tl.get("id"): tl.findall("phase") for tl in ET.parse(net).getroot().iter("tlLogic")}
    assert programs and {tl.get("type") for tl in ET.parse(net).getroot().iter("tlLogic")} == {"actuated"}
    for j in b.junctions:
        if not j.phases:
            continue
        phases = programs[j.name.removeprefix("traffic light ")]
        assert [(p.duration_s, p.min_s, p.max_s) for p in j.phases] == [
            (float(p.get("duration")), _float_or_none(p.get("minDur")), _float_or_none(p.get("maxDur"))) for p in phases
        ]
        assert any(p.min_s is not None and p.max_s > p.min_s for p in j.phases)
    checked = [j for j in b.junctions if j.phases]
    assert len(checked) == summary.signals >= 4  # (lights at the stubs' far ends have no link but turnarounds)
    assert summary.notes["actuated program run fixed-time (durations as written)"] == summary.signals


def test_osm_through_netconvert(tmp_path):
    result = import_map(shared("osm/garching_intersection.osm"), tmp_path / "garching.npz")
    s = result.header["summary"]
    assert result.header["source_type"] == "OpenStreetMap"
    assert s["signals"] >= 1 and s["lanes"] > 0 and s["destinations"] > 0
    assert s["skipped"].get("pedestrian path", 0) > 0 and s["skipped"].get("bicycle lane", 0) > 0
    assert mapfile.load_map(result.out).lane_valid.sum() == s["lanes"] + s["connectors"]


# OpenDRIVE lane types netconvert imports as car lanes. A "bidirectional" centre turn lane it imports in some
# stretches and closes in others, so a road side with one has a count between the two.
DRIVABLE = {"driving", "onRamp", "offRamp", "entry", "exit", "connectingRamp"}


@pytest.mark.parametrize("name", ["FourWaySignal", "four_way_crossing", "town03_right_width_coefficient"])
def test_opendrive_keeps_its_lane_count_per_road(tmp_path, name):
    src = shared(f"opendrive/{name}.xodr")
    result = import_map(src, tmp_path / f"{name}.npz")
    b, _ = mapfile.load_builder(result.out)
    # Fuyao lanes per netconvert edge: `-road` (or `-road#k`, one per stretch of constant lane count) carries the
    # right lanes (negative OpenDRIVE ids, along the reference line), `road` the left ones.
    # A Fuyao lane that joins SUMO lanes continuing each other is named by all of them ("a_0+b_0").
    per_edge = Counter(m.rsplit("_", 1)[0] for lane in b.lanes if lane.kind == "road" for m in lane.name.split("+"))
    exact = 0
    for road in ET.parse(src).getroot().findall("road"):
        if road.get("junction") not in (None, "-1"):
            continue
        for side, prefix in (("right", "-"), ("left", "")):
            lo = hi = 0
            for section in road.find("lanes").findall("laneSection"):
                group = section.find(side)
                types = [lane.get("type") for lane in (group.findall("lane") if group is not None else [])]
                lo = max(lo, sum(t in DRIVABLE for t in types))
                hi = max(hi, sum(t in DRIVABLE or t == "bidirectional" for t in types))
            rid = prefix + road.get("id")
            got = max((n for e, n in per_edge.items() if e == rid or e.startswith(rid + "#")), default=0)
            assert lo <= got <= hi, (name, rid, side, got, lo, hi)
            exact += lo == hi
    assert exact > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["cross", "grid6", "shared:osm/garching_intersection.osm", "shared:opendrive/four_way_crossing.xodr"]
)
def test_imported_maps_drive_without_background_collisions(tmp_path, name):
    """60 simulated seconds in 4 worlds at the city preset's density: no background car crashes, the rule-based
    pilot completes trips, signals change phase."""
    src = shared(name.removeprefix("shared:")) if name.startswith("shared:") else game(name)
    out = import_map(src, tmp_path / "map.npz").out
    stats = drive_imported_map(out, 60.0, worlds=4, vehicles=24)
    assert stats["background_crashes"] == 0
    assert stats["arrived"] > 0
    assert stats["phase_states"] > 1
    assert stats["present"] >= 0.75 * stats["present_at_start"] > 0  # inflow keeps traffic up


def test_an_imported_map_is_drawn(tmp_path, cross):
    from fuyao.viz.maps import draw_map_bank

    _, _, road = cross
    png = draw_map_bank(road, tmp_path / "cross.png")
    assert png.stat().st_size > 1000


@pytest.mark.slow
def test_cli_imports_and_draws_a_map(tmp_path):
    # COLUMNS: the error box is as wide as the message, which names a path under pytest's temporary folder.
    env = {
        "FUYAO_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "400"
    }  # fmt: skip
    base = [sys.executable, "-m", "fuyao.cli"]
    proc = subprocess.run(
        [*base, "maps", "import", str(game("cross")), "--out", str(tmp_path / "cross"), "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["out"] == str(tmp_path / "cross.npz") and report["lanes"] == 22
    png = tmp_path / "cross.png"
    proc = subprocess.run(
        [*base, "maps", "--sim.map", report["out"], "--out", str(png)], capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert png.stat().st_size > 1000
    proc = subprocess.run(
        [*base, "maps", "--sim.map", str(tmp_path / "none.npz")], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2 and "SimConfig.map" in proc.stderr and "no such file" in proc.stderr
