"""The step compiles with torch.compile as whole graphs (fullgraph=True: no graph breaks, so no `.item()`,
host synchronisation or data-dependent Python control flow inside), and the compiled step matches eager."""

import pytest
import torch

from fuyao.presets import preset
from fuyao.sim import step as S
from fuyao.sim.world import World


@pytest.mark.slow
def test_decision_parts_compile_fullgraph_and_match_eager():
    cfg = preset("smoke", worlds=4)
    world = World(cfg)
    state = world.reset(seed=5)
    action = torch.tensor([[3], [0], [2], [4]])
    parts = tuple(
        torch.compile(f, dynamic=False, fullgraph=True)
        for f in (S.begin_decision, S.tick_and_accumulate, S.end_decision)
    )
    eager_state, compiled_state = state, state
    for _ in range(3):
        eager = S.step(eager_state, action, world.road, cfg)
        compiled = S.step(compiled_state, action, world.road, cfg, parts)
        for name in ("s", "d", "speed", "lane", "present"):
            a, b = getattr(eager.state.vehicles, name), getattr(compiled.state.vehicles, name)
            if a.is_floating_point():
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)
            else:
                assert torch.equal(a, b), name
        torch.testing.assert_close(eager.reward, compiled.reward, rtol=1e-4, atol=1e-4)
        eager_state, compiled_state = eager.state, compiled.state


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smoke", "highway-v0"])
def test_observation_compiles_fullgraph_and_matches_eager(name):
    # The native observation (smoke) and highway-env's Kinematics (highway-v0); the world after a few decisions.
    cfg = preset(name, worlds=3)
    world = World(cfg)
    state = world.reset(seed=4)
    for _ in range(2):
        state = world.step(state, torch.full((3, cfg.controlled), 3)).state
    from fuyao.sim.observe import observe

    compiled = torch.compile(observe, dynamic=False, fullgraph=True)(state, world.road, cfg)
    torch.testing.assert_close(compiled, observe(state, world.road, cfg), rtol=1e-5, atol=1e-5)
    training_world = World(cfg, compile="tick+observe")
    torch.testing.assert_close(training_world.observe(state), world.observe(state), rtol=1e-5, atol=1e-5)
    assert training_world._observe is not None  # it compiled, it did not fall back
