"""The hot path neither builds tensors from Python values (a host-to-device copy per call on CUDA) nor reads the
device from the host (a synchronisation) where it need not: checked on CPU by trapping the calls that would.
On CUDA, tests/test_cuda.py runs a rollout under `torch.cuda.set_sync_debug_mode("error")`."""

import dataclasses
import os
import sys
import time

import pytest
import torch
from test_train import speed_task, weights_digest

from fuyao.pilots.rule_based import RuleBasedPilot
from fuyao.presets import preset
from fuyao.sim.world import World
from fuyao.train import ppo
from fuyao.train.distributed import Dist
from fuyao.train.rollout import Rollout, collect, gae
from fuyao.train.session import NonFiniteError, Timers, build_session

CPU = torch.device("cpu")


@pytest.fixture
def no_python_tensors(monkeypatch):
    """`torch.tensor` / `torch.as_tensor` raise while the fixture is active."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a tensor built from Python values in the hot path: {args[:1]}")

    def arm():
        monkeypatch.setattr(torch, "tensor", refuse)
        monkeypatch.setattr(torch, "as_tensor", refuse)

    return arm


@pytest.mark.parametrize(
    "name, overrides",
    [("smoke", {}), ("highway-v0", {}), ("smoke", dict(controlled=3, respawn=True, ego_ramp_fraction=1.0))],
)
def test_decisions_build_no_tensor_from_python_values(name, overrides, no_python_tensors):
    cfg = preset(name, worlds=3, **overrides)
    world = World(cfg)
    pilot = RuleBasedPilot(world)
    state = world.reset(seed=1)
    no_python_tensors()
    for _ in range(3):  # decisions, with observations, masks and the rule-based pilot
        world.observe(state)
        world.action_mask(state)
        state = world.step(state, pilot.act(None, state)).state
    world.reset(seed=2)


class HostReads:
    """Counts Fuyao's reads of tensor values (`bool(t)`, `t.item()`, `float(t)`, `t.tolist()`, ...). Reads by
    torch itself are not counted: Adam reads its step counter, a tensor that lives on the host even when the
    weights are on a GPU (no device sync)."""

    METHODS = ("__bool__", "__float__", "__int__", "__index__", "item", "tolist", "numpy")

    def __init__(self, monkeypatch):
        self.count = 0
        for m in self.METHODS:
            original = getattr(torch.Tensor, m)

            def counted(*args, _original=original, **kwargs):
                caller = sys._getframe(1).f_code.co_filename
                self.count += f"{os.sep}fuyao{os.sep}" in caller and f"{os.sep}tests{os.sep}" not in caller
                return _original(*args, **kwargs)

            monkeypatch.setattr(torch.Tensor, m, counted)


def test_collection_and_gae_never_read_the_device(tmp_path, monkeypatch):
    cfg = speed_task(tmp_path)
    learner, worlds, book = build_session(cfg, Dist(), CPU, None)
    buf = Rollout.allocate(4, worlds.world, CPU)
    reads = HostReads(monkeypatch)
    worlds.carry = collect(
        worlds.world, learner.model, worlds.carry, buf, learner.generator, 0.9, book.stats, timers=book.timers
    )
    gae(buf.reward, buf.value, buf.done, buf.next_value, 0.9, 0.95)
    assert reads.count == 0
    book.close()
    times = book.timers.take()
    assert times["act"] > 0.0 and times["sim"] > 0.0 and book.timers.take() == {}


def test_timers_on_the_cpu_read_the_clock():
    timers = Timers(CPU)
    assert not timers.cuda and isinstance(timers.mark(), float)
    with timers.phase("learn"):
        time.sleep(0.01)
    start = timers.mark()
    timers.span("sim", start, start + 2.0)
    times = timers.take()
    assert times["sim"] == 2.0 and 0.01 <= times["learn"] < 1.0


def update_reads(tmp_path, monkeypatch, minibatches: int, epochs: int) -> int:
    cfg = speed_task(tmp_path / f"m{minibatches}")
    cfg = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, minibatches=minibatches, epochs=epochs))
    learner, worlds, book = build_session(cfg, Dist(), CPU, None)
    buf = Rollout.allocate(cfg.ppo.rollout_steps, worlds.world, CPU)
    worlds.carry = collect(worlds.world, learner.model, worlds.carry, buf, learner.generator, 0.9)
    adv, ret = gae(buf.reward, buf.value, buf.done, buf.next_value, 0.9, 0.95)
    with monkeypatch.context() as m:
        reads = HostReads(m)
        ppo.update(learner, cfg.ppo, buf, adv, ret, ppo.ppo_loss)
        count = reads.count
    book.close()
    return count


def test_the_update_reads_the_device_a_fixed_number_of_times(tmp_path, monkeypatch):
    # Once per update (the finite check and the statistics), not once per minibatch.
    assert update_reads(tmp_path, monkeypatch, 1, 1) == update_reads(tmp_path, monkeypatch, 4, 3) <= 3


def test_a_nan_late_in_the_update_undoes_the_whole_update(tmp_path):
    cfg = speed_task(tmp_path, steps=10_000)
    cfg = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, minibatches=4, epochs=2))
    learner, worlds, book = build_session(cfg, Dist(), CPU, None)
    ppo.train(cfg, learner, worlds, book, until=1)  # the optimizer has state
    buf = Rollout.allocate(cfg.ppo.rollout_steps, worlds.world, CPU)
    worlds.carry = collect(worlds.world, learner.model, worlds.carry, buf, learner.generator, 0.9)
    adv, ret = gae(buf.reward, buf.value, buf.done, buf.next_value, 0.9, 0.95)
    calls = []

    def poisoned_late(*args):  # finite for the first five minibatches, then NaN
        loss, parts = ppo.ppo_loss(*args)
        calls.append(1)
        return (loss * float("nan") if len(calls) > 5 else loss), parts

    before = weights_digest(learner.model)
    moments = [v["exp_avg"].clone() for v in learner.optimizer.state.values()]
    with pytest.raises(NonFiniteError, match="epoch 1, minibatch 1.*undone"):
        ppo.update(learner, cfg.ppo, buf, adv, ret, poisoned_late)
    book.close()
    assert weights_digest(learner.model) == before
    assert all(torch.equal(a, v["exp_avg"]) for a, v in zip(moments, learner.optimizer.state.values()))
    ppo.update(learner, cfg.ppo, buf, adv, ret, ppo.ppo_loss)  # the optimizer still works after the undo
    assert weights_digest(learner.model) != before
