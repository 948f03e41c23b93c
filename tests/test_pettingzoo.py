"""PettingZoo shells: `FuyaoParallelEnv` passes PettingZoo's own API test, names each agent once per episode
under respawn, is seeded, and shows the World's own observations; `FuyaoParallelVectorEnv` keeps the same
bookkeeping as tensors."""

import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("pettingzoo")

from pettingzoo.test import parallel_api_test  # noqa: E402

from fuyao.envs import make_parallel_env, make_parallel_vector_env  # noqa: E402
from fuyao.envs.gym import terminal_observation  # noqa: E402
from fuyao.envs.pettingzoo import agent_name  # noqa: E402
from fuyao.sim.world import World  # noqa: E402

# Small and quick: 5 ticks per decision, 6-decision episodes.
FAST = {"sim_hz": 5, "episode_s": 6.0}
# With respawn PettingZoo's test warns when an episode ends before every name in `possible_agents` was used; a
# superset is all `possible_agents` can be when agents appear as vehicles respawn.
SUPERSET_WARNING = "No agents present but not all possible_agents are terminated or truncated"


def _scripted(env) -> dict:
    """Continuous actions: slot 0 steers hard left (off the road within a decision), the others drive straight."""
    return {a: np.array([0.0, 1.0 if env._slot[a] == 0 else 0.0], np.float32) for a in env.agents}


@pytest.mark.parametrize(
    "overrides",
    [
        {"controlled": 3},
        {"controlled": 3, "respawn": True},
        {"controlled": 2, "respawn": True, "action": "continuous"},
        {"controlled": 1},
    ],
)
def test_parallel_env_passes_the_pettingzoo_api_test(overrides):
    env = make_parallel_env("smoke", **FAST, **overrides)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel_api_test(env, num_cycles=50)
    messages = {str(w.message) for w in caught}
    allowed = {SUPERSET_WARNING} if overrides.get("respawn") else set()
    assert messages <= allowed, messages
    assert env.possible_agents[: env.cfg.controlled] == [agent_name(s, 0) for s in range(env.cfg.controlled)]
    assert len(env.possible_agents) == len(set(env.possible_agents))


def test_respawned_vehicles_are_new_agents_and_no_name_comes_back():
    env = make_parallel_env("smoke", **FAST, controlled=3, respawn=True, action="continuous")
    obs, infos = env.reset(seed=0)
    assert env.agents == ["car0_0", "car1_0", "car2_0"] and set(obs) == set(infos) == set(env.agents)
    finished, spawned = set(), 0
    while env.agents:
        before = set(env.agents)
        obs, rewards, terminated, truncated, infos = env.step(_scripted(env))
        assert not finished & set(obs), "a finished agent came back"
        entered = set(obs) - before
        for agent in entered:  # new agents: first observation, nothing earned yet, acting next
            assert rewards[agent] == 0.0 and not terminated[agent] and not truncated[agent]
            assert infos[agent]["life"] > 0 and agent in env.agents
        spawned += len(entered)
        finished |= {a for a in obs if terminated[a] or truncated[a]}
        assert set(env.agents) == (set(obs) - finished)
        assert set(env.agents) <= set(env.possible_agents)
    assert "car0_0" in finished and spawned >= 2  # slot 0 leaves the road again and again
    assert {a for a in finished if a.startswith("car1")} == {"car1_0"}  # the straight drivers stay one agent


def test_without_respawn_an_ended_agent_leaves_for_good():
    env = make_parallel_env("smoke", **FAST, controlled=3, action="continuous")
    env.reset(seed=0)
    _, _, terminated, _, infos = env.step(_scripted(env))
    assert terminated["car0_0"] and infos["car0_0"]["offroad"] and "action_mask" not in infos["car0_0"]
    assert env.agents == ["car1_0", "car2_0"]
    while env.agents:
        obs, *_ = env.step(_scripted(env))
        assert not any(a.startswith("car0") for a in obs)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


def test_actions_must_name_exactly_the_live_agents():
    env = make_parallel_env("smoke", **FAST, controlled=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="missing"):
        env.step({"car0_0": 1})
    with pytest.raises(ValueError, match="not live"):
        env.step({"car0_0": 1, "car1_0": 1, "car1_1": 1})
    with pytest.raises(KeyError):
        env.action_space("car9_0")


