"""Closed-loop evaluation: metrics on hand-built episodes with known values, the score's edge cases, at-fault
collisions in the world, deterministic suites, space checks, comparison intervals, the report and `fuyao eval`."""

import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fuyao.evaluation import score as S
from fuyao.evaluation.metrics import (
    SUMMARY_KEYS,
    EpisodeSums,
    MetricAccumulator,
    episode_metrics,
    fold,
    summarize,
)
from fuyao.evaluation.report import compare, paired_bootstrap, worst_episodes, write_report
from fuyao.evaluation.runner import SpaceMismatchError, evaluate
from fuyao.evaluation.suites import SUITES, EgoStart, get_suite
from fuyao.pilots import RuleBasedPilot
from fuyao.roads.highway import HighwayConfig, build_highway
from fuyao.sim.config import ConfigError, SimConfig
from fuyao.sim.scene import scene
from fuyao.sim.world import World

# ------------------------------------------------------------------------------------------------ synthetic info


def term(e: int, **values) -> dict[str, torch.Tensor]:
    """One decision's info for `e` episodes: a smooth drive at 25 m/s under a 30 m/s limit, 25 m of progress,
    unless `values` (scalars or lists of length e) say otherwise."""
    base = dict(
        active=True,
        collision=False,
        collision_at_fault=False,
        offroad=False,
        route_failure=False,
        arrived=False,
        progress_m=25.0,
        cost_to_go_m=5000.0,
        speed=25.0,
        speed_limit=30.0,
        lon_accel_max=0.5,
        lat_accel_max=0.3,
        jerk_max=1.0,
        yaw_rate_max=0.02,
        lane_changes=0.0,
        ttc_s=1000.0,
        wrong_way=False,
        red_light=False,
    )
    base.update(values)
    out = {}
    for k, v in base.items():
        v = v if isinstance(v, list) else [v] * e
        out[k] = torch.tensor(v)
    return out


def run(infos, masks=None) -> dict[str, torch.Tensor]:
    sums = EpisodeSums.zeros(infos[0]["active"].shape[0])
    for t, info in enumerate(infos):
        sums = fold(sums, info, None if masks is None else masks[t])
    return episode_metrics(sums)


def test_smooth_drive_has_no_comfort_violation_and_a_known_score():
    m = run([term(1) for _ in range(10)])
    assert m["comfort"].item() == 1.0
    assert m["speed_limit_compliance"].item() == 1.0
    assert m["ttc_ok"].item() == 1.0
    assert m["progress_m"].item() == 250.0
    assert m["duration_s"].item() == 10.0
    # Route length = cost-to-go before the first decision = 25 + 5000 m; reference = 10 s at 30 m/s.
    assert m["route_completion"].item() == pytest.approx(250.0 / 5025.0)
    assert m["progress_ratio"].item() == pytest.approx(250.0 / 300.0)
    expected = (5 * 250.0 / 300.0 + 5 + 4 + 2) / 16
    assert m["score"].item() == pytest.approx(expected)
    assert m["collision"].item() == 0.0 and m["lane_changes_per_km"].item() == 0.0


def test_collision_at_a_known_tick_ends_the_metrics_there():
    # Episode 0 rear-ends a car at decision 3; episode 1 is rear-ended at decision 3 (not its fault).
    infos = [term(2) for _ in range(2)]
    infos.append(term(2, collision=[True, True], collision_at_fault=[True, False], ttc_s=[0.0, 1000.0]))
    infos += [term(2, active=False) for _ in range(3)]  # after the crash: inactive, ignored
    m = run(infos)
    assert m["collision"].tolist() == [1.0, 1.0]
    assert m["collision_at_fault"].tolist() == [1.0, 0.0]
    assert m["duration_s"].tolist() == [3.0, 3.0]
    assert m["progress_m"].tolist() == [75.0, 75.0]
    assert m["score"][0].item() == 0.0  # gated by the at-fault multiplier
    assert m["multiplier_at_fault_collision"][1].item() == 1.0 and m["score"][1].item() > 0.5
    assert m["ttc_ok"].tolist() == [0.0, 1.0]


