"""Fuyao on CUDA. Tests marked `cuda` skip where no GPU is present (`pytest -m cuda` runs only them; so does
scripts/gpu_check.sh). Bit-exact properties hold on the CPU (test_properties, test_golden); on CUDA, where
kernels may sum in another order, the same properties hold within the tolerances stated below."""

import pytest
import torch
from test_properties import random_action, tensors
from test_train import speed_task

from fuyao.perf.gpu_check import episode_statistics, within_sampling_error
from fuyao.presets import preset
from fuyao.sim.graphs import GraphedCall
from fuyao.sim.state import select_worlds
from fuyao.sim.world import World
from fuyao.train.distributed import Dist
from fuyao.train.rollout import Rollout, collect, gae
from fuyao.train.session import Timers, build_session

HAS_CUDA = torch.cuda.is_available()
CUDA = torch.device("cuda") if HAS_CUDA else None


def cuda_test(fn):
    return pytest.mark.cuda(pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU on this machine")(fn))


# Differences between devices after k decisions: float32 dynamics agree to rounding for a few decisions (then
# trajectories may part at a discrete choice, so these compare a few decisions only).
ATOL, RTOL = 1e-3, 1e-4


def assert_states_close(a, b, where: str) -> None:
    for (name, x), (_, y) in zip(tensors(a), tensors(b)):
        y = y.to(x.device)
        if x.is_floating_point():
            torch.testing.assert_close(x, y, atol=ATOL, rtol=RTOL, msg=lambda m, n=name: f"{where} {n}: {m}")
        else:
            assert torch.equal(x, y), f"{where}: {name}"


def test_graphed_call_copies_arguments_in_and_results_out():
    # Without a GPU: the graph's static buffers with `fn` run on them instead of a replay (`replay=False`).
    world = World(preset("smoke", worlds=4))
    graphed = GraphedCall(world._plain_step, replay=False)
    g = torch.Generator().manual_seed(0)
    plain = state = world.reset(seed=1)
    for _ in range(3):
        action = torch.randint(0, 5, (4, world.cfg.controlled), generator=g)
        ours, want = graphed(state, action), world.step(plain, action)
        for (name, x), (_, y) in zip(tensors(ours), tensors(want)):
            assert torch.equal(x, y), name
            assert all(x.data_ptr() != s.data_ptr() for s in graphed.static_in), f"{name} aliases an input buffer"
        state, plain = ours.state, want.state
    with pytest.raises(ValueError, match="changed structure"):
        graphed(state, torch.zeros(4, world.cfg.controlled, 2))


def test_a_cuda_graph_on_the_cpu_is_not_used():
    assert World(preset("smoke", worlds=2), cuda_graph=True)._graphed is None


def test_episode_statistics_agree_with_themselves():
    a = episode_statistics(torch.device("cpu"), "smoke", 8, 4, seed=1)
    assert all(within_sampling_error(a, a).values())
    shifted = {k: {**v, "mean": v["mean"] + 10.0 * (v["se"] + 1.0)} for k, v in a.items()}
    assert not any(within_sampling_error(a, shifted).values())


@cuda_test
def test_a_rollout_on_cuda_never_synchronises(tmp_path):
    cfg = speed_task(tmp_path)
    learner, worlds, book = build_session(cfg, Dist(), CUDA, None)
    buf = Rollout.allocate(4, worlds.world, CUDA)

    def rollout() -> None:
        worlds.carry = collect(
            worlds.world, learner.model, worlds.carry, buf, learner.generator, 0.9, book.stats, timers=book.timers
        )

    rollout()  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        rollout()
        gae(buf.reward, buf.value, buf.done, buf.next_value, 0.9, 0.95)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    times = book.timers.take()  # the one sync, outside the rollout
    assert times["act"] > 0.0 and times["sim"] > 0.0
    book.close()


@cuda_test
def test_cpu_and_cuda_rollouts_agree_within_sampling_error():
    cpu = episode_statistics(torch.device("cpu"), "highway-v0", 256, 30, seed=3)
    cuda = episode_statistics(CUDA, "highway-v0", 256, 30, seed=3)
    ok = within_sampling_error(cpu, cuda)
    assert all(ok.values()), (ok, cpu, cuda)


@cuda_test
def test_the_first_decisions_on_cuda_match_the_cpu():
    world_cpu, world_gpu = World(preset("smoke", worlds=8)), World(preset("smoke", worlds=8), CUDA)
    a, b = world_cpu.reset(seed=2), world_gpu.reset(seed=2)
    assert_states_close(a, b, "reset")
    g = torch.Generator().manual_seed(0)
    for k in range(2):
        action = torch.randint(0, 5, (8, world_cpu.cfg.controlled), generator=g)
        ra, rb = world_cpu.step(a, action), world_gpu.step(b, action.to(CUDA))
        assert_states_close(ra.state, rb.state, f"decision {k}")
        a, b = ra.state, rb.state


@cuda_test
def test_stepping_worlds_together_equals_stepping_each_alone_on_cuda():
    world = World(preset("smoke", worlds=6, episode_s=2.0), CUDA)  # short episodes: auto-resets too
    state = world.reset(3)
    g = torch.Generator().manual_seed(3)
    for k in range(3):
        action = random_action(world.cfg, 6, g).to(CUDA)
        together = world.step(state, action)
        for i in range(6):
            idx = torch.tensor([i], device=CUDA)
            alone = world.step(select_worlds(state, idx), action[idx])
            want = select_worlds(together.state, idx)
            assert_states_close(alone.state, want, f"decision {k}, world {i}")
        state = together.state


@cuda_test
def test_the_world_as_a_cuda_graph_matches_the_plain_world():
    cfg = preset("smoke", worlds=16)
    plain, graphed = World(cfg, CUDA), World(cfg, CUDA, cuda_graph=True)
    a = b = plain.reset(seed=4)
    g = torch.Generator().manual_seed(1)
    for k in range(4):
        action = torch.randint(0, 5, (16, cfg.controlled), generator=g).to(CUDA)
        ra, rb = plain.step(a, action), graphed.step(b, action)
        assert graphed._graphed is not None, "capture failed (see the warning)"
        assert_states_close(ra.state, rb.state, f"decision {k}")
        torch.testing.assert_close(ra.reward, rb.reward, atol=ATOL, rtol=RTOL)
        a, b = ra.state, rb.state


@cuda_test
def test_timers_on_cuda_measure_device_time():
    timers = Timers(CUDA)
    x = torch.randn(4096, 4096, device=CUDA)
    with timers.phase("learn"):
        for _ in range(10):
            x = x @ x / 4096.0
    assert 0.0 < timers.take()["learn"] < 10.0


@cuda_test
def test_a_tiny_training_run_on_cuda(tmp_path):
    from fuyao.train.run import train

    cfg = speed_task(tmp_path, steps=2_000)
    summary = train(cfg, CUDA, evaluator=None)
    assert summary["decisions"] >= 2_000
