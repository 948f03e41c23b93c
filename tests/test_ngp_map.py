"""NGP maps (a city street, the on-ramp, the highway, the off-ramp, another city) and mixed banks of highways,
cities and NGP maps: their structure, their routes, and traffic that drives them."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fuyao.evaluation.runner import evaluate
from fuyao.evaluation.suites import Suite, get_suite
from fuyao.pilots.rule_based import RuleBasedPilot
from fuyao.presets import preset
from fuyao.roads.city import CityConfig, build_city_named
from fuyao.roads.highway import HighwayConfig
from fuyao.roads.lanegraph import MAP_CITY, MAP_HIGHWAY, MAP_NGP, MapError
from fuyao.roads.ngp import NgpConfig, build_ngp
from fuyao.roads.routing import UNREACHABLE
from fuyao.sim.config import ConfigError, MapKind
from fuyao.sim.world import World, build_bank

RAMP = 1


def test_every_controlled_start_reaches_every_controlled_destination_through_the_highway():
    road = build_ngp(NgpConfig(), seed=0)
    start, dest = road.lane_ego_start[0], road.dest_ego[0]
    assert start.sum() >= 4 and dest.sum() >= 4
    cost = road.route.cost[0][start][:, dest]
    assert (cost < 0.5 * UNREACHABLE).all()
    # The highway lies between the cities: every such trip is longer than the highway between the ramps.
    hw = NgpConfig().highway
    assert float(cost.min()) > hw.off_ramp_s - hw.on_ramp_s
    # Follow the route's successors from a start lane: it passes a ramp lane on the way.
    lane, d = int(start.nonzero()[0]), int(dest.nonzero()[0])
    kinds = []
    for _ in range(200):
        hop = int(road.route.next_hop[0, lane, d])
        if hop < 0:
            break
        kinds.append(int(road.lane_kind[0, hop]))
        lane = hop
    assert RAMP in kinds and int(road.lane_exit_group[0, lane]) == d


def test_destinations_are_numbered_without_gaps_and_weighted():
    road = build_ngp(NgpConfig(), seed=1)
    groups = sorted({int(g) for g in road.lane_exit_group[0] if g >= 0})
    assert groups == list(range(road.dest_valid.shape[1]))
    assert int(road.map_kind[0]) == MAP_NGP and bool(road.map_trips[0])
    w = road.dest_weight[0]
    assert float(w[-1]) == float(road.dest_ego[0].sum())  # the highway's end: as often as all of B


def test_ngp_config_is_checked():
    with pytest.raises(MapError, match="NgpConfig.highway"):
        NgpConfig(highway=HighwayConfig(off_ramp_s=None))
    with pytest.raises(MapError, match="NgpConfig.highway.max_curvature"):
        NgpConfig(highway=dataclasses.replace(NgpConfig().highway, max_curvature=1e-3))
    with pytest.raises(ConfigError, match="SimConfig.mix"):
        preset("ngp", mix=(0.0, 0.0, 0.0))


def test_a_mixed_bank_holds_each_kind_in_its_share():
    cfg = preset("ngp", num_maps=7, mix=(2.0, 1.0, 1.0))
    assert cfg.map_counts() == (4, 2, 1)
    road = build_bank(cfg)
    assert road.map_kind.tolist() == [MAP_HIGHWAY] * 4 + [MAP_CITY] * 2 + [MAP_NGP]
    assert road.map_trips.tolist() == [False] * 4 + [True] * 3
    assert preset("ngp", num_maps=3).map_counts() == (1, 1, 1)


def test_city_routes_do_not_ask_for_changes_a_street_beyond_the_next_junction():
    # A car already in the lane for its turn is not told to move out of it for a change it must make in the next
    # street (it did, and then moved back: it wove between the two lanes at every decision).
    road, names = build_city_named(CityConfig(rows=2, cols=2, lanes=2), seed=0)
    rt = road.route
    for name, lane in names.items():
        if not name.startswith("in (") and not name.startswith("out ("):
            continue
        for d in range(rt.cost.shape[2]):
            c = int(rt.changes[0, lane, d])
            hop = int(rt.next_hop[0, lane, d])
            if c != 0 and hop >= 0 and int(road.lane_junction[0, hop]) >= 0:
                pytest.fail(
                    f"{name}: {c} changes toward destination {d}, but the route goes straight into the junction"
                )


def test_trip_destinations_follow_their_weights_and_controlled_ones_their_set():
    cfg = preset("ngp", map=MapKind.NGP, num_maps=1, worlds=256)
    world = World(cfg)
    state = world.reset(seed=5)
    v = state.vehicles
    dest_ego = world.road.dest_ego[0]
    assert dest_ego[v.dest[:, 0]].all()  # every controlled route ends in B
    assert world.road.lane_ego_start[0][v.lane[:, 0]].all()
    background = v.dest[:, 1:][v.present[:, 1:]]
    counts = torch.bincount(background, minlength=dest_ego.shape[0]).float()
    assert (counts > 0).sum() >= dest_ego.shape[0] - 2  # trips go almost everywhere ...
    assert counts[-1] > counts[dest_ego].mean()  # ... the highway's end (weight 7) more than any one of B's (1)


@pytest.mark.slow
def test_the_rule_based_pilot_drives_ngp_trips():
    suite = get_suite("ngp")
    trip = next(s for s in suite.scenarios if s.name == "ngp-trip")
    small = Suite("ngp-small", "0", "", (dataclasses.replace(trip, episodes=16),))
    summary = evaluate(RuleBasedPilot, small, "cpu").summary
    assert summary["collision_rate"] == 0.0, summary
    assert summary["red_light_runs_per_km"] == 0.0, summary
    assert summary["route_failure_rate"] <= 0.125, summary
    assert summary["progress_m"] > 900.0, summary  # past the off-ramp on average
    assert summary["arrival_rate"] > 0.25, summary


def test_the_ngp_suite_shares_one_space_and_has_a_disjoint_validation_twin():
    suite = get_suite("ngp")
    val = suite.validation()
    assert {s.name for s in suite.scenarios} >= {"ngp-trip", "highway-exit", "highway-merge", "city-cruise"}
    for a, b in zip(suite.scenarios, val.scenarios, strict=True):
        assert a.seed != b.seed and a.sim.map_seed != b.sim.map_seed
    assert val.observation_space == suite.observation_space


def test_on_ramp_starts_on_a_mixed_bank_go_where_a_map_has_an_on_ramp():
    """The `ngp` training preset starts half the episodes' first agent on the on-ramp (merges are rare otherwise):
    on highway and NGP maps that is the on-ramp, on city maps (no ramp) the usual start; the route still reaches
    a destination."""
    from fuyao.sim.geometry import route_attr
    from fuyao.sim.reset import RAMP_KIND, RAMP_START_S
    from fuyao.train.config import TRAIN_PRESETS

    assert TRAIN_PRESETS["ngp"].sim.ego_ramp_fraction == 0.5
    world = World(preset("ngp", worlds=48, num_maps=6, ego_ramp_fraction=1.0), torch.device("cpu"))
    st = world.reset(5)
    road, m = world.road, st.map_id
    kinds = road.map_kind[m]
    on = (road.lane_kind[m.unsqueeze(1), st.vehicles.lane][:, 0] == RAMP_KIND) & (st.vehicles.s[:, 0] == RAMP_START_S)
    assert {int(k) for k in kinds.unique()} == {MAP_HIGHWAY, MAP_CITY, MAP_NGP}
    assert bool(on[kinds != MAP_CITY].all()) and not bool(on[kinds == MAP_CITY].any())
    cost = route_attr(road.route.cost, road, m.unsqueeze(1), st.vehicles.lane[:, :1], st.vehicles.dest[:, :1])
    assert bool((cost < 0.5 * UNREACHABLE).all())
    assert bool(st.vehicles.controlled[:, 0].all()) and bool(st.active[:, 0].all())
