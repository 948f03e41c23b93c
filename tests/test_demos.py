"""Demonstrations: inverse dynamics against the actions that made a rollout, logs labelled into demonstration
recordings, the stream behaviour cloning reads, and `fuyao train --algo bc --data DIR` with its bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fuyao.data.demos import (
    Demonstrations,
    infer_continuous_actions,
    infer_meta_actions,
    write_log_demonstrations,
)
from fuyao.data.record import record_rollout, recording_to_scenarios, write_part
from fuyao.data.scenario import ScenarioError, write_scenario
from fuyao.pilots import RuleBasedPilot
from fuyao.presets import HIGHWAY_ENV_CONTROLLERS, preset
from fuyao.sim.config import ActionType, ConfigError
from fuyao.sim.geometry import vehicle_pose_xy
from fuyao.sim.step import META_IDLE, META_LEFT, META_RIGHT
from fuyao.sim.world import World
from fuyao.train.config import Algo, BCConfig, TrainConfig, train_preset
from fuyao.train.run import train

CPU = torch.device("cpu")
DATA = Path(__file__).parents[1] / ".." / "shared" / "data"


def random_rollout(sim, decisions: int, seed: int = 0):
    """Drive every controlled car with random actions (meta: mostly IDLE, only available ones); per decision,
    what inverse dynamics reads and what actually happened, `[W * C, T]` each."""
    world = World(sim)
    state = world.reset(seed)
    g = torch.Generator().manual_seed(seed)
    w, c = sim.worlds, sim.controlled
    keys = ("lane", "d", "speed", "yaw", "valid", "lc_dir", "target_before", "target_after", "action")
    rec = {k: [] for k in keys}
    with torch.inference_mode():
        for _ in range(decisions):
            v = state.vehicles
            if sim.action is ActionType.META:
                p = torch.tensor([0.07, 0.72, 0.07, 0.07, 0.07])
                a = torch.multinomial(p, w * c, replacement=True, generator=g).view(w, c)
                allowed = world.action_mask(state).gather(-1, a.unsqueeze(-1)).squeeze(-1)
                a = torch.where(allowed, a, META_IDLE)
            else:
                a = (torch.rand(w, c, 2, generator=g) * 2 - 1) * torch.tensor([0.6, 0.05])
            _, _, yaw = vehicle_pose_xy(world.road, state.map_id, v.lane, v.s, v.d, v.psi)
            result = world.step(state, a)
            after = result.final_state.vehicles
            for k, x in (("lane", v.lane), ("d", v.d), ("speed", v.speed), ("yaw", yaw), ("lc_dir", v.lc_dir)):
                rec[k].append(x[:, :c])
            rec["valid"].append(state.active & ~result.world_done.unsqueeze(1))  # a reset breaks the series
            rec["target_before"].append(v.target_speed[:, :c])
            rec["target_after"].append(after.target_speed[:, :c])
            rec["action"].append(a)
            state = result.state
    series = {k: torch.stack(x, 2).flatten(0, 1) for k, x in rec.items()}
    return world, state.map_id.repeat_interleave(c), series


def effective_meta_action(series) -> torch.Tensor:
    """What each decision's action did: a lane change it began, a set-point it raised or lowered, else IDLE."""
    a, lc = series["action"], series["lc_dir"]
    before, after = series["target_before"], series["target_after"]
    eff = torch.full_like(a, META_IDLE)
    eff = torch.where(after > before, 3, torch.where(after < before, 4, eff))
    return torch.where((lc == 0) & ((a == META_LEFT) | (a == META_RIGHT)), a, eff)


@pytest.mark.parametrize(
    "name, bounds, lane_recall",
    [
        ("highway", {}, 0.9),  # 1 decision a second: a lane change crosses within one or two decisions
        # 10 a second: the ones still under way when the 3 s rollout ends are not seen. The city runs with the
        # unbounded steering this labeller was calibrated on: with tyre friction and the steering rate bounded
        # (`SimConfig.max_lat_accel`, `max_steer_rate`) its LEFT precision fell to 0.75 and lane recall to 0.63.
        # Recalibrating its lane-change test to the bounded motion is open (data issue 16).
        ("city", HIGHWAY_ENV_CONTROLLERS, 0.75),
    ],
)
def test_inverse_dynamics_recovers_the_meta_actions_that_drove_a_rollout(name, bounds, lane_recall):
    sim = preset(name, worlds=32, controlled=2, **bounds)
    world, map_id, s = random_rollout(sim, 30)
    action, known = infer_meta_actions(world.road, sim, map_id, s["lane"], s["d"], s["speed"], s["valid"])
    truth = effective_meta_action(s)
    assert known.float().mean() > 0.75
    assert (action[known] == truth[known]).float().mean() > 0.97
    for a in range(5):
        true_a, said_a = known & (truth == a), known & (action == a)
        assert true_a.sum() >= 20, (a, int(true_a.sum()))  # every action occurs often enough to be judged
        recall = (action[true_a] == a).float().mean()
        precision = (truth[said_a] == a).float().mean()
        assert recall >= (lane_recall if a in (META_LEFT, META_RIGHT) else 0.95), (a, recall)
        assert precision >= 0.93, (a, precision)
    assert not known[:, -1].any()  # the last decision has no next state to say what it did


