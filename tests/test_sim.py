"""The step on tiny hand-built worlds: collisions, ramps, junctions, actions, termination, bad configs."""

import dataclasses
import math

import pytest
import torch

from fuyao.presets import preset
from fuyao.roads.highway import HighwayConfig, build_highway
from fuyao.roads.junction import build_t_junction, lane_ids
from fuyao.sim import step as S
from fuyao.sim.collision import boxes_overlap
from fuyao.sim.config import ConfigError, SimConfig
from fuyao.sim.scene import scene
from fuyao.sim.world import World

STRAIGHT_RAMPS = HighwayConfig(lanes=2, max_curvature=0.0, length_m=1600.0, on_ramp_s=300.0, off_ramp_s=1100.0)


def run_ticks(state, road, cfg, ticks):
    events = []
    for t in range(ticks):
        state, ev = S.tick(state, road, cfg, mobil=(t % cfg.mobil_every_ticks == 0))
        events.append(ev)
    return state, events


def test_oriented_boxes():
    def overlap(xy_b, yaw_b):
        return bool(
            boxes_overlap(
                torch.zeros(2),
                torch.tensor(0.0),
                torch.tensor(4.0),
                torch.tensor(2.0),
                torch.tensor(xy_b),
                torch.tensor(yaw_b),
                torch.tensor(4.0),
                torch.tensor(2.0),
            )
        )

    assert overlap([3.9, 0.0], 0.0)  # bumpers overlap by 0.1 m
    assert not overlap([4.1, 0.0], 0.0)
    assert not overlap([0.0, 2.1], 0.0)
    assert overlap([0.0, 1.9], 0.0)
    # Rotated 45 degrees: its corner reaches sqrt(5) ~ 2.24 m from its centre along the diagonal.
    assert overlap([2.0 + 2.0, 0.0], math.pi / 4)
    assert not overlap([2.0 + 2.4, 0.0], math.pi / 4)
    # Diagonally off the corner (2, 1): only the rotated box's own length axis separates them (an
    # axis-aligned bounding-box test would call this a hit); a little closer it is a hit.
    assert not overlap([3.6, 2.6], math.pi / 4)
    assert overlap([3.2, 2.2], math.pi / 4)


def test_rear_end_collision_happens_at_the_expected_tick():
    cfg = SimConfig(worlds=1, vehicles=2, controlled=1, inflow=False, action="continuous")
    road = build_highway(HighwayConfig(max_curvature=0.0, on_ramp_s=None, off_ramp_s=None))
    # A controlled car at 20 m/s holding zero acceleration hits a stopped car 30 m ahead (bumper gap 25 m):
    # contact when 20 t >= 25, i.e. after 1.25 s = tick 19 (t = 19/15 s) at 15 Hz.
    st = scene(
        road,
        cfg,
        [
            [
                dict(lane=1, s=100.0, speed=20.0, controlled=True, cmd_accel=0.0),
                dict(lane=1, s=130.0, speed=0.0, desire=0.0),
            ]
        ],
    )
    st, events = run_ticks(st, road, cfg, 25)
    first = next(i for i, ev in enumerate(events) if bool(ev.collided[0, 0]))
    assert first + 1 == math.ceil(25.0 / 20.0 * 15)
    assert bool(events[first].collided[0, 1])  # both parties are flagged


def test_idm_follower_stops_behind_obstacle_without_collision():
    cfg = SimConfig(worlds=1, vehicles=3, controlled=1, inflow=False)
    road = build_highway(HighwayConfig(lanes=2, max_curvature=0.0, on_ramp_s=None, off_ramp_s=None, length_m=2000.0))
    # Both lanes blocked, so the follower cannot pass.
    st = scene(
        road,
        cfg,
        [
            [
                dict(lane=1, s=100.0, speed=25.0, desire=1.0, idm_gap=2.0),
                dict(lane=1, s=400.0, speed=0.0, desire=0.0),
                dict(lane=0, s=400.0, speed=0.0, desire=0.0),
            ]
        ],
    )
    st, events = run_ticks(st, road, cfg, 15 * 60)
    assert not any(bool(ev.collided.any()) for ev in events)
    gap = float(st.vehicles.s[0, 1] - st.vehicles.s[0, 0]) - 5.0
    assert 1.0 <= gap <= 3.0  # about the jam gap s0 = 2 m
    assert float(st.vehicles.speed[0, 0]) < 0.1


