"""Log replay in the batched world (`fuyao.sim.replay`, `fuyao.data.replay`, `fuyao.evaluation.logs`): logged
objects replayed non-reactively or along their paths with IDM, free-space objects, recorded rollouts and a real
Argoverse 2 scenario replayed, and `fuyao eval --logs` in a subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fuyao.data.record import RolloutRecorder, recording_to_scenarios
from fuyao.data.replay import ReplayConfig, build_replay
from fuyao.data.scenario import AgentType, Scenario, ScenarioError, VectorMap, resample, write_scenario
from fuyao.evaluation.logs import evaluate_logs, read_scenarios, run_logs
from fuyao.pilots import RuleBasedPilot
from fuyao.presets import preset
from fuyao.sim.geometry import vehicle_pose_xy
from fuyao.sim.step import META_SLOWER
from fuyao.sim.world import World
from fuyao.train.config import TRAIN_PRESETS

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
AV2 = DATA / "argoverse2"
SIM = TRAIN_PRESETS["city"].sim  # 10 decisions per second


def straight(objects, seconds=8.0, hz=10.0, with_map=True) -> Scenario:
    """A straight two-lane road along +x (right lane y = 0, left lane y = 3.5, 400 m) and `objects`: tuples of
    (x0, y, speed, agent type), the first one the ego, each logged at constant speed along +x."""
    xs = np.linspace(0, 400, 201)
    pts = np.concatenate([np.stack([xs, np.zeros_like(xs)], 1), np.stack([xs, np.full_like(xs, 3.5)], 1)])
    vmap = VectorMap(
        lane_ids=("right", "left"),
        points=pts,
        offsets=np.array([0, 201, 402]),
        width=np.array([3.5, 3.5]),
        speed_limit=np.array([15.0, 15.0]),
        is_intersection=np.array([False, False]),
        left=np.array([1, -1]),
        right=np.array([-1, 0]),
        successors=((), ()),
    )
    t = np.arange(int(seconds * hz) + 1) / hz
    x = np.stack([x0 + v * t for x0, _, v, _ in objects])
    y = np.stack([np.full_like(t, yy) for _, yy, _, _ in objects])
    vx = np.stack([np.full_like(t, v) for _, _, v, _ in objects])
    a = len(objects)
    return Scenario(
        scenario_id="straight",
        timestamps=t,
        x=x,
        y=y,
        yaw=np.zeros_like(x),
        vx=vx,
        vy=np.zeros_like(x),
        valid=np.ones_like(x, dtype=bool),
        length=np.full(a, 4.5),
        width=np.full(a, 1.8),
        agent_type=np.array([int(k) for *_, k in objects]),
        track_ids=tuple(f"t{i}" for i in range(a)),
        ego=0,
        map=vmap if with_map else None,
        source="test",
    )


CAR = AgentType.VEHICLE


class Brake:
    """Asks for the lowest target speed at every decision: the ego stops."""

    needs_observation = False

    def __init__(self, world):
        pass

    def act(self, obs, state):
        return torch.full(state.active.shape, META_SLOWER, dtype=torch.int64)


def test_a_logged_follower_runs_into_a_braking_ego_and_a_reactive_one_stops_behind_it():
    sc = straight([(50.0, 0.0, 10.0, CAR), (20.0, 0.0, 10.0, CAR)])
    outcome = {}
    for reactive in (False, True):
        batch = build_replay([sc], SIM, ReplayConfig(vehicles=4, reactive=reactive))
        world = World(batch.cfg, road=batch.road, spawns=False)
        state, hit = batch.state, False
        with torch.inference_mode():
            for _ in range(78):
                result = world.step(state, Brake(world).act(None, state))
                hit = hit or bool(result.info["collision"].any())
                state = result.state
        v = state.vehicles
        outcome[reactive] = (hit, float(v.s[0, 0] - v.s[0, 1]), float(v.speed[0, 1]))
    hit, _, _ = outcome[False]
    assert hit  # the log does not brake: it drives into the stopped ego (not the ego's fault)
    hit, gap, speed = outcome[True]
    assert not hit and 4.5 < gap < 15.0 and speed < 1.0  # IDM brought it to a near stop behind the ego
    m = run_logs(Brake, build_replay([sc], SIM, ReplayConfig(vehicles=4)))
    assert m["collision"][0] == 1 and m["collision_at_fault"][0] == 0


def test_the_logged_ego_reproduces_its_log_and_a_pilot_is_measured_against_it():
    sc = straight([(50.0, 0.0, 10.0, CAR), (90.0, 0.0, 10.0, CAR), (60.0, 3.5, 12.0, CAR)])
    log = evaluate_logs(RuleBasedPilot, [sc], SIM, ReplayConfig(vehicles=4, ego="log"))
    assert log.summary["ade_m"] == 0.0 and log.summary["fde_m"] == 0.0
    assert log.summary["progress_vs_expert"] == 1.0 and log.summary["collision_rate"] == 0.0
    assert log.summary["expert_progress_m"] == pytest.approx(80.0, abs=0.5)  # 8 s at 10 m/s
    braking = evaluate_logs(Brake, [sc], SIM, ReplayConfig(vehicles=4))
    assert braking.summary["progress_vs_expert"] < 0.5 and braking.summary["fde_m"] > 30.0
    assert braking.summary["ade_m"] < braking.summary["fde_m"]


def test_free_space_objects_are_off_the_lane_graph_but_their_collisions_count():
    # A pedestrian standing in the ego's lane 40 m ahead, and a parked car 8 m off the road.
    sc = straight([(20.0, 0.0, 10.0, CAR), (60.0, 0.0, 0.0, AgentType.PEDESTRIAN), (40.0, -8.0, 0.0, CAR)])
    batch = build_replay([sc], SIM, ReplayConfig(vehicles=4))
    assert batch.summary["objects in free space"] == 2
    assert not bool(batch.state.vehicles.present[0, 1:3].any())  # nobody's leader
    m = run_logs(RuleBasedPilot, batch)
    assert m["collision"][0] == 1  # the rule-based pilot sees lanes only, and hits the pedestrian


def test_a_recorded_rollout_replays_its_trajectories(tmp_path):
    world = World(preset("smoke", worlds=2, controlled=3))  # a recording's tracks are its controlled vehicles
    pilot = RuleBasedPilot(world)
    state = world.reset(5)
    rec = RolloutRecorder(tmp_path / "rec", world, flush_every=4, seed=5, pilot="rule-based")
    with torch.inference_mode():
        for _ in range(8):
            result = world.step(state, pilot.act(None, state))
            rec.record(state, pilot.act(None, state), result)
            state = result.state
    rec.close()
    scenarios = recording_to_scenarios(tmp_path / "rec")
    assert len(scenarios) == 2
    sim = world.cfg  # 1 decision per second: the recording's steps fall on every 15th tick
    batch = build_replay(scenarios, sim, ReplayConfig(vehicles=world.cfg.vehicles, ego="log"))
    replay_world = World(batch.cfg, road=batch.road, spawns=False)
    logged = [resample(sc, sim.sim_hz) for sc in scenarios]
    tpd = sim.ticks_per_decision
    state = batch.state
    errors, checked = [], 0
    with torch.inference_mode():
        for k in range(1, 8):
            state = replay_world.step(state, torch.zeros(2, 1, dtype=torch.int64)).state  # actions: ignored
            v = state.vehicles
            x, y, _ = vehicle_pose_xy(batch.road, state.map_id, v.lane, v.s, v.d, v.psi)
            rp = state.replay
            for w, sc in enumerate(logged):
                if k * tpd >= sc.num_steps:
                    continue
                a = sc.num_tracks
                order = _slot_tracks(sc, a)
                valid = sc.valid[order, k * tpd]
                on = v.present[w, :a].numpy()
                free = ~on & valid
                # Every logged object is where the log has it: in the lane graph (lane pose) or in free space.
                assert np.array_equal(on | free, valid)
                ex = np.abs(x[w, :a].numpy() - sc.x[order, k * tpd])[on]
                ey = np.abs(y[w, :a].numpy() - sc.y[order, k * tpd])[on]
                errors += list(np.hypot(ex, ey))
                np.testing.assert_allclose(rp.x[w, :a, k * tpd].numpy()[valid], sc.x[order, k * tpd][valid], atol=1e-3)
                checked += int(valid.sum())
    assert checked > 30 and np.percentile(errors, 99) < 0.05


def _slot_tracks(sc: Scenario, slots: int) -> np.ndarray:
    from fuyao.data.replay import _choose_tracks

    return _choose_tracks(sc, slots)[0]


@pytest.mark.skipif(not AV2.is_dir(), reason=f"shared test data not present at {AV2}")
def test_an_argoverse2_scenario_replays_and_a_pilot_drives_in_it():
    from fuyao.data.importers import import_any

    (sc,) = import_any(AV2).scenarios
    batch = build_replay([sc], SIM, ReplayConfig(vehicles=32, ego="log"))
    assert batch.summary["tracks replayed"] == 32 and batch.summary["tracks beyond the slots"] == 26
    world = World(batch.cfg, road=batch.road, spawns=False)
    logged = resample(sc, SIM.sim_hz)
    order = _slot_tracks(logged, 32)
    state = batch.state
    with torch.inference_mode():
        for _ in range(1, 30):
            state = world.step(state, torch.zeros(1, 1, dtype=torch.int64)).state
            rp = state.replay
            t = int(rp.t[0])
            valid = logged.valid[order, t]
            # The replayed boxes are the log's, within float32 of its coordinates (about 1,300 m from the origin).
            np.testing.assert_allclose(rp.x[0, :, t].numpy()[valid], logged.x[order, t][valid], atol=2e-3)
            np.testing.assert_allclose(rp.y[0, :, t].numpy()[valid], logged.y[order, t][valid], atol=2e-3)
    for reactive in (False, True):
        r = evaluate_logs(RuleBasedPilot, [sc], SIM, ReplayConfig(vehicles=32, reactive=reactive))
        assert r.summary["episodes"] == 1 and np.isfinite(r.summary["ade_m"])
        assert 0.0 < r.summary["progress_vs_expert"] <= 1.0 and r.summary["expert_progress_m"] > 40.0


def test_bad_log_input_is_named(tmp_path):
    with pytest.raises(ScenarioError, match="no scenario files"):
        read_scenarios(tmp_path)
    with pytest.raises(ScenarioError, match="needs the log's map"):
        build_replay([straight([(50.0, 0.0, 10.0, CAR)], with_map=False)], SIM)
    with pytest.raises(ScenarioError, match="ReplayConfig.ego"):
        ReplayConfig(ego="nobody")


def test_cli_eval_on_logs(tmp_path):
    write_scenario(tmp_path / "logs" / "straight.parquet", straight([(50.0, 0.0, 10.0, CAR), (90.0, 0.0, 8.0, CAR)]))
    cmd = [sys.executable, "-m", "fuyao.cli", "eval", "rule-based", "log", "--logs", str(tmp_path / "logs")]
    out = subprocess.run([*cmd, "--reactive", "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout.strip().splitlines()[-1])
    rule, log = data["results"]
    assert data["logs"] == 1 and rule["pilot"] == "rule-based" and log["pilot"] == "log"
    assert rule["agents"] == "reactive" and log["summary"]["ade_m"] == 0.0
    assert rule["scenarios"][0]["scenario"] == "straight" and np.isfinite(rule["summary"]["fde_m"])


def test_cli_bench_replay(tmp_path):
    write_scenario(tmp_path / "logs" / "straight.parquet", straight([(50.0, 0.0, 10.0, CAR), (90.0, 0.0, 8.0, CAR)]))
    cmd = [sys.executable, "-m", "fuyao.cli", "bench", "replay", str(tmp_path / "logs"), "--scenarios", "3"]
    out = subprocess.run(
        [*cmd, "--vehicles", "4", "--compile", "none", "--repeats", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["scenarios"] == 3 and data["distinct_scenarios"] == 1 and data["maps_built"] == 1
    assert data["ticks"] == 80 and data["agent_ticks_per_s"] > 0 and data["agents"] == "reactive"
    # Two logged objects of four slots, valid at every tick.
    assert data["logged_agent_ticks_per_s"] == pytest.approx(0.5 * data["agent_ticks_per_s"])