def test_leaving_the_road_zeroes_the_score():
    m = run([term(1), term(1, offroad=True)])
    assert m["offroad"].item() == 1.0 and m["multiplier_drivable_area"].item() == 0.0 and m["score"].item() == 0.0


def test_a_car_that_stops_makes_no_progress():
    m = run([term(1, progress_m=0.0, speed=0.0) for _ in range(20)])
    assert m["progress_m"].item() == 0.0 and m["route_completion"].item() == 0.0
    assert m["progress_ratio"].item() == 0.0
    assert m["multiplier_making_progress"].item() == 0.0 and m["score"].item() == 0.0


def test_making_progress_threshold_and_route_failure():
    # 6 m per 30 m reference = 0.2 exactly: just making progress; 5.9 m is not.
    m = run([term(2, progress_m=[6.0, 5.9])])
    assert m["multiplier_making_progress"].tolist() == [1.0, 0.0]
    m = run([term(1), term(1, route_failure=True)])
    assert m["multiplier_making_progress"].item() == 0.0 and m["score"].item() == 0.0


def test_arrival_completes_the_route():
    m = run([term(1, cost_to_go_m=25.0), term(1, arrived=True, cost_to_go_m=0.0)])
    assert m["route_completion"].item() == 1.0 and m["progress_ratio"].item() == 1.0


def test_overspeed_and_comfort_fractions():
    # 2.23 m/s over the limit throughout: compliance 0. One decision of two with a jerk spike: comfort 0.5.
    m = run([term(1, speed=32.23), term(1, speed=32.23, jerk_max=50.0)])
    assert m["speed_limit_compliance"].item() == pytest.approx(0.0, abs=1e-6)
    assert m["comfort"].item() == 0.5
    assert m["jerk_max"].item() == 50.0
    # Half the threshold over the limit for half the time: 1 - 0.25.
    m = run([term(1, speed=31.115), term(1, speed=30.0)])
    assert m["speed_limit_compliance"].item() == pytest.approx(0.75, abs=1e-5)


@pytest.mark.parametrize("bound", ["lon_accel_max", "lat_accel_max", "jerk_max", "yaw_rate_max"])
def test_each_comfort_bound_counts(bound):
    limit = {"lon_accel_max": S.MAX_LON_ACCEL, "lat_accel_max": S.MAX_LAT_ACCEL, "jerk_max": S.MAX_JERK}
    value = limit.get(bound, S.MAX_YAW_RATE)
    m = run([term(2, **{bound: [value, value * 1.01]})])
    assert m["comfort"].tolist() == [1.0, 0.0]


def test_driving_direction_and_lane_changes_per_km():
    # Against traffic at 1.5, 3 and 7 m/s for one 1 s decision: full, half and no marks.
    m = run([term(3, wrong_way=True, speed=[1.5, 3.0, 7.0])])
    assert m["multiplier_driving_direction"].tolist() == [1.0, 0.5, 0.0]
    m = run([term(1, lane_changes=1.0, progress_m=250.0) for _ in range(2)])
    assert m["lane_changes_per_km"].item() == pytest.approx(4.0)


def test_mask_ignores_steps_after_the_first_episode():
    infos = [term(1), term(1), term(1, collision=True, collision_at_fault=True)]
    masks = [torch.tensor([True]), torch.tensor([True]), torch.tensor([False])]
    m = run(infos, masks)
    assert m["collision"].item() == 0.0 and m["duration_s"].item() == 2.0


