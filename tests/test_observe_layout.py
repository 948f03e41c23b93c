"""The observation layout is the seam between `observe` and the encoders: `observe` writes each block where the
layout says, and each encoder reads exactly the layout's slices."""

import dataclasses

import pytest
import torch

from fuyao.pilots.networks import ActorCritic, Encoder, KinematicsEncoder, NativeEncoder, PolicyConfig
from fuyao.roads.highway import HighwayConfig, build_highway
from fuyao.sim.config import ObservationType, SimConfig
from fuyao.sim.observe import KinematicsLayout, ObservationLayout, observation_shape, observe
from fuyao.sim.scene import scene

ROAD_CFG = HighwayConfig(lanes=3, max_curvature=0.0, on_ramp_s=None, off_ramp_s=None, length_m=2000.0)
CONFIGS = [
    SimConfig(worlds=1, vehicles=4, controlled=1, inflow=False),
    SimConfig(worlds=1, vehicles=4, controlled=1, inflow=False, neighbours=2, lookahead_m=(0.0, 40.0)),
    SimConfig(worlds=1, vehicles=6, controlled=2, inflow=False, neighbours=8, lookahead_m=(5.0,)),
]


def _scene(cfg: SimConfig):
    road = build_highway(ROAD_CFG)
    vehicles = [
        dict(lane=2, s=500.0, speed=25.0, controlled=True),  # rightmost lane: no right neighbour
        dict(lane=2, s=540.0, speed=20.0, length=5.0),  # leader: bumper gap 35 m, 5 m/s slower
        dict(lane=1, s=480.0, speed=30.0, length=5.0),  # left follower
        dict(lane=0, s=600.0, speed=25.0, length=10.0),
    ]
    if cfg.controlled == 2:
        vehicles.insert(1, dict(lane=1, s=300.0, speed=22.0, controlled=True))
    return road, scene(road, cfg, [vehicles])


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"k{c.neighbours}-p{len(c.lookahead_m)}")
def test_layout_blocks_tile_the_observation(cfg):
    layout = ObservationLayout.of(cfg)
    starts = [b.start for b in layout.blocks]
    stops = [b.stop for b in layout.blocks]
    assert starts[0] == 0 and starts[1:] == stops[:-1]  # contiguous, no gaps, no overlaps
    assert layout.size == observation_shape(cfg)[0] == sum(b.size for b in layout.blocks)
    road, st = _scene(cfg)
    assert observe(st, road, cfg).shape == (1, cfg.controlled, layout.size)
    assert layout.neighbours.rows == cfg.neighbours and layout.lookahead_points == len(cfg.lookahead_m)
    kin = dataclasses.replace(cfg, observation=ObservationType.HIGHWAY_KINEMATICS)
    assert observation_shape(kin) == (KinematicsLayout.of(kin).rows, len(KinematicsLayout.of(kin).features))


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"k{c.neighbours}-p{len(c.lookahead_m)}")
def test_observe_writes_each_block_where_the_layout_says(cfg):
    """Features named by the layout hold what `observe` computes for them, in a scene with known answers."""
    layout = ObservationLayout.of(cfg)
    road, st = _scene(cfg)
    obs = observe(st, road, cfg)[0, 0]

    def at(block, feature, row=0):
        return float(block.read(obs)[row, block.column(feature)])

    assert at(layout.ego, "speed") == pytest.approx(25.0 / 30.0)
    assert at(layout.ego, "length") == pytest.approx(5.0 / 10.0)
    assert at(layout.ego, "speed_limit") == pytest.approx(ROAD_CFG.speed_limit / 30.0)
    # Nearest first: the left follower (20 m back, 4 m left), then the leader (40 m ahead).
    assert at(layout.neighbours, "present") == 1.0 and at(layout.neighbours, "left_lane") == 1.0
    assert at(layout.neighbours, "dx") == pytest.approx(-20.0 / 50.0, abs=1e-4)
    assert at(layout.neighbours, "dy") == pytest.approx(4.0 / 10.0, abs=1e-4)
    if cfg.neighbours > 1:
        assert at(layout.neighbours, "dx", row=1) == pytest.approx(40.0 / 50.0, abs=1e-4)
        assert at(layout.neighbours, "same_lane", row=1) == 1.0
    assert [at(layout.lanes, "exists", row) for row in range(3)] == [1.0, 1.0, 0.0]  # own, left, no right lane
    assert at(layout.lanes, "x0") == pytest.approx(cfg.lookahead_m[0] / 100.0, abs=1e-4)
    assert at(layout.lanes, "y0", row=1) == pytest.approx(ROAD_CFG.lane_width_m / 10.0, abs=1e-4)  # left: +4 m
    assert at(layout.traffic, "lead_present") == 1.0
    assert at(layout.traffic, "lead_gap") == pytest.approx(35.0 / 50.0, abs=1e-5)
    assert at(layout.traffic, "lead_dv") == pytest.approx(-5.0 / 30.0, abs=1e-5)
    assert at(layout.traffic, "follow_present") == 0.0 and at(layout.traffic, "follow_gap") == 2.0
    assert at(layout.traffic, "right_lead_present") == 0.0 and at(layout.traffic, "left_follow_present") == 1.0
    assert at(layout.potential, "behind_right_lead") == -2.0  # no right lane: -10 / 5 clipped
    assert at(layout.potential, "imposed_right_follow") == 0.0
    assert at(layout.route, "lanes_here") == pytest.approx(3.0 / 6.0)
    assert at(layout.route, "on_route_right") == 0.0 and at(layout.route, "on_route_own") == 1.0
    assert at(layout.route, "time") == 0.0


