"""Routing tables: every routing question in the step is a gather into tables computed once per map.

The lane graph has two kinds of edge: follow a successor (cost: the lane's length) and change to a
neighbour lane where the marking allows it (cost: `LANE_CHANGE_COST_M`, so a route that needs no lane change
is preferred over an equally long one that does). All-pairs shortest paths (Floyd-Warshall over at most a few
hundred lanes, on the host) give, for every (lane, destination), where a destination is a group of parallel exit lanes:

- `cost`      metres from the start of the lane to the end of the destination (UNREACHABLE if it cannot be
              reached: a missed exit);
- `next_hop`  the lane to move to next (a successor or a neighbour), -1 at the destination or unreachable;
- `changes`   signed count of lane changes the route needs next, all in one direction (negative: left);
- `deadline`  metres from the lane's start to where those changes must be done: the end of the last lane,
              following successors, from which the destination can still be reached;
- `best_succ` the successor to take at the lane's end (-1 if none leads to the destination).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

LANE_CHANGE_COST_M = 20.0  # m of equivalent driving per lane change
UNREACHABLE = 1.0e9  # m


@dataclass(frozen=True)
class RoutingTables:
    cost: torch.Tensor  # [M, L, D] float32 m, from lane start to leaving the map at destination D
    next_hop: torch.Tensor  # [M, L, D] int64 lane
    changes: torch.Tensor  # [M, L, D] int64, signed lane changes the route still needs
    deadline: torch.Tensor  # [M, L, D] float32 m, from lane start to where the changes must be done
    best_succ: torch.Tensor  # [M, L, D] int64 lane
    default_dest: (
        torch.Tensor
    )  # [M, L] int64, the nearest reachable destination (re-routing after a miss) (re-routing after a missed exit)

    def to(self, device: torch.device | str) -> RoutingTables:
        return RoutingTables(**{f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self)})

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


def build_routing_tables(
    lengths: np.ndarray,
    successors: list[list[int]],
    left: list[int],
    right: list[int],
    left_ok: list[bool],
    right_ok: list[bool],
    exit_group: list[int],
) -> RoutingTables:
    """All-pairs routing over one map's lane graph (host side, O((L + D)^3)).

    `exit_group[l]` is the destination id that driving off the end of lane `l` reaches (-1: not an exit).
    Parallel exit lanes share one destination, so a car bound for "the end of the highway" may use any lane.
    Every destination becomes a virtual node reached from its exit lanes; tables are `[L, D]`.
    """
    num_lanes = len(lengths)
    num_dest = max(exit_group) + 1
    n = num_lanes + num_dest
    succ = [list(successors[a]) + ([num_lanes + exit_group[a]] if exit_group[a] >= 0 else []) for a in range(num_lanes)]
    succ += [[] for _ in range(num_dest)]
    length = np.concatenate([lengths, np.zeros(num_dest)])
    dist = np.full((n, n), np.inf)  # dist[a, b]: from start of a to start of b
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
    dist, hop = dist[:num_lanes, num_lanes:], hop[:num_lanes, num_lanes:]  # [L, D]
    reach = np.isfinite(dist)
    cost = np.where(reach, dist, UNREACHABLE)
    next_hop = np.where(reach & (hop < num_lanes), hop, -1)

    # Signed lane changes the route needs next: along the shortest path (it has the fewest changes, each one
    # costs extra), the changes in the direction of the first one, up to the first change the other way
    # (leaving an acceleration lane to the left and later taking an exit to the right is one change left now).
    changes = np.zeros((num_lanes, num_dest), dtype=np.int64)
    for a in range(num_lanes):
        for d in range(num_dest):
            cur, count = a, 0
            for _ in range(n):
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

    best_succ = -np.ones((num_lanes, num_dest), dtype=np.int64)
    for a in range(num_lanes):
        if successors[a]:
            options = np.array(successors[a])
            sub = cost[options, :]  # [S, D]
            best = options[np.argmin(sub, axis=0)]
            best_succ[a] = np.where(sub.min(axis=0) < UNREACHABLE, best, -1)

    # Deadline: follow the successor that keeps the destination reachable until none does.
    cols = np.arange(num_dest)[None, :]
    deadline = np.where(reach, lengths[:, None], 0.0)
    for _ in range(num_lanes):
        nxt_deadline = np.where(best_succ >= 0, deadline[np.maximum(best_succ, 0), cols], 0.0)
        deadline = np.where(reach, lengths[:, None] + nxt_deadline, 0.0)

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
