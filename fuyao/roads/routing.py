"""Routing tables: every routing question in the step is a gather into tables computed once per map.

The lane graph has two kinds of edge: follow a successor (cost: the lane's length) and change to a
neighbour lane where the marking allows it (cost: `LANE_CHANGE_COST_M`, so a route that needs no lane change
is preferred over an equally long one that does). A destination is a group of lanes (parallel exit lanes, a
zone of a city): driving off the end of any of them arrives. One shortest-path search per destination over the
reversed lane graph (sparse Dijkstra, `scipy.sparse.csgraph`, O(D (E + L log L))) gives, for every (lane,
destination):

- `cost`      metres from the start of the lane to the end of the destination (UNREACHABLE if it cannot be
              reached: a missed exit);
- `next_hop`  the lane to move to next (a successor or a neighbour) on a shortest route, -1 at the destination or
              unreachable; among equally short routes (within `TIE_M`), the lowest lane id;
- `changes`   signed count of lane changes the route needs next, all in one direction (negative: left);
- `deadline`  metres from the lane's start to where those changes must be done: the end of the last lane,
              following successors, from which the destination can still be reached (UNREACHABLE where following
              successors circles for ever with the destination in reach: there is no deadline);
- `best_succ` the successor to take at the lane's end (-1 if none leads to the destination).

Memory is `[L, D]` per table (32 bytes an entry over the five), so destinations are a bounded set (exits,
zones), never every lane: 10,000 lanes x 100 destinations is 32 MB, x 10,000 would be 3.2 GB.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

LANE_CHANGE_COST_M = 20.0  # m of equivalent driving per lane change
UNREACHABLE = 1.0e9  # m
TIE_M = 1.0e-9  # m, routes closer than this in cost are equally short
CANDIDATES_PER_CHUNK = 1 << 22  # (lane, out-edge, destination) triples scored at once in `_next_hop`


@dataclass(frozen=True)
class RoutingTables:
    cost: torch.Tensor  # [M, L, D] float32 m, from lane start to leaving the map at destination D
    next_hop: torch.Tensor  # [M, L, D] int64 lane
    changes: torch.Tensor  # [M, L, D] int64, signed lane changes the route still needs
    deadline: torch.Tensor  # [M, L, D] float32 m, from lane start to where the changes must be done
    best_succ: torch.Tensor  # [M, L, D] int64 lane
    default_dest: torch.Tensor  # [M, L] int64, the nearest reachable destination (re-routing after a miss)

    def to(self, device: torch.device | str) -> RoutingTables:
        return RoutingTables(**{f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self)})

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, f.name).nbytes for f in dataclasses.fields(self))

    @staticmethod
    def stack(tables: list[RoutingTables], num_lanes: int) -> RoutingTables:
        num_dest = max(t.cost.shape[2] for t in tables)

        def pad(x: torch.Tensor, fill: float | int) -> torch.Tensor:
            shape = (num_lanes, num_dest)[: x.dim() - 1]
            out = torch.full(shape, fill, dtype=x.dtype)
            out[tuple(slice(0, n) for n in x.shape[1:])] = x[0]
            return out

        fills = {"cost": UNREACHABLE, "next_hop": -1, "changes": 0, "deadline": 0.0, "best_succ": -1, "default_dest": 0}
        return RoutingTables(
            **{
                f.name: torch.stack([pad(getattr(t, f.name), fills[f.name]) for t in tables])
                for f in dataclasses.fields(RoutingTables)
            }
        )


def _padded(rows: list[list[int]], fill: int = -1) -> np.ndarray:
    """Ragged lists as a `[len(rows), max(1, longest)]` int64 array padded with `fill`."""
    out = np.full((len(rows), max(1, max((len(r) for r in rows), default=0))), fill, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _edges(
    lengths: np.ndarray,
    successors: list[list[int]],
    left: list[int],
    right: list[int],
    left_ok: list[bool],
    right_ok: list[bool],
    exit_group: list[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges `(src, dst, metres)` of the lane graph with one virtual node `L + d` per destination `d`, reached
    from the end of its lanes. Sorted by (src, dst), each pair once at its cheapest."""
    num_lanes = len(lengths)
    succ = _padded(successors)  # [L, S]
    lanes = np.arange(num_lanes)
    groups = np.asarray(exit_group, dtype=np.int64)
    side = np.stack([np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)], axis=1)  # [L, 2]
    side_ok = np.stack([np.asarray(left_ok, dtype=bool), np.asarray(right_ok, dtype=bool)], axis=1) & (side >= 0)
    src = np.concatenate([np.repeat(lanes, succ.shape[1]), lanes, np.repeat(lanes, 2)])
    dst = np.concatenate([succ.reshape(-1), np.where(groups >= 0, num_lanes + groups, -1), side.reshape(-1)])
    metres = np.concatenate(
        [np.repeat(lengths, succ.shape[1]), lengths, np.full(2 * num_lanes, LANE_CHANGE_COST_M)]
    ).astype(np.float64)
    keep = np.concatenate([succ.reshape(-1) >= 0, groups >= 0, side_ok.reshape(-1)])
    src, dst, metres = src[keep], dst[keep], metres[keep]
    order = np.lexsort((metres, dst, src))  # by src, then dst, cheapest first
    src, dst, metres = src[order], dst[order], metres[order]
    first = np.concatenate([[True], (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])])
    return src[first], dst[first], metres[first]


