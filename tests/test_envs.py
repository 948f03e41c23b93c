"""Gymnasium shells: `FuyaoEnv` passes Gymnasium's checker, `FuyaoVectorEnv` keeps its spaces, seeds, flags and
autoreset contract, and `register()` makes the ids without import-time side effects."""

import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

from fuyao.envs import FuyaoEnv, FuyaoVectorEnv, make_env, make_vector_env, register
from fuyao.presets import HIGHWAY_ENV_CONTROLLERS, preset

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _random_actions(env: FuyaoVectorEnv, gen: torch.Generator) -> torch.Tensor:
    if env.cfg.action.value == "meta":
        return torch.randint(0, 5, (env.num_envs,), generator=gen)
    return torch.rand(env.num_envs, 2, generator=gen) * 2.0 - 1.0


@pytest.mark.parametrize(
    "name, overrides",
    [("smoke", {}), ("highway-v0", {"vehicles": 21}), ("smoke", {"action": "continuous"})],
)
def test_fuyao_env_passes_the_gymnasium_checker(name, overrides):
    env = make_env(name, **overrides)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")  # unbounded Box, as highway-env's Kinematics
        check_env(env, skip_render_check=True)


def test_fuyao_env_rejects_several_controlled_vehicles():
    with pytest.raises(ValueError, match="controlled"):
        FuyaoEnv(preset("smoke", controlled=2))


def test_fuyao_env_runs_an_episode_with_plain_types():
    env = make_env("smoke")
    first, info = env.reset(seed=3)
    assert first.dtype == np.float32 and first.shape == env.observation_space.shape
    assert info["action_mask"].shape == (5,) and info["action_mask"].dtype == np.bool_
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated) and steps < 10:
        obs, reward, terminated, truncated, info = env.step(1)
        steps += 1
        assert isinstance(reward, float) and isinstance(terminated, bool) and isinstance(truncated, bool)
        assert isinstance(info["collision"], bool) and isinstance(info["speed"], float)
        assert obs in env.observation_space
        assert not (terminated and truncated)
    assert terminated or (truncated and steps == 10)
    again, _ = env.reset(seed=3)
    assert np.array_equal(again, first)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "name, overrides",
    [("smoke", {"controlled": 2}), ("highway-v0", {"worlds": 2, "vehicles": 21}), ("smoke", {"action": "continuous"})],
)
def test_vector_env_tensors_match_the_spaces(device, name, overrides):
    env = make_vector_env(name, device=device, **overrides)
    cfg = env.cfg
    assert env.num_envs == cfg.worlds * cfg.controlled
    assert env.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert env.observation_space.shape == (env.num_envs, *env.single_observation_space.shape)
    assert env.action_space.shape[0] == env.num_envs
    obs, infos = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape and obs.dtype == torch.float32
    assert obs.device.type == torch.device(device).type
    meta = isinstance(env.single_action_space, gymnasium.spaces.Discrete)
    if meta:
        assert infos["action_mask"].shape == (env.num_envs, 5) and infos["action_mask"].dtype == torch.bool
    obs, reward, terminated, truncated, infos = env.step(env.action_space.sample())  # NumPy actions
    assert obs.shape == env.observation_space.shape and obs.dtype == torch.float32
    assert reward.shape == (env.num_envs,) and reward.dtype == torch.float32
    assert terminated.dtype == torch.bool and truncated.dtype == torch.bool
    assert terminated.shape == truncated.shape == (env.num_envs,)
    for key, value in infos.items():
        assert value.shape[0] == env.num_envs, key
        assert value.device == obs.device, key
    assert infos["final_obs"].shape == obs.shape
    if meta:
        assert infos["action_mask"].shape == (env.num_envs, 5)
    else:
        assert "action_mask" not in infos


def test_vector_env_accepts_lists_and_checks_the_action_shape():
    env = make_vector_env("smoke")
    env.reset(seed=0)
    env.step([1] * env.num_envs)
    env.step(np.full(env.num_envs, 3))
    with pytest.raises(ValueError, match="actions"):
        env.step(torch.ones(env.num_envs, 2))
    continuous = make_vector_env("smoke", action="continuous")
    continuous.reset(seed=0)
    with pytest.raises(ValueError, match="actions"):
        continuous.step(torch.zeros(continuous.num_envs))


def _rollout(env: FuyaoVectorEnv, seed: int, steps: int):
    gen = torch.Generator().manual_seed(1234)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, infos = env.step(_random_actions(env, gen))
        trace += [obs, reward, terminated, truncated, infos["final_obs"]]
    return trace


@pytest.mark.parametrize(
    "name, overrides", [("smoke", {"controlled": 2}), ("highway-v0", {"worlds": 2, "vehicles": 21})]
)
def test_same_seed_gives_identical_rollouts(name, overrides):
    a = _rollout(make_vector_env(name, **overrides), seed=7, steps=20)
    env = make_vector_env(name, **overrides)
    b = _rollout(env, seed=7, steps=20)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    again = _rollout(env, seed=7, steps=20)  # the same env, reset again
    assert all(torch.equal(x, y) for x, y in zip(a, again))
    assert not torch.equal(a[0], env.reset(seed=8)[0])


