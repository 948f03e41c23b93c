"""SUMO networks (`.net.xml`, read with `sumolib`) as a Fuyao lane graph, through `LaneGraphBuilder`.

What becomes what (docs/maps.md has the full table):

- every lane of a normal edge that allows passenger cars is a `road` lane (centre line = SUMO's shape, x/y in
  metres, speed limit and width from the lane); lanes of one edge are neighbours (SUMO index 0 is the rightmost
  lane, Fuyao orders left to right), with a solid line over the last `solid_m` before a junction;
- every connection between two kept lanes is one `connector` lane: the chain of internal lanes of the
  connection (`via`, then the internal lane's own `via` for a left turn that waits inside the junction) merged
  into one centre line from the incoming lane's end to the outgoing lane's start; its speed limit is the lowest
  of the chain; turnarounds (`dir="t"`) are left out;
- a Fuyao junction per traffic light (`tl`, which may span several SUMO junctions joined by netconvert) or, for
  unsignalised connections, per SUMO junction; its links are its connector lanes in SUMO's order (the light's
  `linkIndex` for a signalised junction, the junction's request index otherwise);
- right of way: each pair of links SUMO's `<request foes>` marks as foes is a conflict at the point where the
  connector centre lines cross, merge or come closest (SUMO gives no positions); `response` bits give who
  yields (one way: that link yields; both ways or neither: first come, first served). A junction with no
  request table (`unregulated`) gets conflicts from geometry (connectors within a lane width of each other),
  the later link in SUMO's order yielding;
- `tlLogic` (static or actuated, the program SUMO runs by default): one Fuyao phase per SUMO phase with its
  duration (and `minDur` / `maxDur`); the state string is re-indexed from the light's link indices to the
  junction's links. SUMO's `u` (red-yellow) becomes `r`, `o` (off, blinking) becomes `O`. Where two conflicting
  links are both `G` (Fuyao refuses that), the one that yields by the response table becomes `g` (counted);
- destinations: an edge none of whose lanes has a successor (it leaves the map) is one destination for all
  its lanes; more than `max_destinations` are grouped by the direction in which they leave the map's centre.

Skipped and counted in `ImportSummary.skipped`, never mangled: lanes closed to passenger cars (bicycle lanes,
rails and tram tracks, footpaths, crossings and walking areas), connections to or from them, turnarounds.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fuyao.roads.lanegraph import LaneGraphBuilder, MapError
from fuyao.roads.signals import LETTERS, YIELDS, Phase

IMPORTER_VERSION = 3  # part of the cache key: bump when the translation changes
RAIL_CLASSES = {"rail", "rail_urban", "rail_electric", "rail_fast", "tram", "cable_car", "subway"}
# SUMO signal letters Fuyao has no state for, and the state that means the same to a car.
SUMO_LETTER = {"u": "r", "o": "O"}


@dataclass(frozen=True)
class SumoImportConfig:
    """How a SUMO network is translated. Distances in metres."""

    spacing_m: float = 2.0  # centre-line resampling
    solid_m: float = 20.0  # no lane change in the last metres before a junction (at most 40% of the lane)
    solid_after_m: float = 10.0  # nor in the first metres after one (at most 20% of the lane)
    conflict_threshold_m: float = 1.0  # centre lines closer than this cross or merge
    max_destinations: int = 128
    vclass: str = "passenger"

    def __post_init__(self) -> None:
        for name in ("spacing_m", "conflict_threshold_m"):
            if not getattr(self, name) > 0:
                raise MapError(f"SumoImportConfig.{name}: got {getattr(self, name)!r}; allowed: > 0 m")
        for name in ("solid_m", "solid_after_m"):
            if not getattr(self, name) >= 0:
                raise MapError(f"SumoImportConfig.{name}: got {getattr(self, name)!r}; allowed: >= 0 m")
        if self.max_destinations < 1:
            raise MapError(f"SumoImportConfig.max_destinations: got {self.max_destinations!r}; allowed: >= 1")


@dataclass
class ImportSummary:
    """What an import built and what it left out (reason -> count)."""

    source: str
    lanes: int = 0  # Fuyao road lanes (SUMO lanes that only continue each other are one)
    connectors: int = 0
    junctions: int = 0
    signals: int = 0  # signalised Fuyao junctions
    conflicts: int = 0
    destinations: int = 0
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)  # translated, not skipped (a letter, a downgraded 'G')
    lane_index: dict[str, int] = field(default_factory=dict)  # SUMO lane id -> Fuyao lane (every kept road lane)
    connector_index: dict[str, int] = field(default_factory=dict)  # "from_lane->to_lane" -> Fuyao connector

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "lanes": self.lanes,
            "connectors": self.connectors,
            "junctions": self.junctions,
            "signals": self.signals,
            "conflicts": self.conflicts,
            "destinations": self.destinations,
            "skipped": dict(sorted(self.skipped.items())),
            "notes": dict(sorted(self.notes.items())),
        }


def _skip_reason(lane, vclass: str) -> str | None:
    """Why a SUMO lane is left out, or None if cars may use it."""
    function = lane.getEdge().getFunction()
    if function in ("crossing", "walkingarea"):
        return f"pedestrian {function}"
    if lane.allows(vclass):
        return None
    allowed = set(lane.getPermissions())
    if not allowed:
        return "lane closed to all vehicles"
    if allowed <= RAIL_CLASSES:
        return "rail or tram track"
    if allowed <= {"bicycle", "pedestrian"} and "bicycle" in allowed:
        return "bicycle lane"
    if allowed <= {"pedestrian"}:
        return "pedestrian path"
    if len(allowed) <= 3:
        return f"lane for {', '.join(sorted(allowed))} only"
    return f"lane closed to {vclass} cars"


def _xy(shape) -> np.ndarray:
    return np.asarray([(p[0], p[1]) for p in shape], dtype=np.float64)


def _polyline_length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum()) if len(points) > 1 else 0.0


def read_net(path: str | Path):
    """`sumolib.net.readNet` with internal lanes, right of way and the default programs; errors name the file."""
    try:
        import sumolib
    except ImportError:
        raise MapError(
            f"{path}: importing SUMO networks needs sumolib; install it with `pip install 'fuyao[maps]'`"
        ) from None
    path = Path(path)
    if not path.is_file():
        raise MapError(f"{path}: no such file")
    try:
        return sumolib.net.readNet(str(path), withInternal=True, withLatestPrograms=True, withFoes=True)
    except Exception as err:  # noqa: BLE001 (sax / expat / sumolib errors: all mean the file is not a network)
        where = ""
        for attr in ("getLineNumber", "lineno"):
            value = getattr(err, attr, None)
            if value is not None:
                where = f" line {value() if callable(value) else value}"
                break
        raise MapError(f"{path}{where}: not a readable SUMO network ({type(err).__name__}: {err})") from None


def sumo_net_to_builder(
    path: str | Path, cfg: SumoImportConfig | None = None, name: str = ""
) -> tuple[LaneGraphBuilder, ImportSummary]:
    """Translate the SUMO network at `path`. Returns the filled builder (call `.build()` for a `RoadMap`) and
    the summary of what was built and skipped."""
    cfg = cfg or SumoImportConfig()
    path = Path(path)
    net = read_net(path)
    summary = ImportSummary(source=str(path))
    b = LaneGraphBuilder(spacing=cfg.spacing_m, name=name or path.name.split(".")[0])

    # Road lanes. SUMO edges that only continue one another (a node where one edge's lanes each go on into
    # the same lane of one other edge, nothing else meeting there and no signal: OpenDRIVE lane sections,
    # geometry nodes) become one Fuyao lane per lane position, so that car following sees along a street
    # rather than across a chain of short pieces.
    kept_lanes: dict[str, list] = {}  # edge id -> its lanes cars may use, right to left (SUMO index order)
    for edge in net.getEdges(withInternal=False):
        kept_lanes[edge.getID()] = []
        for lane in edge.getLanes():
            why = _skip_reason(lane, cfg.vclass)
            if why is not None:
                summary.skipped[why] += 1
                continue
            if len(lane.getShape()) < 2 or _polyline_length(_xy(lane.getShape())) < 1e-3:
                raise MapError(
                    f"{path}: lane {lane.getID()!r} (edge {edge.getID()!r}): shape {lane.getShape()!r} has zero "
                    "length; a lane needs a shape of two or more distinct points"
                )
            kept_lanes[edge.getID()].append(lane)
    for edge in net.getEdges(withInternal=True):
        if edge.getFunction() in ("crossing", "walkingarea"):
            summary.skipped[f"pedestrian {edge.getFunction()}"] += len(edge.getLanes())
    if not any(kept_lanes.values()):
        raise MapError(f"{path}: no lane allows {cfg.vclass} cars; nothing to import")
    through = _pass_through_edges(net, kept_lanes, cfg.vclass)  # edge id -> the edge it continues into
    continued = set(through.values())
    chains = []
    for edge_id in kept_lanes:
        if edge_id in continued or not kept_lanes[edge_id]:
            continue
        chain = [edge_id]
        while chain[-1] in through and through[chain[-1]] not in chain:
            chain.append(through[chain[-1]])
        chains.append(chain)
    placed = {e for c in chains for e in c}
    chains += [[e] for e in kept_lanes if e not in placed and kept_lanes[e]]  # a ring of pass-through edges
    merged_nodes = {net.getEdge(e).getToNode().getID() for c in chains for e in c[:-1]}
    kept = {}  # SUMO lane id -> Fuyao lane
    edge_lanes: dict[str, list[int]] = {}
    for chain in chains:
        ids = []
        for pos, lane in enumerate(kept_lanes[chain[0]]):
            parts = [_xy(lane.getShape())]
            members, speeds = [lane], [lane.getSpeed()]
            for edge_id in chain[1:]:
                nxt = kept_lanes[edge_id][pos]
                conn = next(c for c in members[-1].getOutgoing() if c.getToLane() is nxt)
                parts += [_xy(c.getShape()) for c in _internal_chain(net, conn, cfg.vclass)[0]]
                parts.append(_xy(nxt.getShape()))
                members.append(nxt)
                speeds.append(nxt.getSpeed())
            if len(set(speeds)) > 1:
                summary.notes["lanes of different speed limits joined (the lowest kept)"] += 1
            name = "+".join(m.getID() for m in members)  # the SUMO lanes it joins, in driving order
            fid = b.add_lane(np.concatenate(parts), lane.getWidth(), min(speeds), name=name)
            for m in members:
                kept[m.getID()] = fid
            ids.append((lane.getIndex(), fid))
        if len(chain) > 1:
            summary.notes["edges joined where they only continue each other"] += len(chain) - 1
        edge_lanes[chain[-1]] = [i for _, i in ids]
        for (ia, a), (ib, bb) in zip(ids, ids[1:]):
            if ib == ia + 1:  # SUMO index ia + 1 is left of ia
                b.neighbours(left=bb, right=a)
    summary.lane_index = dict(kept)

    # Connections, per Fuyao junction key: (connection, from lane, to lane, chain of internal lanes).
    links: dict[tuple[str, str], list] = defaultdict(list)
    for lane_id, a in kept.items():
        lane = net.getLane(lane_id)
        if lane.getEdge().getToNode().getID() in merged_nodes:
            continue  # inside a joined lane
        for conn in lane.getOutgoing():
            to_id = conn.getToLane().getID()
            if conn.getDirection() == "t":
                summary.skipped["turnaround (U-turn) connection"] += 1
                continue
            if to_id not in kept:
                summary.skipped["connection to a lane left out"] += 1
                continue
            if not conn.allows(cfg.vclass):
                summary.skipped[f"connection closed to {cfg.vclass} cars"] += 1
                continue
            chain, bad = _internal_chain(net, conn, cfg.vclass)
            if bad:
                summary.skipped[f"connection through an internal lane closed to {cfg.vclass} cars"] += 1
                continue
            node = conn.getFrom().getToNode()
            tl = conn.getTLSID()
            key = ("tl", tl) if tl else ("node", node.getID())
            links[key].append((conn, a, kept[to_id], chain))

    request_index = {}  # internal lane id -> (node id, request index)
    for node in net.getNodes():
        for i, lane_id in enumerate(node.getInternal() or []):
            request_index[lane_id] = (node.getID(), i)

    connector_of_internal: dict[str, int] = {}
    tl_index_of: dict[int, int] = {}  # connector lane -> its light's link index (the letter in each state)
    junction_of_key = {}
    for key in sorted(links, key=lambda k: (k[0], k[1])):
        conns = links[key]

        def order(item, key=key):
            conn, _, _, chain = item
            if key[0] == "tl":
                return (conn.getTLLinkIndex(), 0)
            found = [request_index[c.getID()][1] for c in chain if c.getID() in request_index]
            return (found[0] if found else 10**6, 0)

        conns.sort(key=order)
        j = b.add_junction(f"{'traffic light' if key[0] == 'tl' else 'junction'} {key[1]}")
        junction_of_key[key] = j
        for conn, a, to, chain in conns:
            start, end = b.lanes[a].centre[-1], b.lanes[to].centre[0]
            if chain:
                inner = np.concatenate([_xy(c.getShape()) for c in chain])
                speed = min(c.getSpeed() for c in chain)
                width = chain[0].getWidth()
            else:
                summary.notes["connection without internal lane (connector drawn as a curve)"] += 1
                inner = _curve(b, a, to)
                speed, width = conn.getToLane().getSpeed(), conn.getToLane().getWidth()
            pts = np.concatenate([start[None], inner, end[None]])
            if _polyline_length(pts) < 0.05:
                summary.notes["connection of zero length (lanes joined without a connector)"] += 1
                b.connect(a, to)
                continue
            lane = b.add_lane(
                pts,
                width,
                speed,
                kind="connector",
                junction=j,
                name=f"{conn.getFromLane().getID()}->{conn.getToLane().getID()}",
            )
            b.connect(a, lane)
            b.connect(lane, to)
            summary.connector_index[b.lanes[lane].name] = lane
            for c in chain:
                connector_of_internal[c.getID()] = lane
            tl_index_of[lane] = conn.getTLLinkIndex()

    # Right of way and conflict points, per SUMO junction.
    connector_order: dict[str, list[int]] = {}
    for node in net.getNodes():
        foes, response = node._foes, node._prohibits  # noqa: SLF001 (sumolib keeps the request table here)
        internal = node.getInternal() or []
        mine = sorted({connector_of_internal[x] for x in internal if x in connector_of_internal})
        connector_order[node.getID()] = [connector_of_internal[x] for x in internal if x in connector_of_internal]
        if not mine:
            continue
        if not foes:
            if len(mine) > 1:
                summary.notes[f"junction type {node.getType()}: conflicts from geometry, the later link yields"] += 1
                # No request table (SUMO lets such links drive blind): every pair of connectors that come
                # within a lane width of each other conflicts, as in `fuyao.roads.city`.
                # Who yields: the later link (SUMO's order, clockwise from the first incoming lane), a total order
                # so that no ring of cars waits for each other; first come, first served let two cars in at once.
                width = max(b.lanes[x].width for x in mine)
                before = len(b.conflicts)
                b.add_conflicts_by_geometry(mine, threshold=width, near_lanes_m=width + 0.5)
                rank = {x: k for k, x in enumerate(connector_order[node.getID()])}
                for x, y, _, _ in b.conflicts[before:]:
                    b.set_right_of_way(x, y, a_yields=rank.get(x, 10**6) > rank.get(y, 10**6))
            continue
        for i in range(len(internal)):
            for jj in range(i + 1, len(internal)):
                if not (_bit(foes.get(i, ""), jj) or _bit(foes.get(jj, ""), i)):
                    continue
                la, lb = connector_of_internal.get(internal[i]), connector_of_internal.get(internal[jj])
                if la is None or lb is None or la == lb:
                    continue
                if not add_conflict(b, la, lb, cfg.conflict_threshold_m):
                    continue
                a_yields, b_yields = _bit(response.get(i, ""), jj), _bit(response.get(jj, ""), i)
                if a_yields != b_yields:
                    b.set_right_of_way(la, lb, a_yields=a_yields)
    summary.conflicts = len(b.conflicts)

    # Signal programs.
    pairs_of_junction: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for x, y, _, _ in b.conflicts:
        if b.lanes[x].junction >= 0 and b.lanes[x].junction == b.lanes[y].junction:
            pairs_of_junction[b.lanes[x].junction].append((x, y))
    for key, j in junction_of_key.items():
        if key[0] != "tl":
            continue
        programs = net.getTLS(key[1]).getPrograms()
        if not programs:
            summary.notes["traffic light without a program (left unsignalised)"] += 1
            continue
        program = list(programs.values())[-1]
        phases = []
        for k, ph in enumerate(program.getPhases()):
            if not float(ph.duration) > 0:
                raise MapError(f"{path}: tlLogic {key[1]!r} phase {k}: duration {ph.duration!r}; allowed: > 0 s")
            letters = []
            for lane in b.junctions[j].links:
                idx = tl_index_of[lane]
                if not 0 <= idx < len(ph.state):
                    raise MapError(
                        f"{path}: tlLogic {key[1]!r} phase {k} state {ph.state!r}: no letter for link index {idx}"
                    )
                c = ph.state[idx]
                if c in SUMO_LETTER:
                    summary.notes[f"signal letter {c!r} as {SUMO_LETTER[c]!r}"] += 1
                    c = SUMO_LETTER[c]
                if c not in LETTERS:
                    raise MapError(
                        f"{path}: tlLogic {key[1]!r} phase {k} state {ph.state!r}: letter {c!r}; allowed: "
                        f"{''.join(LETTERS)}{''.join(SUMO_LETTER)}"
                    )
                letters.append(c)
            lo = float(ph.minDur) if ph.minDur is not None and float(ph.minDur) >= 0 else None
            hi = float(ph.maxDur) if ph.maxDur is not None and float(ph.maxDur) >= 0 else None
            phases.append(Phase(float(ph.duration), "".join(letters), lo, hi))
        phases = no_conflicting_priority_greens(b, j, phases, pairs_of_junction.get(j, []), summary)
        b.set_program(j, phases)
        summary.signals += 1
        if program.getType() != "static":
            summary.notes[f"{program.getType()} program run fixed-time (durations as written)"] += 1

    # Solid lines before and after junctions.
    for lane in b.lanes:
        if lane.kind != "road":
            continue
        length = lane.length
        if lane.successors:
            lane.change_until = length - min(cfg.solid_m, 0.4 * length)
        # (Also where traffic enters the map: cars placed at a lane's start must not meet one changing into it.)
        lane.change_from = min(cfg.solid_after_m, 0.2 * length)

    # Where traffic enters: lanes without a way in, unless another lane of the same edge has one. Such a lane
    # begins where a road widens (a turn pocket, an OpenDRIVE lane section) and is reached by changing lanes.
    for lane in b.lanes:
        if lane.kind != "road" or lane.predecessors:
            continue
        head = net.getLane(lane.name.split("+")[0])
        beside = [kept[x.getID()] for x in kept_lanes[head.getEdge().getID()] if x is not head]
        if any(b.lanes[x].predecessors for x in beside):
            lane.entry = False
            summary.notes["lane that begins inside the map (entered by a lane change, not by inflow)"] += 1

    summary.destinations = assign_destinations(b, edge_lanes, cfg.max_destinations, summary)
    summary.lanes = sum(lane.kind == "road" for lane in b.lanes)
    summary.connectors = sum(lane.kind == "connector" for lane in b.lanes)
    summary.junctions = sum(bool(j.links) for j in b.junctions)
    return b, summary


def _pass_through_edges(net, kept_lanes: dict[str, list], vclass: str) -> dict[str, str]:
    """Edges that only continue into one other edge: at the node between them no other edge arrives or leaves,
    no light stands, and the i-th lane cars may use of one goes on into the i-th of the other, and nowhere else."""
    out = {}
    for node in net.getNodes():
        if node.getType() == "traffic_light" or node.getType().startswith("traffic_light"):
            continue
        inc = [e for e in node.getIncoming() if e.getFunction() == "" and kept_lanes.get(e.getID())]
        outg = [e for e in node.getOutgoing() if e.getFunction() == "" and kept_lanes.get(e.getID())]
        if len(inc) != 1 or len(outg) != 1 or inc[0] is outg[0]:
            continue
        a, c = kept_lanes[inc[0].getID()], kept_lanes[outg[0].getID()]
        if len(a) != len(c):
            continue
        ok = True
        for x, y in zip(a, c):
            conns = [k for k in x.getOutgoing() if k.getDirection() != "t"]
            if len(conns) != 1 or conns[0].getToLane() is not y or conns[0].getTLSID() or not conns[0].allows(vclass):
                ok = False
                break
            if _internal_chain(net, conns[0], vclass)[1]:
                ok = False
                break
        if ok:
            out[inc[0].getID()] = outg[0].getID()
    return out


def _bit(row: str, k: int) -> bool:
    """Bit `k` of a SUMO request row (`foes`, `response`): written right to left, link 0 last."""
    return k < len(row) and row[len(row) - 1 - k] == "1"


def _internal_chain(net, conn, vclass: str) -> tuple[list, bool]:
    """The internal lanes a connection runs through, in order, and whether any of them is closed to cars."""
    chain = []
    via = conn.getViaLaneID()
    target = conn.getToLane()
    while via:
        lane = net.getLane(via)
        chain.append(lane)
        if not lane.allows(vclass):
            return chain, True
        nxt = [c for c in lane.getOutgoing() if c.getToLane() is target]
        via = nxt[0].getViaLaneID() if nxt else ""
        if len(chain) > 16:
            raise MapError(f"internal lane chain from {conn.getFromLane().getID()!r} does not end")
    return chain, False


def _curve(b: LaneGraphBuilder, a: int, to: int, n: int = 12) -> np.ndarray:
    """A cubic Bezier from the end of lane `a` to the start of lane `to`, tangent to both (no internal lane)."""
    p0, p3 = b.lanes[a].centre[-1], b.lanes[to].centre[0]
    h0 = p0 - b.lanes[a].centre[-2]
    h3 = b.lanes[to].centre[1] - p3
    h0, h3 = h0 / max(np.linalg.norm(h0), 1e-9), h3 / max(np.linalg.norm(h3), 1e-9)
    chord = float(np.linalg.norm(p3 - p0))
    c1, c2 = p0 + 0.39 * chord * h0, p3 - 0.39 * chord * h3
    t = np.linspace(0.0, 1.0, n)[1:-1, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t**2 * c2 + t**3 * p3


def add_conflict(b: LaneGraphBuilder, a: int, c: int, threshold: float) -> bool:
    """The conflict of foes `a` and `c` where their centre lines cross or merge (closer than `threshold`), or
    else where they come closest. False where the builder refuses the pair (a fork from one lane)."""
    before = len(b.conflicts)
    b.add_conflicts_by_geometry([a, c], threshold=threshold)
    if len(b.conflicts) == before:
        pa, pc = b.lanes[a].centre, b.lanes[c].centre
        closest = float(np.linalg.norm(pa[:, None] - pc[None], axis=-1).min())
        b.add_conflicts_by_geometry([a, c], threshold=closest + 1e-6)
    return len(b.conflicts) > before


def no_conflicting_priority_greens(
    b: LaneGraphBuilder, j: int, phases: list[Phase], conflict_pairs: list[tuple[int, int]], summary
) -> list[Phase]:
    """SUMO can give two foes `G` at once (one still yields by the response table); Fuyao's `G` means nobody
    to yield to, so the yielding one becomes `g`."""
    links = b.junctions[j].links
    pos = {lane: k for k, lane in enumerate(links)}
    pairs = [(x, y) for x, y in conflict_pairs if x in pos and y in pos]
    out = []
    for ph in phases:
        state = list(ph.state)
        for x, y in pairs:
            if state[pos[x]] == "G" and state[pos[y]] == "G":
                loser = x if b.right_of_way.get((x, y)) == YIELDS else y
                state[pos[loser]] = "g"
                summary.notes["priority green of a yielding foe as green-yield ('G' -> 'g')"] += 1
        out.append(Phase(ph.duration_s, "".join(state), ph.min_s, ph.max_s))
    return out


def assign_destinations(
    b: LaneGraphBuilder, edge_lanes: dict[str, list[int]], max_groups: int, summary: ImportSummary
) -> int:
    """Edges that leave the map (no lane with a successor) are destinations, all their lanes one each."""
    sinks = [ids for ids in edge_lanes.values() if ids and not any(b.lanes[i].successors for i in ids)]
    if not sinks:
        longest = max(edge_lanes.values(), key=lambda ids: max((b.lanes[i].length for i in ids), default=0.0))
        sinks = [longest]
        summary.notes["network without an edge that leaves it (its longest edge made the destination)"] += 1
    if len(sinks) <= max_groups:
        groups = list(range(len(sinks)))
    else:
        ends = np.array([b.lanes[ids[0]].centre[-1] for ids in sinks])
        centre = np.concatenate([lane.centre for lane in b.lanes]).mean(axis=0)
        angle = np.arctan2(ends[:, 1] - centre[1], ends[:, 0] - centre[0])
        sector = np.floor((angle + math.pi) / (2 * math.pi) * max_groups).astype(int).clip(0, max_groups - 1)
        used = {s: g for g, s in enumerate(sorted(set(sector.tolist())))}
        groups = [used[int(s)] for s in sector]
        summary.notes[f"{len(sinks)} leaving edges grouped into {len(used)} destinations by direction"] += 1
    for g, ids in zip(groups, sinks):
        for i in ids:
            b.lanes[i].exit_group = g
    return max(groups) + 1


__all__ = ["IMPORTER_VERSION", "ImportSummary", "SumoImportConfig", "read_net", "sumo_net_to_builder"]
