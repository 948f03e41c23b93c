"""Routing tables by sparse search from each destination, against the dense all-pairs algorithm they replaced."""

import dataclasses

import numpy as np
import pytest
import torch

import fuyao.roads.lanegraph as lanegraph
from fuyao.perf.bench_routing import bench_routing, grid_lane_graph
from fuyao.roads.highway import HighwayConfig, build_highway
from fuyao.roads.junction import build_t_junction
from fuyao.roads.routing import LANE_CHANGE_COST_M, UNREACHABLE, RoutingTables, build_routing_tables


def floyd_warshall_tables(lengths, successors, left, right, left_ok, right_ok, exit_group) -> RoutingTables:
    """The previous implementation, kept as the reference: dense all-pairs shortest paths over lanes plus one
    virtual node per destination, O((L + D)^3), and a Python walk per (lane, destination)."""
    num_lanes = len(lengths)
    num_dest = max(exit_group) + 1
    n = num_lanes + num_dest
    succ = [list(successors[a]) + ([num_lanes + exit_group[a]] if exit_group[a] >= 0 else []) for a in range(num_lanes)]
    succ += [[] for _ in range(num_dest)]
    length = np.concatenate([lengths, np.zeros(num_dest)])
    dist = np.full((n, n), np.inf)
    hop = -np.ones((n, n), dtype=np.int64)
    np.fill_diagonal(dist, 0.0)
    for a in range(num_lanes):
        for b in succ[a]:
            if length[a] < dist[a, b]:
                dist[a, b], hop[a, b] = length[a], b
        for b, ok in ((left[a], left_ok[a]), (right[a], right_ok[a])):
            if b >= 0 and ok and LANE_CHANGE_COST_M < dist[a, b]:
                dist[a, b], hop[a, b] = LANE_CHANGE_COST_M, b
    for k in range(n):
        via = dist[:, k : k + 1] + dist[k : k + 1, :]
        better = via < dist - 1e-9
        dist = np.where(better, via, dist)
        hop = np.where(better, hop[:, k : k + 1], hop)
    dist, hop = dist[:num_lanes, num_lanes:], hop[:num_lanes, num_lanes:]
    reach = np.isfinite(dist)
    cost = np.where(reach, dist, UNREACHABLE)
    next_hop = np.where(reach & (hop < num_lanes), hop, -1)
    changes = walk_changes(next_hop, successors, left)
    best_succ = -np.ones((num_lanes, num_dest), dtype=np.int64)
    for a in range(num_lanes):
        if successors[a]:
            options = np.array(successors[a])
            sub = cost[options, :]
            best_succ[a] = np.where(sub.min(axis=0) < UNREACHABLE, options[np.argmin(sub, axis=0)], -1)
    cols = np.arange(num_dest)[None, :]
    deadline = np.where(reach, lengths[:, None], 0.0)
    for _ in range(num_lanes):
        nxt_deadline = np.where(best_succ >= 0, deadline[np.maximum(best_succ, 0), cols], 0.0)
        deadline = np.where(reach, lengths[:, None] + nxt_deadline, 0.0)

    def t(x, dtype):
        return torch.as_tensor(x, dtype=dtype).unsqueeze(0)

    return RoutingTables(
        cost=t(cost, torch.float32),
        next_hop=t(next_hop, torch.int64),
        changes=t(changes, torch.int64),
        deadline=t(deadline, torch.float32),
        best_succ=t(best_succ, torch.int64),
        default_dest=t(np.argmin(cost, axis=1), torch.int64),
    )


def walk_changes(next_hop: np.ndarray, successors, left) -> np.ndarray:
    """Lane changes the route needs next, walking `next_hop` lane by lane: those in the direction of the first."""
    num_lanes, num_dest = next_hop.shape
    changes = np.zeros((num_lanes, num_dest), dtype=np.int64)
    for a in range(num_lanes):
        for d in range(num_dest):
            cur, count = a, 0
            for _ in range(num_lanes):
                nxt = next_hop[cur, d]
                if nxt < 0:
                    break
                if nxt not in successors[cur]:
                    step = -1 if nxt == left[cur] else 1
                    if count and step != np.sign(count):
                        break
                    count += step
                cur = nxt
            changes[a, d] = count
    return changes


def _builder_inputs(monkeypatch, build):
    """Run a map builder and return the arguments it passed to `build_routing_tables`."""
    seen = []

    def spy(*args):
        seen.append(args)
        return build_routing_tables(*args)

    monkeypatch.setattr(lanegraph, "build_routing_tables", spy)
    build()
    assert len(seen) == 1
    return seen[0]


