"""Differential tests: the vectorised traffic models (IDM, the leader/follower search, MOBIL) against slow,
obvious per-vehicle references written here with plain Python floats and loops; and IDM bringing a car to
rest about its jam gap short of a stopped obstacle."""

import math
import random

import pytest
import torch

from fuyao.roads.highway import HighwayConfig, build_highway
from fuyao.roads.junction import build_t_junction, lane_ids
from fuyao.roads.lanegraph import stack_maps
from fuyao.sim import step as S
from fuyao.sim import traffic
from fuyao.sim.config import SimConfig
from fuyao.sim.geometry import lane_attr
from fuyao.sim.neighbours import FAR, surroundings
from fuyao.sim.scene import scene
from fuyao.sim.traffic import DriverParams, idm_acceleration, mobil_decision

STRAIGHT_3 = HighwayConfig(lanes=3, max_curvature=0.0, on_ramp_s=None, off_ramp_s=None, length_m=1000.0)
STRAIGHT_RAMPS = HighwayConfig(max_curvature=0.0)  # 3 lanes, on-ramp at 400 m, off-ramp at 1300 m
SLOTS = ("lead", "follow", "left_lead", "left_follow", "right_lead", "right_follow")


# ----------------------------------------------------------------------------------------------- IDM


def idm_terms(v, v0, gap, dv, T, s0, a, b, delta, has_lead):
    """Treiber's free-road term `1 - (v / v0)^delta` and interaction term `(s* / s)^2`."""
    free = 1.0 - (max(v, 0.0) / v0) ** delta
    if not has_lead:
        return free, 0.0
    s_star = s0 + max(0.0, v * T + v * dv / (2.0 * math.sqrt(a * b)))
    return free, (s_star / max(gap, 0.1)) ** 2  # gap floor 0.1 m


def idm_ref(v, v0, gap, dv, T, s0, a, b, delta, has_lead):
    """IDM acceleration m/s^2, floored at -MAX_BRAKE."""
    free, interaction = idm_terms(v, v0, gap, dv, T, s0, a, b, delta, has_lead)
    return max(a * (free - interaction), -traffic.MAX_BRAKE)


def test_idm_matches_treiber_formula_on_random_inputs():
    g = torch.Generator().manual_seed(0)
    shape = (50, 60)  # 3000 samples

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=g)

    speed, lead_speed = u(0.0, 45.0), u(0.0, 45.0)
    gap = u(-5.0, 150.0)  # below the 0.1 m floor too (overlapping boxes)
    has_lead = torch.rand(shape, generator=g) < 0.8
    p = DriverParams(
        desired_speed=u(1.0, 40.0),
        headway=u(0.5, 2.5),
        jam_gap=u(1.0, 5.0),
        max_accel=u(0.5, 3.0),
        comfort_decel=u(1.0, 5.0),
        delta=u(2.0, 6.0),
        politeness=u(0.0, 1.0),
    )
    got = idm_acceleration(speed, gap, lead_speed, has_lead, p).flatten().tolist()
    cols = [
        x.flatten().tolist()
        for x in (
            speed,
            p.desired_speed,
            gap,
            lead_speed,
            p.headway,
            p.jam_gap,
            p.max_accel,
            p.comfort_decel,
            p.delta,
            has_lead,
        )
    ]
    clamped = 0
    for k, (v, v0, s, vl, T, s0, a, b, delta, lead) in enumerate(zip(*cols)):
        want = idm_ref(v, v0, s, v - vl, T, s0, a, b, delta, lead)
        free, interaction = idm_terms(v, v0, s, v - vl, T, s0, a, b, delta, lead)
        # Relative to the size of the terms: free and interaction may nearly cancel.
        scale = a * (1.0 + abs(free) + interaction)
        assert abs(got[k] - want) <= 1e-4 * scale, (k, got[k], want, dict(v=v, v0=v0, gap=s, vl=vl, lead=lead))
        clamped += want == -traffic.MAX_BRAKE
    assert 0 < clamped < len(got) // 2  # both regimes were exercised


# --------------------------------------------------------------------------- leaders and followers


