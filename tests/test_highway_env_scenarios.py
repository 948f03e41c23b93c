"""merge-v0 and exit-v0 against highway-env itself (skipped without it: `pip install 'fuyao[compare]'`).

For each scenario, on constructed scenes:
1. The road: every highway-env lane's centre line, sampled along its length, lies on the Fuyao lane it maps to.
2. The observation: highway-env's env is reset and stepped with random actions; at every decision each of its
   vehicles (and merge-v0's obstacle) is copied into a Fuyao scene of the preset's map, and the preset's
   observation of the ego must equal the one highway-env's env returned (Kinematics for merge-v0,
   ExitObservation for exit-v0).
3. The actions: the ego alone on the road (merge-v0 keeps its obstacle) gets the same DiscreteMetaAction
   sequence in both simulators; lane, position, heading, speed and target speed after each decision, the
   available-action mask, the reward and the termination must agree.

Frames: highway-env's (x, y) is Fuyao's world (x, -y); a vehicle's lane coordinates come from projecting its
position on the Fuyao lane's polyline.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

highway_env = pytest.importorskip("highway_env")
gymnasium = pytest.importorskip("gymnasium")

from fuyao.presets import HIGHWAY_ENV_MIRRORS, highway_env_mirror, preset  # noqa: E402
from fuyao.roads.highway_env_maps import EXIT_LANE_IDS, MERGE_FINISH_X_M, MERGE_LANE_IDS  # noqa: E402
from fuyao.sim.config import ConfigError  # noqa: E402
from fuyao.sim.highway_env_reset import HIGHWAY_ENV_CAR  # noqa: E402
from fuyao.sim.reward import reward_terms  # noqa: E402
from fuyao.sim.scene import scene  # noqa: E402
from fuyao.sim.step import META_FASTER, META_IDLE, META_LEFT, META_RIGHT, META_SLOWER  # noqa: E402
from fuyao.sim.world import World  # noqa: E402

OBS_ATOL = 2.0e-5  # normalised units (float32 positions; the sine lane is a 2 m polyline: see POSITION_ATOL)
POSITION_ATOL = 0.02  # m, a sine / circle polyline of 2 m chords against the exact curve
SPEED_ATOL = 0.02  # m/s (highway-env's speed controller is unclipped; Fuyao clips at 8 m/s^2)
LONGITUDINAL_ATOL = 0.05  # m
LATERAL_ATOL = 0.01  # m
# On exit-v0's exit (a 150 m radius circle) highway-env's ego rides 0.20-0.22 m outside the centre line and Fuyao's
# within 0.02 m of it: highway-env integrates positions by Euler steps in world coordinates (4.8 m chords at 5 Hz,
# each ending about 0.08 m outside the circle, which its controller, with no curvature feed-forward, corrects a step
# late), Fuyao along the lane. Measured difference 0.22 m.
CURVE_LATERAL_ATOL = 0.3  # m
HEADING_ATOL = 1.0e-3  # rad
REWARD_ATOL = 2.0e-3


def _lane_id(scenario: str, lane_index, x: float) -> int:
    """Fuyao lane id of highway-env's `lane_index` (from, to, id) at highway-env x."""
    frm, to, i = lane_index
    if scenario == "merge-v0":
        if (frm, to) == ("c", "d"):
            return MERGE_LANE_IDS[f"cd{'+' if x >= MERGE_FINISH_X_M else ''}{i}"]
        return MERGE_LANE_IDS[f"{frm}{to}" if (frm, to) in (("j", "k"), ("k", "b")) else f"{frm}{to}{i}"]
    return EXIT_LANE_IDS["exit" if to == "exit" else f"{frm}{to}{i}"]