def _episode(env, seed: int) -> list:
    obs, infos = env.reset(seed=seed)
    trace = [obs, infos]
    for agent in env.possible_agents:
        env.action_space(agent).seed(seed)
    while env.agents:
        trace += list(env.step({a: env.action_space(a).sample() for a in env.agents}))
    return trace


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


def test_same_seed_gives_the_same_episode():
    overrides = {**FAST, "controlled": 3, "respawn": True}
    a = _episode(make_parallel_env("smoke", **overrides), seed=4)
    env = make_parallel_env("smoke", **overrides)
    assert _equal(a, _episode(env, seed=4))
    assert _equal(a, _episode(env, seed=4))  # the same env again
    assert not _equal(a[0], env.reset(seed=5)[0])


def test_observations_are_the_worlds_own():
    """Stepping a bare `World` with the same actions gives the observations each agent is handed."""
    env = make_parallel_env("smoke", **FAST, controlled=3, respawn=True, action="continuous")
    world = World(env.cfg)
    obs, _ = env.reset(seed=9)
    state = world.reset(9)
    expected = world.observe(state)[0].numpy()
    assert all(np.array_equal(o, expected[env._slot[a]]) for a, o in obs.items())
    while env.agents:
        actions = _scripted(env)
        slots = {a: env._slot[a] for a in env.agents}
        tensor = torch.zeros(1, env.cfg.controlled, 2)
        for a, act in actions.items():
            tensor[0, slots[a]] = torch.from_numpy(act)
        result = world.step(state, tensor)
        state = result.state
        now, last = world.observe(state)[0].numpy(), terminal_observation(world, result)[0].numpy()
        obs, _, terminated, truncated, _ = env.step(actions)
        for agent, o in obs.items():
            slot = int(agent[3 : agent.index("_")])
            ended = terminated[agent] or truncated[agent]
            assert np.array_equal(o, last[slot] if ended else now[slot]), agent
        assert np.array_equal(env.state(), np.zeros_like(env.state()) if not env.agents else now.reshape(-1))


def test_vector_form_keeps_the_bookkeeping_as_tensors_and_world_zero_is_the_parallel_env():
    overrides = {**FAST, "controlled": 3, "respawn": True, "action": "continuous"}
    vec = make_parallel_vector_env("smoke", worlds=3, **overrides)
    single = make_parallel_env("smoke", **overrides)
    w, c = vec.num_worlds, vec.controlled
    obs, infos = vec.reset(seed=2)
    single_obs, _ = single.reset(seed=2)
    assert obs.shape == (w, c, *vec.obs_shape) and infos["next_life"].shape == (w, c)
    assert all(np.array_equal(o, obs[0, single._slot[a]].numpy()) for a, o in single_obs.items())
    gen = torch.Generator().manual_seed(0)
    life, spawns = infos["next_life"], 0
    for _ in range(2 * vec.cfg.decisions_per_episode):
        actions = torch.rand(w, c, 2, generator=gen) * 2 - 1
        actions[:, 0, 1] = 1.0  # slot 0 leaves the road: respawns
        obs, reward, terminated, truncated, infos = vec.step(actions)
        acted, done = infos["active"], infos["world_done"].unsqueeze(1)
        assert torch.equal(infos["life"], life)
        assert (reward[~acted] == 0).all() and not (terminated | truncated)[~acted].any()
        assert torch.equal(infos["next_life"], torch.where(done, 0, life + infos["spawned"].long()))
        assert not (infos["spawned"] & ~infos["next_active"]).any()
        assert (obs[~infos["next_active"]] == 0).all()
        assert (infos["next_life"] < vec.lives_per_episode).all()
        spawns += int(infos["spawned"].sum())
        life = infos["next_life"]
        if single.agents:
            actions_0 = {a: actions[0, single._slot[a]].numpy() for a in single.agents}
            single_obs, *_ = single.step(actions_0)
            for agent, o in single_obs.items():
                slot = int(agent[3 : agent.index("_")])
                acted_here = bool(acted[0, slot]) and agent_name(slot, int(infos["life"][0, slot])) == agent
                ended = acted_here and bool(terminated[0, slot] | truncated[0, slot])
                ref = infos["final_obs"] if ended else obs
                assert np.array_equal(o, ref[0, slot].numpy()), agent
    assert spawns > 0
