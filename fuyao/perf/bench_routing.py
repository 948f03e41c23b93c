"""Routing-table build time and memory on a synthetic city-sized lane graph.

`grid_lane_graph(n)` is the topology of an `n x n` grid of signalised-looking junctions (no geometry: routing
needs only lengths and links): every street between neighbouring junctions is two lanes each way (lane changes
allowed both ways), and every junction joins each incoming street to the streets straight on (from both lanes),
to the left (from the left lane) and to the right (from the right lane) with connector lanes; no U-turns, no dead
ends (at a corner a lane takes whatever turn there is).
Destinations are a bounded set of zones (both lanes of one street direction, every `zone_every`-th), as random
trips in a city would use.

Run: `python -m fuyao.perf.bench_routing --n 22 --zone-every 20` (10,752 lanes, 93 destinations).
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
import torch

from fuyao.perf.machine import machine_info
from fuyao.roads.routing import RoutingTables, build_routing_tables

STREET_M = 100.0  # m between neighbouring junctions
CONNECTOR_M = {"straight": 20.0, "left": 24.0, "right": 10.0}  # m across a junction


@dataclass(frozen=True)
class LaneGraph:
    """The arguments of `build_routing_tables` for one map."""

    lengths: np.ndarray  # [L] m
    successors: list[list[int]]
    left: list[int]
    right: list[int]
    left_ok: list[bool]
    right_ok: list[bool]
    exit_group: list[int]  # destination reached by leaving each lane's end, -1 none

    @property
    def num_lanes(self) -> int:
        return len(self.lengths)

    @property
    def num_dest(self) -> int:
        return max(self.exit_group) + 1

    def tables(self) -> RoutingTables:
        return build_routing_tables(
            self.lengths, self.successors, self.left, self.right, self.left_ok, self.right_ok, self.exit_group
        )


def grid_lane_graph(n: int, zone_every: int = 20) -> LaneGraph:
    """An `n x n` junction grid (`n >= 2`): `8 n (n - 1)` street lanes and their connectors (n = 22: 10,752 lanes)."""
    headings = [(1, 0), (0, 1), (-1, 0), (0, -1)]  # east, north, west, south (counter-clockwise)
    lengths: list[float] = []
    kinds: list[str] = []

    def lane(metres: float, kind: str) -> int:
        lengths.append(metres)
        kinds.append(kind)
        return len(lengths) - 1

    # streets[(x, y, h)]: (left lane, right lane) leaving junction (x, y) in heading h.
    streets: dict[tuple[int, int, int], tuple[int, int]] = {}
    for x in range(n):
        for y in range(n):
            for h, (dx, dy) in enumerate(headings):
                if 0 <= x + dx < n and 0 <= y + dy < n:
                    streets[(x, y, h)] = (lane(STREET_M, "street"), lane(STREET_M, "street"))
    succ: dict[int, list[int]] = {}
    for (x, y, h), (lane_l, lane_r) in streets.items():
        dx, dy = headings[h]
        jx, jy = x + dx, y + dy  # the junction this street arrives at
        turns = {"straight": h, "left": (h + 1) % 4, "right": (h + 3) % 4}
        exits = {turn: streets[(jx, jy, out_h)] for turn, out_h in turns.items() if (jx, jy, out_h) in streets}
        for k, src in enumerate((lane_l, lane_r)):
            # The left lane turns left, the right lane right, both go straight; at a corner a lane with no
            # turn of its own may take any (no dead ends).
            own = [t for t in exits if t == "straight" or t == ("left", "right")[k]]
            for turn in own or list(exits):
                target = exits[turn][k if turn == "straight" else {"left": 0, "right": 1}[turn]]
                conn = lane(CONNECTOR_M[turn], "connector")
                succ.setdefault(src, []).append(conn)
                succ[conn] = [target]
    num = len(lengths)
    left, right = [-1] * num, [-1] * num
    for lane_l, lane_r in streets.values():
        right[lane_l], left[lane_r] = lane_r, lane_l
    exit_group = [-1] * num
    for i, pair in enumerate(list(streets.values())[::zone_every]):
        for member in pair:
            exit_group[member] = i
    return LaneGraph(
        lengths=np.asarray(lengths),
        successors=[succ.get(i, []) for i in range(num)],
        left=left,
        right=right,
        left_ok=[j >= 0 for j in left],
        right_ok=[j >= 0 for j in right],
        exit_group=exit_group,
    )


def bench_routing(n: int = 22, zone_every: int = 20) -> dict:
    """Seconds and bytes to build the routing tables of `grid_lane_graph(n, zone_every)`: `tables_bytes` is what
    the map keeps, `peak_traced_bytes` the most the build held at once (numpy and Python allocations)."""
    graph = grid_lane_graph(n, zone_every)
    tracemalloc.start()
    start = time.perf_counter()
    tables = graph.tables()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    start = time.perf_counter()
    graph.tables()
    untraced = time.perf_counter() - start
    return {
        "lanes": graph.num_lanes,
        "destinations": graph.num_dest,
        "edges": sum(map(len, graph.successors)) + sum(graph.left_ok) + sum(graph.right_ok),
        "build_s": round(untraced, 3),
        "build_s_traced": round(seconds, 3),
        "tables_bytes": tables.nbytes,
        "peak_traced_bytes": peak,
        "dense_all_pairs_bytes": 8 * graph.num_lanes**2,  # one float64 [L, L] matrix, as Floyd-Warshall held
        "machine": machine_info(torch.device("cpu")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=22, help="junctions per side")
    parser.add_argument("--zone-every", type=int, default=20, help="one destination zone per this many streets")
    args = parser.parse_args()
    print(json.dumps(bench_routing(args.n, args.zone_every), indent=2))


if __name__ == "__main__":
    main()
