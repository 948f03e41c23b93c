"""Stable-Baselines3 and CleanRL-style trainers: `FuyaoSB3VecEnv` keeps SB3's VecEnv contract (NumPy,
terminal observations, time-limit flags, masks, seeds), SB3's PPO trains on it, `NumpyVectorEnv` hands NumPy to
Gymnasium-style trainers, and both examples run end to end on a tiny budget."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.vec_env import VecMonitor  # noqa: E402

from fuyao.envs import NumpyVectorEnv, make_sb3_vec_env, make_vector_env  # noqa: E402
from fuyao.presets import HIGHWAY_ENV_CONTROLLERS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAST = {"sim_hz": 5, "episode_s": 4.0}  # 5 ticks per decision, 4-decision episodes


def test_vec_env_speaks_numpy_and_reports_episode_ends():
    env = make_sb3_vec_env("smoke", worlds=3, **FAST)
    env.seed(5)
    first = env.reset()
    assert (
        isinstance(first, np.ndarray) and first.dtype == np.float32 and first.shape == (3, *env.observation_space.shape)
    )
    assert env.action_masks().shape == (3, 5) and env.reset_infos[0]["action_mask"].dtype == np.bool_
    ends = 0
    for _ in range(2 * env.env.cfg.decisions_per_episode):
        env.step_async(np.ones(3, dtype=np.int64))  # IDLE
        obs, reward, done, infos = env.step_wait()
        assert obs.shape == first.shape and reward.dtype == np.float32 and done.dtype == np.bool_
        assert len(infos) == 3 and isinstance(infos[0]["collision"], bool) and isinstance(infos[0]["speed"], float)
        for i, info in enumerate(infos):
            assert ("terminal_observation" in info) == bool(done[i])
            if info["TimeLimit.truncated"]:
                assert done[i] and not info["collision"]
            if done[i]:
                ends += 1
                assert info["terminal_observation"].shape == obs.shape[1:]
                assert np.abs(info["terminal_observation"]).sum() > 0
    assert ends >= 3  # every world reached its time limit at least once
    env.seed(5)
    assert np.array_equal(env.reset(), first)  # seeded through SB3's seed()


def test_terminal_observation_is_the_vector_envs_final_obs():
    # highway-env's unbounded steering (`SimConfig.max_lat_accel`, `max_steer_rate`): a hard left leaves the road
    # within a decision.
    loose = dict(FAST, **HIGHWAY_ENV_CONTROLLERS)
    sb3 = make_sb3_vec_env("smoke", worlds=2, action="continuous", **loose)
    ref = make_vector_env("smoke", worlds=2, action="continuous", **loose)
    sb3.seed(0)
    sb3.reset()
    ref.reset(seed=0)
    hard_left = np.array([[0.0, 1.0]] * 2, dtype=np.float32)  # off the road: terminated
    obs, _, done, infos = sb3.step(hard_left)
    ref_obs, *_, ref_infos = ref.step(torch.from_numpy(hard_left))
    assert done.all() and np.array_equal(obs, ref_obs.numpy())
    assert all(np.array_equal(infos[i]["terminal_observation"], ref_infos["final_obs"][i].numpy()) for i in range(2))
    assert not any(info["TimeLimit.truncated"] for info in infos)


def test_attributes_and_methods_act_on_the_one_shared_simulator():
    env = make_sb3_vec_env("smoke", worlds=2, info_keys=("collision",), **FAST)
    env.reset()
    assert env.get_attr("num_worlds") == [2, 2] and env.get_attr("cfg", indices=[1])[0].worlds == 2
    assert env.has_attr("action_masks") and not env.has_attr("no_such_thing")
    masks = env.env_method("action_masks")
    assert len(masks) == 2 and masks[0].shape == (5,)
    env.set_attr("note", 1)
    assert env.env.note == 1
    with pytest.raises(ValueError, match="indices"):
        env.set_attr("note", 2, indices=[0])
    assert env.env_is_wrapped(VecMonitor) == [False, False]
    _, _, _, infos = env.step(np.ones(2, dtype=np.int64))
    assert set(infos[0]) == {"collision", "TimeLimit.truncated"}


def test_sb3_ppo_trains_on_the_vec_env():
    env = VecMonitor(make_sb3_vec_env("smoke", worlds=4, **FAST))
    model = PPO("MlpPolicy", env, n_steps=4, batch_size=16, n_epochs=1, seed=0, verbose=0)
    model.learn(total_timesteps=16)  # one rollout: every world reaches its 4-decision time limit
    assert model.num_timesteps == 16 and len(model.ep_info_buffer) > 0  # episodes completed and logged
    action, _ = model.predict(env.reset(), deterministic=True)
    assert action.shape == (4,)


def test_numpy_vector_env_hands_numpy_to_gymnasium_wrappers():
    import gymnasium

    env = gymnasium.wrappers.vector.RecordEpisodeStatistics(
        NumpyVectorEnv(make_vector_env("smoke", worlds=2, **FAST), flatten=True)
    )
    obs, infos = env.reset(seed=0)
    assert isinstance(obs, np.ndarray) and obs.shape == (2, int(np.prod(env.env.env.obs_shape)))
    assert obs.shape[1:] == env.single_observation_space.shape and isinstance(infos["action_mask"], np.ndarray)
    episodes = 0
    for _ in range(env.env.env.cfg.decisions_per_episode):
        obs, reward, terminated, truncated, infos = env.step(np.ones(2, dtype=np.int64))
        assert isinstance(reward, np.ndarray) and infos["final_obs"].shape == obs.shape
        if "episode" in infos:
            episodes += int(infos["_episode"].sum())
    assert episodes == 2


def _run_example(name: str, *flags: str, tmp_path: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *flags],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_sb3_example_trains_on_highway_v0(tmp_path):
    stdout = _run_example(
        "sb3_ppo.py", "--timesteps", "8", "--worlds", "2", "--n-steps", "4", "--save", "m.zip", tmp_path=tmp_path
    )
    assert "'timesteps': 8" in stdout and (tmp_path / "m.zip").exists()


@pytest.mark.slow
def test_cleanrl_example_trains_on_highway_v0(tmp_path):
    flags = ("--total-timesteps", "8", "--num-envs", "2", "--num-steps", "4", "--num-minibatches", "2")
    stdout = _run_example("cleanrl_ppo.py", *flags, "--no-cuda", tmp_path=tmp_path)
    assert "SPS:" in stdout and any((tmp_path / "runs").iterdir())
