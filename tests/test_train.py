"""The trainer: GAE, learning on a trivially learnable task, resume, NaN handling, checkpoints, pilots."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fuyao.pilots import CheckpointError, load
from fuyao.pilots.networks import ActorCritic, Encoder, PolicyConfig
from fuyao.presets import preset
from fuyao.roads.highway import HighwayConfig
from fuyao.sim.config import ConfigError, ObservationType, RewardConfig
from fuyao.train import ppo, precision
from fuyao.train.checkpoint import checkpoint_payload
from fuyao.train.config import TRAIN_PRESETS, BCConfig, PPOConfig, TrainConfig, train_preset
from fuyao.train.distributed import Dist
from fuyao.train.rollout import gae
from fuyao.train.run import train
from fuyao.train.session import NonFiniteError, build_session

CPU = torch.device("cpu")


def plain_gae(reward, value, done, next_value, gamma, lam):
    """The textbook recursion, one agent and one step at a time."""
    steps, agents = reward.shape
    adv = np.zeros((steps, agents))
    for e in range(agents):
        last = 0.0
        for t in reversed(range(steps)):
            following = next_value[e] if t == steps - 1 else value[t + 1, e]
            nonterminal = 0.0 if done[t, e] else 1.0
            delta = reward[t, e] + gamma * following * nonterminal - value[t, e]
            last = delta + gamma * lam * nonterminal * last
            adv[t, e] = last
    return adv, adv + value


@pytest.mark.parametrize("gamma, lam", [(0.99, 0.95), (0.8, 1.0), (0.95, 0.0)])
def test_gae_equals_a_plain_loop(gamma, lam):
    g = torch.Generator().manual_seed(3)
    reward = torch.randn(12, 7, generator=g, dtype=torch.float64)
    value = torch.randn(12, 7, generator=g, dtype=torch.float64)
    done = torch.rand(12, 7, generator=g) < 0.2
    next_value = torch.randn(7, generator=g, dtype=torch.float64)
    adv, ret = gae(reward, value, done, next_value, gamma, lam)
    ref_adv, ref_ret = plain_gae(reward.numpy(), value.numpy(), done.numpy(), next_value.numpy(), gamma, lam)
    np.testing.assert_allclose(adv.numpy(), ref_adv, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ret.numpy(), ref_ret, rtol=1e-12, atol=1e-12)


def test_every_training_preset_trains_a_pilot_its_evaluation_suite_takes():
    """A pilot trained on a preset is judged on the suite of the same name (periodic evaluation on its validation
    twin, `fuyao run`, `fuyao bench train`): the preset's observation and action spaces must be the suite's, and
    its evaluation settings valid."""
    from fuyao.evaluation import get_suite
    from fuyao.pilots.learned import action_space, observation_space

    assert {"highway", "highway-v0", "merge-v0", "exit-v0", "city", "ngp", "smoke"} <= set(TRAIN_PRESETS)
    for name, cfg in TRAIN_PRESETS.items():
        suite = get_suite(cfg.preset)
        assert observation_space(cfg.sim) == suite.observation_space, name
        assert action_space(cfg.sim) == suite.action_space, name
        assert cfg.eval_workers >= 0 and cfg.eval_episodes > 0, name
    with pytest.raises(ConfigError, match="eval_workers"):
        dataclasses.replace(TRAIN_PRESETS["smoke"], eval_workers=-1)


def test_gae_compiles():
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g), torch.rand(6, 5, generator=g) < 0.3)
    nv = torch.randn(5, generator=g)
    eager = gae(*args, nv, 0.9, 0.95)
    compiled = torch.compile(gae, dynamic=False)(*args, nv, 0.9, 0.95)
    torch.testing.assert_close(compiled[0], eager[0])
    torch.testing.assert_close(compiled[1], eager[1])


def speed_task(tmp_path: Path, steps: int = 12_000, **changes) -> TrainConfig:
    """A trivially learnable driving task: an empty straight road, reward = highway-env's high-speed term
    (0 at 20 m/s, 1 at 30 m/s and above). Pressing FASTER until the top speed earns ~1 per decision;
    a uniformly random policy earns about 0.5."""
    sim = preset(
        "smoke",
        worlds=32,
        vehicles=1,
        controlled=1,
        num_maps=1,
        road=HighwayConfig(lanes=2, length_m=1500.0, max_curvature=0.0, on_ramp_s=None, off_ramp_s=None),
        episode_s=12.0,
        ego_speed=20.0,
        ego_position=0.0,
        inflow=False,
        target_speeds=(20.0, 25.0, 30.0),
        reward=RewardConfig(progress=0.0, arrived=0.0, comfort=0.0, high_speed=1.0, speed_range=(20.0, 30.0)),
    )
    base = TrainConfig(
        preset="smoke",
        steps=steps,
        seed=1,
        out=tmp_path / "run",
        eval_every=0,
        eval_episodes=0,
        checkpoint_every=1000,
        sim=sim,
        policy=PolicyConfig(encoder=Encoder.MLP, hidden=32),
        ppo=PPOConfig(rollout_steps=8, epochs=4, minibatches=2, lr=3e-3, gamma=0.9, ent_coef=0.0),
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_ppo_learns_to_drive_at_the_top_speed(tmp_path, precision):
    cfg = speed_task(tmp_path, precision=precision)
    summary = train(cfg, CPU, evaluator=None)
    assert summary["decisions"] >= cfg.steps
    rows = [eval(line, {"NaN": float("nan"), "Infinity": float("inf")}) for line in open(cfg.out / "metrics.jsonl")]
    first = next(r["episode_return"] for r in rows if r.get("episodes", 0) > 0)
    last = rows[-1]["episode_return"]
    decisions_per_episode = cfg.sim.decisions_per_episode
    # Random play earns about half of the best return; the learned policy nearly all of it.
    assert first < 0.75 * decisions_per_episode
    assert last > 0.85 * decisions_per_episode, (first, last)


def test_teacher_regularised_ppo_moves_the_policy_toward_the_rule_based_pilot(tmp_path):
    # No reward at all: the teacher term is the only signal, so the policy must come to agree with the teacher.
    cfg = speed_task(tmp_path, steps=4_000)
    sim = dataclasses.replace(cfg.sim, reward=RewardConfig(progress=0.0, arrived=0.0, comfort=0.0))
    cfg = dataclasses.replace(cfg, sim=sim, ppo=dataclasses.replace(cfg.ppo, teacher_coef=1.0, teacher_decay=1_000_000))
    train(cfg, CPU, evaluator=None)
    rows = [eval(line, {"NaN": float("nan"), "Infinity": float("inf")}) for line in open(cfg.out / "metrics.jsonl")]
    nll = [r["teacher_nll"] for r in rows if "teacher_nll" in r]
    coef = [r["teacher_coef"] for r in rows if "teacher_coef" in r]
    assert nll[0] > 0.5  # a fresh policy is near uniform over the allowed actions
    assert nll[-1] < 0.5 * nll[0], nll
    assert coef[0] == 1.0 and coef[-1] < coef[0]  # decays linearly with the decisions of PPO


def test_bf16_autocast_runs_the_network_in_bfloat16_and_keeps_the_rest_float32(tmp_path):
    torch.manual_seed(0)
    cfg = speed_task(tmp_path)
    model = ActorCritic(cfg.sim, PolicyConfig(encoder=Encoder.MLP, hidden=64))
    obs = torch.randn(256, *model.obs_shape)
    exact_out, exact_value = precision.forward(model, obs, bf16=False)
    out, value = precision.forward(model, obs, bf16=True)
    assert out.dtype == value.dtype == torch.float32
    assert not torch.equal(out, exact_out)  # the matrix multiplies did run in bfloat16
    torch.testing.assert_close(out, exact_out, rtol=0.05, atol=0.02)
    torch.testing.assert_close(value, exact_value, rtol=0.05, atol=0.02)
    torch.testing.assert_close(precision.value(model, obs, bf16=True), value)


def test_bf16_training_is_deterministic_with_float32_weights(tmp_path):
    digests = []
    for name, prec in (("a", "bf16"), ("b", "bf16"), ("c", "fp32")):
        cfg = speed_task(tmp_path / name, steps=600, precision=prec)
        train(cfg, CPU, evaluator=None)
        model = load(cfg.out / "checkpoints" / "last.pt").model
        assert all(p.dtype == torch.float32 for p in model.parameters())
        digests.append(weights_digest(model))
    assert digests[0] == digests[1]  # same seed, same precision: bit for bit
    assert digests[0] != digests[2]  # and bf16 is not fp32 under another name


def test_precision_is_checked_and_auto_follows_the_hardware():
    with pytest.raises(ConfigError, match=r"TrainConfig.precision: got 'fp16'.*'fp32', 'bf16', 'auto'"):
        TrainConfig(precision="fp16")
    assert precision.use_bf16("fp32", CPU) is False
    assert precision.use_bf16("bf16", CPU) is True
    assert precision.use_bf16("auto", CPU) is precision.cpu_has_native_bf16()
    assert TRAIN_PRESETS["highway"].precision == "auto"


def test_the_final_evaluation_is_not_repeated_after_a_periodic_one(tmp_path):
    calls = []

    def evaluator(model):
        calls.append(weights_digest(model))
        return {"score": 0.5, "collision_rate": 0.0, "progress_m": 1.0}

    # 32 agents x 8 decisions per iteration: 4 iterations, evaluated every 2 (the last one is the end).
    cfg = speed_task(tmp_path / "even", steps=1024, eval_every=2)
    summary = train(cfg, CPU, evaluator=evaluator)
    assert summary["iteration"] == 4 and len(calls) == 2 and len(set(calls)) == 2
    calls.clear()
    cfg = speed_task(tmp_path / "odd", steps=768, eval_every=2)  # 3 iterations: the end needs its own
    summary = train(cfg, CPU, evaluator=evaluator)
    assert summary["iteration"] == 3 and len(calls) == 2 and len(set(calls)) == 2


def weights_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    steps = 2_000
    full = speed_task(tmp_path / "full", steps=steps)
    done = train(full, CPU, evaluator=None)
    reference = load(full.out / "checkpoints" / "last.pt").model

    # The same run interrupted after two iterations (a time budget ends it there) and resumed to the end.
    part = speed_task(tmp_path / "part", steps=steps, checkpoint_every=1)
    learner, worlds, book = build_session(part, Dist(), CPU, None)
    for _ in range(2):
        ppo.train(part, learner, worlds, book, until=book.progress.decisions + 1)
    book.save(learner, worlds)
    book.close()
    resumed = train(dataclasses.replace(part, resume=True), CPU, evaluator=None)
    assert resumed["decisions"] == done["decisions"] and resumed["iteration"] == done["iteration"]
    assert weights_digest(load(part.out / "checkpoints" / "last.pt").model) == weights_digest(reference)


def test_resume_with_the_mixed_bank_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    """The `ngp` preset's way of training at toy size: behaviour cloning with DAgger on the mixed bank (highway,
    city and NGP maps), several controlled vehicles per world. Killed after two iterations and resumed, it ends
    with the uninterrupted run's weights (the teacher's share, the worlds and the rollouts all resume)."""
    from fuyao.train import bc

    ngp = TRAIN_PRESETS["ngp"]

    def tiny(out: Path, **changes) -> TrainConfig:
        return dataclasses.replace(
            ngp,
            steps=480,
            seed=3,
            out=out,
            eval_every=0,
            eval_episodes=8,
            sim=dataclasses.replace(ngp.sim, worlds=6, vehicles=12, controlled=4, num_maps=3),
            policy=PolicyConfig(encoder=Encoder.MLP, hidden=16),
            bc=dataclasses.replace(ngp.bc, rollout_steps=4, epochs=1, minibatches=2, teacher_iterations=4),
            **changes,
        )

    full = tiny(tmp_path / "full", checkpoint_every=1000)
    assert full.sim.map.value == "mixed" and full.algo.value == "bc"
    done = train(full, CPU, evaluator=None)
    reference = load(full.out / "checkpoints" / "last.pt").model

    part = tiny(tmp_path / "part", checkpoint_every=1)
    learner, worlds, book = build_session(part, Dist(), CPU, None)
    for _ in range(2):
        bc.train(part, learner, worlds, book, until=book.progress.decisions + 1)
    book.save(learner, worlds)
    book.close()
    assert book.progress.decisions < done["decisions"]
    # DAgger's aggregate dataset is part of what resumes; with 5 iterations in all, its ring of 4 wraps after it.
    assert part.bc.dagger_iterations == 4 and int(worlds.dagger["count"]) == 2
    resumed = train(dataclasses.replace(part, resume=True), CPU, evaluator=None)
    assert resumed["decisions"] == done["decisions"] and resumed["iteration"] == done["iteration"]
    assert weights_digest(load(part.out / "checkpoints" / "last.pt").model) == weights_digest(reference)


def test_resume_refuses_another_configuration(tmp_path):
    cfg = speed_task(tmp_path, steps=300, checkpoint_every=1)
    train(cfg, CPU, evaluator=None)
    other = dataclasses.replace(cfg, resume=True, ppo=dataclasses.replace(cfg.ppo, lr=1e-4), steps=600)
    with pytest.raises(CheckpointError, match="ppo"):
        train(other, CPU, evaluator=None)
    # A fresh run into the same folder would overwrite that run's checkpoints: refused, nothing touched.
    before = {p.name: p.read_bytes() for p in (cfg.out / "checkpoints").iterdir()}
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train(dataclasses.replace(cfg, steps=600), CPU, evaluator=None)
    assert {p.name: p.read_bytes() for p in (cfg.out / "checkpoints").iterdir()} == before


def test_nan_stops_the_run_and_keeps_the_checkpoint(tmp_path):
    cfg = speed_task(tmp_path, steps=10_000, checkpoint_every=1)
    learner, worlds, book = build_session(cfg, Dist(), CPU, None)
    ppo.train(cfg, learner, worlds, book, until=1)
    book.save(learner, worlds)
    last = cfg.out / "checkpoints" / "last.pt"
    before = last.read_bytes()
    with torch.no_grad():
        learner.model.critic[0].weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="value is nan"):
        ppo.train(cfg, learner, worlds, book, until=10_000)
    book.close()
    assert last.read_bytes() == before
    load(last)  # still a good checkpoint


def test_nan_in_the_loss_names_the_parameters(tmp_path):
    cfg = speed_task(tmp_path, steps=10_000)
    learner, worlds, book = build_session(cfg, Dist(), CPU, None)

    def poisoned(*args):
        loss, parts = ppo.ppo_loss(*args)
        return loss * float("nan"), parts

    from fuyao.train.rollout import Rollout, collect

    buf = Rollout.allocate(cfg.ppo.rollout_steps, worlds.world, CPU)
    worlds.carry = collect(worlds.world, learner.model, worlds.carry, buf, learner.generator, 0.9)
    adv, ret = gae(buf.reward, buf.value, buf.done, buf.next_value, 0.9, 0.95)
    before = weights_digest(learner.model)
    with pytest.raises(NonFiniteError, match="non-finite gradients in .*actor"):
        ppo.update(learner, cfg.ppo, buf, adv, ret, poisoned)
    book.close()
    assert weights_digest(learner.model) == before  # the optimizer never stepped


def save_untrained(tmp_path: Path, name: str) -> Path:
    cfg = TRAIN_PRESETS[name]
    model = ActorCritic(cfg.sim, cfg.policy)
    path = tmp_path / f"{name}.pt"
    torch.save(checkpoint_payload(cfg, model, None, {}), path)
    return path


def test_truncated_or_foreign_checkpoints_are_refused(tmp_path):
    path = save_untrained(tmp_path, "smoke")
    load(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load(cut)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load(tmp_path / "missing.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a Fuyao checkpoint"):
        load(foreign)
    bad = torch.load(path, weights_only=True)
    bad["model"]["actor.2.weight"] = torch.zeros(7, 3)
    torch.save(bad, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="actor.2.weight"):
        load(tmp_path / "shape.pt")


def test_pilot_acts_on_batches_tensors_and_arrays(tmp_path):
    pilot = load(save_untrained(tmp_path, "smoke"))
    shape = pilot.observation_space.shape
    obs = torch.randn(6, *shape)
    a = pilot.act(obs)
    assert a.shape == (6,) and a.dtype == torch.int64
    assert pilot.act(obs.view(2, 3, *shape)).shape == (2, 3)
    out = pilot.act(obs.numpy())
    assert isinstance(out, np.ndarray) and out.shape == (6,)
    np.testing.assert_array_equal(out, a.numpy())
    with pytest.raises(ValueError, match="observation space"):
        pilot.act(torch.randn(6, 3))


def test_highway_v0_pilot_acts_in_highway_env(tmp_path):
    highway_env = pytest.importorskip("highway_env")  # noqa: F841 (registers the ids)
    import gymnasium

    pilot = load(save_untrained(tmp_path, "highway-v0"))
    env = gymnasium.make("highway-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == pilot.observation_space.shape and obs.dtype == np.float32
    for _ in range(3):
        action = pilot.act(obs[None])
        assert action.shape == (1,) and env.action_space.contains(int(action[0]))
        obs, *_ = env.step(int(action[0]))
    env.close()


@pytest.mark.parametrize("observation", [ObservationType.NATIVE, ObservationType.HIGHWAY_KINEMATICS])
def test_pooled_encoder_ignores_the_order_of_neighbours(observation):
    sim = preset("smoke", observation=observation)
    model = ActorCritic(sim, PolicyConfig(encoder=Encoder.POOLED, hidden=16))
    from fuyao.sim.world import World

    world = World(dataclasses.replace(sim, worlds=4))
    obs = world.observe(world.reset(0)).flatten(0, 1)
    if observation is ObservationType.NATIVE:
        k, f = sim.neighbours, 13
        neigh = obs[:, 10 : 10 + k * f].reshape(-1, k, f)
        shuffled = obs.clone()
        shuffled[:, 10 : 10 + k * f] = neigh.flip(1).reshape(-1, k * f)
    else:
        shuffled = torch.cat([obs[:, :1], obs[:, 1:].flip(1)], dim=1)
    assert not torch.equal(shuffled, obs)
    torch.testing.assert_close(model(shuffled)[0], model(obs)[0])
    torch.testing.assert_close(model(shuffled)[1], model(obs)[1])


def test_learned_pilot_for_world_masks_impossible_lane_changes(tmp_path):
    from fuyao.sim.world import World

    pilot = load(save_untrained(tmp_path, "smoke"))
    with torch.no_grad():  # make LANE_LEFT the favourite everywhere
        pilot.model.actor[2].bias.copy_(torch.tensor([10.0, 0.0, 0.0, 0.0, 0.0]))
    world = World(dataclasses.replace(pilot.sim, worlds=4))
    state = world.reset(0)
    obs = world.observe(state)
    allowed = world.action_mask(state)
    bound = pilot.for_world(world).act(obs, state)
    expect_left = allowed[..., 0]
    assert torch.equal(bound == 0, expect_left)
    assert (pilot.act(obs) == 0).all()  # unbound: no mask


def fuyao(*args, env=None, timeout=600):
    import os
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "fuyao.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )
    return proc


@pytest.mark.slow
def test_two_processes_with_gloo_keep_identical_replicas(tmp_path):
    import json
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "fuyao.cli", "train", "--preset", "smoke", "--out", str(out), "--device", "cpu",
        "--eval-every", "0", "--eval-episodes", "0", "--steps", "300",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["processes"] == 2
    assert summary["replicas_identical"] is True
    assert summary["decisions"] >= 300
    assert not (out / "checkpoints" / "rank1").exists()


@pytest.mark.slow
def test_one_process_under_torchrun_forms_a_group_and_trains_the_plain_runs_weights(tmp_path):
    """With one rank, torchrun's process forms a process group (gloo here, NCCL on the one-GPU machine) and wraps
    the model in DistributedDataParallel: the one-GPU check exercises the collectives. Averaging over one rank
    changes nothing: the weights equal a run started without a launcher, bit for bit."""
    import json
    import os
    import subprocess
    import sys

    flags = ["--preset", "smoke", "--device", "cpu", "--eval-every", "0", "--eval-episodes", "0", "--steps", "96"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "LOCAL_RANK"):
        env.pop(k, None)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1"]
    runs = {"torchrun": launcher + ["-m", "fuyao.cli", "train"], "plain": [sys.executable, "-m", "fuyao.cli", "train"]}
    weights = {}
    for name, cmd in runs.items():
        out = tmp_path / name
        proc = subprocess.run(cmd + flags + ["--out", str(out)], capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["processes"] == 1
        assert summary["process_group"] is (name == "torchrun")
        weights[name] = torch.load(out / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert weights["plain"].keys() == weights["torchrun"].keys()
    for k, w in weights["plain"].items():
        assert torch.equal(w, weights["torchrun"][k]), k


def test_progress_line_names_how_many_episodes_the_rates_cover():
    from fuyao.train.logger import _fmt

    line = _fmt({"decisions_per_s": 1234.0, "episodes": 3.0, "collision_rate": 1.0, "progress_m": float("nan")})
    assert line == "dec/s 1,234  ep 3  coll 1.000"


def test_learning_rate_anneals_over_anneal_decisions_not_the_budget(tmp_path):
    # The main job stops at a decision budget (`steps`) while keeping the schedule it was tuned with.
    cfg = speed_task(tmp_path, steps=1024)  # 4 iterations of 32 worlds x 8 decisions
    long = dataclasses.replace(cfg, out=tmp_path / "long", ppo=dataclasses.replace(cfg.ppo, anneal_decisions=10240))
    lr = {}
    for run in (cfg, long):
        train(run, CPU, evaluator=None)
        rows = [json.loads(line) for line in open(run.out / "metrics.jsonl")]
        lr[run.out.name] = [(r["decisions"], r["lr"]) for r in rows if "lr" in r]
    # Each iteration's rate is set from the decisions before it: 1 - done / horizon.
    for (_, rate), (before, _) in zip(lr["run"][1:], lr["run"][:-1]):
        assert rate == pytest.approx(cfg.ppo.lr * (1 - before / 1024), rel=1e-6)
    for (_, rate), (before, _) in zip(lr["long"][1:], lr["long"][:-1]):
        assert rate == pytest.approx(cfg.ppo.lr * (1 - before / 10240), rel=1e-6)
    assert lr["long"][-1][1] > 0.8 * cfg.ppo.lr > lr["run"][-1][1]


def test_behaviour_cloning_anneals_its_learning_rate_over_the_cloning_phase_when_asked(tmp_path):
    from fuyao.train.config import Algo, BCConfig

    base = speed_task(tmp_path, steps=1024)
    runs = {
        name: dataclasses.replace(
            base, algo=Algo.BC, out=tmp_path / name, bc=BCConfig(rollout_steps=8, anneal_lr=anneal, lr=1e-3)
        )
        for name, anneal in (("constant", False), ("annealed", True))
    }
    lr = {}
    for name, run in runs.items():
        train(run, CPU, evaluator=None)
        rows = [json.loads(line) for line in open(run.out / "metrics.jsonl")]
        lr[name] = [(r["decisions"], r["lr"]) for r in rows if "bc_accuracy" in r]
    assert len(lr["constant"]) == 4 and all(rate == 1e-3 for _, rate in lr["constant"])
    # Each iteration's rate is set from the decisions before it: lr x (1 - done / steps).
    assert lr["annealed"][0][1] == pytest.approx(1e-3)
    for (_, rate), (before, _) in zip(lr["annealed"][1:], lr["annealed"][:-1]):
        assert rate == pytest.approx(1e-3 * (1 - before / 1024), rel=1e-6)
    assert lr["annealed"][-1][1] < 0.3e-3


def test_checkpoints_are_chosen_by_target_margin_not_by_score():
    from fuyao.train.evaluator import selection_value, target_margins, target_met

    ref = {"score": 0.80, "progress_m": 1000.0, "at_fault_collision_rate": 0.010, "red_light_runs_per_km": 0.0}
    safe = {"score": 0.82, "progress_m": 1020.0, "at_fault_collision_rate": 0.005, "red_light_runs_per_km": 0.0}
    fast_risky = {"score": 0.90, "progress_m": 1200.0, "at_fault_collision_rate": 0.030, "red_light_runs_per_km": 0.0}
    runs_reds = {"score": 0.88, "progress_m": 1100.0, "at_fault_collision_rate": 0.0, "red_light_runs_per_km": 0.3}
    assert target_met(safe, ref) and not target_met(fast_risky, ref) and not target_met(runs_reds, ref)
    m = target_margins(safe, ref)
    assert m["progress_m"] == pytest.approx(20.0 / 50.0) and m["at_fault_collision_rate"] == pytest.approx(0.5)
    assert m["red_light_runs_per_km"] == 0.0
    # Higher scores do not win over a pilot that meets every criterion.
    assert selection_value(safe, ref) > selection_value(fast_risky, ref)
    assert selection_value(safe, ref) > selection_value(runs_reds, ref)
    # While none meets the target, the score ranks them.
    assert selection_value(fast_risky, ref) > selection_value(runs_reds, ref)
    assert selection_value(runs_reds, ref) == pytest.approx(0.88)
    # Among pilots that meet the target, the larger smallest-margin wins, whatever the score.
    safer = {**safe, "score": 0.81, "progress_m": 1030.0, "at_fault_collision_rate": 0.0}
    assert selection_value(safer, ref) > selection_value(safe, ref)
    # Rates over no distance are no events (a pilot that never moved ran no red light), not NaN.
    still = {**safe, "red_light_runs_per_km": float("nan")}
    assert target_margins(still, ref)["red_light_runs_per_km"] == 0.0


def test_with_groups_the_target_must_hold_on_every_kind_of_road():
    """The `ngp` suite's highway, city and NGP-trip scenarios are groups: a pilot that beats the rule-based pilot
    on the pooled episodes but falls behind it in town has not met the target."""
    from fuyao.train.evaluator import selection_value, target_margins, target_met

    def both(highway, city):
        pooled = {k: (highway[k] + city[k]) / 2 for k in highway}
        return {
            **pooled,
            **{f"highway/{k}": v for k, v in highway.items()},
            **{f"city/{k}": v for k, v in city.items()},
        }

    ref_h = {"score": 0.8, "progress_m": 1000.0, "at_fault_collision_rate": 0.01, "red_light_runs_per_km": 0.0}
    ref_c = {"score": 0.8, "progress_m": 300.0, "at_fault_collision_rate": 0.0, "red_light_runs_per_km": 0.0}
    ref = both(ref_h, ref_c)
    good_c = {**ref_c, "score": 0.82, "progress_m": 310.0}
    bad_c = {**ref_c, "score": 0.85, "progress_m": 280.0}
    fast_h = {**ref_h, "score": 0.9, "progress_m": 1200.0, "at_fault_collision_rate": 0.0}
    pooled_only = both(fast_h, bad_c)
    # Pooled, it beats the reference on every criterion...
    assert target_met(
        {k: v for k, v in pooled_only.items() if "/" not in k}, {k: v for k, v in ref.items() if "/" not in k}
    )
    # ...but not in town.
    m = target_margins(pooled_only, ref)
    assert set(m) == {
        f"{g}/{c}"
        for g in ("highway", "city")
        for c in ("progress_m", "at_fault_collision_rate", "red_light_runs_per_km")
    }
    assert m["city/progress_m"] == pytest.approx(-20.0 / 15.0) and m["highway/progress_m"] == pytest.approx(4.0)
    assert not target_met(pooled_only, ref) and selection_value(pooled_only, ref) < 1.0
    fine = both(fast_h, good_c)
    assert target_met(fine, ref)
    # The smallest margin over every group ranks pilots that meet it: the city's +10 m (of 5 % of 300 m) here.
    assert selection_value(fine, ref) == pytest.approx(10.0 + 10.0 / 15.0 + 1.0e-3 * fine["score"])


def test_periodic_evaluation_runs_on_validation_episodes_against_the_rule_based_pilot(tmp_path):
    from fuyao.evaluation import get_suite
    from fuyao.train.evaluator import Evaluator

    cfg = dataclasses.replace(TRAIN_PRESETS["smoke"], eval_episodes=4)
    evaluator = Evaluator(cfg, CPU)
    suite = get_suite("smoke")
    assert evaluator.suite.name == "smoke-validation"
    for a, b in zip(evaluator.suite.scenarios, suite.scenarios):
        assert a.seed != b.seed and a.sim.map_seed != b.sim.map_seed
    model = ActorCritic(cfg.sim, cfg.policy)
    out = evaluator(model)
    for key in ("score", "target_met", "selection", "margin_progress_m", "margin_at_fault_collision_rate"):
        assert key in out
    assert out["episodes"] == evaluator.reference["episodes"] > 0
    assert out["target_met"] in (0.0, 1.0)


def test_periodic_evaluation_holds_each_group_to_the_target(tmp_path):
    from fuyao.evaluation import get_suite
    from fuyao.train.evaluator import Evaluator

    cfg = dataclasses.replace(TRAIN_PRESETS["smoke"], eval_episodes=4)
    evaluator = Evaluator(cfg, CPU)
    first, second = get_suite("smoke").validation().scenarios
    evaluator.suite = dataclasses.replace(
        evaluator.suite, scenarios=(dataclasses.replace(first, group="a"), dataclasses.replace(second, group="b"))
    )
    out = evaluator(ActorCritic(cfg.sim, cfg.policy))
    for g in ("a", "b"):
        assert out[f"{g}/episodes"] > 0 and f"margin_{g}/progress_m" in out
        assert out[f"{g}/episodes"] == evaluator.reference[f"{g}/episodes"]
    assert out["a/episodes"] + out["b/episodes"] == out["episodes"]
    assert "margin_progress_m" not in out  # the pooled episodes are reported, not held to the target
    criteria = ("progress_m", "at_fault_collision_rate", "red_light_runs_per_km")
    assert out["target_met"] == float(all(out[f"margin_{g}/{c}"] >= 0 for g in "ab" for c in criteria))


def test_lane_change_weight_weighs_the_teachers_lane_changes_in_the_imitation_loss():
    """`BCConfig.lane_change_weight`: a decision the teacher labels LEFT or RIGHT pulls on the student that many
    times as hard as one it labels otherwise (at 10 Hz a merge hangs on one decision in a hundred)."""
    from fuyao.sim.step import META_IDLE, META_LEFT
    from fuyao.train.bc import bc_loss
    from tests.fake_students import LogitsStudent, as_learner

    def row_grads(weight: float) -> torch.Tensor:
        student = LogitsStudent(torch.zeros(2, 5))
        base = train_preset("ngp")
        cfg = dataclasses.replace(base, bc=dataclasses.replace(base.bc, lane_change_weight=weight))
        learner = as_learner(student)
        batch = {
            "obs": torch.zeros(2, 3),
            "active": torch.ones(2, dtype=torch.bool),
            "teacher": torch.tensor([META_LEFT, META_IDLE]),
            "mask": torch.ones(2, 5, dtype=torch.bool),
        }
        loss, _ = bc_loss(learner, cfg.bc, batch, torch.zeros(2), torch.arange(2))
        loss.backward()
        return student.logits.grad.norm(dim=-1)

    plain, weighted = row_grads(1.0), row_grads(5.0)
    assert torch.allclose(plain[0], plain[1])
    assert torch.allclose(weighted[0] / weighted[1], torch.tensor(5.0))
    with pytest.raises(ConfigError, match="lane_change_weight"):
        BCConfig(lane_change_weight=0.0)


def test_dagger_aggregate_keeps_the_last_iterations_labelled_decisions():
    """`BCConfig.dagger_iterations`: each iteration's rows go into a ring of the last K iterations, and learning
    reads every row held (DAgger trains on the aggregate dataset, not the newest rollout alone)."""
    from types import SimpleNamespace

    from fuyao.train.bc import aggregate

    worlds = SimpleNamespace(dagger=None)

    def rows(i: int) -> dict[str, torch.Tensor]:
        return {
            "obs": torch.full((3, 2), float(i)),
            "mask": torch.ones(3, 5, dtype=torch.bool),
            "teacher": torch.full((3,), i),
            "teacher_logits": torch.zeros(3, 5),
            "active": torch.ones(3, dtype=torch.bool),
        }

    seen = []
    for i in range(5):
        b, ret = aggregate(worlds, rows(i), torch.full((3,), 10.0 * i), iterations=3)
        seen.append(sorted(set(b["teacher"].tolist())))
        assert b["obs"].shape == (3 * min(i + 1, 3), 2) and ret.shape == (3 * min(i + 1, 3),)
        assert torch.equal(ret, b["obs"][:, 0] * 10.0)  # rows and their returns stay together
    assert seen == [[0], [0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert int(worlds.dagger["count"]) == 5 and worlds.dagger["count"].device.type == "cpu"
    with pytest.raises(ConfigError, match="dagger_iterations"):
        BCConfig(dagger_iterations=-1)


def test_only_the_cut_off_worlds_are_observed_to_bootstrap_and_the_returns_equal_observing_all(tmp_path, monkeypatch):
    """On the CPU the rollout observes, for the time limit's bootstrap, only the worlds whose episode it cut off
    (most decisions: none); the rewards equal those from observing every world (CUDA's and a compiled
    observation's way) up to the value head's rounding at another batch size. (The pooled encoder: it takes no
    empty batch, which a decision that cuts off nothing must not hand it.)"""
    from fuyao.sim.state import replace
    from fuyao.sim.world import World
    from fuyao.train.rollout import Rollout, collect

    cfg = speed_task(tmp_path, policy=PolicyConfig(encoder=Encoder.POOLED, hidden=32))
    learner, worlds, book = build_session(cfg, Dist(), CPU, None)
    w, per_episode = cfg.sim.worlds, cfg.sim.decisions_per_episode
    # Episodes at different stages, so that each decision cuts off a few worlds' episodes.
    carry = dataclasses.replace(
        worlds.carry, state=replace(worlds.carry.state, decisions=torch.arange(w) % per_episode)
    )
    observed = []
    original = World.observe_worlds

    def counted(self, state, index):
        observed.append(int(index.numel()))
        return original(self, state, index)

    monkeypatch.setattr(World, "observe_worlds", counted)
    with torch.no_grad():
        learner.model.critic[-1].bias.fill_(5.0)  # V about 5: a bootstrap left out would show
    rewards = {}
    for way in ("cut-off worlds", "every world"):
        if way == "every world":
            monkeypatch.setattr(World, "observes_eagerly", property(lambda self: False))
        buf = Rollout.allocate(per_episode, worlds.world, CPU)
        collect(worlds.world, learner.model, carry, buf, torch.Generator().manual_seed(3), 0.9)
        rewards[way] = buf.reward.clone()
        if way == "cut-off worlds":  # and from the start, where no episode ends for a while: nothing observed
            fresh = Rollout.allocate(3, worlds.world, CPU)
            collect(worlds.world, learner.model, worlds.carry, fresh, torch.Generator().manual_seed(3), 0.9)
            assert fresh.reward.max() <= 1.0
    book.close()
    assert len(observed) == per_episode and sum(observed) == w and 0 < max(observed) < w
    torch.testing.assert_close(rewards["cut-off worlds"], rewards["every world"], rtol=0.0, atol=1e-5)
    assert rewards["every world"].max() > 4.0  # the high-speed term is at most 1: bootstrapped steps are there


def test_observing_some_worlds_equals_their_rows_of_observing_all():
    from fuyao.sim.world import World

    world = World(preset("city", worlds=5, vehicles=24, num_maps=2, controlled=2))
    state = world.reset(seed=2)
    index = torch.tensor([4, 1])
    assert torch.equal(world.observe_worlds(state, index), world.observe(state)[index])