def _project(road, lane: int, x: float, y: float) -> tuple[float, float, float]:
    """Arc length, signed lateral offset (left positive) and lane yaw of Fuyao point (x, y) on lane `lane`."""
    pts = road.lane_xy[0, lane].double().numpy()
    n = int(round(float(road.lane_length[0, lane]) / float(road.lane_ds[0, lane]))) + 1
    pts = pts[:n]
    seg = np.diff(pts, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    rel = np.array([x, y]) - pts[:-1]
    t = np.clip((rel * seg).sum(1) / seg_len**2, 0.0, 1.0)
    foot = pts[:-1] + t[:, None] * seg
    j = int(np.argmin(np.linalg.norm(foot - [x, y], axis=1)))
    # Beyond the last point (a vehicle just past its lane's end before highway-env switches lane): extrapolate.
    if j == len(seg) - 1:
        t_raw = (rel[j] * seg[j]).sum() / seg_len[j] ** 2
        t_j = max(t_raw, 0.0)
    else:
        t_j = t[j]
    s = float(seg_len[:j].sum() + t_j * seg_len[j])
    tangent = seg[j] / seg_len[j]
    d = float(tangent[0] * rel[j][1] - tangent[1] * rel[j][0])
    return s, d, float(np.arctan2(tangent[1], tangent[0]))


def _row(road, scenario: str, v, controlled: bool) -> dict:
    lane = _lane_id(scenario, v.lane_index, float(v.position[0])) if hasattr(v, "lane_index") else None
    if lane is None:  # merge-v0's obstacle: the end of the acceleration lane
        lane = MERGE_LANE_IDS["bc2"]
    s, d, lane_yaw = _project(road, lane, float(v.position[0]), -float(v.position[1]))
    target = float(getattr(v, "target_speed", 0.0))
    target_lane = getattr(v, "target_lane_index", None)
    same_road = target_lane is not None and tuple(target_lane[:2]) == tuple(v.lane_index[:2])
    lc_dir = int(np.sign(int(target_lane[2]) - int(v.lane_index[2]))) if same_road else 0
    return dict(
        HIGHWAY_ENV_CAR,
        lc_dir=lc_dir,
        lane=lane,
        s=s,
        d=d,
        psi=float(np.arctan2(np.sin(-v.heading - lane_yaw), np.cos(-v.heading - lane_yaw))),
        speed=float(v.speed),
        length=float(v.LENGTH),
        width=float(v.WIDTH),
        target_speed=target,
        desire=1.0 if target > 0 else 0.0,
        controlled=controlled,
    )


def _copy_scene(world: World, scenario: str, env):
    ego = env.vehicle
    others = [v for v in env.road.vehicles if v is not ego] + list(env.road.objects)
    rows = [_row(world.road, scenario, ego, True)] + [_row(world.road, scenario, v, False) for v in others]
    return scene(world.road, world.cfg, [rows])


def _terms(world: World, state) -> dict[str, float]:
    """Fuyao's reward terms of the ego in `state` (no events)."""
    no = torch.zeros(1, 1, dtype=torch.bool)
    events = {k: no for k in ("collided", "offroad", "route_failure", "arrived", "red_light")}
    zero = torch.zeros(1, 1)
    terms = reward_terms(world.road, state, world.cfg, zero, events, zero, zero, zero)
    return {k: float(v[0, 0]) for k, v in terms.items()}


def _world(scenario: str) -> World:
    return World(preset(scenario, worlds=1))


@pytest.mark.parametrize("scenario", ["merge-v0", "exit-v0"])
def test_roads_lie_on_highway_envs_lanes(scenario):
    road = _world(scenario).road
    env = gymnasium.make(scenario)
    env.reset(seed=0)
    net = env.unwrapped.road.network
    checked = 0
    for frm, tos in net.graph.items():
        for to, lanes in tos.items():
            for i, lane in enumerate(lanes):
                for s in np.linspace(0.0, lane.length - 1e-6, 23):
                    x, y = lane.position(s, 0.0)
                    fid = _lane_id(scenario, (frm, to, i), float(x))
                    _, d, yaw = _project(road, fid, float(x), -float(y))
                    assert abs(d) < POSITION_ATOL, (frm, to, i, s, d)
                    assert abs(np.sin(yaw + lane.heading_at(s))) < 2e-2, (frm, to, i, s)
                    checked += 1
                assert float(road.lane_speed_limit[0, fid]) == pytest.approx(lane.speed_limit)
    assert checked > 100
    env.close()


def _rollout(scenario: str, seed: int, decisions: int):
    env = gymnasium.make(scenario)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    yield env.unwrapped, obs
    for _ in range(decisions):
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(5)))
        if terminated or truncated:
            break
        yield env.unwrapped, obs
    env.close()