class _Record(torch.nn.Module):
    """Wraps a module and keeps the last input it saw."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.seen = inner, None

    def forward(self, x):
        self.seen = x.detach().clone()
        return self.inner(x)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"k{c.neighbours}-p{len(c.lookahead_m)}")
def test_native_encoder_reads_each_feature_from_its_block(cfg):
    """An observation whose every feature is its own index: each MLP of the pooled encoder sees exactly its
    blocks' indices, in layout order, and every feature reaches the encoder once (the exists flags as masks)."""
    layout = ObservationLayout.of(cfg)
    enc = NativeEncoder(cfg, hidden=8)
    enc.ego, enc.neighbour, enc.lane_point = _Record(enc.ego), _Record(enc.neighbour), _Record(enc.lane_point)
    index = torch.arange(layout.size, dtype=torch.float32)
    enc(index.unsqueeze(0))

    def span(block):
        return list(range(block.start, block.stop))

    context = span(layout.ego) + span(layout.potential) + span(layout.traffic) + span(layout.route)
    assert enc.ego.seen[0].long().tolist() == context
    assert enc.neighbour.seen[0].flatten().long().tolist() == span(layout.neighbours)
    points = enc.lane_point.seen[0, :, :3].flatten().long().tolist()
    exists = [layout.lanes.start + row * layout.lanes.width for row in range(layout.lanes.rows)]
    assert sorted(points + exists) == span(layout.lanes)
    assert sorted(context + span(layout.neighbours) + points + exists) == list(range(layout.size))


def test_native_encoder_masks_by_the_layouts_presence_and_existence():
    """Changing the neighbours' presence flags or the lanes' existence flags changes the pooled output only
    through the layout's columns: with all absent, the pooled parts are zero whatever the other features."""
    cfg = CONFIGS[0]
    layout = ObservationLayout.of(cfg)
    torch.manual_seed(0)
    enc = NativeEncoder(cfg, hidden=8)
    obs = torch.rand(3, layout.size) + 0.5
    absent = obs.clone()
    absent[:, layout.neighbours.start + layout.neighbours.column("present") :: layout.neighbours.width][
        :, : layout.neighbours.rows
    ] = 0.0
    for row in range(layout.lanes.rows):
        absent[:, layout.lanes.start + row * layout.lanes.width + layout.lanes.column("exists")] = 0.0
    out = enc(absent)
    h = 8
    assert torch.equal(out[:, h:], torch.zeros(3, 2 * h))
    assert not torch.equal(enc(obs)[:, h:], torch.zeros(3, 2 * h))
    assert torch.equal(out[:, :h], enc(obs)[:, :h])  # the ego MLP does not read the presence columns


def test_pooled_encoder_reads_traffic_not_lane_potential():
    """The drift this layout fixes: perturbing the traffic block changes the ego MLP's input at the traffic
    positions only, and perturbing the lane potential changes it at the potential positions only."""
    cfg = CONFIGS[0]
    layout = ObservationLayout.of(cfg)
    road, st = _scene(cfg)
    obs = observe(st, road, cfg).flatten(0, 1)
    enc = NativeEncoder(cfg, hidden=8)
    enc.ego = _Record(enc.ego)
    enc(obs)
    base = enc.ego.seen
    offsets, at = {}, 0
    for block in enc.context:
        offsets[block.name] = (at, at + block.size)
        at += block.size
    for name in ("traffic", "potential"):
        block = getattr(layout, name)
        bumped = obs.clone()
        bumped[:, block.start : block.stop] += 1.0
        enc(bumped)
        changed = (enc.ego.seen != base).any(dim=0).nonzero().flatten().tolist()
        lo, hi = offsets[name]
        assert changed == list(range(lo, hi)), name
        assert torch.equal(enc.ego.seen[:, lo:hi], bumped[:, block.start : block.stop])


def test_kinematics_encoder_reads_the_ego_row_and_masks_others_by_presence():
    cfg = SimConfig(worlds=1, vehicles=6, controlled=1, observation=ObservationType.HIGHWAY_KINEMATICS)
    layout = KinematicsLayout.of(cfg)
    enc = KinematicsEncoder(cfg, hidden=8)
    enc.ego, enc.other = _Record(enc.ego), _Record(enc.other)
    index = torch.arange(layout.rows * len(layout.features), dtype=torch.float32).view(1, layout.rows, -1)
    enc(index)
    assert torch.equal(enc.ego.seen, index[:, layout.ego_row])
    assert torch.equal(enc.other.seen, index[:, layout.others])
    absent = index.clone() + 1.0
    absent[:, layout.others, layout.column("presence")] = 0.0
    assert torch.equal(enc(absent)[:, 8:], torch.zeros(1, 8))


def test_actor_critic_runs_on_what_observe_returns():
    cfg = CONFIGS[2]
    road, st = _scene(cfg)
    obs = observe(st, road, cfg).flatten(0, 1)
    model = ActorCritic(cfg, PolicyConfig(encoder=Encoder.POOLED, hidden=16))
    logits, value = model(obs)
    assert logits.shape == (cfg.controlled, 5) and value.shape == (cfg.controlled,)
    assert torch.isfinite(logits).all() and torch.isfinite(value).all()