class RoadRef:
    """The lane tables of one map, as Python lists."""

    def __init__(self, road, map_index: int = 0):
        m = map_index
        self.length = road.lane_length[m].tolist()
        self.left = road.lane_left[m].tolist()
        self.right = road.lane_right[m].tolist()
        self.pred = road.lane_pred[m].tolist()
        self.succ0 = road.lane_succ[m, :, 0].tolist()
        self.best_succ = road.route.best_succ[m].tolist()  # [lane][dest]
        self.left_ok = road.lane_change_left_ok[m].tolist()
        self.right_ok = road.lane_change_right_ok[m].tolist()

    def next_lane(self, lane, dest):
        """The lane a vehicle bound for `dest` continues on past the end of `lane`."""
        if lane < 0:
            return -1
        nxt = self.best_succ[lane][dest]
        return nxt if nxt >= 0 else self.succ0[lane]


def _none(asker):
    return (-1, FAR, asker["speed"])


def _found(asker, j, other, dist):
    return (j, dist - 0.5 * (asker["length"] + other["length"]), other["speed"])


def ref_lead_on(road: RoadRef, cars, i, lane, s_q, own_lane: bool):
    """Nearest present vehicle ahead of position `s_q` on `lane`, else the first one on the lane the asker's
    route continues on. Ties in s: sorted by slot within the own lane, and a car exactly alongside in a
    side lane counts as behind. Returns (slot, bumper gap m, its speed m/s)."""
    me = cars[i]
    if lane < 0:
        return _none(me)
    best = None
    for j, c in enumerate(cars):
        if j == i or not c["present"] or c["lane"] != lane:
            continue
        ahead = (c["s"], j) > (s_q, i) if own_lane else c["s"] > s_q
        if ahead and (best is None or (c["s"], j) < (cars[best]["s"], best)):
            best = j
    if best is not None:
        return _found(me, best, cars[best], cars[best]["s"] - s_q)
    nxt = road.next_lane(lane, me["dest"])
    if nxt < 0:
        return _none(me)
    on_next = [j for j, c in enumerate(cars) if j != i and c["present"] and c["lane"] == nxt]
    if not on_next:
        return _none(me)
    first = min(on_next, key=lambda j: (cars[j]["s"], j))
    return _found(me, first, cars[first], road.length[lane] - s_q + cars[first]["s"])


def ref_follow_on(road: RoadRef, cars, i, lane, s_q, own_lane: bool):
    """Nearest present vehicle behind `s_q` on `lane`, else the last one on the lane's predecessor."""
    me = cars[i]
    if lane < 0:
        return _none(me)
    best = None
    for j, c in enumerate(cars):
        if j == i or not c["present"] or c["lane"] != lane:
            continue
        behind = (c["s"], j) < (s_q, i) if own_lane else c["s"] <= s_q
        if behind and (best is None or (c["s"], j) > (cars[best]["s"], best)):
            best = j
    if best is not None:
        return _found(me, best, cars[best], s_q - cars[best]["s"])
    prv = road.pred[lane]
    on_prev = [j for j, c in enumerate(cars) if j != i and c["present"] and c["lane"] == prv] if prv >= 0 else []
    if not on_prev:
        return _none(me)
    last = max(on_prev, key=lambda j: (cars[j]["s"], j))
    return _found(me, last, cars[last], s_q + road.length[prv] - cars[last]["s"])


def ref_surroundings(road: RoadRef, cars):
    """Brute force O(N^2): the six neighbours of every vehicle of one world, as (slot, gap, speed)."""
    out = []
    for i, c in enumerate(cars):
        if not c["present"]:
            out.append({k: _none(c) for k in SLOTS})
            continue
        lane, s = c["lane"], c["s"]
        row = {"lead": ref_lead_on(road, cars, i, lane, s, True), "follow": ref_follow_on(road, cars, i, lane, s, True)}
        for side, side_lane in (("left", road.left[lane]), ("right", road.right[lane])):
            # Neighbour lanes share their start and end cross-sections: arc length maps proportionally.
            s_side = s * road.length[side_lane] / road.length[lane] if side_lane >= 0 else 0.0
            row[f"{side}_lead"] = ref_lead_on(road, cars, i, side_lane, s_side, False)
            row[f"{side}_follow"] = ref_follow_on(road, cars, i, side_lane, s_side, False)
        out.append(row)
    return out