@pytest.mark.parametrize("scenario", ["merge-v0", "exit-v0"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_observation_matches_highway_env(scenario, seed):
    """The observation, and the reward terms that read the scene (highway-env's `_rewards` of that scene)."""
    world = _world(scenario)
    compared = 0
    names = {"high_speed": "high_speed_reward", "right_lane": "right_lane_reward"}
    names.update({"merging_speed": "merging_speed_reward"} if scenario == "merge-v0" else {"goal": "goal_reward"})
    nonzero = 0
    for env, obs in _rollout(scenario, seed, 12):
        state = _copy_scene(world, scenario, env)
        ours = world.observe(state)[0, 0].numpy()
        assert ours.shape == obs.shape
        where = f"{scenario} seed {seed} t {env.time}"
        np.testing.assert_allclose(ours, obs, rtol=0.0, atol=OBS_ATOL, err_msg=where)
        terms, theirs = _terms(world, state), env._rewards(META_IDLE)
        for ours_name, their_name in names.items():
            assert terms[ours_name] == pytest.approx(float(theirs[their_name]), abs=1e-4), (where, ours_name)
            nonzero += ours_name in ("merging_speed", "goal") and abs(terms[ours_name]) > 0.01
        compared += 1
    assert compared >= 3
    if (scenario, seed) == ("merge-v0", 2):
        assert nonzero >= 2  # the merging car slowed on the acceleration lane during this rollout


MERGE_ACTIONS = (
    META_IDLE,
    META_RIGHT,  # on the rightmost lane of a-b: no change, and RIGHT is masked
    META_LEFT,
    META_SLOWER,
    META_RIGHT,
    META_SLOWER,
    META_SLOWER,  # at the lowest target speed: masked
    META_IDLE,
    META_RIGHT,  # on b-c lane 1: the acceleration lane is forbidden, RIGHT is masked
    META_FASTER,
    META_IDLE,
    META_FASTER,
    META_IDLE,
    META_IDLE,
    META_IDLE,
    META_IDLE,
    META_IDLE,
)
EXIT_ACTIONS = (
    META_FASTER,
    META_RIGHT,
    META_RIGHT,
    META_RIGHT,
    META_SLOWER,
    META_RIGHT,
    META_RIGHT,
    META_IDLE,
    META_IDLE,
    META_IDLE,
    META_RIGHT,  # into the exit lane (the goal) once it exists
    META_IDLE,
    META_IDLE,
    META_IDLE,
    META_IDLE,
    META_IDLE,
    META_IDLE,
    META_IDLE,
)


@pytest.mark.parametrize("scenario,actions", [("merge-v0", MERGE_ACTIONS), ("exit-v0", EXIT_ACTIONS)])
def test_meta_actions_match_highway_env(scenario, actions):
    env = gymnasium.make(scenario)
    env.reset(seed=0)
    hw = env.unwrapped
    ego = hw.vehicle
    hw.road.vehicles = [ego]
    world = _world(scenario)
    state = _copy_scene(world, scenario, hw)
    lanes, goal_seen, done = set(), False, False
    for k, action in enumerate(actions):
        theirs_mask = sorted(hw.action_type.get_available_actions())
        ours_mask = torch.nonzero(world.action_mask(state)[0, 0]).flatten().tolist()
        assert ours_mask == theirs_mask, f"decision {k}: mask {ours_mask} != highway-env {theirs_mask}"
        _, reward, terminated, truncated, _ = env.step(action)
        result = world.step(state, torch.tensor([[action]]))
        where = f"{scenario} decision {k} (action {action})"
        assert float(result.reward[0, 0]) == pytest.approx(reward, abs=REWARD_ATOL), where
        assert bool(result.terminated[0, 0]) == terminated, where
        assert bool(result.truncated[0, 0]) == truncated, where
        if terminated or truncated:
            done = True
            break
        state = result.state
        v = state.vehicles
        lane = int(v.lane[0, 0])
        assert lane == _lane_id(scenario, ego.lane_index, float(ego.position[0])), where
        s, d, yaw = _project(world.road, lane, float(ego.position[0]), -float(ego.position[1]))
        curved = lane == EXIT_LANE_IDS["exit"] if scenario == "exit-v0" else lane == MERGE_LANE_IDS["kb"]
        # (Riding 0.2 m outside a 150 m radius, highway-env's ego advances 0.13 % less along the centre line.)
        assert float(v.s[0, 0]) == pytest.approx(s, abs=CURVE_LATERAL_ATOL if curved else LONGITUDINAL_ATOL), where
        assert float(v.d[0, 0]) == pytest.approx(d, abs=CURVE_LATERAL_ATOL if curved else LATERAL_ATOL), where
        psi = float(np.arctan2(np.sin(-ego.heading - yaw), np.cos(-ego.heading - yaw)))
        assert float(v.psi[0, 0]) == pytest.approx(psi, abs=0.02 if curved else HEADING_ATOL), where
        assert float(v.speed[0, 0]) == pytest.approx(ego.speed, abs=SPEED_ATOL), where
        assert float(v.target_speed[0, 0]) == ego.target_speed, where
        lanes.add(lane)
        goal_seen = goal_seen or bool(world.road.lane_goal[0, lane])
    assert len(lanes) >= 3
    assert done or scenario == "exit-v0"
    assert goal_seen == (scenario == "exit-v0")
    env.close()


def test_a_scenario_fuyao_does_not_mirror_fails_with_the_list():
    with pytest.raises(ConfigError) as err:
        highway_env_mirror("roundabout-v0")
    assert "roundabout-v0" in str(err.value)
    for env_id in HIGHWAY_ENV_MIRRORS:
        assert env_id in str(err.value)


def _untrained_checkpoint(tmp_path, name: str):
    from fuyao.pilots.networks import ActorCritic
    from fuyao.train.checkpoint import checkpoint_payload
    from fuyao.train.config import TRAIN_PRESETS

    cfg = TRAIN_PRESETS[name]
    path = tmp_path / f"{name}.pt"
    torch.save(checkpoint_payload(cfg, ActorCritic(cfg.sim, cfg.policy), None, {}), path)
    return path


@pytest.mark.parametrize("scenario", ["merge-v0", "exit-v0"])
def test_bench_transfer_drives_a_pilot_of_the_preset_in_highway_env(tmp_path, scenario):
    from fuyao.perf.transfer import measure_transfer

    out = measure_transfer(scenario, _untrained_checkpoint(tmp_path, scenario), episodes=1, seed=0, processes=1)
    assert out["env"] == scenario and out["episodes"] == 1
    assert {"crash_rate", "mean_speed", "mean_return", "mean_length"} <= set(out)
    assert 0.0 <= out["crash_rate"] <= 1.0 and out["mean_length"] >= 1


def test_bench_transfer_refuses_an_env_fuyao_does_not_mirror(tmp_path):
    from fuyao.perf.transfer import measure_transfer

    with pytest.raises(ValueError) as err:
        measure_transfer("roundabout-v0", _untrained_checkpoint(tmp_path, "merge-v0"), episodes=1, processes=1)
    for env_id in ("roundabout-v0", "highway-v0", "merge-v0", "exit-v0"):
        assert env_id in str(err.value)


def test_merging_cars_lane_change_decision_matches_highway_envs_mobil():
    """The merging car on the acceleration lane beside the ego: highway-env's `IDMVehicle.mobil` and Fuyao's
    `MobilRule.HIGHWAY_ENV` decide alike over a sweep of its place (30-80 m before the obstacle), the ego's place
    beside it (both on b-c) and the ego's speed."""
    from fuyao.sim import traffic
    from fuyao.sim.config import MobilRule
    from fuyao.sim.geometry import change_ok
    from fuyao.sim.neighbours import surroundings

    world = _world("merge-v0")
    env = gymnasium.make("merge-v0")
    env.reset(seed=0)
    hw = env.unwrapped
    ego, merging = hw.road.vehicles[0], hw.road.vehicles[-1]
    net = hw.road.network
    agree = total = 0
    for car_x in (250.0, 280.0, 300.0):
        for dx in np.arange(-40.0, 25.0, 2.5):
            if not 230.0 < car_x + dx < 310.0:
                continue
            for ego_speed in (20.0, 25.0):
                for v, index, x, speed in (
                    (merging, ("b", "c", 2), car_x, 20.0),
                    (ego, ("b", "c", 1), car_x + dx, ego_speed),
                ):
                    v.lane_index, v.lane = index, net.get_lane(index)
                    v.position, v.heading, v.speed = v.lane.position(x - 230.0, 0.0), 0.0, speed
                hw.road.vehicles = [ego, merging]
                theirs = bool(merging.mobil(("b", "c", 1)))
                state = _copy_scene(world, "merge-v0", hw)
                v, road, m = state.vehicles, world.road, state.map_id
                sur = surroundings(road, m, v.lane, v.s, v.length, v.speed, v.present, v.dest)
                left_ok, right_ok = change_ok(road, m, v.lane, v.s)
                limit = traffic.effective_limit(road, m, v)
                rule = traffic.MOBIL_RULES[MobilRule.HIGHWAY_ENV]
                _, lc = traffic.background_control(road, m, v, sur, limit, True, left_ok, right_ok, state.signals, rule)
                agree += (int(lc[0, 1]) == -1) == theirs
                total += 1
    # Measured 121 of 126: the others lie at the safety or gain threshold, where highway-env's IDM gap (centre to
    # centre, 10 m) and Fuyao's (bumper to bumper, 5 m) differ.
    assert total > 100 and agree >= 0.92 * total, (agree, total)
    env.close()
