"""Neighbour queries from one sort per tick: vehicles sorted by (lane, s) in each world, then every question
("who is ahead of me in my lane, in the lane to my left at my position, on the lane after mine") is a binary
search into that order. O(N log N) per world, no pairwise loops."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.sim.geometry import lane_attr, next_lane, route_attr

LANE_KEY = 1.0e6  # m; sort key = lane * LANE_KEY + s (float64), and |s| stays far below LANE_KEY / 2
FAR = 1.0e4  # m, the gap reported when there is no vehicle
MERGE_LOOKAHEAD_M = 30.0  # m past a merge point where a car on the other lane is still found (a leader after it)


@dataclass(frozen=True)
class Neighbour:
    """The nearest vehicle ahead or behind in one lane, per vehicle `[W, N]`."""

    slot: torch.Tensor  # [W, N] int64, -1 none
    gap: torch.Tensor  # [W, N] float32 m, bumper to bumper (FAR if none)
    speed: torch.Tensor  # [W, N] float32 m/s (of the neighbour; the asker's own speed if none)

    @property
    def exists(self) -> torch.Tensor:
        return self.slot >= 0


@dataclass(frozen=True)
class Surroundings:
    """Leaders and followers in the vehicle's own lane and in its left and right neighbour lanes."""

    lead: Neighbour
    follow: Neighbour
    left_lead: Neighbour
    left_follow: Neighbour
    right_lead: Neighbour
    right_follow: Neighbour
    left_lane: torch.Tensor  # [W, N] int64, -1 none
    right_lane: torch.Tensor  # [W, N] int64
    left_s: torch.Tensor  # [W, N] float32 m, the asker's position mapped onto its left lane
    right_s: torch.Tensor  # [W, N] float32 m
    # Junctions (None on maps without conflicting connectors): for each conflict of the connector the
    # vehicle is on or about to enter, the nearest vehicle heading for that conflict point on the other lane.
    conflict_slot: torch.Tensor | None = None  # [W, N, C] int64, -1 none
    conflict_my_dist: torch.Tensor | None = None  # [W, N, C] m from my centre to the conflict point
    conflict_their_dist: torch.Tensor | None = None  # [W, N, C] m from theirs
    conflict_entry_dist: torch.Tensor | None = None  # [W, N] m from my centre to the connector's start (<= 0 on it)
    upcoming: torch.Tensor | None = None  # [W, N] int64, the connector the vehicle is on or enters next, -1 none
    conflict_lane: torch.Tensor | None = None  # [W, N, C] int64, the other lane of each conflict, -1 none
    conflict_rule: torch.Tensor | None = None  # [W, N, C] int64, static right of way (`roads.signals`)
    conflict_merge: torch.Tensor | None = None  # [W, N, C] bool, the lanes merge (the other may become a leader)
    conflict_other_inside: torch.Tensor | None = None  # [W, N, C] bool, that vehicle is on the other connector
    exit_room: torch.Tensor | None = None  # [W, N] m free at the start of the street after `upcoming` (FAR: empty)


def sorted_count(rows: torch.Tensor, q: torch.Tensor, right: bool = True) -> torch.Tensor:
    """`torch.searchsorted(rows, q, right=right)` for rows sorted ascending (no NaN), as a branch-free binary
    search in tensor ops: ceil(log2(N + 1)) gathers per query, all fused into the caller's compiled kernel.
    ATen's searchsorted is an opaque call with a branchy per-element loop (about 15% of a compiled highway-v0
    tick); this is ~10% faster per tick (BENCHMARKS.md). `rows [W, N]`, `q [W, Q]` -> `[W, Q]` int64."""
    n = rows.shape[1]
    count = torch.zeros(q.shape, dtype=torch.int64, device=q.device)
    step = 1 << (n.bit_length() - 1)  # the largest power of two <= n
    while step:
        cand = count + step  # is the cand-th smallest key still on the left of q?
        key = rows.gather(1, (cand - 1).clamp(max=n - 1))
        ok = (cand <= n) & ((key <= q) if right else (key < q))
        count = torch.where(ok, cand, count)
        step >>= 1
    return count