def _highway_lane_ids(road):
    kinds = road.lane_kind[0].tolist()
    exits = road.lane_exit_group[0].tolist()
    sinks = road.lane_is_sink[0].tolist()
    on_ramp = next(i for i in range(len(kinds)) if kinds[i] == 1 and bool(road.lane_is_source[0, i]))
    off_ramp = exits.index(1)
    accel = next(i for i in range(len(kinds)) if sinks[i] and exits[i] < 0)
    return on_ramp, accel, off_ramp


def test_merging_car_merges_and_exiting_car_exits():
    cfg = SimConfig(worlds=1, vehicles=4, controlled=1, inflow=False, road=STRAIGHT_RAMPS)
    road = build_highway(STRAIGHT_RAMPS)
    on_ramp, accel, off_ramp = _highway_lane_ids(road)
    st = scene(
        road,
        cfg,
        [
            [
                dict(lane=on_ramp, s=20.0, speed=18.0, dest=0),  # joins from the on-ramp, bound for the highway's end
                dict(lane=0, s=10.0, speed=25.0, dest=1),  # in the left lane, bound for the off-ramp
            ]
        ],
    )
    lanes_seen = [set(), set()]
    arrived = [False, False]
    offroad = False
    for t in range(15 * 90):
        st, ev = S.tick(st, road, cfg, mobil=(t % 15 == 0))
        offroad |= bool(ev.offroad.any())
        assert not bool(ev.collided.any())
        for i in range(2):
            arrived[i] |= bool(ev.arrived[0, i])
            if bool(st.vehicles.present[0, i]):
                lanes_seen[i].add(int(st.vehicles.lane[0, i]))
    assert not offroad
    assert accel in lanes_seen[0] and arrived[0]  # entered the acceleration lane, merged, reached the end
    assert off_ramp in lanes_seen[1] and arrived[1]  # moved over two lanes and took the exit
    ends = road.lane_exit_group[0].tolist()
    assert ends[off_ramp] == 1


def test_controlled_car_that_misses_its_exit_fails_its_route():
    cfg = SimConfig(worlds=1, vehicles=2, controlled=1, inflow=False, road=STRAIGHT_RAMPS, episode_s=100.0)
    world = World(cfg, road=build_highway(STRAIGHT_RAMPS))
    st = scene(world.road, cfg, [[dict(lane=0, s=900.0, speed=25.0, dest=1, controlled=True)]])
    failed = False
    for _ in range(20):
        result = world.step(st, torch.tensor([[S.META_IDLE]]))  # never moves right
        if bool(result.terminated[0, 0]):
            failed = bool(result.info["route_failure"][0, 0])
            assert not bool(result.truncated[0, 0])
            break
        st = result.state
    assert failed


def test_meta_actions_follow_highway_env_semantics():
    cfg = SimConfig(
        worlds=1,
        vehicles=1,
        controlled=1,
        inflow=False,
        target_speeds=(20.0, 25.0, 30.0),
        road=HighwayConfig(max_curvature=0.0, on_ramp_s=None, off_ramp_s=None),
    )
    world = World(cfg, road=build_highway(cfg.road))
    st = scene(world.road, cfg, [[dict(lane=1, s=100.0, speed=25.0, controlled=True)]])
    mask = world.action_mask(st)[0, 0].tolist()
    assert mask == [True, True, True, True, True]
    r = world.step(st, torch.tensor([[S.META_FASTER]]))
    assert float(r.state.vehicles.target_speed[0, 0]) == 30.0
    assert float(r.state.vehicles.speed[0, 0]) > 28.0  # proportional speed control, tau 0.6 s, over 1 s
    assert world.action_mask(r.state)[0, 0].tolist()[3] is False  # already at the top speed
    r = world.step(r.state, torch.tensor([[S.META_LEFT]]))
    r = world.step(r.state, torch.tensor([[S.META_IDLE]]))
    assert int(r.state.vehicles.lane[0, 0]) == 0 and abs(float(r.state.vehicles.d[0, 0])) < 0.5
    assert world.action_mask(r.state)[0, 0].tolist()[0] is False  # no lane left of the leftmost


