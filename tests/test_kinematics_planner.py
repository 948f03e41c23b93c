"""The `kinematics-planner` pilot (the `highway-v0` preset's teacher) on constructed Kinematics observations, its
refusals, its teaching interface, and cloning it with its action ranking as the target."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from fuyao.pilots.kinematics_planner import (
    FASTER,
    IDLE,
    LANE_LEFT,
    LANE_RIGHT,
    SLOWER,
    KinematicsPlanner,
    PlannerConfig,
)
from fuyao.pilots.networks import ActorCritic, PolicyConfig
from fuyao.presets import preset
from fuyao.sim.config import ConfigError
from fuyao.sim.world import World
from fuyao.train.config import Algo, BCConfig, TeacherKind, train_preset
from tests.fake_students import LogitsStudent, as_learner

CPU = torch.device("cpu")


def scene(lane: int, speed: float, others: list[tuple[float, int, float]] = ()) -> torch.Tensor:
    """A highway-v0 Kinematics observation `[5, 5]` as highway-env normalises it: the ego on `lane` (0 leftmost)
    at `speed`; each other vehicle `(metres ahead, lane, speed)`."""
    obs = torch.zeros(5, 5)
    obs[0] = torch.tensor([1.0, 1.0, lane * 4.0 / 16.0, speed / 80.0, 0.0])
    for i, (dx, other_lane, v) in enumerate(others, start=1):
        obs[i] = torch.tensor([1.0, dx / 200.0, (other_lane - lane) * 4.0 / 16.0, (v - speed) / 80.0, 0.0])
    return obs


def act(*scenes: torch.Tensor) -> list[int]:
    return KinematicsPlanner().act(torch.stack(scenes)).tolist()


def test_on_a_free_road_it_speeds_up_and_at_the_top_speed_it_holds_it():
    assert act(scene(1, 25.0), scene(1, 30.0)) == [FASTER, IDLE]


def test_behind_a_slow_car_it_overtakes_where_the_next_lane_is_free_and_brakes_where_none_is():
    slow_ahead = (18.0, 1, 21.0)
    # Left lane free: overtake on the left. Lane 0 with the right lane blocked beside it: slow down.
    overtake = scene(1, 30.0, [slow_ahead, (60.0, 2, 24.0)])
    boxed_in = scene(0, 30.0, [(18.0, 0, 21.0), (2.0, 1, 30.0), (-6.0, 1, 30.0)])
    left, braking = act(overtake, boxed_in)
    assert left == LANE_LEFT
    assert braking == SLOWER


def test_it_never_changes_into_a_car_beside_it():
    # A slow car ahead and a car right beside it on each side: every lane change would hit.
    obs = scene(1, 30.0, [(20.0, 1, 22.0), (0.5, 0, 30.0), (-0.5, 2, 30.0)])
    assert act(obs)[0] not in (LANE_LEFT, LANE_RIGHT)


def test_it_never_picks_what_the_action_mask_refuses():
    # Leftmost lane at the lowest speed behind a slow car: LANE_LEFT and SLOWER would be no-ops there.
    cramped = scene(0, 20.0, [(30.0, 0, 19.0)])
    rightmost_top = scene(3, 30.0)
    first, second = act(cramped, rightmost_top)
    assert first not in (LANE_LEFT, SLOWER)
    assert second not in (LANE_RIGHT, FASTER)


def test_teach_gives_the_chosen_action_and_a_ranking_with_crashes_far_below():
    planner = KinematicsPlanner()
    obs = torch.stack([scene(1, 30.0, [(12.0, 1, 20.0), (1.0, 0, 30.0)]), scene(2, 25.0)])
    actions, logits = planner.teach(obs, temperature=1.0)
    assert actions.tolist() == planner.act(obs).tolist()
    assert torch.equal(logits.argmax(-1), actions)
    assert logits.shape == (2, 5) and (logits <= 0).all() and (logits.amax(-1) == 0).all()
    # Into the car beside it (left) or on into the slow car (FASTER): a crash, scored far below the best.
    assert logits[0, LANE_LEFT] < -50 and logits[0, FASTER] < -50


def test_batched_equals_one_at_a_time():
    torch.manual_seed(0)
    obs = torch.stack([scene(k % 4, 20.0 + k % 11, [(10.0 + 3 * k, (k + 1) % 4, 23.0)]) for k in range(12)])
    planner = KinematicsPlanner()
    together = planner.act(obs.view(3, 4, 5, 5))
    alone = torch.stack([planner.act(o[None])[0] for o in obs]).view(3, 4)
    assert torch.equal(together, alone)


def test_the_planner_refuses_worlds_it_cannot_read():
    with pytest.raises(ConfigError, match="sim.observation is 'native'"):
        PlannerConfig.of(preset("smoke"))
    with pytest.raises(ConfigError, match="sim.action is 'continuous'"):
        PlannerConfig.of(preset("highway-v0", action="continuous"))
    cfg = PlannerConfig.of(preset("highway-v0"))
    assert cfg.target_speeds == (20.0, 25.0, 30.0) and cfg.lanes == 4 and cfg.decision_s == 1.0


def test_it_drives_fuyaos_highway_v0_fast_and_almost_without_crashing():
    # 64 seeded episodes of highway-env's highway-v0 in Fuyao (one ego among 50 IDM cars, 40 decisions).
    world = World(preset("highway-v0", worlds=64))
    planner = KinematicsPlanner(world)
    state = world.reset(123)
    crashed = torch.zeros(64, dtype=torch.bool)
    speed = []
    for _ in range(40):
        active = state.active[:, 0]
        result = world.step(state, planner.act(world.observe(state)))
        crashed |= result.info["collision"][:, 0].bool() & active
        speed.append(result.info["speed"][:, 0][active & ~crashed])
        state = result.state
    assert crashed.float().mean() <= 3 / 64  # measured: about 1 %
    assert torch.cat(speed).mean() >= 28.0


def test_scaled_inputs_are_the_network_with_its_first_layer_scaled():
    sim = preset("highway-v0")
    plain = ActorCritic(sim, PolicyConfig(encoder="mlp", hidden=16))
    scaled = ActorCritic(sim, PolicyConfig(encoder="mlp", hidden=16, scale_inputs=True))
    scaled.load_state_dict(plain.state_dict())  # the scale is a constant, not a weight
    obs = torch.rand(7, 5, 5)
    first = plain.encoder.net[0]
    with torch.no_grad():
        first.weight.mul_(scaled.encoder.scale.flatten())
    torch.testing.assert_close(scaled(obs)[0], plain(obs)[0])
    with pytest.raises(ConfigError, match="scale_inputs"):
        ActorCritic(preset("smoke"), PolicyConfig(encoder="mlp", scale_inputs=True))


def test_scaled_inputs_leave_out_the_egos_absolute_position():
    # highway-env's ego starts near x = 180 m, Fuyao's near 30 m: a pilot must not tell the two apart by it.
    net = ActorCritic(preset("highway-v0"), PolicyConfig(encoder="mlp", hidden=16, scale_inputs=True))
    obs = torch.rand(6, 5, 5)
    moved = obs.clone()
    moved[:, 0, 1] = torch.rand(6)
    torch.testing.assert_close(net(moved)[0], net(obs)[0], rtol=0, atol=0)
    moved[:, 1, 1] += 0.1  # another vehicle's x still counts
    assert not torch.equal(net(moved)[0], net(obs)[0])


def test_soft_targets_need_a_teacher_that_ranks_actions():
    with pytest.raises(ConfigError, match="soft_temperature.*'rule-based'"):
        dataclasses.replace(train_preset("smoke"), algo=Algo.BC, bc=BCConfig(soft_temperature=1.0))
    with pytest.raises(ConfigError, match="TrainConfig.teacher: got 'oracle'"):
        dataclasses.replace(train_preset("highway-v0"), teacher="oracle")


def test_soft_cloning_pushes_down_what_the_mask_refuses():
    """highway-env hands a pilot no action mask: the soft loss takes the student's softmax over all five actions,
    so a refused action (FASTER at the top speed) loses probability instead of keeping an untrained logit that
    wins unmasked where the teacher brakes."""
    from fuyao.train.bc import bc_loss

    student = LogitsStudent(torch.zeros(4, 5))
    learner = as_learner(student)
    batch = {
        "obs": torch.zeros(4, 5, 5),
        "active": torch.ones(4, dtype=torch.bool),
        "teacher": torch.full((4,), SLOWER),
        "mask": torch.tensor([[True, True, True, False, True]] * 4),  # at the top speed: FASTER refused
        "teacher_logits": torch.tensor([[-500.0, -400.0, -500.0, -400.0, 0.0]] * 4),  # brake
    }
    loss, _ = bc_loss(learner, train_preset("highway-v0").bc, batch, torch.zeros(4), torch.arange(4))
    loss.backward()
    grad = student.logits.grad
    assert (grad[:, FASTER] > 0).all()  # descent lowers the refused action's logit
    assert (grad[:, SLOWER] < 0).all()  # and raises the teacher's choice


@pytest.mark.slow
def test_cloning_the_planner_from_its_ranking_learns_its_choices(tmp_path):
    from fuyao.train.run import train

    base = train_preset("highway-v0")
    cfg = dataclasses.replace(
        base,
        steps=24_000,
        sim=dataclasses.replace(base.sim, worlds=128),
        bc=dataclasses.replace(base.bc, teacher_iterations=4),
        out=tmp_path / "run",
        compile=False,
        precision="fp32",
        eval_every=0,
        checkpoint_every=1000,
        threads=torch.get_num_threads(),
    )
    assert cfg.teacher is TeacherKind.KINEMATICS_PLANNER and cfg.bc.soft_temperature > 0
    train(cfg, CPU, evaluator=None)
    rows = [json.loads(line) for line in (cfg.out / "metrics.jsonl").read_text().splitlines()]
    assert sum("bc_accuracy" in r for r in rows) >= 10  # iterations of cloning ran

    # Held-out observations (another seed, the planner driving): the clone disagrees with the planner far less
    # often than the same network untrained (which agrees on the many plain FASTER / IDLE decisions by chance).
    from fuyao.pilots.learned import load

    world = World(dataclasses.replace(cfg.sim, worlds=64))
    planner = KinematicsPlanner(world)
    state = world.reset(777)
    obs, masks, labels = [], [], []
    for _ in range(12):
        o = world.observe(state)
        a = planner.act(o)
        obs.append(o.reshape(-1, 5, 5))
        masks.append(world.action_mask(state).reshape(-1, 5))
        labels.append(a.reshape(-1))
        state = world.step(state, a).state
    obs, mask, label = torch.cat(obs), torch.cat(masks), torch.cat(labels)
    clone = load(cfg.out / "checkpoints" / "last.pt")
    untrained = ActorCritic(cfg.sim, cfg.policy)

    def agreement(model) -> float:
        with torch.no_grad():
            logits = model(obs)[0].masked_fill(~mask, -1e8)
        return (logits.argmax(-1) == label).float().mean().item()

    learned, before = agreement(clone.model), agreement(untrained)
    assert learned > 0.8 and (1.0 - learned) < 0.6 * (1.0 - before), (learned, before)  # measured 0.87 vs 0.68
    # Unmasked, as in highway-env, the clone almost never prefers what the mask refuses (FASTER at the top speed,
    # a lane that is not there).
    with torch.no_grad():
        refused = (~mask).gather(1, clone.model(obs)[0].argmax(-1, keepdim=True)).float().mean().item()
    assert refused < 0.02, refused


def test_bench_transfer_drives_the_planner_only_in_highway_v0():
    pytest.importorskip("highway_env", reason="needs highway-env (pip install 'fuyao[compare]')")
    from fuyao.perf.transfer import measure_transfer

    with pytest.raises(ValueError, match="'kinematics-planner' drives only 'highway-v0'"):
        measure_transfer("merge-v0", "kinematics-planner", episodes=1)
    with pytest.raises(FileNotFoundError, match="or 'kinematics-planner'"):
        measure_transfer("highway-v0", "no-such.pt", episodes=1)


def test_dart_noise_perturbs_what_is_driven_not_what_is_taught():
    """`BCConfig.action_noise`: with probability p an executed action is a uniformly drawn available one; the
    teacher's labels are those of the observations reached."""
    from fuyao.train.rollout import Rollout, collect, observe_carry

    cfg = dataclasses.replace(preset("highway-v0"), worlds=64, controlled=1)
    world = World(cfg)
    planner = KinematicsPlanner(world)
    model = ActorCritic(cfg, PolicyConfig())
    executed = {}
    for p in (0.0, 0.5):
        carry = observe_carry(world, world.reset(5))
        buf = Rollout.allocate(4, world, CPU)
        g = torch.Generator().manual_seed(0)
        collect(world, model, carry, buf, g, 0.9, teacher=planner.act, teacher_share=1.0, action_noise=p)
        assert buf.mask.gather(-1, buf.action.unsqueeze(-1)).all()  # only available actions are driven
        executed[p] = buf.action.clone()
        if p == 0.0:
            assert torch.equal(buf.action, buf.teacher)  # the teacher drives alone
        else:
            off = (buf.action != buf.teacher).float().mean().item()
            assert 0.15 < off < 0.5, off  # half replaced, some by the teacher's own choice
    with pytest.raises(ConfigError, match="action_noise"):
        BCConfig(action_noise=1.5)