def _search(
    keys: torch.Tensor, order: torch.Tensor, sorted_lane: torch.Tensor, lane_q: torch.Tensor, key_q: torch.Tensor
):
    """First vehicle with key > key_q and last with key <= key_q, if they are on lane_q. `[W, Q]` each."""
    n = keys.shape[1]
    pos = sorted_count(keys, key_q, right=True)
    ahead_pos = pos.clamp(max=n - 1)
    behind_pos = (pos - 1).clamp(min=0)
    ahead_ok = (pos < n) & (sorted_lane.gather(1, ahead_pos) == lane_q) & (lane_q >= 0)
    behind_ok = (pos > 0) & (sorted_lane.gather(1, behind_pos) == lane_q) & (lane_q >= 0)
    ahead = torch.where(ahead_ok, order.gather(1, ahead_pos), -1)
    behind = torch.where(behind_ok, order.gather(1, behind_pos), -1)
    return ahead, behind


def _neighbour(slot, dist_centre, length, own_length, speed, own_speed) -> Neighbour:
    ok = slot >= 0
    safe = slot.clamp(min=0)
    gap = dist_centre - 0.5 * (length.gather(1, safe) + own_length)
    return Neighbour(
        slot=slot,
        gap=torch.where(ok, gap, FAR),
        speed=torch.where(ok, speed.gather(1, safe), own_speed),
    )


@dataclass(frozen=True)
class _Order:
    """Every world's vehicles sorted by (lane, s): the one sort all neighbour questions search."""

    keys: torch.Tensor  # [W, N] float64 sort keys, ascending (absent vehicles last)
    order: torch.Tensor  # [W, N] int64 slot at each sorted position
    sorted_lane: torch.Tensor  # [W, N] int64 lane at each sorted position (absent: max_lanes + 1)
    rank: torch.Tensor  # [W, N] int64 sorted position of each slot
    start: torch.Tensor  # [W, L + 2] int64 sorted position where each lane's vehicles begin

    def first_on(self, lq: torch.Tensor) -> torch.Tensor:
        """The slot of the first (rearmost) vehicle on lane `lq`, -1 if none."""
        n = self.order.shape[1]
        q = lq.clamp(min=0)
        i0, i1 = self.start.gather(1, q), self.start.gather(1, q + 1)
        return torch.where((lq >= 0) & (i1 > i0), self.order.gather(1, i0.clamp(max=n - 1)), -1)

    def last_on(self, lq: torch.Tensor) -> torch.Tensor:
        """The slot of the last (frontmost) vehicle on lane `lq`, -1 if none."""
        q = lq.clamp(min=0)
        i0, i1 = self.start.gather(1, q), self.start.gather(1, q + 1)
        return torch.where((lq >= 0) & (i1 > i0), self.order.gather(1, (i1 - 1).clamp(min=0)), -1)


def _sort(road: RoadMap, lane: torch.Tensor, s: torch.Tensor, present: torch.Tensor) -> _Order:
    big_lane = road.max_lanes + 1
    key = torch.where(present, lane.double() * LANE_KEY + s.double(), big_lane * LANE_KEY)
    keys, order = torch.sort(key, dim=1, stable=True)
    sorted_lane = torch.where(present, lane, big_lane).gather(1, order)
    rank = torch.empty_like(order).scatter_(
        1, order, torch.arange(order.shape[1], device=order.device).expand_as(order)
    )
    # First and last vehicle of every lane from where each lane starts in the sorted order ([W, L + 2]).
    lane_ids = torch.arange(big_lane + 1, device=lane.device).expand(lane.shape[0], -1).contiguous()
    start = sorted_count(sorted_lane, lane_ids, right=False)
    return _Order(keys, order, sorted_lane, rank, start)