def to_tensors(worlds, device="cpu"):
    """`[W, N]` tensors (lane, s, length, speed, present, dest) of per-world lists of car dicts."""

    def col(key, dtype):
        return torch.tensor([[c[key] for c in cars] for cars in worlds], dtype=dtype, device=device)

    return (
        col("lane", torch.int64),
        col("s", torch.float32),
        col("length", torch.float32),
        col("speed", torch.float32),
        col("present", torch.bool),
        col("dest", torch.int64),
    )


def as_float32(worlds):
    """The same cars with s, length and speed rounded to float32, so the reference sees the same inputs."""
    lane, s, length, speed, present, dest = to_tensors(worlds)
    return [
        [
            dict(
                lane=lane[w, i].item(),
                s=s[w, i].item(),
                length=length[w, i].item(),
                speed=speed[w, i].item(),
                present=bool(present[w, i]),
                dest=dest[w, i].item(),
            )
            for i in range(lane.shape[1])
        ]
        for w in range(lane.shape[0])
    ]


def assert_surroundings_match(road_map, worlds, map_ids=None):
    """Compare `surroundings` with the brute-force reference on every slot of every world."""
    worlds = as_float32(worlds)
    lane, s, length, speed, present, dest = to_tensors(worlds)
    map_id = torch.tensor(map_ids if map_ids is not None else [0] * len(worlds))
    sur = surroundings(road_map, map_id, lane, s, length, speed, present, dest)
    got = {
        k: (getattr(sur, k).slot.tolist(), getattr(sur, k).gap.tolist(), getattr(sur, k).speed.tolist()) for k in SLOTS
    }
    found = 0
    for w, cars in enumerate(worlds):
        want = ref_surroundings(RoadRef(road_map, int(map_id[w])), cars)
        for i in range(len(cars)):
            for k in SLOTS:
                slot, gap, spd = want[i][k]
                g_slot, g_gap, g_spd = got[k][0][w][i], got[k][1][w][i], got[k][2][w][i]
                where = (
                    f"world {w} slot {i} {k}: got ({g_slot}, {g_gap:.4f}, {g_spd:.3f}), "
                    f"want ({slot}, {gap:.4f}, {spd:.3f}); car {cars[i]}"
                )
                assert g_slot == slot, where
                assert abs(g_gap - gap) <= 1e-3, where
                assert g_spd == pytest.approx(spd, abs=1e-6), where
                found += slot >= 0
    return found


def random_cars(rng: random.Random, road: RoadRef, n: int, lanes, s_max=None, grid=None, dests=(0,)):
    cars = []
    for _ in range(n):
        lane = rng.choice(lanes)
        hi = road.length[lane] if s_max is None else min(s_max, road.length[lane])
        s = rng.randrange(0, int(hi / grid)) * grid if grid else rng.uniform(0.0, hi)
        cars.append(
            dict(
                lane=lane,
                s=s,
                length=rng.uniform(4.0, 16.0),
                speed=rng.uniform(0.0, 35.0),
                present=rng.random() < 0.8,
                dest=rng.choice(dests),
            )
        )
    return cars


@pytest.mark.parametrize("grid", [None, 5.0], ids=["continuous-s", "s-on-5m-grid-with-ties"])
def test_surroundings_match_brute_force_on_a_straight_road(grid):
    road = build_highway(STRAIGHT_3)
    ref = RoadRef(road)
    assert ref.succ0 == [-1, -1, -1] and ref.length == [1000.0] * 3  # one section: no lane continues
    rng = random.Random(1)
    found = 0
    for _ in range(20):
        worlds = [random_cars(rng, ref, 12, [0, 1, 2], s_max=250.0, grid=grid) for _ in range(4)]
        found += assert_surroundings_match(road, worlds)
    assert found > 1000  # the scenes are dense enough that most slots have a neighbour


def test_surroundings_match_brute_force_across_sections_and_maps():
    """A bank of two maps (straight 3 lanes; 3 lanes with ramps and 5 sections): lanes continue on their
    successors, so leaders and followers are found on the next and previous lanes too."""
    bank = stack_maps([build_highway(STRAIGHT_3), build_highway(STRAIGHT_RAMPS)])
    refs = [RoadRef(bank, 0), RoadRef(bank, 1)]
    rng = random.Random(2)
    found = 0
    for _ in range(20):
        map_ids = [rng.randrange(2) for _ in range(4)]
        worlds = []
        for m in map_ids:
            lanes = [i for i, length in enumerate(refs[m].length) if length > 1.0]  # padded lanes have length 1
            # Few cars per lane, so that the nearest one is often on the next or previous lane.
            worlds.append(random_cars(rng, refs[m], 14, lanes, dests=(0, 1) if m == 1 else (0,)))
        found += assert_surroundings_match(bank, worlds, map_ids)
    assert found > 1000