def test_the_regret_term_weighs_a_choice_by_what_it_costs():
    """`BCConfig.regret_coef`: at equal soft targets, the loss's pull away from an action grows with the teacher's
    cost of it (one predicted crash against a lane change's cost), and it adds nothing where the student already
    takes the least-cost action."""
    from fuyao.train.bc import bc_loss

    def grad_and_loss(coef, teacher_logits, init):
        student = LogitsStudent(init)
        base = train_preset("highway-v0")
        cfg = dataclasses.replace(base, bc=dataclasses.replace(base.bc, regret_coef=coef))
        learner = as_learner(student)
        batch = {
            "obs": torch.zeros(1, 5, 5),
            "active": torch.ones(1, dtype=torch.bool),
            "teacher": torch.full((1,), SLOWER),
            "mask": torch.ones(1, 5, dtype=torch.bool),
            "teacher_logits": teacher_logits,
        }
        loss, parts = bc_loss(learner, cfg.bc, batch, torch.zeros(1), torch.arange(1))
        loss.backward()
        return student.logits.grad[0], parts[0]

    idle_first = torch.tensor([[0.0, 4.0, 0.0, 0.0, 0.0]])  # the student leans to IDLE
    # IDLE costs one crash step (100) more than braking, or 20: alike as soft targets (e^-100 and e^-20 ~ 0).
    crash = torch.tensor([[-0.5, -100.0, -0.5, -0.5, 0.0]])
    mild = torch.tensor([[-0.5, -20.0, -0.5, -0.5, 0.0]])
    g_plain, _ = grad_and_loss(0.0, crash, idle_first)
    g_crash, _ = grad_and_loss(1.0, crash, idle_first)
    g_mild, _ = grad_and_loss(1.0, mild, idle_first)
    assert g_crash[IDLE] > g_plain[IDLE] > 0  # pushed down harder where IDLE predicts a crash
    assert g_crash[IDLE] > g_mild[IDLE]
    sure = torch.tensor([[0.0, 0.0, 0.0, 0.0, 30.0]])  # already brakes
    _, loss_sure_plain = grad_and_loss(0.0, crash, sure)
    _, loss_sure = grad_and_loss(1.0, crash, sure)
    assert abs(float(loss_sure) - float(loss_sure_plain)) < 1e-6


def test_the_regret_term_needs_the_teachers_costs():
    with pytest.raises(ConfigError, match="regret_coef"):
        BCConfig(regret_coef=1.0)
