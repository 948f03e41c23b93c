"""Invariants of the step, as hypothesis properties on small worlds: padding slots never move, stepping worlds
together equals stepping each alone, permuting vehicle slots permutes the result, speeds stay >= 0, headings
stay wrapped, nothing turns NaN, the same seed gives the same rollout bit for bit, and a car driving straight
along the centre of a straight lane is never off-road."""

import dataclasses
import functools
import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fuyao.presets import preset
from fuyao.roads.highway import HighwayConfig, build_highway
from fuyao.sim import step as S
from fuyao.sim.config import ActionType, SimConfig
from fuyao.sim.geometry import wrap_angle
from fuyao.sim.neighbours import sorted_count
from fuyao.sim.reset import reset_state
from fuyao.sim.scene import scene
from fuyao.sim.state import permute_vehicles, replace, select_worlds
from fuyao.sim.world import World

PI32 = float(torch.tensor(math.pi, dtype=torch.float32))  # float32 pi rounds up: wrapped angles lie in [-PI32, PI32)
SEEDS = st.integers(min_value=0, max_value=2**20)


@functools.cache
def smoke_world(**overrides) -> World:
    """A `World` on the smoke preset (2-lane curved highways with ramps, 4 worlds of 8 slots by default)."""
    return World(preset("smoke", **overrides))