def test_inverse_dynamics_inverts_the_bicycle_model_exactly():
    sim = preset("highway", worlds=16, controlled=2, action=ActionType.CONTINUOUS)
    world, _, s = random_rollout(sim, 20)
    length = world.reset(0).vehicles.length[:, : sim.controlled].reshape(-1)  # reset(seed) draws the same cars
    action, known = infer_continuous_actions(sim, s["yaw"], s["speed"], length, s["valid"])
    moving = known & (s["speed"] > 1.0)
    assert moving.sum() > 100  # random steering soon takes cars off the road: what is left still counts
    err = (action - s["action"]).abs()[moving]
    assert err.max() < 1e-3, err.max()


def recorded(tmp_path, sim, decisions=24, flush_every=6, observations=True):
    world = World(sim)
    out = tmp_path / "rec"
    record_rollout(
        world, RuleBasedPilot(world), out, decisions, seed=1, flush_every=flush_every, observations=observations
    )
    return out


def test_a_recorded_rollout_replayed_as_logs_gives_back_its_own_actions(tmp_path):
    """Record the rule-based pilot, turn the recording into scenarios, label them by inverse dynamics from the
    replayed log (its own map, other lane ids): the labels are the actions the pilot took."""
    sim = preset("highway", worlds=16, controlled=1, vehicles=12)
    folder = recorded(tmp_path, sim, decisions=30, flush_every=10)
    files = []
    for i, sc in enumerate(recording_to_scenarios(folder)):
        files.append(write_scenario(tmp_path / "logs" / f"{i:03d}.parquet", sc))
    out = write_log_demonstrations(files, sim, tmp_path / "demos", chunk=7)
    assert out["scenarios"] == len(files) and out["parts"] == 3  # 7 scenarios at a time
    import pyarrow.dataset as pads

    demo = pads.dataset(tmp_path / "demos", format="parquet").to_table().to_pandas()
    rec = pads.dataset(folder, format="parquet").to_table().to_pandas()
    index = json.loads((tmp_path / "demos" / "_recording.json").read_text())
    assert index["pilot"] == "log" and index["observation"]["shape"] == [len(demo["obs"].iloc[0])]
    # Scenario i is (world, episode) in the recording's order: match rows by world, episode and decision.
    scen = recording_to_scenarios(folder)
    key = {
        i: (sc.metadata["world"], sc.metadata["episode"], sc.metadata["first_decision"]) for i, sc in enumerate(scen)
    }
    demo["rec_world"] = [key[w][0] for w in demo["world"]]
    demo["rec_episode"] = [key[w][1] for w in demo["world"]]
    demo["rec_decision"] = [key[w][2] + d for w, d in zip(demo["world"], demo["decision"])]
    merged = demo.merge(
        rec[rec["slot"] == 0],
        left_on=["rec_world", "rec_episode", "rec_decision"],
        right_on=["world", "episode", "decision"],
        suffixes=("_log", "_rec"),
    )
    assert len(merged) >= 0.8 * len(demo) > 100
    np.testing.assert_allclose(merged["x_log"], merged["x_rec"], atol=0.05)  # the replay is the recording
    # What the pilot asked for and what it could do differ where an action does nothing (FASTER at the top
    # speed, a lane change where there is none): compare effects, as inverse dynamics can only see those.
    agree = (merged["action_log"] == merged["action_rec"]).mean()
    assert agree > 0.85, agree