def _own_lane(srt: _Order, lane: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The next and previous vehicle in sorted order, where they share the asker's lane (-1 otherwise)."""
    order, rank = srt.order, srt.rank
    n = order.shape[1]
    nxt = order.gather(1, (rank + 1).clamp(max=n - 1))
    prv = order.gather(1, (rank - 1).clamp(min=0))
    own_lead = torch.where((rank + 1 < n) & (lane.gather(1, nxt) == lane) & present.gather(1, nxt), nxt, -1)
    own_follow = torch.where((rank > 0) & (lane.gather(1, prv) == lane) & present.gather(1, prv), prv, -1)
    return own_lead, own_follow


def _lead_and_follow(road: RoadMap, srt: _Order, map_id, s, dest, lq, sq, own_ahead, own_behind, nxt=None):
    """Nearest ahead and behind of position `sq` on lane `lq`: on the lane itself, else the first car of the lane
    the route continues on / the last car of the lane feeding it. `nxt`: that next lane, where the caller has it."""

    def s_of(slot):
        return s.gather(1, slot.clamp(min=0))

    def len_of(lane_q):
        return lane_attr(road.lane_length, road, map_id, lane_q)

    prv = torch.where(lq < 0, -1, lane_attr(road.lane_pred, road, map_id, lq))
    if nxt is None:
        nxt = next_lane(road, map_id, lq, dest)
    nxt_first, prv_last = srt.first_on(nxt), srt.last_on(prv)
    lead_ = torch.where(own_ahead >= 0, own_ahead, nxt_first)
    lead_d = torch.where(own_ahead >= 0, s_of(own_ahead) - sq, len_of(lq) - sq + s_of(nxt_first))
    foll_ = torch.where(own_behind >= 0, own_behind, prv_last)
    foll_d = torch.where(own_behind >= 0, sq - s_of(own_behind), sq + len_of(prv) - s_of(prv_last))
    return torch.where(lq >= 0, lead_, -1), lead_d, torch.where(lq >= 0, foll_, -1), foll_d


def _own_lead_and_follow(road: RoadMap, srt: _Order, map_id, lane, s, present, dest, lane_len):
    """Leader and follower in the vehicle's own lane, through a junction where the connector ahead is empty."""
    own_lead, own_follow = _own_lane(srt, lane, present)
    nxt = next_lane(road, map_id, lane, dest)
    lead, lead_dist, follow, follow_dist = _lead_and_follow(
        road, srt, map_id, s, dest, lane, s, own_lead, own_follow, nxt
    )
    if road.has_conflicts:
        # Through junctions: a short connector may be empty while a queue waits at the start of the street
        # after it; look one lane further for the leader (maps with junctions only, a static flag).
        nxt2 = next_lane(road, map_id, nxt, dest)
        second = srt.first_on(nxt2)
        far = (lead < 0) & (nxt >= 0) & (second >= 0)
        lead = torch.where(far, second, lead)
        nxt_len = lane_attr(road.lane_length, road, map_id, nxt)
        lead_dist = torch.where(far, lane_len - s + nxt_len + s.gather(1, second.clamp(min=0)), lead_dist)
    return lead, lead_dist, follow, follow_dist


def leaders(road: RoadMap, map_id, lane, s, length, speed, present, dest) -> Neighbour:
    """The leader of every vehicle, as `surroundings(...).lead`, without the side lanes and junction conflicts
    (a fraction of the cost). Inputs `[W, N]`."""
    srt = _sort(road, lane, s, present)
    lane_len = lane_attr(road.lane_length, road, map_id, lane)
    lead, lead_dist, _, _ = _own_lead_and_follow(road, srt, map_id, lane, s, present, dest, lane_len)
    return _neighbour(torch.where(present, lead, -1), lead_dist, length, length, speed, speed)


def surroundings(road: RoadMap, map_id, lane, s, length, speed, present, dest) -> Surroundings:
    """Leaders and followers of every vehicle. Inputs `[W, N]`; absent vehicles are never anyone's neighbour."""
    srt = _sort(road, lane, s, present)
    lane_len = lane_attr(road.lane_length, road, map_id, lane)
    lead, lead_dist, follow, follow_dist = _own_lead_and_follow(road, srt, map_id, lane, s, present, dest, lane_len)

    left = torch.where(present, lane_attr(road.lane_left, road, map_id, lane), -1)
    right = torch.where(present, lane_attr(road.lane_right, road, map_id, lane), -1)
    left_len = lane_attr(road.lane_length, road, map_id, left)
    right_len = lane_attr(road.lane_length, road, map_id, right)
    left_s = s * left_len / lane_len
    right_s = s * right_len / lane_len

    # Positional look-ups in the side lanes: binary search of the sorted keys, [W, 2N] queries.
    side_ahead, side_behind = _search(
        srt.keys,
        srt.order,
        srt.sorted_lane,
        torch.cat([left, right], 1),
        torch.cat([left.double() * LANE_KEY + left_s.double(), right.double() * LANE_KEY + right_s.double()], 1),
    )
    l_ahead, r_ahead = side_ahead.chunk(2, dim=1)
    l_behind, r_behind = side_behind.chunk(2, dim=1)
    l_lead, l_lead_d, l_foll, l_foll_d = _lead_and_follow(road, srt, map_id, s, dest, left, left_s, l_ahead, l_behind)
    r_lead, r_lead_d, r_foll, r_foll_d = _lead_and_follow(road, srt, map_id, s, dest, right, right_s, r_ahead, r_behind)

    conflict = {}
    if road.has_conflicts:
        conflict = _conflicts(road, map_id, lane, s, length, speed, present, dest, srt, lane_len)

    def nb(slot, dist):
        slot = torch.where(present, slot, -1)
        return _neighbour(slot, dist, length, length, speed, speed)

    return Surroundings(
        lead=nb(lead, lead_dist),
        follow=nb(follow, follow_dist),
        left_lead=nb(l_lead, l_lead_d),
        left_follow=nb(l_foll, l_foll_d),
        right_lead=nb(r_lead, r_lead_d),
        right_follow=nb(r_foll, r_foll_d),
        left_lane=left,
        right_lane=right,
        left_s=left_s,
        right_s=right_s,
        **conflict,
    )


def _conflicts(road: RoadMap, map_id, lane, s, length, speed, present, dest, srt: _Order, lane_len) -> dict:
    """Nearest vehicle approaching each conflict point of the connector a vehicle is on or about to enter, and
    the room on the street after it."""
    w, n = lane.shape
    is_conn = lane_attr(road.lane_kind, road, map_id, lane) == 2
    nxt = next_lane(road, map_id, lane, dest)
    nxt_conn = lane_attr(road.lane_kind, road, map_id, nxt) == 2
    upcoming = torch.where(is_conn, lane, torch.where(nxt_conn & (nxt >= 0), nxt, -1))
    offset = torch.where(is_conn, -s, lane_len - s)  # my distance to the start of `upcoming`
    num_c = road.conflict_lane.shape[2]
    flat = (map_id.view(-1, 1) * road.max_lanes + upcoming.clamp(min=0)).unsqueeze(-1) * num_c + torch.arange(
        num_c, device=lane.device
    )
    other_lane = road.conflict_lane.reshape(-1)[flat]  # [W, N, C]
    other_lane = torch.where((upcoming >= 0).unsqueeze(-1) & present.unsqueeze(-1), other_lane, -1)
    my_dist = road.conflict_s.reshape(-1)[flat] + offset.unsqueeze(-1)
    rule = road.conflict_yield.reshape(-1)[flat]
    merge = road.conflict_merge.reshape(-1)[flat]
    s_other = road.conflict_s_other.reshape(-1)[flat]
    # On the other connector: the last vehicle at or before its conflict point (a small margin past it).
    # (At a merge, far past it too: a car that merged ahead is a leader until both are on the street after.)
    key_q = other_lane.double() * LANE_KEY + (s_other + torch.where(merge, MERGE_LOOKAHEAD_M, 3.0)).double()
    _, on_lane = _search(srt.keys, srt.order, srt.sorted_lane, other_lane.view(w, -1), key_q.view(w, -1))
    on_lane = on_lane.view(w, n, num_c)
    # Else the last vehicle on the lane feeding it, if its route takes that connector.
    pred = torch.where(other_lane >= 0, lane_attr(road.lane_pred, road, map_id, other_lane), -1)
    feeding = srt.last_on(pred.view(w, -1)).view(w, n, num_c)
    f_safe = feeding.clamp(min=0).view(w, -1)
    f_dest = dest.gather(1, f_safe).view(w, n, num_c)
    f_route = route_attr(road.route.best_succ, road, map_id, pred, f_dest)
    feeding = torch.where((feeding >= 0) & (f_route == other_lane), feeding, -1)
    slot = torch.where(on_lane >= 0, on_lane, feeding)
    safe = slot.clamp(min=0).view(w, -1)
    their_s = s.gather(1, safe).view(w, n, num_c)
    pred_len = lane_attr(road.lane_length, road, map_id, pred)
    their_dist = torch.where(on_lane >= 0, s_other - their_s, pred_len - their_s + s_other)
    slot = torch.where(other_lane >= 0, slot, -1)
    # Room after the junction: from the start of the street the connector leads to, to the rear of its last
    # car, plus two seconds of that car's travel (a moving queue makes room).
    exit_lane = torch.where(upcoming >= 0, next_lane(road, map_id, upcoming, dest), -1)
    tail = srt.first_on(exit_lane)
    t_safe = tail.clamp(min=0)
    room = s.gather(1, t_safe) - 0.5 * length.gather(1, t_safe) + 2.0 * speed.gather(1, t_safe)
    exit_room = torch.where(tail >= 0, room, FAR)
    return dict(
        conflict_slot=slot,
        conflict_my_dist=my_dist,
        conflict_their_dist=their_dist,
        conflict_entry_dist=offset,
        upcoming=upcoming,
        conflict_lane=other_lane,
        conflict_rule=rule,
        conflict_merge=merge & (other_lane >= 0),
        conflict_other_inside=(on_lane >= 0) & (slot >= 0),
        exit_room=exit_room,
    )