def test_continuous_steering_off_the_road_terminates():
    cfg = SimConfig(
        worlds=1,
        vehicles=1,
        controlled=1,
        inflow=False,
        action="continuous",
        decision_hz=5,
        road=HighwayConfig(max_curvature=0.0, on_ramp_s=None, off_ramp_s=None),
    )
    world = World(cfg, road=build_highway(cfg.road))
    st = scene(world.road, cfg, [[dict(lane=0, s=100.0, speed=20.0, controlled=True)]])
    for _ in range(20):
        r = world.step(st, torch.tensor([[[0.5, 0.3]]]))  # steer left, off the leftmost lane
        if bool(r.terminated[0, 0]):
            assert bool(r.info["offroad"][0, 0])
            return
        st = r.state
    pytest.fail("steering off the road never terminated the episode")


def test_t_junction_vehicles_follow_their_routes():
    road = build_t_junction()
    ids = lane_ids(road)
    cfg = SimConfig(worlds=1, vehicles=6, inflow=False)
    plan = [
        ("in_w", 1, "w_e"),
        ("in_e", 2, "e_s"),
        ("in_s", 0, "s_w"),
        ("in_w", 2, "w_s"),
        ("in_s", 1, "s_e"),
        ("in_e", 0, "e_w"),
    ]
    starts = [80.0, 80.0, 80.0, 50.0, 40.0, 60.0]
    st = scene(road, cfg, [[dict(lane=ids[a], s=s0, speed=10.0, dest=d) for (a, d, _), s0 in zip(plan, starts)]])
    seen = [set() for _ in plan]
    arrived = torch.zeros(len(plan), dtype=torch.bool)
    for t in range(15 * 40):
        st, ev = S.tick(st, road, cfg, mobil=(t % 15 == 0))
        assert not bool(ev.collided.any()), f"collision at tick {t}"
        assert not bool(ev.offroad.any()), f"off-road at tick {t}"
        arrived |= ev.arrived[0]
        for i in range(len(plan)):
            if bool(st.vehicles.present[0, i]):
                seen[i].add(int(st.vehicles.lane[0, i]))
    assert bool(arrived.all())
    out = {0: "out_w", 1: "out_e", 2: "out_s"}
    for (src, dest, conn), lanes in zip(plan, seen):
        assert lanes == {ids[src], ids[conn], ids[out[dest]]}


def test_terminated_and_truncated_are_kept_apart():
    cfg = preset("smoke", worlds=8, episode_s=6.0)
    world = World(cfg)
    st = world.reset(seed=1)
    g = torch.Generator().manual_seed(0)
    saw_truncation = False
    for _ in range(12):
        r = world.step(st, torch.randint(0, 5, (8, 1), generator=g))
        assert not bool((r.terminated & r.truncated).any())
        ended = (r.terminated | r.truncated).any(dim=1)
        assert torch.equal(ended | r.world_done, r.world_done)  # C = 1: an ended episode resets its world
        saw_truncation |= bool(r.truncated.any())
        st = r.state
    assert saw_truncation
    assert int(st.decisions.max()) < 6


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(controlled=5, vehicles=4), "controlled"),
        (dict(action="teleport"), "action"),
        (dict(observation="lidar"), "observation"),
        (dict(decision_hz=4), "decision_hz"),
        (dict(worlds=0), "worlds"),
        (dict(target_speeds=(30.0, 20.0)), "target_speeds"),
    ],
)
def test_invalid_sim_configs_name_field_value_and_allowed(kwargs, field):
    with pytest.raises(ConfigError) as err:
        SimConfig(**kwargs)
    assert f"SimConfig.{field}" in str(err.value) and "allowed" in str(err.value)


def test_more_vehicles_than_fit_is_refused():
    cfg = dataclasses.replace(preset("smoke"), vehicles=500)
    with pytest.raises(ConfigError, match=r"SimConfig.vehicles: got 500; allowed: at most \d+"):
        World(cfg)


def test_unknown_compile_choice_is_refused():
    with pytest.raises(
        ConfigError, match=r"World.compile: got 'fast'; allowed: False, True / 'all', 'tick', 'tick\+observe'"
    ):
        World(preset("smoke"), compile="fast")