def _car(lane, s, length=5.0, speed=20.0, dest=0, present=True):
    return dict(lane=lane, s=s, length=length, speed=speed, present=present, dest=dest)


def test_leader_on_the_successor_lane_chosen_by_the_route():
    road = build_highway(STRAIGHT_RAMPS)
    ref = RoadRef(road)
    # Lane 0 (leftmost, 0-400 m) continues on lane 3 (400-600 m); lane 10 (rightmost, 600-1150 m) on lane 13.
    assert ref.length[0] == 400.0 and ref.best_succ[0][0] == 3 and ref.best_succ[10][1] == 13
    cars = [
        _car(0, 395.0),  # near the end of its lane, nothing ahead on it
        _car(3, 4.0, length=8.0, speed=17.0),  # first on the successor lane
        _car(3, 30.0),
        _car(4, 1.0),  # closer, but on the neighbouring successor lane
        _car(10, 540.0, dest=1),  # bound for the off-ramp
        _car(13, 6.0, speed=12.0),
    ]
    lane, s, length, speed, present, dest = to_tensors([cars])
    sur = surroundings(road, torch.zeros(1, dtype=torch.int64), lane, s, length, speed, present, dest)
    assert sur.lead.slot[0, 0].item() == 1
    assert sur.lead.gap[0, 0].item() == pytest.approx(400.0 - 395.0 + 4.0 - 0.5 * (5.0 + 8.0), abs=1e-4)
    assert sur.lead.speed[0, 0].item() == 17.0
    assert sur.follow.slot[0, 1].item() == 0  # and the other way round: the last car on the predecessor
    assert sur.follow.gap[0, 1].item() == pytest.approx(4.0 + 400.0 - 395.0 - 6.5, abs=1e-4)
    assert sur.lead.slot[0, 4].item() == 5
    assert sur.lead.gap[0, 4].item() == pytest.approx(550.0 - 540.0 + 6.0 - 5.0, abs=1e-4)
    assert_surroundings_match(road, [cars])


@pytest.mark.parametrize("dest, via", [(1, "w_e"), (2, "w_s")])
def test_leader_past_a_fork_is_on_the_branch_of_the_route(dest, via):
    road = build_t_junction()
    ids = lane_ids(road)
    length = road.lane_length[0, ids["in_w"]].item()
    cars = [
        _car(ids["in_w"], length - 6.0, dest=dest),
        _car(ids["w_e"], 3.0, speed=5.0),
        _car(ids["w_s"], 8.0, speed=6.0),
    ]
    lane, s, lengths, speed, present, dests = to_tensors([cars])
    sur = surroundings(road, torch.zeros(1, dtype=torch.int64), lane, s, lengths, speed, present, dests)
    want = 1 if via == "w_e" else 2
    assert sur.lead.slot[0, 0].item() == want
    assert sur.lead.gap[0, 0].item() == pytest.approx(6.0 + cars[want]["s"] - 5.0, abs=1e-4)
    assert_surroundings_match(road, [cars])


# ----------------------------------------------------------------------------------------------- MOBIL