def test_score_formula_edge_cases():
    one = torch.ones(1)
    zero = torch.zeros(1)
    perfect = dict(
        collision_at_fault=zero,
        offroad=zero,
        route_failure=zero,
        progress_ratio=one,
        wrong_way_max_m=zero,
        min_ttc_s=torch.tensor([S.MIN_TTC_S]),
        overspeed_mean_mps=zero,
        comfort=one,
    )
    assert S.closed_loop_score(perfect)["score"].item() == 1.0
    just_under = dict(perfect, min_ttc_s=torch.tensor([S.MIN_TTC_S - 1e-3]))
    assert S.closed_loop_score(just_under)["score"].item() == pytest.approx(11.0 / 16.0)
    half_direction = dict(perfect, wrong_way_max_m=torch.tensor([S.WRONG_WAY_OK_M]))
    assert S.closed_loop_score(half_direction)["score"].item() == 0.5
    assert sum(S.WEIGHTS.values()) == 16.0


# ------------------------------------------------------------------------------------------------ accumulator


def test_accumulator_finishes_episodes_when_done_and_resets():
    acc = MetricAccumulator(2)
    acc.update(term(2), torch.tensor([False, False]))
    acc.update(term(2, collision=[True, False]), torch.tensor([True, False]))
    # Episode 1 goes on; slot 0 begins a new episode that has not finished.
    acc.update(term(2), torch.tensor([False, True]))
    acc.update(term(2), torch.tensor([False, False]))
    s = acc.summary()
    assert set(SUMMARY_KEYS) <= set(s)
    assert s["episodes"] == 2 and s["collision_rate"] == 0.5
    assert s["progress_m"] == pytest.approx((50.0 + 75.0) / 2)
    empty = acc.summary()  # nothing finished since
    assert empty["episodes"] == 0 and math.isnan(empty["score"])
    acc.update(term(2), torch.tensor([True, False]))
    assert acc.summary()["progress_m"] == pytest.approx(75.0)  # the new episode of slot 0: 3 decisions


def test_accumulator_matches_the_evaluation_summary():
    infos = [term(3, progress_m=[10.0, 20.0, 30.0]) for _ in range(4)]
    acc = MetricAccumulator(3)
    for t, info in enumerate(infos):
        acc.update(info, torch.full((3,), t == 3))
    assert acc.summary() == pytest.approx(summarize(run(infos)), nan_ok=True)


# ------------------------------------------------------------------------------------------------ at fault, in the world


def collide(ego: dict, other: dict, controlled: int = 1, decisions: int = 3):
    """Step a two-car scene with continuous zero actions (hold speed, no steering); the info of each decision."""
    cfg = SimConfig(worlds=1, vehicles=2, controlled=controlled, inflow=False, action="continuous")
    world = World(cfg, road=build_highway(HighwayConfig(max_curvature=0.0, on_ramp_s=None, off_ramp_s=None)))
    state = scene(world.road, cfg, [[ego, other]])
    infos = []
    for _ in range(decisions):
        result = world.step(state, torch.zeros(1, controlled, 2))
        infos.append(dict(result.info, world_done=result.world_done))
        state = result.state
    return infos


def test_ego_that_rear_ends_a_stopped_car_is_at_fault_at_the_known_decision():
    # Bumper gap 25 m at 20 m/s: contact at tick 19, i.e. in the second decision (ticks 16-30).
    infos = collide(dict(lane=1, s=100.0, speed=20.0, controlled=True), dict(lane=1, s=130.0, speed=0.0, desire=0.0))
    assert [bool(i["collision"][0, 0]) for i in infos[:2]] == [False, True]
    assert bool(infos[1]["collision_at_fault"][0, 0])
    first = [torch.tensor([True]), *[~i["world_done"] for i in infos[:-1]]]  # the world resets after the crash
    m = run([{k: v.reshape(-1) for k, v in i.items()} for i in infos], first)
    assert m["collision_at_fault"].item() == 1.0 and m["duration_s"].item() == 2.0 and m["score"].item() == 0.0