def test_unseeded_resets_continue_the_seeded_stream():
    a, b = make_vector_env("smoke"), make_vector_env("smoke")
    a.reset(seed=5)
    b.reset(seed=5)
    assert torch.equal(a.reset()[0], b.reset()[0])


@pytest.mark.parametrize(
    "name, overrides", [("smoke", {"worlds": 8}), ("highway-v0", {"worlds": 4, "vehicles": 21, "episode_s": 5.0})]
)
def test_truncation_at_the_episode_length_and_final_obs_where_episodes_end(name, overrides):
    env = make_vector_env(name, **overrides)
    limit = env.cfg.decisions_per_episode
    obs, _ = env.reset(seed=1)
    length = torch.zeros(env.num_envs, dtype=torch.int64)
    truncations = 0
    for _ in range(2 * limit + 3):
        actions = torch.full((env.num_envs,), 1)  # IDLE: keep lane and speed
        obs, reward, terminated, truncated, infos = env.step(actions)
        length += 1
        ended = terminated | truncated
        assert not (terminated & truncated).any()
        assert torch.equal(truncated, (length == limit) & ~terminated)
        assert torch.equal(infos["_final_obs"], ended)
        # One controlled vehicle per world: a world not reset returns the observation it ended the step in.
        assert torch.equal(infos["final_obs"][~ended], obs[~ended])
        assert (infos["final_obs"][terminated].flatten(1).abs().sum(dim=1) > 0).all()  # the crash is seen
        truncations += int(truncated.sum())
        length = torch.where(ended, 0, length)
    assert truncations > 0


def test_a_terminated_episode_shows_its_last_observation_and_restarts():
    # Off-road ends the episode in smoke; with highway-env's unbounded steering (`SimConfig.max_lat_accel`,
    # `max_steer_rate`) a hard left gets there within one decision (tyre friction alone would take several).
    env = make_vector_env("smoke", action="continuous", **HIGHWAY_ENV_CONTROLLERS)
    obs, _ = env.reset(seed=0)
    hard_left = torch.tensor([[0.0, 1.0]]).expand(env.num_envs, 2)
    _, reward, terminated, truncated, infos = env.step(hard_left)
    assert terminated.all() and not truncated.any() and infos["offroad"].all() and (reward < 0).all()
    assert infos["_final_obs"].all()
    assert (infos["final_obs"].abs().sum(dim=1) > 0).all()  # not the zeros of an inactive vehicle
    single = make_env("smoke", action="continuous", **HIGHWAY_ENV_CONTROLLERS)
    single.reset(seed=0)
    last, _, terminated, _, info = single.step(np.array([0.0, 1.0], dtype=np.float32))
    assert terminated and info["offroad"] and np.abs(last).sum() > 0


def test_self_play_agents_leave_until_their_world_resets():
    env = make_vector_env("smoke", worlds=6, controlled=3)
    c = env.controlled
    gen = torch.Generator().manual_seed(0)
    env.reset(seed=2)
    inactive_steps = 0
    for _ in range(25):
        obs, reward, terminated, truncated, infos = env.step(_random_actions(env, gen))
        was_inactive = ~infos["active"]
        inactive_steps += int(was_inactive.sum())
        assert not (reward[was_inactive] != 0).any()
        assert not (terminated | truncated)[was_inactive].any()
        now_inactive = ~env.state.active.reshape(-1)
        assert (obs[now_inactive] == 0).all()
        assert torch.equal(infos["_final_obs"], terminated | truncated)
        world_terms = infos["world_background_vehicle_s"].view(-1, c)
        assert (world_terms[:, 1:] == 0).all()
    assert inactive_steps > 0


def test_register_makes_the_gymnasium_ids():
    register()
    register()  # idempotent
    env = gymnasium.make("fuyao/smoke")
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space
    obs, *_ = env.step(env.action_space.sample())
    assert obs in env.observation_space
    assert gymnasium.make("fuyao/highway-v0", vehicles=21).unwrapped.cfg.observation.value == "highway-kinematics"
    assert gymnasium.make("fuyao/highway-ramps").unwrapped.cfg.road.on_ramp_s is not None
    vec = gymnasium.make_vec("fuyao/smoke", num_envs=6, controlled=2)
    assert isinstance(vec, FuyaoVectorEnv) and vec.num_envs == 6 and vec.num_worlds == 3
    with pytest.raises(ValueError, match="num_envs"):
        gymnasium.make_vec("fuyao/smoke", num_envs=5, controlled=2)


def test_importing_registers_nothing():
    code = "import gymnasium, fuyao.envs; assert not [k for k in gymnasium.registry if k.startswith('fuyao/')]"
    subprocess.run([sys.executable, "-c", code], check=True)