class MobilRef:
    """Route-free MOBIL for one vehicle at a time, from positions (not from the search under test)."""

    def __init__(self, road: RoadRef, cars, params):
        self.road, self.cars, self.p = road, cars, params  # params: per slot dict of IDM/MOBIL values
        self.nb = ref_surroundings(road, cars)

    def accel(self, k, lead):
        """IDM acceleration of car `k` behind car `lead` (None: free road), same lane, gap from positions."""
        c, p = self.cars[k], self.p[k]
        if lead is None:
            return idm_ref(c["speed"], p["v0"], FAR, 0.0, p["T"], p["s0"], p["a"], p["b"], p["delta"], False)
        o = self.cars[lead]
        gap = o["s"] - c["s"] - 0.5 * (o["length"] + c["length"])
        return idm_ref(
            c["speed"], p["v0"], gap, c["speed"] - o["speed"], p["T"], p["s0"], p["a"], p["b"], p["delta"], True
        )

    def side(self, i, direction):
        """(wants, gain, safe, margin) of changing to the left (-1) or right (+1) lane; `margin` is how far
        the decision is from any of its thresholds, in m/s^2."""
        c, me = self.cars[i], self.p[i]
        lane = c["lane"]
        target = self.road.left[lane] if direction < 0 else self.road.right[lane]
        ok = self.road.left_ok[lane] if direction < 0 else self.road.right_ok[lane]
        if target < 0 or not ok:
            return False, 0.0, False, math.inf

        def slot(nb):
            return None if nb[0] < 0 else nb[0]

        key = "left" if direction < 0 else "right"
        new_lead, new_follow = slot(self.nb[i][f"{key}_lead"]), slot(self.nb[i][f"{key}_follow"])
        old_lead, old_follow = slot(self.nb[i]["lead"]), slot(self.nb[i]["follow"])
        self_old, self_new = self.accel(i, old_lead), self.accel(i, new_lead)
        checks = [self_new + traffic.SAFE_BRAKE]
        safe = self_new >= -traffic.SAFE_BRAKE
        for nb in (new_lead, new_follow):  # room front and back
            if nb is not None:
                gap = abs(self.cars[nb]["s"] - c["s"]) - 0.5 * (self.cars[nb]["length"] + c["length"])
                safe &= gap > traffic.MIN_GAP
                checks.append(gap - traffic.MIN_GAP)
        followers_gain = 0.0
        if new_follow is not None:  # the new follower must not have to brake harder than SAFE_BRAKE
            nf_new, nf_old = self.accel(new_follow, i), self.accel(new_follow, new_lead)
            safe &= nf_new >= -traffic.SAFE_BRAKE
            checks.append(nf_new + traffic.SAFE_BRAKE)
            followers_gain += nf_new - nf_old
        if old_follow is not None:
            followers_gain += self.accel(old_follow, old_lead) - self.accel(old_follow, i)
        gain = self_new - self_old + me["politeness"] * followers_gain
        gain += traffic.KEEP_RIGHT_BIAS if direction > 0 else -traffic.KEEP_RIGHT_BIAS
        margin = min(abs(x) for x in [*checks, gain - traffic.MOBIL_THRESHOLD])
        return safe and gain > traffic.MOBIL_THRESHOLD, gain, safe, margin

    def decide(self, i):
        """(direction in {-1, 0, 1}, safe_left, safe_right, margin)."""
        want_l, gain_l, safe_l, m_l = self.side(i, -1)
        want_r, gain_r, safe_r, m_r = self.side(i, 1)
        margin = min(m_l, m_r)
        if want_l and want_r:
            margin = min(margin, abs(gain_l - gain_r))
            return (-1 if gain_l > gain_r else 1), safe_l, safe_r, margin
        return (-1 if want_l else 1 if want_r else 0), safe_l, safe_r, margin


def run_mobil(road, cfg, worlds):
    """mobil_decision as the step calls it: surroundings, driver parameters and the route view of a scene."""
    st = scene(road, cfg, worlds)
    v, m = st.vehicles, st.map_id
    sur = surroundings(road, m, v.lane, v.s, v.length, v.speed, v.present, v.dest)
    params = traffic.driver_params(v, traffic.effective_limit(road, m, v))
    route = traffic.route_view(road, m, v, sur)
    assert not bool(route.changes.any() | route.left_changes.any() | route.right_changes.any())  # route-free
    left_ok = lane_attr(road.lane_change_left_ok, road, m, v.lane)
    right_ok = lane_attr(road.lane_change_right_ok, road, m, v.lane)
    direction, safe_l, safe_r = mobil_decision(sur, v.speed, v.length, params, params, route, left_ok, right_ok)
    cars = [
        [
            dict(
                lane=v.lane[w, i].item(),
                s=v.s[w, i].item(),
                length=v.length[w, i].item(),
                speed=v.speed[w, i].item(),
                present=bool(v.present[w, i]),
                dest=v.dest[w, i].item(),
            )
            for i in range(v.s.shape[1])
        ]
        for w in range(v.s.shape[0])
    ]
    p = {
        k: getattr(params, f).tolist()
        for k, f in (
            ("v0", "desired_speed"),
            ("T", "headway"),
            ("s0", "jam_gap"),
            ("a", "max_accel"),
            ("b", "comfort_decel"),
            ("delta", "delta"),
            ("politeness", "politeness"),
        )
    }
    per_slot = [[{k: p[k][w][i] for k in p} for i in range(v.s.shape[1])] for w in range(v.s.shape[0])]
    return cars, per_slot, direction.tolist(), safe_l.tolist(), safe_r.tolist()


