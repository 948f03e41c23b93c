"""Lane graph geometry, routing tables, highway and junction builders, and their input checks."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from fuyao.roads.highway import HighwayConfig, build_highway, build_highway_bank
from fuyao.roads.junction import build_t_junction, lane_ids
from fuyao.roads.lanegraph import LaneGraphBuilder, MapError, stack_maps
from fuyao.roads.routing import UNREACHABLE
from fuyao.sim.geometry import lane_point, map_to_lane, vehicle_pose, wrap_angle

STRAIGHT = HighwayConfig(lanes=3, max_curvature=0.0, on_ramp_s=None, off_ramp_s=None, length_m=1000.0)


def test_point_and_pose_on_a_straight_lane():
    road = build_highway(STRAIGHT)
    m = torch.zeros(1, dtype=torch.int64)
    # Lane 2 (rightmost) lies 8 m to the right of lane 0 along +x.
    xy, yaw, kappa = lane_point(road, m, torch.tensor([[2]]), torch.tensor([[123.4]]))
    assert torch.allclose(xy, torch.tensor([[[123.4, -8.0]]]), atol=1e-4)
    assert abs(float(yaw)) < 1e-6 and abs(float(kappa)) < 1e-6
    pos, heading = vehicle_pose(
        road, m, torch.tensor([[2]]), torch.tensor([[10.0]]), torch.tensor([[1.5]]), torch.tensor([[0.2]])
    )
    assert torch.allclose(pos, torch.tensor([[[10.0, -6.5]]]), atol=1e-4)  # d > 0 is to the left (+y)
    assert torch.allclose(heading, torch.tensor([[0.2]]), atol=1e-6)


def test_tables_too_large_for_int32_indices_are_refused():
    road = build_highway(STRAIGHT)
    # An expanded view: 2^31 + 2 entries without the memory.
    huge = torch.zeros(1, 1, 1, 1).expand(1, 1, 2**30 + 1, 2)
    with pytest.raises(MapError, match=r"lane_xy has 2,147,483,650 .*at most 2,147,483,647"):
        dataclasses.replace(road, lane_xy=huge)


def test_arc_lane_has_its_curvature_and_positions():
    radius = 100.0
    theta = np.linspace(0, math.pi / 2, 3000)  # dense: resampled chords follow the arc
    pts = np.stack([radius * np.sin(theta), radius - radius * np.cos(theta)], axis=1)  # left turn from the origin
    b = LaneGraphBuilder(spacing=1.0)
    b.add_lane(pts, 4.0, 20.0, exit_group=0)
    road = b.build()
    length = float(road.lane_length[0, 0])
    assert length == pytest.approx(radius * math.pi / 2, rel=1e-3)
    s = torch.tensor([[length / 2]])
    xy, yaw, kappa = lane_point(road, torch.zeros(1, dtype=torch.int64), torch.zeros(1, 1, dtype=torch.int64), s)
    assert float(kappa) == pytest.approx(1 / radius, rel=0.02)
    assert float(yaw) == pytest.approx(math.pi / 4, abs=0.01)
    expected = [radius * math.sin(math.pi / 4), radius - radius * math.cos(math.pi / 4)]
    assert torch.allclose(xy[0, 0], torch.tensor(expected, dtype=torch.float32), atol=0.05)
    # The offset point at d = 2 m lies on the circle of radius R - 2 about the centre (0, R).
    pos, _ = vehicle_pose(
        road,
        torch.zeros(1, dtype=torch.int64),
        torch.zeros(1, 1, dtype=torch.int64),
        s,
        torch.tensor([[2.0]]),
        torch.zeros(1, 1),
    )
    assert float(torch.linalg.norm(pos[0, 0] - torch.tensor([0.0, radius]))) == pytest.approx(radius - 2.0, abs=0.05)


def test_curved_highway_lanes_are_parallel_and_lane_changes_map_exactly():
    cfg = HighwayConfig(
        lanes=4, max_curvature=1 / 400.0, on_ramp_s=None, off_ramp_s=None, length_m=1500.0, curve_segment_m=300.0
    )
    road = build_highway(cfg, seed=3)
    assert float(road.lane_kappa.abs().max()) > 1 / 800.0  # it does curve
    m = torch.zeros(1, dtype=torch.int64)
    for frac in (0.1, 0.5, 0.9):
        s0 = torch.tensor([[frac * float(road.lane_length[0, 0])]])
        p0, yaw0, _ = lane_point(road, m, torch.tensor([[0]]), s0)
        for lane in range(1, 4):
            # Lane 0's centre point, expressed on lane 1, 2, 3, lies 4 m per lane to their left: the lanes are
            # parallel at 4 m spacing and the mapping lands on the same cross-section.
            s_b, d_b = map_to_lane(road, m, torch.tensor([[0]]), s0, torch.zeros(1, 1), torch.tensor([[lane]]))
            assert float(d_b) == pytest.approx(4.0 * lane, abs=0.02)
            p, yaw, _ = lane_point(road, m, torch.tensor([[lane]]), s_b)
            assert float(torch.linalg.norm(p - p0)) == pytest.approx(4.0 * lane, abs=0.02)
            assert abs(float(wrap_angle(yaw - yaw0))) < 0.02
            # Round trip: back onto lane 0 lands where it started.
            s_back, d_back = map_to_lane(road, m, torch.tensor([[lane]]), s_b, d_b, torch.tensor([[0]]))
            assert float(s_back) == pytest.approx(float(s0), abs=0.05)
            assert abs(float(d_back)) < 0.02


def test_highway_routing_tables():
    road = build_highway(HighwayConfig(max_curvature=0.0), seed=0)
    r = road.route
    names = road.names
    assert names == ("highway-3l-seed0",)
    exit_lanes = torch.nonzero(road.lane_exit_group[0] == 1).flatten().tolist()
    assert len(exit_lanes) == 1  # one off-ramp
    ramp = exit_lanes[0]
    # Every first-section lane can reach both destinations; the rightmost needs fewer changes to exit.
    first = [i for i in range(3)]
    assert all(float(r.cost[0, i, 0]) < UNREACHABLE for i in first)
    changes_to_exit = [int(r.changes[0, i, 1]) for i in first]
    assert changes_to_exit == [3, 2, 1]  # three lanes plus the deceleration lane, all to the right
    # Past the off-ramp, the exit is unreachable (a missed exit).
    last = torch.nonzero(road.lane_exit_group[0] == 0).flatten().tolist()
    assert all(float(r.cost[0, i, 1]) >= UNREACHABLE for i in last)
    # The deceleration lane continues onto the ramp.
    decel = int(road.lane_pred[0, ramp])
    assert int(r.best_succ[0, decel, 1]) == ramp
    # The on-ramp leads into an acceleration lane that ends: a dead end that must be left to the left.
    accel = [i for i in range(road.max_lanes) if bool(road.lane_is_sink[0, i]) and int(road.lane_exit_group[0, i]) < 0]
    assert len(accel) == 1
    assert bool(road.lane_leads_to_dead_end[0, accel[0]])
    assert int(r.changes[0, accel[0], 0]) == -1 and int(r.changes[0, accel[0], 1]) == -1


def test_map_bank_pads_and_keeps_routes():
    a = build_highway(HighwayConfig(lanes=2, off_ramp_s=None, on_ramp_s=None), seed=1)
    b = build_highway(HighwayConfig(lanes=5), seed=2)
    bank = stack_maps([a, b])
    assert bank.num_maps == 2 and bank.max_lanes == b.max_lanes
    assert bank.dest_valid.tolist() == [[True, False], [True, True]]
    assert not bool(bank.lane_valid[0, a.max_lanes :].any())
    assert torch.equal(bank.route.cost[1], b.route.cost[0])
    assert torch.equal(bank.route.cost[0, : a.max_lanes, :1], a.route.cost[0])
    bank4 = build_highway_bank(HighwayConfig(), 4, seed=7)
    assert bank4.num_maps == 4 and len(set(bank4.names)) == 4


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(lanes=0), "lanes"),
        (dict(lanes=7), "lanes"),
        (
            dict(length_m=300.0, ramp_length_m=250.0, accel_lane_m=200.0, on_ramp_s=100.0, off_ramp_s=None),
            "ramp_length_m",
        ),
        (dict(on_ramp_s=50.0), "on_ramp_s"),
        (dict(off_ramp_s=500.0), "off_ramp_s"),
        (dict(lane_width_m=0.0), "lane_width_m"),
        (dict(spawn_window=(10.0, 5.0)), "spawn_window"),
    ],
)
def test_invalid_highways_name_field_and_value(kwargs, field):
    with pytest.raises(MapError) as err:
        HighwayConfig(**kwargs)
    message = str(err.value)
    assert f"HighwayConfig.{field}" in message and "allowed" in message


def test_ramp_longer_than_road_is_refused():
    with pytest.raises(MapError, match="longer than the road"):
        HighwayConfig(length_m=300.0, ramp_length_m=250.0, accel_lane_m=100.0, on_ramp_s=250.0, off_ramp_s=None)


def test_t_junction_connectors_and_conflicts():
    road = build_t_junction()
    ids = lane_ids(road)
    r = road.route
    # The route from each incoming lane to each other arm goes through the right connector.
    expect = {
        ("in_w", 1): "w_e",
        ("in_w", 2): "w_s",
        ("in_e", 0): "e_w",
        ("in_e", 2): "e_s",
        ("in_s", 1): "s_e",
        ("in_s", 0): "s_w",
    }
    for (src, dest), conn in expect.items():
        assert int(r.best_succ[0, ids[src], dest]) == ids[conn]
    # U-turns do not exist.
    assert float(r.cost[0, ids["in_w"], 0]) >= UNREACHABLE
    conflicts = {(a, int(b)) for a in range(road.max_lanes) for b in road.conflict_lane[0, a].tolist() if b >= 0}
    # Crossing paths conflict, merging paths conflict, forks from one lane do not.
    assert (ids["w_e"], ids["s_w"]) in conflicts  # crossing
    assert (ids["w_e"], ids["s_e"]) in conflicts  # merging into the eastbound lane
    assert (ids["e_s"], ids["w_e"]) in conflicts  # left turn across oncoming traffic
    assert (ids["w_e"], ids["w_s"]) not in conflicts  # fork
    for a, b in conflicts:
        assert (b, a) in conflicts  # symmetric
    assert road.has_conflicts