def test_the_stream_hands_out_every_row_once_a_pass_and_resumes_where_it_stopped(tmp_path):
    sim = preset("smoke")
    from fuyao.data.record import RolloutRecorder

    folder = tmp_path / "rec"
    rec = RolloutRecorder(folder, World(sim), observations=True)  # writes the index; parts written below
    sizes = [10, 7, 13]
    first = 0
    obs_size = rec._index["observation"]["shape"][0]
    for i, n in enumerate(sizes):
        ids = np.arange(first, first + n)
        active = ids % 5 != 0  # inactive rows are never handed out
        cols = {
            "world": ids,
            "map_id": np.zeros(n, dtype=np.int64),
            "active": active,
            "action": ids % 5,
            "action_mask": np.full(n, 0b11111, dtype=np.uint8),
            "obs": np.repeat(ids[:, None].astype(np.float32), obs_size, axis=1),
        }
        write_part(folder, i, cols, rec.names)
        first += n
    demos = Demonstrations(folder, sim)
    expected = {i for i in range(first) if i % 5 != 0}
    assert demos.rows == len(expected)
    stream = demos.batches(seed=3, start_row=0, size=4)
    seen = [next(stream) for _ in range(2 * len(expected) // 4)]
    ids = torch.cat([b["obs"][:, 0] for b in seen]).long().tolist()
    assert set(ids[: len(expected)]) == expected and len(set(ids[: len(expected)])) == len(expected)
    assert set(ids[len(expected) : 2 * len(expected)]) == expected  # the second pass, in another order
    assert ids[: len(expected)] != ids[len(expected) : 2 * len(expected)]
    for b in seen:  # labels travel with their rows
        assert torch.equal(b["action"], b["obs"][:, 0].long() % 5)
    resumed = demos.batches(seed=3, start_row=12, size=4)
    assert torch.equal(next(resumed)["obs"], seen[3]["obs"])
    assert not torch.equal(next(demos.batches(seed=4, start_row=0, size=4))["obs"], seen[0]["obs"])


def smoke_bc(tmp_path, data, **changes):
    base = train_preset("smoke")
    return dataclasses.replace(
        base,
        algo=Algo.BC,
        data=data,
        steps=4_096,
        out=tmp_path / "run",
        eval_every=0,
        eval_episodes=0,
        checkpoint_every=1,
        bc=BCConfig(rollout_steps=8, epochs=2, minibatches=2),
        **changes,
    )


def test_behaviour_cloning_from_a_recording_resumes_bit_exactly(tmp_path):
    from fuyao.pilots.learned import load
    from tests.test_train import weights_digest

    folder = recorded(tmp_path, train_preset("smoke").sim)
    full = smoke_bc(tmp_path / "full", folder)
    done = train(full, CPU, evaluator=None)
    assert done["decisions"] >= full.steps
    rows = [json.loads(line) for line in (full.out / "metrics.jsonl").read_text().splitlines()]
    first, last = (np.mean([r["bc_accuracy"] for r in rows[i : i + 4]]) for i in (0, len(rows) - 4))
    assert last > first + 0.1, (first, last)  # it learns the recorded actions
    part = dataclasses.replace(smoke_bc(tmp_path / "part", folder), steps=full.steps // 2)
    train(part, CPU, evaluator=None)
    resumed = train(dataclasses.replace(part, steps=full.steps, resume=True), CPU, evaluator=None)
    assert resumed["decisions"] == done["decisions"]
    digest = weights_digest(load(part.out / "checkpoints" / "last.pt").model)
    assert digest == weights_digest(load(full.out / "checkpoints" / "last.pt").model)


def test_bad_demonstrations_are_refused_naming_the_field(tmp_path):
    smoke = train_preset("smoke").sim
    with pytest.raises(ConfigError, match="data"):
        TrainConfig(data=tmp_path, algo=Algo.PPO)  # nothing would read it
    no_obs = recorded(tmp_path / "a", smoke, observations=False)
    with pytest.raises(ConfigError, match="observation.*no observations"):
        train(smoke_bc(tmp_path / "a", no_obs), CPU, evaluator=None)
    other = recorded(tmp_path / "b", preset("highway-v0", worlds=2, controlled=1))  # highway-kinematics
    with pytest.raises(ConfigError, match=r"observation\.type.*highway-kinematics"):
        train(smoke_bc(tmp_path / "b", other), CPU, evaluator=None)
    fewer = recorded(tmp_path / "b2", dataclasses.replace(smoke, neighbours=smoke.neighbours - 1))
    with pytest.raises(ConfigError, match=r"observation\.shape"):
        train(smoke_bc(tmp_path / "b2", fewer), CPU, evaluator=None)
    with pytest.raises(ConfigError, match="missing: no such file or folder"):
        train(smoke_bc(tmp_path / "c", tmp_path / "missing"), CPU, evaluator=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="empty: no scenario files"):
        train(smoke_bc(tmp_path / "c2", tmp_path / "empty"), CPU, evaluator=None)
    assert not (tmp_path / "c2" / "run" / "demos").exists()
    with pytest.raises(ScenarioError, match="no scenario files to turn"):
        write_log_demonstrations([], smoke, tmp_path / "d")


@pytest.mark.skipif(not (DATA / "argoverse2").is_dir(), reason="../shared/data/argoverse2 is absent (a user's clone)")
def test_a_real_log_becomes_demonstrations_whose_labels_follow_its_motion(tmp_path):
    from fuyao.data.importers import import_any

    sc = import_any(DATA / "argoverse2").scenarios[0]
    files = [write_scenario(tmp_path / "logs" / "av2.parquet", sc)]
    sim = preset("city")
    out = write_log_demonstrations(files, sim, tmp_path / "demos")
    demos = Demonstrations(tmp_path / "demos", sim)
    assert out["rows"] == demos.rows >= 0.8 * (sc.timestamps[-1] * sim.decision_hz)
    import pyarrow.dataset as pads

    t = pads.dataset(tmp_path / "demos", format="parquet").to_table().to_pandas().sort_values("decision")
    dv = np.diff(t["speed"].to_numpy(), append=np.nan)
    faster, slower = t["action"].to_numpy() == 3, t["action"].to_numpy() == 4
    assert faster.any() and slower.any()
    assert np.nanmean(dv[faster]) > 0 > np.nanmean(dv[slower])  # the labels say what the driver did
    batch = next(demos.batches(seed=0, start_row=0, size=32))
    assert batch["obs"].shape == (32, *demos.obs_shape) and torch.isfinite(batch["obs"]).all()


def test_ppo_warm_starts_from_demonstrations(tmp_path):
    folder = recorded(tmp_path, train_preset("smoke").sim)
    cfg = dataclasses.replace(smoke_bc(tmp_path, folder), algo=Algo.PPO, bc_warm_start=1_024, steps=2_048)
    summary = train(cfg, CPU, evaluator=None)
    rows = [json.loads(line) for line in (cfg.out / "metrics.jsonl").read_text().splitlines()]
    phases = [r["phase_ppo"] for r in rows]
    assert phases[0] == 0.0 and phases[-1] == 1.0 and phases == sorted(phases)  # cloning first, then PPO
    assert "bc_accuracy" in rows[0] and summary["decisions"] >= cfg.steps


@pytest.mark.slow
def test_a_pilot_cloned_from_recorded_rule_based_rollouts_drives_like_the_rule_based_pilot(tmp_path):
    """The guard for offline behaviour cloning (issue 16 item 6): record the rule-based pilot on the highway
    preset with DART noise, clone it from the recording alone, and drive both on held-out validation episodes."""
    from fuyao.evaluation.runner import evaluate
    from fuyao.evaluation.suites import get_suite
    from fuyao.pilots.learned import load

    base = train_preset("highway")
    sim = dataclasses.replace(base.sim, worlds=64)
    world = World(sim)
    record_rollout(world, RuleBasedPilot(world), tmp_path / "rec", 150, seed=11, flush_every=50, action_noise=0.2)
    cfg = dataclasses.replace(
        base,
        algo=Algo.BC,
        data=tmp_path / "rec",
        steps=400_000,
        sim=sim,
        out=tmp_path / "run",
        compile=False,
        precision="fp32",
        eval_every=0,
        eval_episodes=0,
        checkpoint_every=1000,
        threads=torch.get_num_threads(),  # the test session's share of the cores (tests/conftest.py)
    )
    train(cfg, CPU, evaluator=None)
    pilot = load(cfg.out / "checkpoints" / "last.pt")
    suite = get_suite("highway").validation().scaled(70)
    learned = evaluate(lambda w: pilot.for_world(w), suite, workers=1).summary
    rule = evaluate(lambda w: RuleBasedPilot(w), suite, workers=1).summary
    keys = ("score", "at_fault_collision_rate", "offroad_rate", "progress_m", "route_completion")
    print({k: (learned[k], rule[k]) for k in keys})
    assert learned["at_fault_collision_rate"] <= rule["at_fault_collision_rate"] + 0.03, (learned, rule)
    assert learned["offroad_rate"] <= rule["offroad_rate"] + 0.03, (learned, rule)
    assert learned["progress_m"] >= 0.95 * rule["progress_m"], (learned, rule)
    assert learned["score"] >= rule["score"] - 0.03, (learned, rule)