def test_a_failed_compile_falls_back_to_the_eager_step_with_a_warning():
    cfg = preset("smoke", worlds=3)
    action = torch.full((3, cfg.controlled), 3)
    world = World(cfg)
    eager = world.step(world.reset(seed=2), action)

    def no_compiler(*args, **kwargs):
        raise RuntimeError("InductorError: no C++ compiler")

    broken = World(cfg)
    broken._parts = (no_compiler, no_compiler, no_compiler)  # what World(compile=True) holds, failing
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler.*running it eagerly"):
        result = broken.step(broken.reset(seed=2), action)
    assert torch.equal(result.state.vehicles.s, eager.state.vehicles.s)
    assert torch.equal(result.reward, eager.reward)
    assert broken._parts is None

    broken._observe = no_compiler  # what World(compile="tick+observe") holds, failing
    state = broken.reset(seed=2)
    with pytest.warns(RuntimeWarning, match=r"observation failed.*no C\+\+ compiler.*running it eagerly"):
        obs = broken.observe(state)
    assert torch.equal(obs, world.observe(state)) and broken._observe is None


def test_same_seed_same_rollout_bit_for_bit():
    def rollout(seed):
        world = World(preset("smoke", worlds=6))
        st = world.reset(seed=seed)
        g = torch.Generator().manual_seed(3)
        out = []
        for _ in range(15):
            r = world.step(st, torch.randint(0, 5, (6, 1), generator=g))
            st = r.state
            out += [st.vehicles.s, st.vehicles.d, st.vehicles.speed, r.reward, world.observe(st)]
        return out

    a, b, c = rollout(0), rollout(0), rollout(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_native_observation_lane_neighbours_report_gap_and_closing_speed():
    cfg = SimConfig(worlds=1, vehicles=4, controlled=1, inflow=False)
    road = build_highway(HighwayConfig(lanes=3, max_curvature=0.0, on_ramp_s=None, off_ramp_s=None, length_m=2000.0))
    st = scene(
        road,
        cfg,
        [
            [
                dict(lane=1, s=500.0, speed=25.0, controlled=True),  # 5 m long
                dict(lane=1, s=540.0, speed=20.0, length=5.0),  # leader: bumper gap 35 m, 5 m/s slower
                dict(lane=0, s=480.0, speed=30.0, length=5.0),  # lane 0 follower: gap 15 m, 5 m/s faster
                dict(lane=2, s=600.0, speed=25.0, length=10.0),  # lane 2 leader: gap 92.5 m
            ]
        ],
    )
    from fuyao.sim.observe import ObservationLayout, observe

    obs = observe(st, road, cfg)[0, 0]
    traffic = ObservationLayout.of(cfg).traffic.flat(obs).view(6, 3)
    lead, follow, a_lead, a_follow, b_lead, b_follow = traffic.tolist()
    assert lead == pytest.approx([1.0, 35.0 / 50.0, -5.0 / 30.0], abs=1e-5)
    assert follow == [0.0, 2.0, 0.0]  # nobody behind in the own lane: absent, far, no closing speed
    # Lane 0 and lane 2 are the two sides; whichever is "left" in this map, both neighbours are reported.
    sides = {tuple(round(x, 4) for x in row) for row in (a_lead, a_follow, b_lead, b_follow)}
    assert (1.0, round(15.0 / 50.0, 4), round(5.0 / 30.0, 4)) in sides
    assert (1.0, round(92.5 / 50.0, 4), 0.0) in sides


def test_on_ramp_starts_put_the_first_controlled_car_on_the_ramp():
    from fuyao.sim.reset import RAMP_KIND, RAMP_START_S

    def ramp_starts(fraction):
        world = World(preset("highway", worlds=64, ego_ramp_fraction=fraction), torch.device("cpu"))
        st = world.reset(3)
        kind = world.road.lane_kind[st.map_id.unsqueeze(1), st.vehicles.lane][:, 0]
        on = (kind == RAMP_KIND) & (st.vehicles.s[:, 0] == RAMP_START_S)
        return on, st

    none, _ = ramp_starts(0.0)
    every, st = ramp_starts(1.0)
    half, _ = ramp_starts(0.5)
    assert not none.any() and every.all()
    assert 16 <= int(half.sum()) <= 48
    assert bool(st.vehicles.controlled[:, 0].all()) and bool(st.active[:, 0].all())
    # The ramp car's route still reaches a destination from the ramp.
    world = World(preset("highway", worlds=64, ego_ramp_fraction=1.0), torch.device("cpu"))
    from fuyao.sim.geometry import route_attr

    cost = route_attr(
        world.road.route.cost, world.road, st.map_id.unsqueeze(1), st.vehicles.lane[:, :1], st.vehicles.dest[:, :1]
    )
    assert bool((cost < 5.0e8).all())


def _self_play_rollout(cfg, decisions, seed=0):
    """(state before, result) of every decision of `cfg`'s worlds under random meta actions."""
    world = World(cfg)
    st = world.reset(seed=seed)
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(decisions):
        r = world.step(st, torch.randint(0, 5, (cfg.worlds, cfg.controlled), generator=g))
        out.append((st, r))
        st = r.state
    return world, out


def test_respawned_agents_enter_clear_road_entries_as_fresh_controlled_cars():
    from fuyao.sim.geometry import lane_attr, route_attr
    from fuyao.sim.reset import CONTROLLED_CAR

    cfg = preset("highway", worlds=16, controlled=6, respawn=True)
    world, rollout = _self_play_rollout(cfg, 12)
    road = world.road
    respawned = waited = 0
    for before, r in rollout:
        v, m = r.state.vehicles, r.state.map_id.unsqueeze(1)
        c = cfg.controlled
        ended = (r.terminated | ~before.active) & ~r.world_done.unsqueeze(1)
        back = ended & r.state.active
        respawned += int(back.sum())
        waited += int((ended & ~r.state.active).sum())
        # A slot out of its episode is off the road (crashed cars towed) unless it came back.
        assert not bool((ended & ~r.state.active & v.present[:, :c]).any())
        new = torch.nn.functional.pad(back, (0, v.s.shape[1] - c))
        if not bool(new.any()):
            continue
        assert bool((v.s[new] == 0.0).all()) and bool((v.d[new] == 0.0).all())
        assert bool(lane_attr(road.lane_is_source, road, m, v.lane)[new].all())
        assert bool(v.controlled[new].all()) and not bool(v.crashed[new].any())
        for name, value in CONTROLLED_CAR.items():
            assert bool((getattr(v, name)[new] == value).all()), name
        assert bool((v.speed[new] <= cfg.ego_speed).all())
        assert bool((route_attr(road.route.cost, road, m, v.lane, v.dest)[new] < 5.0e8).all())
        # The entry was clear: no other car on that lane within spawn_gap_m of its start.
        same_lane = (v.lane.unsqueeze(2) == v.lane.unsqueeze(1)) & v.present.unsqueeze(1)
        near = same_lane & ((v.s.unsqueeze(1) - 0.5 * v.length.unsqueeze(1)) <= cfg.spawn_gap_m)
        near = near & ~torch.eye(v.s.shape[1], dtype=torch.bool).unsqueeze(0)
        assert not bool(near[new].any())
    assert respawned > 20  # random actions crash often; most agents come straight back


def test_respawn_keeps_self_play_slots_busy_and_changes_nothing_for_one_controlled_car():
    def active_fraction(respawn):
        _, rollout = _self_play_rollout(preset("smoke", worlds=8, controlled=4, respawn=respawn), 10)
        return sum(float(st.active.float().mean()) for st, _ in rollout) / len(rollout)

    assert active_fraction(True) > active_fraction(False) + 0.1

    def one_car(respawn):
        _, rollout = _self_play_rollout(preset("smoke", worlds=8, respawn=respawn), 14, seed=1)
        return [(r.state.vehicles.s, r.state.vehicles.lane, r.reward, r.terminated) for _, r in rollout]

    for a, b in zip(one_car(False), one_car(True)):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_respawn_rollouts_are_deterministic():
    cfg = preset("smoke", worlds=6, controlled=4, respawn=True)
    a = [r.state for _, r in _self_play_rollout(cfg, 8, seed=5)[1]]
    b = [r.state for _, r in _self_play_rollout(cfg, 8, seed=5)[1]]
    for x, y in zip(a, b):
        assert torch.equal(x.vehicles.s, y.vehicles.s) and torch.equal(x.active, y.active)
        assert torch.equal(x.vehicles.dest, y.vehicles.dest)


def test_native_observation_lane_potential_is_the_idm_acceleration_per_lane():
    """The lane-potential block: the ego's IDM acceleration behind each lane's leader and the one it would impose
    on a new follower, in the scene of the lane-neighbour test."""
    from fuyao.sim.observe import ObservationLayout, observe
    from fuyao.sim.state import first_slots
    from fuyao.sim.traffic import driver_params, effective_limit, idm_acceleration

    cfg = SimConfig(worlds=1, vehicles=4, controlled=1, inflow=False)
    road = build_highway(HighwayConfig(lanes=3, max_curvature=0.0, on_ramp_s=None, off_ramp_s=None, length_m=2000.0))
    st = scene(
        road,
        cfg,
        [
            [
                dict(lane=1, s=500.0, speed=25.0, controlled=True),
                dict(lane=1, s=540.0, speed=20.0, length=5.0),  # own leader: gap 35 m, 5 m/s slower
                dict(lane=0, s=480.0, speed=30.0, length=5.0),  # lane 0: a follower 15 m back, 5 m/s faster
                dict(lane=2, s=600.0, speed=25.0, length=10.0),  # lane 2: a leader 92.5 m ahead, same speed
            ]
        ],
    )
    own, left, right, imposed_left, imposed_right = (
        ObservationLayout.of(cfg).potential.flat(observe(st, road, cfg)[0, 0]).tolist()
    )
    ego = first_slots(st.vehicles, 1)
    p = driver_params(ego, effective_limit(road, st.map_id, ego))  # the controlled car's, [1, 1] each

    def idm(speed, gap, lead_speed, has_lead=True):
        def one(x):
            return torch.tensor([[x]], dtype=torch.float32)

        a = idm_acceleration(one(speed), one(gap), one(lead_speed), torch.tensor([[has_lead]]), p)
        return max(-2.0, min(1.0, a.item() / 5.0))

    assert own == pytest.approx(idm(25.0, 35.0, 20.0), abs=1e-5)
    assert own < 0.0  # closing on a slower leader at 35 m
    lane0_left = road.lane_left[0, 1].item() == 0
    lead_0, lead_2 = (left, right) if lane0_left else (right, left)
    imposed_0, imposed_2 = (imposed_left, imposed_right) if lane0_left else (imposed_right, imposed_left)
    assert lead_0 == pytest.approx(idm(25.0, 1.0e4, 25.0, has_lead=False), abs=1e-5)  # nobody ahead in lane 0
    assert lead_2 == pytest.approx(idm(25.0, 92.5, 25.0), abs=1e-5)
    assert lead_0 > own and lead_2 > own  # both side lanes are better than staying behind the slow leader
    # The lane 0 follower (30 m/s, 15 m behind) would brake hard for the ego; nobody follows in lane 2.
    assert imposed_0 == pytest.approx(idm(30.0, 15.0, 25.0), abs=1e-5)
    assert imposed_0 < -0.2 and imposed_2 == 0.0


def test_rule_based_pilot_drops_out_of_a_car_beside_it_to_take_its_exit():
    # The pilot in the left lane, bound for the off-ramp 500 m on (two changes to go), with a car in the right
    # lane level with it and as fast as it may go (30 m/s). Riding level, the change never becomes safe: the pilot
    # used to hold that car's speed (IDM's speed-up against dropping back behind it) and drive past the exit. It
    # must line up with a gap (here: drop back behind that car).
    from fuyao.pilots import RuleBasedPilot

    cfg = SimConfig(
        worlds=1,
        vehicles=2,
        controlled=1,
        inflow=False,
        road=STRAIGHT_RAMPS,
        sim_hz=10,
        decision_hz=10,
        episode_s=60.0,
        target_speeds=tuple(float(v) for v in range(0, 36, 2)),
    )
    world = World(cfg, road=build_highway(STRAIGHT_RAMPS))
    beside = dict(lane=1, s=601.0, speed=28.0, desire=1.0, dest=0)  # stays on the highway
    st = scene(world.road, cfg, [[dict(lane=0, s=600.0, speed=28.0, dest=1, controlled=True), beside]])
    pilot = RuleBasedPilot(world)
    for _ in range(cfg.decisions_per_episode):
        result = world.step(st, pilot.act(None, st))
        assert not bool(result.info["collision"].any())
        if bool(result.terminated[0, 0]):
            break
        st = result.state
    assert bool(result.info["arrived"][0, 0]) and not bool(result.info["route_failure"][0, 0])