def random_driver(rng: random.Random, lane: int, s: float) -> dict:
    truck = rng.random() < 0.2
    return dict(
        lane=lane,
        s=s,
        speed=rng.uniform(3.0, 35.0),
        length=rng.uniform(10.0, 16.0) if truck else rng.uniform(4.0, 5.5),
        desire=rng.uniform(0.5, 1.2),
        max_speed=25.0 if truck else 45.0,
        idm_headway=rng.uniform(0.8, 2.2),
        idm_gap=rng.uniform(1.5, 4.0),
        idm_accel=rng.uniform(0.8, 2.5),
        idm_decel=rng.uniform(1.5, 3.0),
        idm_delta=4.0,
        politeness=rng.uniform(0.0, 1.0),
        present=rng.random() < 0.85,
    )


def test_mobil_matches_per_vehicle_reference_on_random_straight_road_scenes():
    road = build_highway(STRAIGHT_3)
    ref_road = RoadRef(road)
    n = 10
    cfg = SimConfig(worlds=8, vehicles=n, controlled=1, inflow=False, road=STRAIGHT_3)
    rng = random.Random(3)
    compared = skipped = changes = 0
    mismatches = []
    for _ in range(12):
        worlds = [
            [random_driver(rng, rng.randrange(3), rng.uniform(0.0, 250.0)) for _ in range(n)] for _ in range(cfg.worlds)
        ]
        cars, params, direction, safe_l, safe_r = run_mobil(road, cfg, worlds)
        for w in range(cfg.worlds):
            mobil = MobilRef(ref_road, cars[w], params[w])
            for i in range(n):
                if not cars[w][i]["present"]:
                    continue
                want, want_sl, want_sr, margin = mobil.decide(i)
                if margin < 1e-3:  # float32 against float64 on a threshold
                    skipped += 1
                    continue
                compared += 1
                changes += want != 0
                got = (direction[w][i], safe_l[w][i], safe_r[w][i])
                if got != (want, want_sl, want_sr):
                    mismatches.append(f"world {w} slot {i}: got {got}, want {(want, want_sl, want_sr)}")
    assert skipped < 0.02 * compared
    assert changes > 20  # the scenes exercise lane changes, not just staying
    assert not mismatches, f"{len(mismatches)} of {compared} decisions differ:\n" + "\n".join(mismatches[:20])


def mobil_scene(*cars):
    """MOBIL directions of hand-placed background cars on the straight 3-lane road (lane 0 left, 2 right):
    (got, the reference's, whether the left lane is safe for each)."""
    cfg = SimConfig(worlds=1, vehicles=len(cars), controlled=1, inflow=False, road=STRAIGHT_3)
    road = build_highway(STRAIGHT_3)
    cars_f32, params, direction, safe_left, _ = run_mobil(road, cfg, [list(cars)])
    ref = MobilRef(RoadRef(road), cars_f32[0], params[0])
    return direction[0], [ref.decide(i)[0] for i in range(len(cars))], safe_left[0]


FAST_CAR = dict(lane=2, s=100.0, speed=28.0, desire=1.0)  # wants 30 m/s
SLOW_TRUCK = dict(lane=2, s=125.0, speed=15.0, desire=0.5, length=12.0, max_speed=25.0)  # drives 15 m/s


def test_fast_car_behind_slow_truck_changes_to_free_left_lane():
    got, want, _ = mobil_scene(FAST_CAR, SLOW_TRUCK)
    assert got[0] == want[0] == -1


def test_fast_car_does_not_cut_in_front_of_a_car_closing_fast():
    closing = dict(lane=1, s=88.0, speed=38.0, desire=1.3)  # 7 m behind, 10 m/s faster
    got, want, _ = mobil_scene(FAST_CAR, SLOW_TRUCK, closing)
    assert got[0] == want[0] == 0