def test_stopped_ego_that_is_rear_ended_is_not_at_fault():
    # Both controlled: slot 0 stands still, slot 1 runs into it from behind.
    infos = collide(
        dict(lane=1, s=130.0, speed=0.0, controlled=True),
        dict(lane=1, s=100.0, speed=20.0, controlled=True),
        controlled=2,
    )
    hit = next(i for i in infos if bool(i["collision"][0, 0]))
    assert hit["collision"][0].tolist() == [True, True]
    assert hit["collision_at_fault"][0].tolist() == [False, True]


def test_moving_ego_rear_ended_in_its_lane_is_not_at_fault():
    infos = collide(
        dict(lane=1, s=130.0, speed=10.0, controlled=True),
        dict(lane=1, s=100.0, speed=30.0, controlled=True),
        controlled=2,
    )
    hit = next(i for i in infos if bool(i["collision"][0, 0]))
    assert hit["collision_at_fault"][0].tolist() == [False, True]


def test_lane_changer_that_side_swipes_a_lane_keeper_is_at_fault_and_the_keeper_is_not():
    # Side by side at 20 m/s; slot 0 already straddles its lane's left edge, heading 0.1 rad into the left
    # lane, where slot 1 keeps its lane centre.
    road = build_highway(HighwayConfig(max_curvature=0.0, on_ramp_s=None, off_ramp_s=None))
    left = int(road.lane_left[0, 1])
    assert left >= 0
    infos = collide(
        dict(lane=1, s=100.0, d=1.5, psi=0.1, speed=20.0, controlled=True),
        dict(lane=left, s=100.0, speed=20.0, controlled=True),
        controlled=2,
        decisions=1,
    )
    assert infos[0]["collision"][0].tolist() == [True, True]
    assert infos[0]["collision_at_fault"][0].tolist() == [True, False]


# ------------------------------------------------------------------------------------------------ suites and runner


def test_suites_are_versioned_and_share_spaces():
    for name, suite in SUITES.items():
        assert suite.name == name and suite.version
        assert len({s.name for s in suite.scenarios}) == len(suite.scenarios)
        assert suite.observation_space.shape == World(suite.scenarios[-1].config).observation_shape
    assert get_suite("highway").episodes == 1000
    held_out = get_suite("highway").scenarios
    assert all(s.sim.map_seed != 0 for s in held_out if s.name.startswith("held-out"))
    with pytest.raises(ConfigError, match="--suite: got 'nope'; allowed: highway"):
        get_suite("nope")


def test_scaled_suite_keeps_seeds_and_shares():
    suite = get_suite("highway").scaled(100)
    assert [s.episodes for s in suite.scenarios] == [15, 15, 15, 15, 15, 15, 10]
    assert [s.seed for s in suite.scenarios] == [s.seed for s in get_suite("highway").scenarios]
    with pytest.raises(ConfigError, match="--episodes: got 0"):
        get_suite("smoke").scaled(0)


def test_on_ramp_start_puts_the_ego_on_the_ramp():
    scenario = next(s for s in get_suite("smoke").scenarios if s.ego_start is EgoStart.ON_RAMP)
    world = World(scenario.config)
    state = scenario.initial_state(world)
    lane = state.vehicles.lane[:, 0]
    kind = world.road.lane_kind[state.map_id, lane]
    assert (kind == 1).all() and world.road.lane_is_source[state.map_id, lane].all()
    assert state.vehicles.present[:, 0].all()


def test_smoke_suite_is_deterministic_and_a_prefix_when_scaled():
    suite = get_suite("smoke")
    a = evaluate(RuleBasedPilot, suite)
    b = evaluate(RuleBasedPilot, suite)
    assert a.summary["episodes"] == suite.episodes == 6
    for sa, sb in zip(a.scenarios, b.scenarios):
        for key, value in sa.metrics.items():
            assert np.array_equal(value, sb.metrics[key]), key
    small = evaluate(RuleBasedPilot, suite, episodes=3)
    first = small.scenarios[0]
    assert first.episodes == 2
    for key in ("score", "progress_m", "collision"):
        assert np.array_equal(first.metrics[key], a.scenarios[0].metrics[key][:2]), key
    for key in ("score", "collision_rate", "route_completion", "progress_m", "episodes"):
        assert key in a.to_json()
    assert a.to_json()["suite"] == "smoke" and a.to_json()["version"] == suite.version


