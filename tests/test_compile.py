"""The step compiles with torch.compile as whole graphs (fullgraph=True: no graph breaks, so no `.item()`,
host synchronisation or data-dependent Python control flow inside), and the compiled step matches eager."""

import os
import subprocess
import sys

import pytest
import torch

from fuyao.presets import preset
from fuyao.sim import step as S
from fuyao.sim.world import SIM_INDUCTOR_OPTIONS, World


@pytest.mark.slow
def test_decision_parts_compile_fullgraph_and_match_eager():
    cfg = preset("smoke", worlds=4)
    world = World(cfg)
    state = world.reset(seed=5)
    action = torch.tensor([[3], [0], [2], [4]])
    parts = tuple(
        torch.compile(f, dynamic=False, fullgraph=True, options=SIM_INDUCTOR_OPTIONS)  # as `World` compiles them
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


VEC_ISA_AFTER = """
import torch
from torch._inductor.cpu_vec_isa import pick_vec_isa
if {compile_world}:
    from fuyao.sim.world import _compile  # how `World` compiles its graphs
    _compile(lambda x: torch.sin(x) * 2.0 + 1.0)(torch.randn(64))
print(bool(pick_vec_isa()))
"""


@pytest.mark.slow
def test_compiling_the_world_scalar_leaves_later_compiles_vectorised(tmp_path):
    """The world's graphs compile to scalar C++ (`SIM_INDUCTOR_OPTIONS`); the policy compiled after them in
    the same process (training) must still get vector code. A fresh process each, as the first compile of a
    process decides what Inductor caches (with `cpp.vec_isa_ok=False` it cached "no vector ISA" for good)."""

    def vec_isa(compile_world: bool) -> str:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}  # the compiler on PATH
        code = VEC_ISA_AFTER.format(compile_world=compile_world)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.strip().splitlines()[-1]

    assert vec_isa(compile_world=True) == vec_isa(compile_world=False)