HIGHWAYS = [
    HighwayConfig(),
    HighwayConfig(max_curvature=0.0),  # equal lane lengths: many equally short routes
    HighwayConfig(lanes=2),
    HighwayConfig(lanes=4, max_curvature=0.0),
    HighwayConfig(lanes=6),
    HighwayConfig(on_ramp_s=None),
    HighwayConfig(off_ramp_s=None, lanes=5),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cfg", HIGHWAYS, ids=lambda c: f"{c.lanes}l-k{c.max_curvature:g}-{c.on_ramp_s}-{c.off_ramp_s}")
def test_sparse_tables_equal_all_pairs_on_highways(monkeypatch, cfg, seed):
    args = _builder_inputs(monkeypatch, lambda: build_highway(cfg, seed=seed))
    # The reference predates solid lines (`change_until`); these maps have none.
    assert np.isinf(np.asarray(args[7])).all()
    ours, reference = build_routing_tables(*args), floyd_warshall_tables(*args[:7])
    for f in dataclasses.fields(RoutingTables):
        assert torch.equal(getattr(ours, f.name), getattr(reference, f.name)), f.name


def test_sparse_tables_equal_all_pairs_on_the_t_junction(monkeypatch):
    args = _builder_inputs(monkeypatch, build_t_junction)
    # The reference predates solid lines (`change_until`); these maps have none.
    assert np.isinf(np.asarray(args[7])).all()
    ours, reference = build_routing_tables(*args), floyd_warshall_tables(*args[:7])
    for f in dataclasses.fields(RoutingTables):
        assert torch.equal(getattr(ours, f.name), getattr(reference, f.name)), f.name


def test_city_routes_reach_every_destination_zone():
    """A 4 x 4 grid with destination zones on interior streets (random trips): every lane reaches every zone
    (no U-turns, but the grid is strongly connected), each next hop lies on a shortest route, and following
    next hops arrives at the end of a zone lane after exactly the cost."""
    g = grid_lane_graph(4, zone_every=3)
    ours = g.tables()
    reference = floyd_warshall_tables(g.lengths, g.successors, g.left, g.right, g.left_ok, g.right_ok, g.exit_group)
    assert g.num_dest == 16 and sum(bool(g.successors[i]) for i in range(g.num_lanes) if g.exit_group[i] >= 0) == 32
    for name in ("cost", "best_succ", "default_dest"):
        assert torch.equal(getattr(ours, name), getattr(reference, name)), name
    cost, hop = ours.cost[0].double().numpy(), ours.next_hop[0].numpy()
    assert (cost < UNREACHABLE).all()
    for a in range(g.num_lanes):
        for d in range(g.num_dest):
            lane, metres = a, 0.0
            for _ in range(g.num_lanes):
                nxt = hop[lane, d]
                if nxt < 0:
                    break
                metres += g.lengths[lane] if nxt in g.successors[lane] else LANE_CHANGE_COST_M
                lane = nxt
            assert g.exit_group[lane] == d, (a, d)
            assert metres + g.lengths[lane] == pytest.approx(cost[a, d], abs=1e-3), (a, d)
    # Equally short routes abound in a grid: the lowest lane id wins ties, and the changes follow that route.
    assert torch.equal(ours.changes[0], torch.as_tensor(walk_changes(hop, g.successors, g.left)))


def test_city_deadline_stops_at_the_zone_and_is_absent_on_a_circling_chain():
    """Deadline by a plain walk along best successors: it ends at a lane that leads nowhere closer, or at the
    destination's own lane; a chain that comes back on itself (around a block) has no deadline."""
    g = grid_lane_graph(4, zone_every=3)
    tables = g.tables()
    best, deadline = tables.best_succ[0].numpy(), tables.deadline[0].numpy()
    circled = 0
    for a in range(g.num_lanes):
        for d in range(g.num_dest):
            lane, metres, seen = a, 0.0, set()
            while lane >= 0 and lane not in seen:
                seen.add(lane)
                metres += g.lengths[lane]
                lane = -1 if g.exit_group[lane] == d else best[lane, d]
            if lane >= 0:
                circled += 1
                assert deadline[a, d] == UNREACHABLE, (a, d)
            else:
                assert deadline[a, d] == pytest.approx(metres), (a, d)
    assert 0 < circled < g.num_lanes * g.num_dest


def test_bench_routing_reports_seconds_and_bytes():
    result = bench_routing(n=3, zone_every=2)
    lanes, dest = result["lanes"], result["destinations"]
    assert lanes == grid_lane_graph(3, 2).num_lanes > 8 * 3 * 2  # street lanes and connectors
    # cost and deadline float32, next_hop, changes and best_succ int64, default_dest int64 per lane.
    assert result["tables_bytes"] == lanes * dest * (4 + 8 + 8 + 4 + 8) + lanes * 8
    assert result["build_s"] > 0.0 and result["peak_traced_bytes"] > result["tables_bytes"]