def test_scenarios_in_worker_processes_give_exactly_what_one_process_gives(tmp_path):
    """Two spawned processes running the smoke suite's scenarios give the one-process result bit for bit, in suite
    order, for a learned pilot (its bound `for_world` pickles with its network) and for the rule-based one."""
    from fuyao.pilots.learned import LearnedPilot
    from fuyao.pilots.networks import ActorCritic
    from fuyao.train.config import TRAIN_PRESETS

    cfg = TRAIN_PRESETS["smoke"]
    torch.manual_seed(5)
    learned = LearnedPilot(ActorCritic(cfg.sim, cfg.policy), cfg.sim, cfg.policy)
    suite = get_suite("smoke")
    for make_pilot in (learned.for_world, RuleBasedPilot):
        seen = []
        one = evaluate(make_pilot, suite, workers=1)
        two = evaluate(make_pilot, suite, workers=2, on_scenario=seen.append)
        assert one.extra["workers"] == 1 and two.extra["workers"] == 2
        assert [r.name for r in seen] == [s.name for s in suite.scenarios] == [s.name for s in two.scenarios]
        for sa, sb in zip(one.scenarios, two.scenarios):
            assert sa.metrics.keys() == sb.metrics.keys()
            for key, value in sa.metrics.items():
                assert np.array_equal(value, sb.metrics[key]), (sa.name, key)
        assert one.summary == two.summary


def test_worker_count_is_checked_and_chosen(monkeypatch):
    from fuyao.evaluation import runner

    smoke = get_suite("smoke")
    city = get_suite("city")
    cpu = torch.device("cpu")
    with pytest.raises(ConfigError, match="workers must be >= 0"):
        runner.resolve_workers(-1, smoke, cpu, RuleBasedPilot)
    with pytest.raises(ConfigError, match="cannot be pickled"):
        runner.resolve_workers(2, smoke, cpu, lambda world: RuleBasedPilot(world))
    monkeypatch.setattr(runner, "usable_cores", lambda: 4)
    assert runner.resolve_workers(0, smoke, cpu, RuleBasedPilot) == 1  # 10-decision episodes: not worth a process
    assert max(s.config.decisions_per_episode for s in city.scenarios) >= runner.PARALLEL_MIN_DECISIONS
    assert runner.resolve_workers(0, city, cpu, RuleBasedPilot) == min(4, len(city.scenarios))
    assert runner.resolve_workers(0, city, cpu, lambda world: RuleBasedPilot(world)) == 1  # a lambda stays here
    assert runner.resolve_workers(0, city, torch.device("meta"), RuleBasedPilot) == 1  # not a CPU: one process
    assert runner.resolve_workers(64, smoke, cpu, RuleBasedPilot) == len(smoke.scenarios)  # one per scenario at most
    monkeypatch.setattr(runner, "usable_cores", lambda: 1)
    assert runner.resolve_workers(0, city, cpu, RuleBasedPilot) == 1


class FixedPilot:
    """A learned-looking pilot with declared spaces; always IDLE."""

    def __init__(self, obs_shape, action_space=None):
        self.observation_space = spaces.Box(-np.inf, np.inf, obs_shape, np.float32)
        self.action_space = action_space or spaces.Discrete(5)
        self.sim = SimConfig(observation="highway-kinematics")

    def act(self, obs, state=None):
        return torch.ones(obs.shape[:2], dtype=torch.int64)


def test_space_mismatch_names_both_spaces():
    suite = get_suite("smoke")
    with pytest.raises(SpaceMismatchError) as err:
        evaluate(lambda world: FixedPilot((5, 5)), suite)
    text = str(err.value)
    assert "(5, 5)" in text and str(suite.observation_space.shape) in text and "highway-kinematics" in text
    with pytest.raises(SpaceMismatchError, match="action space Box"):
        evaluate(lambda world: FixedPilot(suite.observation_space.shape, spaces.Box(-1, 1, (2,))), suite)
    ok = evaluate(lambda world: FixedPilot(suite.observation_space.shape), suite, episodes=2)
    assert ok.summary["episodes"] == 2


