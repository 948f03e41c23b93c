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