def tensors(obj, prefix: str = ""):
    """`(name, tensor)` for every tensor of a (nested) dataclass or dict."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
        return
    if obj is None:  # an optional part (`WorldState.replay`)
        return
    items = obj.items() if isinstance(obj, dict) else ((f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj))
    for name, value in items:
        yield from tensors(value, f"{prefix}.{name}" if prefix else name)


def random_action(cfg: SimConfig, worlds: int, g: torch.Generator) -> torch.Tensor:
    if cfg.action is ActionType.META:
        return torch.randint(0, 5, (worlds, cfg.controlled), generator=g)
    return torch.rand((worlds, cfg.controlled, 2), generator=g) * 2.0 - 1.0


def with_padding(state, drop: list[bool]):
    """The state with the slots marked in `drop` (`W * N` flags) made absent, as cars that left the road are.
    A controlled slot keeps its `controlled` flag (as after arriving) and leaves its episode."""
    v = state.vehicles
    mask = torch.tensor(drop, dtype=torch.bool).view(v.present.shape)
    present = v.present & ~mask
    c = state.active.shape[1]
    return replace(state, vehicles=replace(v, present=present), active=state.active & present[:, :c])


def assert_unchanged(before, after, where: torch.Tensor, what: str):
    """Every `Vehicles` field equal at the `[W, N]` positions `where`."""
    for name, a in tensors(before):
        b = getattr(after, name)
        assert torch.equal(a[where], b[where]), (
            f"{what}: field {name!r} of padding slots changed: {a[where].tolist()} -> {b[where].tolist()}"
        )


# ----------------------------------------------------------------------------------------- wrapped angles


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-1.0e4, max_value=1.0e4, width=32))
def test_wrap_angle_lands_in_minus_pi_to_pi(angle):
    a = torch.tensor([angle, -angle], dtype=torch.float32)
    w = wrap_angle(a)
    assert bool(((w >= -PI32) & (w < PI32)).all()), (angle, w.tolist())
    # Same direction: a whole number of turns apart (up to float32 rounding of the large input).
    turns = (a.double() - w.double()) / (2.0 * math.pi)
    assert bool(((turns - turns.round()).abs() < 1e-3 + 1e-7 * a.double().abs()).all()), (angle, w.tolist())


# ------------------------------------------------------------------------------ sorted-row binary search


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.lists(st.integers(-5, 5), min_size=1, max_size=70), min_size=1, max_size=3).map(
        lambda rs: [r + r[:1] * (max(map(len, rs)) - len(r)) for r in rs]  # equal lengths, repeated keys
    ),
    queries=st.lists(st.integers(-7, 7), min_size=1, max_size=9),
    right=st.booleans(),
)
def test_sorted_count_equals_searchsorted(rows, queries, right):
    keys = torch.tensor(rows, dtype=torch.float64).sort(dim=1).values
    q = (torch.tensor(queries, dtype=torch.float64) + 0.5 * torch.arange(len(queries)).remainder(2)).expand(
        len(rows), -1
    )
    expected = torch.searchsorted(keys, q.contiguous(), right=right)
    assert torch.equal(sorted_count(keys, q, right=right), expected), (keys, q)
    lanes = keys.long()  # integer rows, as the lane starts use it
    assert torch.equal(
        sorted_count(lanes, q.long(), right=right), torch.searchsorted(lanes, q.long().contiguous(), right=right)
    )


# ---------------------------------------------------------------------------------------- padding slots

N_PAD = 10  # slots per world in the padding tests


@settings(max_examples=8, deadline=None)
@given(seed=SEEDS, drop=st.lists(st.booleans(), min_size=4 * N_PAD, max_size=4 * N_PAD), ticks=st.integers(1, 3))
def test_padding_slots_never_move_in_a_tick(seed, drop, ticks):
    world = smoke_world(vehicles=N_PAD, inflow=False)
    state = with_padding(world.reset(seed), drop)
    before = state.vehicles
    for t in range(ticks):
        state, _ = S.tick(state, world.road, world.cfg, mobil=(t == 0))
    assert_unchanged(before, state.vehicles, ~before.present, f"after {ticks} tick(s)")
    assert not bool((state.vehicles.present & ~before.present).any())  # ticks never bring a slot to life


@settings(max_examples=8, deadline=None)
@given(
    seed=SEEDS,
    drop=st.lists(st.booleans(), min_size=4 * N_PAD, max_size=4 * N_PAD),
    inflow=st.booleans(),
    controlled=st.sampled_from([1, 2]),
    action=st.sampled_from(["meta", "continuous"]),
)
# Always tried: the second controlled car of world 0 has left the road while the first drives on.
@example(seed=0, drop=[False, True] + [False] * (4 * N_PAD - 2), inflow=False, controlled=2, action="continuous")
def test_padding_slots_never_move_in_a_step(seed, drop, inflow, controlled, action):
    world = smoke_world(vehicles=N_PAD, inflow=inflow, controlled=controlled, action=action)
    state = with_padding(world.reset(seed), drop)
    g = torch.Generator().manual_seed(seed)
    r = world.step(state, random_action(world.cfg, 4, g))
    before, after = state.vehicles, r.state.vehicles
    kept_world = ~r.world_done.unsqueeze(1)  # auto-reset worlds start afresh
    if not inflow:
        assert not bool((after.present & ~before.present & kept_world).any())
    # With inflow, free slots may be refilled at the entries; those that stay free must not have moved.
    assert_unchanged(before, after, ~before.present & ~after.present & kept_world, "after World.step")


# ----------------------------------------------------------------------------------- world independence


@settings(max_examples=4, deadline=None)
@given(
    seed=SEEDS, worlds=st.integers(4, 5), action=st.sampled_from(["meta", "continuous"]), decisions=st.integers(1, 2)
)
def test_stepping_worlds_together_equals_stepping_each_alone(seed, worlds, action, decisions):
    # At least 4 worlds of 8 slots: [W, N] tensors of 32 or more elements, where PyTorch's CPU kernels run
    # their vectorised loop body (fewer elements all go through the scalar tail and would hide differences).
    world = smoke_world(worlds=worlds, action=action, episode_s=2.0)  # short episodes: auto-resets too
    cfg = world.cfg
    state = world.reset(seed)
    for i in range(worlds):  # resetting one world alone gives that world
        idx = torch.tensor([i])
        alone = reset_state(world.road, cfg, state.seed[idx], state.episode[idx], state.ticks[idx])
        for name, x in tensors(alone):
            assert torch.equal(x, dict(tensors(select_worlds(state, idx)))[name]), f"reset world {i}: {name}"
    g = torch.Generator().manual_seed(seed)
    for k in range(decisions):
        action_t = random_action(cfg, worlds, g)
        together = world.step(state, action_t)
        obs_together = world.observe(together.state)
        want = dict(tensors(together))
        for i in range(worlds):
            idx = torch.tensor([i])
            alone = world.step(select_worlds(state, idx), action_t[idx])
            for name, x in tensors(alone):
                assert torch.equal(x, want[name][idx]), f"decision {k}, world {i}: {name}"
            assert torch.equal(world.observe(alone.state), obs_together[idx])
        state = together.state


# ------------------------------------------------------------------------------------ slot permutation

N_PERM = 10


@settings(max_examples=6, deadline=None)
@given(
    seed=SEEDS,
    perms=st.lists(st.permutations(range(1, N_PERM)), min_size=4, max_size=4),
    action=st.sampled_from(["meta", "continuous"]),
)
def test_permuting_background_slots_permutes_the_result(seed, perms, action):
    world = smoke_world(vehicles=N_PERM, inflow=False, action=action)
    cfg, road = world.cfg, world.road
    state = world.reset(seed)
    order = torch.tensor([[0, *p] for p in perms])  # the controlled slot 0 stays first
    inverse = torch.argsort(order, dim=1)
    permuted = replace(state, vehicles=permute_vehicles(state.vehicles, order))
    a, b = state, permuted
    for t in range(cfg.ticks_per_decision):
        a, ev_a = S.tick(a, road, cfg, mobil=(t % cfg.mobil_every_ticks == 0))
        b, ev_b = S.tick(b, road, cfg, mobil=(t % cfg.mobil_every_ticks == 0))
        back = permute_vehicles(b.vehicles, inverse)
        for name, x in tensors(a.vehicles):
            assert torch.equal(x, getattr(back, name)), f"tick {t}: {name}"
        for name, x in tensors(ev_a):
            assert torch.equal(x, getattr(ev_b, name).gather(1, inverse)), f"tick {t}: events.{name}"
    # A whole decision: rewards and metrics of the controlled slot agree; worlds that auto-reset start afresh
    # (their new vehicles are drawn slot by slot, so they are not a permutation of anything).
    g = torch.Generator().manual_seed(seed)
    action_t = random_action(cfg, cfg.worlds, g)
    ra = world.step(a, action_t)
    rb = world.step(b, action_t)
    kept = ~ra.world_done
    assert torch.equal(ra.world_done, rb.world_done)
    assert torch.equal(ra.reward, rb.reward) and torch.equal(ra.terminated, rb.terminated)
    back = permute_vehicles(rb.state.vehicles, inverse)
    for name, x in tensors(ra.state.vehicles):
        assert torch.equal(x[kept], getattr(back, name)[kept]), f"after World.step: {name}"
    assert torch.equal(world.observe(ra.state)[kept], world.observe(rb.state)[kept])  # neighbours by distance


# ------------------------------------------------------------------------------- finite, bounded, wrapped


def assert_sane(state, what: str):
    for name, x in tensors(state):
        if x.is_floating_point():
            assert bool(torch.isfinite(x).all()), f"{what}: {name} has NaN or inf"
    v = state.vehicles
    assert float(v.speed.min()) >= 0.0, f"{what}: negative speed"
    assert float(v.speed.max()) <= S.PHYSICAL_MAX_SPEED, f"{what}: speed above the physical limit"
    assert float(v.psi.min()) >= -PI32 and float(v.psi.max()) < PI32, f"{what}: heading not wrapped"


@pytest.mark.parametrize("action", ["meta", "continuous"])
@settings(max_examples=2, deadline=None)
@given(seed=SEEDS)
def test_many_random_steps_stay_finite_non_negative_and_wrapped(action, seed):
    world = smoke_world(worlds=16, vehicles=12, action=action)
    state = world.reset(seed)
    g = torch.Generator().manual_seed(seed)
    resets = 0
    for k in range(25):
        r = world.step(state, random_action(world.cfg, 16, g))
        assert_sane(r.final_state, f"decision {k} (before reset)")
        assert_sane(r.state, f"decision {k}")
        for name, x in tensors({"reward": r.reward, "info": r.info, "obs": world.observe(r.state)}):
            if x.is_floating_point():
                assert bool(torch.isfinite(x).all()), f"decision {k}: {name} has NaN or inf"
        resets += int(r.world_done.sum())
        state = r.state
    assert resets > 0  # the episodes ended and restarted along the way


# ------------------------------------------------------------------------------------------ determinism


@pytest.mark.parametrize("action", ["meta", "continuous"])
@settings(max_examples=1, deadline=None)
@given(seed=SEEDS)
def test_same_seed_same_rollout_different_seed_different_rollout(action, seed):
    # 5 ticks per decision: the property is about the step being a pure function, not about the tick rate,
    # and it keeps 30 decisions quick.
    cfg = preset("smoke", worlds=4, action=action, sim_hz=5)

    def rollout(world_seed: int, decisions: int):
        world = World(cfg)  # a fresh World each time: nothing may carry over between them
        state = world.reset(seed=world_seed)
        g = torch.Generator().manual_seed(seed)
        for _ in range(decisions):
            r = world.step(state, random_action(cfg, cfg.worlds, g))
            state = r.state
            yield [x for _, x in tensors(r)] + [world.observe(state)]

    for k, (a, b) in enumerate(zip(rollout(seed, 30), rollout(seed, 30), strict=True)):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)), f"decision {k} differs"
    c = next(rollout(seed + 1, 1))
    a = next(rollout(seed, 1))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


# ----------------------------------------------------------------------------------- on the lane, on road

STRAIGHT_RAMPS = HighwayConfig(
    lanes=3,
    max_curvature=0.0,
    length_m=1000.0,
    on_ramp_s=200.0,
    off_ramp_s=800.0,
    ramp_length_m=100.0,
    accel_lane_m=150.0,
    decel_lane_m=100.0,
)
STRAIGHT_ROAD = build_highway(STRAIGHT_RAMPS)
# Through lanes of every section: straight, and their route to destination 0 (the road's end) never ends.
THROUGH_LANES = [i for i, kind in enumerate(STRAIGHT_ROAD.lane_kind[0].tolist()) if kind == 0]
CAR_ON_LANE = st.tuples(st.sampled_from(THROUGH_LANES), st.floats(0.0, 1.0), st.floats(0.0, 40.0))


@settings(max_examples=3, deadline=None)
@given(cars=st.lists(CAR_ON_LANE, min_size=16, max_size=16))
# Always tried: near the end of every through lane, so cars pass onto the next section or arrive at the end.
@example(cars=[(lane, 0.95, 30.0) for lane in THROUGH_LANES] + [(THROUGH_LANES[-1], 0.0, 0.0)])
def test_car_driving_straight_along_its_lane_centre_is_never_offroad(cars):
    cfg = SimConfig(worlds=16, vehicles=1, controlled=1, inflow=False, action="continuous", road=STRAIGHT_RAMPS)
    road = STRAIGHT_ROAD
    lengths = road.lane_length[0].tolist()
    # One car per world on the lane centre, heading along it; zero acceleration and steering commands.
    state = scene(
        road,
        cfg,
        [[dict(lane=lane, s=frac * lengths[lane], speed=speed, controlled=True)] for lane, frac, speed in cars],
    )
    speed0 = state.vehicles.speed.clone()
    for t in range(15 * 8):
        state, ev = S.tick(state, road, cfg, mobil=False)
        assert not bool(ev.offroad.any()), f"tick {t}: off-road {ev.offroad.nonzero().tolist()}"
        assert not bool(ev.collided.any())
    assert torch.equal(state.vehicles.speed, speed0) and bool((state.vehicles.d == 0).all())
    assert bool((state.vehicles.lane >= 0).all())


CURVED = HighwayConfig(
    lanes=3, length_m=1200.0, max_curvature=1.0 / 500.0, curve_segment_m=200.0, on_ramp_s=None, off_ramp_s=None
)


@settings(max_examples=2, deadline=None)
@given(
    map_seed=SEEDS,
    cars=st.lists(st.tuples(st.integers(0, 2), st.floats(0.0, 0.6), st.floats(10.0, 35.0)), min_size=8, max_size=8),
)
def test_lone_background_car_keeps_its_lane_on_curves(map_seed, cars):
    # The lane-keeping controller (the one meta actions use too) on a curvy road: no one around, so MOBIL has
    # no reason to change lanes; the car follows its lane centre and never leaves the road.
    road = build_highway(CURVED, seed=map_seed)
    cfg = SimConfig(worlds=8, vehicles=1, controlled=1, inflow=False, road=CURVED)
    lengths = road.lane_length[0].tolist()
    state = scene(
        road,
        cfg,
        [[dict(lane=lane, s=frac * lengths[lane], speed=speed, desire=speed / 30.0)] for lane, frac, speed in cars],
    )
    lane0 = state.vehicles.lane.clone()
    for t in range(15 * 8):
        state, ev = S.tick(state, road, cfg, mobil=(t % cfg.mobil_every_ticks == 0))
        assert not bool(ev.offroad.any()), f"tick {t}: off-road {ev.offroad.nonzero().tolist()}"
        assert not bool(ev.lane_changed.any())
    v = state.vehicles
    assert torch.equal(v.lane, lane0)  # one section: lane ids 0, 1, 2 from the left
    assert float(v.d[:, 0].abs().max()) < 0.3  # m from the lane centre