def test_paired_bootstrap_and_compare():
    zeros = np.zeros(50)
    lo, hi = paired_bootstrap(np.full(50, 0.3), zeros)
    assert lo == pytest.approx(0.3) and hi == pytest.approx(0.3)
    rng = np.random.default_rng(1)
    b, a = rng.normal(1.0, 0.1, 400), rng.normal(0.0, 0.1, 400)
    lo, hi = paired_bootstrap(b, a)
    # The normal interval of a mean difference: +-1.96 sd / sqrt(n), about +-0.0139 here.
    half = 1.96 * np.std(b - a) / np.sqrt(400)
    assert lo < np.mean(b - a) < hi and (hi - lo) / 2 == pytest.approx(half, rel=0.15)
    # Paired: a shared per-episode difficulty cancels, so the interval is that of the differences, not of either.
    hard = rng.normal(0.0, 5.0, 400)
    assert paired_bootstrap(b + hard, a + hard) == pytest.approx(paired_bootstrap(b, a), abs=1e-9)
    # Rare events: 4 crashes in 400 episodes against none. The interval is of the crash rate difference itself.
    crashes = np.zeros(400)
    crashes[[3, 50, 170, 301]] = 1.0
    lo, hi = paired_bootstrap(crashes, np.zeros(400))
    assert 0.0 <= lo < 0.01 < hi < 0.03
    assert paired_bootstrap(np.ones(1), zeros[:1]) == (1.0, 1.0)
    with pytest.raises(ValueError, match="same episodes"):
        paired_bootstrap(np.ones(3), np.ones(4))
    result = evaluate(RuleBasedPilot, get_suite("smoke"))
    same = compare(result, result)
    assert same["score"]["diff"] == 0.0 and same["score"]["ci_low"] == 0.0 == same["score"]["ci_high"]
    other = evaluate(RuleBasedPilot, get_suite("smoke"), episodes=3)
    with pytest.raises(ConfigError, match="different episodes"):
        compare(result, other)


@pytest.mark.slow
def test_report_writes_html_plots_and_worst_episode_videos(tmp_path):
    suite = get_suite("smoke")
    a = evaluate(RuleBasedPilot, suite, pilot_name="rule-based")
    b = dataclasses.replace(a, pilot="again")
    page = write_report(tmp_path, [a, b], [RuleBasedPilot, RuleBasedPilot], suite, worst=1)
    text = page.read_text()
    assert "Comparison" in text and "distributions.png" in text
    assert (tmp_path / "scenario_scores.png").read_bytes()[:4] == b"\x89PNG"
    name, world, _ = worst_episodes(a, 1)[0]
    gif = tmp_path / f"pilot0-{name}-world{world}.gif"
    assert gif.exists() and gif.stat().st_size > 1000 and gif.name in text
    assert json.loads((tmp_path / "results.json").read_text())["results"][0]["suite"] == "smoke"


# ------------------------------------------------------------------------------------------------ CLI


def fuyao(*args):
    return subprocess.run([sys.executable, "-m", "fuyao.cli", *args], capture_output=True, text=True, timeout=600)


def test_cli_eval_rule_based_json():
    proc = fuyao("eval", "rule-based", "--suite", "smoke", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["suite"] == "smoke" and out["version"] == "1" and out["episodes"] == 6
    for key in ("score", "collision_rate", "at_fault_collision_rate", "route_completion", "progress_m", "comfort"):
        assert isinstance(out[key], float)
    assert set(out["scenarios"]) == {"cruise", "merge"}


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ("eval", "rule-based", "--suite", "nope"),
            "--suite: got 'nope'; allowed: highway, highway-v0, merge-v0, exit-v0, city, ngp, smoke",
        ),
        (("eval", "missing.ckpt", "--suite", "smoke"), "'missing.ckpt', no such checkpoint file"),
        (("eval", "--suite", "smoke"), "got 0 pilots"),
    ],
)
def test_cli_eval_bad_input_is_a_clear_error(args, expected):
    proc = fuyao(*args)
    assert proc.returncode == 2
    assert expected in " ".join((proc.stderr + proc.stdout).split())  # the console wraps long lines
    assert "Traceback" not in proc.stderr