def _next_hop(src: np.ndarray, dst: np.ndarray, metres: np.ndarray, dist: np.ndarray, num_lanes: int) -> np.ndarray:
    """`[L, D]` int64: the out-edge of each lane on a shortest route to each destination (lowest lane id among
    ties within `TIE_M`), -1 where the route ends here (the virtual destination edge) or there is none.
    `dist`: `[L + D, D]` metres from each node to each destination (inf: unreachable)."""
    num_dest = dist.shape[1]
    out_degree = np.bincount(src, minlength=num_lanes)
    width = max(1, int(out_degree.max(initial=0)))
    slot = np.arange(len(src)) - np.repeat(np.cumsum(out_degree) - out_degree, out_degree)
    nbr = np.full((num_lanes, width), -1, dtype=np.int64)  # [L, E], ascending ids (edges sorted by dst)
    w = np.full((num_lanes, width), np.inf)
    nbr[src, slot], w[src, slot] = dst, metres
    hop = -np.ones((num_lanes, num_dest), dtype=np.int64)
    chunk = max(1, CANDIDATES_PER_CHUNK // (num_lanes * width))
    for d0 in range(0, num_dest, chunk):
        cols = slice(d0, min(d0 + chunk, num_dest))
        via = w[:, :, None] + dist[np.maximum(nbr, 0), cols]  # [L, E, d]
        via[nbr < 0] = np.inf
        best = via.min(axis=1, keepdims=True)
        first = np.argmax(via <= best + TIE_M, axis=1)  # [L, d], the lowest id within the tie
        pick = np.take_along_axis(nbr, first, axis=1)
        hop[:, cols] = np.where(np.isfinite(best[:, 0]) & (pick < num_lanes), pick, -1)
    return hop


def _chain_levels(pointer: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Entries of a flat pointer table (`pointer[i]`: the entry `i` depends on, -1 none) grouped by how many links
    lie between them and the end of their chain (list ranking by pointer doubling, O(n log n)): level 0 ends at
    once, level k depends only on level k - 1. Entries whose chain never ends (it circles) are in no level and
    flagged in the returned `[n]` bool mask."""
    rank = (pointer >= 0).astype(np.int64)
    ahead = pointer.copy()
    for _ in range(max(1, int(np.ceil(np.log2(len(pointer) + 1))))):
        more = ahead >= 0
        if not more.any():
            break
        target = np.maximum(ahead, 0)
        rank = rank + np.where(more, rank[target], 0)
        ahead = np.where(more, ahead[target], -1)
    circles = ahead >= 0
    rank = np.where(circles, -1, rank)
    order = np.argsort(rank, kind="stable")
    counts = np.bincount(rank[~circles], minlength=1)
    bounds = np.cumsum(counts) + int(circles.sum())
    return [order[lo:hi] for lo, hi in zip(bounds - counts, bounds, strict=True)], circles


def build_routing_tables(
    lengths: np.ndarray,
    successors: list[list[int]],
    left: list[int],
    right: list[int],
    left_ok: list[bool],
    right_ok: list[bool],
    exit_group: list[int],
    change_until: np.ndarray | None = None,
    in_junction: np.ndarray | None = None,
) -> RoutingTables:
    """Routing over one map's lane graph (host side, one sparse Dijkstra per destination).

    `exit_group[l]` is the destination id that driving off the end of lane `l` reaches (-1: none). Any lane may
    belong to a destination, a sink (an exit) or not (a city zone: random trips end there); parallel lanes share
    one destination, so a car bound for "the end of the highway" may use any of them. Tables are `[1, L, D]`.
    `change_until[l]`: lane changes out of lane `l` only before this arc length (the solid line before a stop bar):
    a deadline that ends on lane `l` ends there. `in_junction[l]`: lane `l` is a junction's connector; the changes a
    route needs after a junction are not counted before it (they are made in the next street: counted before it,
    a car in the right lane for its turn would move out of it for a change it must make one street later).
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    num_lanes = len(lengths)
    num_dest = max(exit_group) + 1
    n = num_lanes + num_dest
    src, dst, metres = _edges(lengths, successors, left, right, left_ok, right_ok, exit_group)
    # Reversed graph: dist[d, a] is from node a to destination d's virtual node.
    reverse = coo_matrix((metres, (dst, src)), shape=(n, n)).tocsr()
    dist = dijkstra(reverse, directed=True, indices=num_lanes + np.arange(num_dest)).T  # [L + D, D]
    reach = np.isfinite(dist[:num_lanes])
    cost = np.where(reach, dist[:num_lanes], UNREACHABLE)  # [L, D]
    next_hop = _next_hop(src, dst, metres, dist, num_lanes)

    # Signed lane changes the route needs next: along the shortest path (it has the fewest changes, each one
    # costs extra), the changes in the direction of the first one, up to the first change the other way
    # (leaving an acceleration lane to the left and later taking an exit to the right is one change left now).
    # Per lane: a successor hop inherits the next lane's count; a change by `step` counts itself plus the next
    # lane's run if that runs the same way.
    succ = _padded(successors)  # [L, S]
    cols = np.arange(num_dest)[None, :]
    # Flat index of (the next lane, the same destination) in `[L, D]` tables, evaluated from the destination back.
    along_hop = np.where(next_hop >= 0, next_hop * num_dest + cols, -1).ravel()
    follows = ((next_hop >= 0) & (succ[:, :, None] == next_hop[:, None, :]).any(axis=1)).ravel()  # [L * D]
    step = np.where(next_hop == np.asarray(left, dtype=np.int64)[:, None], -1, 1).ravel()
    changes = np.zeros(num_lanes * num_dest, dtype=np.int64)
    junction = np.zeros(num_lanes, dtype=bool) if in_junction is None else np.asarray(in_junction, dtype=bool)
    into_junction = (next_hop >= 0).ravel() & junction[np.maximum(next_hop, 0)].ravel()
    levels, _ = _chain_levels(along_hop)  # next hops never circle: every hop is shorter by a positive cost
    for idx in levels[1:]:
        after, way = changes[along_hop[idx]], step[idx]
        run = np.where(np.sign(after) == way, np.abs(after), 0)
        changes[idx] = np.where(follows[idx], np.where(into_junction[idx], 0, after), way * (1 + run))
    changes = changes.reshape(num_lanes, num_dest)

    costs = np.concatenate([cost, np.full((1, num_dest), np.inf)])[succ]  # [L, S, D], padding never wins
    options = succ[np.arange(num_lanes)[:, None], np.argmin(costs, axis=1)]  # first cheapest in list order
    best_succ = np.where(costs.min(axis=1) < UNREACHABLE, options, -1)

    # Deadline: follow the successor that keeps the destination reachable until none does or the destination is
    # reached (a city zone's lanes have successors). Chains that circle (pointer doubling finds them) have none.
    arrives = np.asarray(exit_group, dtype=np.int64)[:, None] == cols  # [L, D]
    chain = np.where((best_succ >= 0) & ~arrives, best_succ * num_dest + cols, -1).ravel()
    levels, circles = _chain_levels(chain)
    last_change = lengths if change_until is None else np.minimum(lengths, np.asarray(change_until, dtype=np.float64))
    deadline = np.where(reach, last_change[:, None], 0.0).ravel()
    for idx in levels[1:]:
        deadline[idx] = lengths[idx // num_dest] + deadline[chain[idx]]
    deadline = np.where(circles, UNREACHABLE, deadline).reshape(num_lanes, num_dest)

    default_dest = np.argmin(cost, axis=1)

    def t(x, dtype):
        return torch.as_tensor(x, dtype=dtype).unsqueeze(0)

    return RoutingTables(
        cost=t(cost, torch.float32),
        next_hop=t(next_hop, torch.int64),
        changes=t(changes, torch.int64),
        deadline=t(deadline, torch.float32),
        best_succ=t(best_succ, torch.int64),
        default_dest=t(default_dest, torch.int64),
    )