def test_car_with_nothing_ahead_keeps_its_lane():
    got, want, _ = mobil_scene(
        dict(lane=1, s=300.0, speed=25.0),
        dict(lane=1, s=250.0, speed=25.0),
        dict(lane=0, s=320.0, speed=30.0),
        dict(lane=2, s=280.0, speed=22.0),
    )
    assert got[0] == want[0] == 0


@pytest.mark.parametrize("politeness, direction", [(0.0, -1), (1.0, 0)])
def test_politeness_weighs_the_new_followers_loss(politeness, direction):
    # A car held up by a truck could gain by moving left, but would make the car coming up in the left lane
    # brake (safely, but more than the changer gains): the selfish driver changes, the polite one does not.
    changer = dict(lane=2, s=100.0, speed=24.0, desire=1.0, politeness=politeness)  # wants 30 m/s
    truck = dict(lane=2, s=160.0, speed=20.0, desire=20.0 / 30.0, length=12.0, max_speed=25.0)  # drives 20 m/s
    left_follower = dict(lane=1, s=70.0, speed=24.0, desire=1.0)  # 25 m behind, would have to brake
    got, want, safe_left = mobil_scene(changer, truck, left_follower)
    assert want[0] == direction  # the reference agrees the situation is what this test means it to be
    assert safe_left[0]  # it is the politeness, not the safety criterion, that keeps the polite driver
    assert got[0] == direction


def test_missing_new_follower_never_makes_a_change_unsafe():
    # Slot 0 is a slow truck far away in another lane. The fast car (slot 1) has an empty left lane: there is
    # no new follower whose braking could make the change unsafe, whoever sits in slot 0.
    far_truck = dict(lane=0, s=600.0, speed=15.0, desire=0.5, length=12.0, max_speed=25.0)
    got, want, _ = mobil_scene(far_truck, FAST_CAR, SLOW_TRUCK)
    assert want[1] == -1
    assert got[1] == -1, "the fast car stays behind the truck: its empty left lane is judged unsafe"


# ---------------------------------------------------------------------------------------------- IDM stop


@pytest.mark.parametrize(
    "speed, jam_gap, headway, max_accel, comfort_decel",
    [(25.0, 2.0, 1.5, 1.5, 2.0), (30.0, 4.0, 1.0, 2.5, 3.0), (10.0, 1.5, 2.0, 0.8, 1.5), (0.0, 3.0, 1.5, 1.0, 2.0)],
)
def test_idm_stops_about_its_jam_gap_short_of_a_stopped_obstacle(speed, jam_gap, headway, max_accel, comfort_decel):
    # Two lanes (the least a highway has), both blocked 200 m ahead, so the follower can only follow.
    cfg_road = HighwayConfig(lanes=2, max_curvature=0.0, on_ramp_s=None, off_ramp_s=None, length_m=1000.0)
    road = build_highway(cfg_road)
    cfg = SimConfig(worlds=1, vehicles=3, controlled=1, inflow=False, road=cfg_road)
    follower = dict(
        lane=1,
        s=100.0,
        speed=speed,
        length=5.0,
        idm_gap=jam_gap,
        idm_headway=headway,
        idm_accel=max_accel,
        idm_decel=comfort_decel,
    )
    obstacles = [dict(lane=lane, s=300.0, speed=0.0, desire=0.0) for lane in (1, 0)]  # 200 m ahead
    st = scene(road, cfg, [[follower, *obstacles]])
    for t in range(15 * 60):
        st, ev = S.tick(st, road, cfg, mobil=(t % cfg.mobil_every_ticks == 0))
        assert not bool(ev.collided.any()), f"collision at tick {t}"
        assert float(st.vehicles.speed.min()) >= 0.0
        assert int(st.vehicles.lane[0, 0]) == 1
    v = st.vehicles
    gap = float(v.s[0, 1] - v.s[0, 0]) - 5.0  # bumper to bumper, both 5 m long
    assert 0.5 * jam_gap <= gap <= jam_gap + 1.0, gap
    obstacle_moved = float(v.s[0, 1]) - 300.0
    assert abs(obstacle_moved) < 0.5, f"the stopped obstacle with desired speed 0 drove {obstacle_moved:.2f} m"
    assert float(v.speed[0, 0]) < 0.05