def test_cli_eval_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    proc = fuyao("eval", str(bad), "--suite", "smoke")
    assert proc.returncode == 2 and "corrupt" in proc.stderr and "Traceback" not in proc.stderr


def untrained_checkpoint(tmp_path, name: str):
    from fuyao.pilots.networks import ActorCritic
    from fuyao.train.checkpoint import checkpoint_payload
    from fuyao.train.config import TRAIN_PRESETS

    cfg = TRAIN_PRESETS[name]
    path = tmp_path / f"{name}.pt"
    torch.save(checkpoint_payload(cfg, ActorCritic(cfg.sim, cfg.policy), None, {}), path)
    return path


def test_cli_eval_compares_a_checkpoint_with_the_rule_based_pilot(tmp_path):
    path = untrained_checkpoint(tmp_path, "smoke")
    proc = fuyao("eval", "rule-based", str(path), "--suite", "smoke", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["a"]["pilot"] == "rule-based" and out["b"]["pilot"] == str(path)
    assert out["a"]["episodes"] == out["b"]["episodes"] == out["episodes"] == 6
    d = out["comparison"]["score"]
    assert d["ci_low"] <= d["diff"] <= d["ci_high"]
    assert d["diff"] == pytest.approx(out["b"]["score"] - out["a"]["score"], abs=1e-6)  # float32 means


def test_cli_eval_space_mismatch_names_both_spaces(tmp_path):
    path = untrained_checkpoint(tmp_path, "highway-v0")
    proc = fuyao("eval", str(path), "--suite", "smoke")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    text = " ".join((proc.stderr + proc.stdout).split())  # rich wraps long lines
    assert "observation space Box" in text and "(5, 5)" in text and "(202,)" in text


def test_groups_summarise_their_own_scenarios():
    """The `ngp` suite's groups (highway, city, ngp) survive validation and scaling; each group's summary is over its
    scenarios' episodes alone, and the pooled summary over all of them."""
    ngp = get_suite("ngp")
    assert set(ngp.groups) == {"highway", "city", "ngp"}
    assert sum(len(v) for v in ngp.groups.values()) == len(ngp.scenarios)
    assert ngp.validation().groups == ngp.groups == ngp.scaled(16).groups
    assert get_suite("highway").groups == {}
    with pytest.raises(ConfigError, match="Scenario.group"):
        dataclasses.replace(ngp.scenarios[0], group="a b")

    smoke = get_suite("smoke")
    first, second = smoke.scenarios
    suite = dataclasses.replace(
        smoke, scenarios=(dataclasses.replace(first, group="a"), dataclasses.replace(second, group="b"))
    )
    result = evaluate(RuleBasedPilot, suite, "cpu")
    groups = result.group_summaries()
    assert set(groups) == {"a", "b"}
    for name, scenario in zip("ab", result.scenarios):
        assert groups[name]["episodes"] == scenario.summary["episodes"]
        assert groups[name]["score"] == pytest.approx(scenario.summary["score"])
    n_a, n_b = groups["a"]["episodes"], groups["b"]["episodes"]
    pooled = (groups["a"]["score"] * n_a + groups["b"]["score"] * n_b) / (n_a + n_b)
    assert result.summary["score"] == pytest.approx(pooled, abs=1e-6)
    assert result.to_json()["groups"]["b"]["episodes"] == n_b
    assert "groups" not in evaluate(RuleBasedPilot, smoke, "cpu").to_json()
