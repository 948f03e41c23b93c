"""The grid observations (`fuyao.sim.observe_grid`).

1. highway-occupancy against highway-env itself (skipped without it: `pip install 'fuyao[compare]'`): highway-v0
   with `observation={"type": "OccupancyGrid"}` (its defaults) is reset and stepped with random actions; at
   every decision each of its vehicles is copied into a Fuyao scene on the highway-v0 preset's map (the frames
   of tests/test_highway_env_compat.py: s = x, d = -(y - 4 lane), psi = -heading) and every vehicle observes,
   as highway-env's OccupancyGridObservation with that vehicle as observer. All four layers must agree, cell for
   cell, except cells a vehicle centre lies within float32 rounding (1e-3 m) of the border of: Fuyao holds
   positions in float32, highway-env in float64. With `align_to_vehicle_axes` the vehicle layers agree the same
   way and `on_road` differs in under 2% of its cells (lanes crossing a cell's corner at an angle, which one
   simulator's sample points hit and the other's step over).
2. The raster on hand-built scenes: lane stripes where the lanes are, boxes where the cars are, turned with the
   ego, permutation of the other vehicles' slots changes nothing, no NaN.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from fuyao.presets import HIGHWAY_V0, preset
from fuyao.roads.highway import build_highway
from fuyao.sim.config import ConfigError, ObservationType
from fuyao.sim.grid_config import OccupancyFeature, OccupancyGridConfig, RasterConfig
from fuyao.sim.lane_tiles import build_lane_tiles, nearby_points
from fuyao.sim.observe import observation_shape, observe
from fuyao.sim.observe_grid import RasterLayout, highway_occupancy, raster
from fuyao.sim.scene import scene
from fuyao.sim.world import World

LANE_WIDTH = 4.0  # m, highway-env's and the preset's
BORDER_M = 1.0e-3  # m, a vehicle centre this close to a cell border may fall on either side in float32
SEEDS = (0, 1)
DECISIONS = 8


@pytest.fixture(scope="module")
def road():
    return build_highway(HIGHWAY_V0.road)


def _rows(vehicles) -> list[dict]:
    rows = []
    for v in vehicles:
        lane = int(v.lane_index[2])
        rows.append(
            dict(
                lane=lane,
                s=float(v.position[0]),
                d=-(float(v.position[1]) - LANE_WIDTH * lane),
                psi=-float(v.heading),
                speed=float(v.speed),
                length=float(v.LENGTH),
                width=float(v.WIDTH),
                controlled=True,
            )
        )
    return rows


def _ambiguous(observer, vehicles, grid_size, grid_step, shape, align) -> np.ndarray:
    """Cells `[Nx, Ny]` some vehicle centre lies within BORDER_M of the border of (as seen by `observer`)."""
    mask = np.zeros(shape, dtype=bool)
    c, s = np.cos(observer.heading), np.sin(observer.heading)
    for v in vehicles:
        p = v.position - observer.position
        if align:
            p = np.array([[c, s], [-s, c]]) @ p
        lo = np.floor((p - BORDER_M - grid_size[:, 0]) / grid_step).astype(int)
        hi = np.floor((p + BORDER_M - grid_size[:, 0]) / grid_step).astype(int)
        if (lo != hi).any():
            mask[max(lo[0], 0) : hi[0] + 1, max(lo[1], 0) : hi[1] + 1] = True
    return mask


def _rollout(seed: int, observation: dict):
    gymnasium = pytest.importorskip("gymnasium")
    pytest.importorskip("highway_env")
    env = gymnasium.make("highway-v0", config={"observation": observation})
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    yield env.unwrapped, obs
    for _ in range(DECISIONS):
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(5)))
        yield env.unwrapped, obs
        if terminated or truncated:
            break
    env.close()


@pytest.mark.parametrize("align", [False, True], ids=["world-axes", "vehicle-axes"])
def test_occupancy_matches_highway_env(road, align):
    from highway_env.envs.common.observation import OccupancyGridObservation

    observation = {"type": "OccupancyGrid", "align_to_vehicle_axes": align}
    cfg_occ = OccupancyGridConfig(align_to_vehicle_axes=align)
    compared = skipped = filled = extra = road_cells = 0
    for seed in SEEDS:
        for env, ego_obs in _rollout(seed, observation):
            vehicles = list(env.road.vehicles)
            assert max(v.position[0] for v in vehicles) < float(road.lane_length[0, 0]) - 50.0
            cfg = dataclasses.replace(
                HIGHWAY_V0,
                controlled=len(vehicles),
                observation=ObservationType.HIGHWAY_OCCUPANCY,
                occupancy=cfg_occ,
            )
            ours = highway_occupancy(scene(road, cfg, [_rows(vehicles)]), road, cfg)[0].numpy()
            grid = OccupancyGridObservation(env, **{k: v for k, v in observation.items() if k != "type"})
            assert ours.shape[1:] == grid.space().shape
            for i, observer in enumerate(vehicles):
                grid.observer_vehicle = observer
                theirs = grid.observe()
                if i == 0:
                    np.testing.assert_array_equal(theirs, ego_obs)  # the env's own observation is the ego's
                amb = _ambiguous(observer, vehicles, grid.grid_size, grid.grid_step, theirs.shape[1:], align)
                keep = ~amb
                exact = slice(None) if not align else slice(0, 3)  # vehicle-axes: on_road compared below
                np.testing.assert_allclose(
                    ours[i][exact, keep],
                    theirs[exact, keep],
                    rtol=0.0,
                    atol=1.0e-5,
                    err_msg=f"seed {seed}, observer {i}",
                )
                if align:
                    # Where a lane crosses a cell's corner at an angle, highway-env's waypoints (every 5 m) and
                    # Fuyao's points (every 2 m) can each fall in the corner or step over it.
                    extra += int((ours[i][3] != theirs[3]).sum())
                    road_cells += int(theirs[3].sum())
                compared += 1
                skipped += int(amb.sum())
                filled += int((theirs[0] > 0).sum())
    assert compared > 300 and filled > compared, (compared, filled)
    assert skipped <= 0.001 * compared * 121, skipped
    print(f"cells skipped (a vehicle on a border): {skipped} of {compared * 121}")
    print(f"on_road cells that differ: {extra} of {road_cells}")
    assert extra <= 0.02 * road_cells, (extra, road_cells)


def test_occupancy_features_and_options(road):
    """x, y, cos_h, sin_h and as_image, on one scene: two cars side by side, one 12 m ahead."""
    occ = OccupancyGridConfig(
        features=("presence", "x", "y", "cos_h", "sin_h", "vx"), as_image=True, grid_step=(4.0, 4.0)
    )
    cfg = dataclasses.replace(HIGHWAY_V0, controlled=1, observation="highway-occupancy", occupancy=occ)
    rows = [
        dict(lane=1, s=500.0, speed=20.0, controlled=True),
        dict(lane=1, s=512.0, speed=25.0),
        dict(lane=2, s=500.0, speed=20.0),
    ]
    obs = highway_occupancy(scene(road, cfg, [rows]), road, cfg)[0, 0]
    assert obs.shape == (6, 13, 13) == observation_shape(cfg)
    # Cells: x index floor((dx + 27.5) / 4), y index floor((dy + 27.5) / 4); highway-env's y is to the right.
    ego, ahead, right = (6, 6), (9, 6), (6, 7)
    present = {ego, ahead, right}
    for i in range(13):
        for j in range(13):
            assert (obs[0, i, j] > 0) == ((i, j) in present)
    image = lambda v: math.floor((min(max(v, -1.0), 1.0) + 1.0) / 2.0 * 255.0)  # noqa: E731
    assert obs[1][ahead] == image(12.0) and obs[2][right] == image(4.0) and obs[2][ego] == image(0.0)
    assert obs[3][ahead] == image(1.0) and obs[4][ahead] == image(0.0)
    assert obs[5][ahead] == image(5.0 / 80.0)
    with pytest.raises(ConfigError, match="features"):
        OccupancyGridConfig(features=("presence", "colour"))
    with pytest.raises(ConfigError, match="grid_step"):
        OccupancyGridConfig(grid_step=(0.0, 5.0))


def test_lane_tiles_find_every_nearby_point(road):
    """Every lane point within the query's square is among the candidates (against a brute-force search)."""
    tiles = build_lane_tiles(road, tile_m=16.0)
    m = torch.zeros(1, dtype=torch.long)
    qx = torch.tensor([[10.0, 700.0, 2990.0, 1500.0]])
    qy = torch.tensor([[-6.0, 3.0, -20.0, -40.0]])
    ids = nearby_points(tiles, m, qx, qy, 30.0)[0]
    xy = road.lane_xy[0]
    for q in range(qx.shape[1]):
        near = ((xy[..., 0] - qx[0, q]).abs() <= 30.0) & ((xy[..., 1] - qy[0, q]).abs() <= 30.0)
        lane, point = torch.nonzero(near, as_tuple=True)
        real = point < (road.lane_length[0, lane] / road.lane_ds[0, lane]).round().long() + 1
        want = set((lane[real] * xy.shape[1] + point[real]).tolist())
        got = set(ids[q][ids[q] >= 0].tolist())
        assert want <= got, (q, len(want - got))


RASTER = RasterConfig(pixels=32, metres_per_pixel=1.0, ahead_m=0.0, vehicles=4)


def _raster_cfg(**changes):
    return dataclasses.replace(HIGHWAY_V0, observation="raster", raster=RASTER, controlled=1, **changes)


def test_raster_draws_lanes_and_boxes(road):
    """highway-v0 lanes are world y = -4 i (i = 0 leftmost); the ego on lane 1 sees lane 0 left of it."""
    cfg = _raster_cfg()
    lay = RasterLayout.of(cfg)
    rows = [
        dict(lane=1, s=500.0, speed=15.0, length=4.6, width=1.8, controlled=True),
        dict(lane=1, s=510.0, speed=30.0, length=4.6, width=1.8),
        dict(lane=3, s=480.0, speed=20.0, length=12.0, width=2.5),  # beyond the raster's back edge, partly
    ]
    obs = raster(scene(road, cfg, [rows]), road, cfg)[0, 0]
    assert obs.shape == lay.shape == observation_shape(cfg)
    ch = {name: obs[lay.channel(name)] for name in lay.channels}
    # Column j has its centre at lateral 16 - (j + 0.5) m (left positive); the ego is at lateral 0 on lane 1,
    # lanes 0..3 span lateral +6 .. -10 m: columns 10 .. 25 drivable.
    cols = ch["drivable"].amax(dim=0)
    assert torch.nonzero(cols).flatten().tolist() == list(range(10, 26))
    assert (ch["drivable"][:, 10:26] == 1).all()
    # Centre lines at lateral +4, 0, -4, -8: columns 11.5, 15.5, ... fall on pixel borders; a line is 1 px
    # wide, so the two columns beside it are marked where the border is hit exactly.
    centre_cols = set(torch.nonzero(ch["lane_centre"].amax(dim=0)).flatten().tolist())
    assert {11, 12, 15, 16, 19, 20, 23, 24} >= centre_cols >= {11, 15, 19, 23}
    edge_cols = set(torch.nonzero(ch["lane_edge"].amax(dim=0)).flatten().tolist())
    assert edge_cols >= {9, 13, 17, 21, 25} and edge_cols <= set(range(9, 27))
    # Ego box: 4.6 m x 1.8 m at the centre: rows 14..17 (ahead +2.3 .. -2.3; row r's centre 15.5 - r m), columns 15..16.
    ego_px = torch.nonzero(ch["ego"]).tolist()
    assert sorted({r for r, _ in ego_px}) == [14, 15, 16, 17] and sorted({c for _, c in ego_px}) == [15, 16]
    lead = torch.nonzero(ch["vehicles"][:10]).tolist()  # the car 10 m ahead: rows 4..7
    assert sorted({r for r, _ in lead}) == [4, 5, 6, 7] and sorted({c for _, c in lead}) == [15, 16]
    assert ch["speed"][15, 15] == pytest.approx(0.5) and ch["speed"][5, 15] == pytest.approx(1.0)
    truck = ch["vehicles"][18:, 20:]  # the truck on lane 3 (lateral -8 m), 20 m behind: rows 30..31 visible
    assert truck.sum() > 0 and (torch.nonzero(truck)[:, 0] + 18).min() == 30
    assert (ch["speed_limit"][:, 10:26] > 0).all() and (ch["signals"] == 0).all()  # highways: no signals
    assert torch.isfinite(obs).all()


def test_raster_turns_with_the_ego(road):
    """An ego heading 90 degrees left of its lane sees the lanes as rows instead of columns."""
    cfg = _raster_cfg()
    rows = [dict(lane=1, s=500.0, psi=math.pi / 2, speed=0.0, controlled=True)]
    obs = raster(scene(road, cfg, [rows]), road, cfg)[0, 0]
    drivable = obs[RasterLayout.of(cfg).channel("drivable")]
    # Facing world +y (left of the road): lane 0 (4 m to the left) is ahead, lanes 2-3 behind: rows 10..25.
    assert torch.nonzero(drivable.amax(dim=1)).flatten().tolist() == list(range(10, 26))
    assert (drivable[10:26] == 1).all()


def test_raster_is_invariant_to_slot_order_and_batched(road):
    cfg = dataclasses.replace(_raster_cfg(), controlled=1)
    rng = np.random.default_rng(0)
    base = [dict(lane=1, s=800.0, speed=20.0, controlled=True)]
    others = [dict(lane=int(rng.integers(4)), s=float(780 + 40 * rng.random()), speed=float(20 + 5 * rng.random()))]
    others += [dict(lane=int(rng.integers(4)), s=float(760 + 80 * rng.random())) for _ in range(3)]
    a = raster(scene(road, cfg, [base + others, base + others[::-1]]), road, cfg)
    assert torch.equal(a[0], a[1])
    alone = raster(scene(road, cfg, [base + others]), road, cfg)
    assert torch.equal(alone[0], a[0])


def test_world_and_envs_expose_the_grid_shapes():
    from fuyao.envs.gym import make_env, make_vector_env

    for obs_type, shape in (("highway-occupancy", (4, 11, 11)), ("raster", RasterLayout.of(preset("smoke")).shape)):
        venv = make_vector_env("smoke", worlds=3, controlled=2, observation=obs_type)
        assert venv.single_observation_space.shape == shape
        assert venv.observation_space.shape == (6, *shape)
        obs, _ = venv.reset(seed=0)
        assert obs.shape == (6, *shape) and obs.dtype == torch.float32
        obs, *_ = venv.step(torch.ones(6, dtype=torch.long))
        assert obs.shape == (6, *shape) and torch.isfinite(obs).all()
        env = make_env("smoke", observation=obs_type)
        o, _ = env.reset(seed=0)
        assert env.observation_space.shape == shape and env.observation_space.contains(o)


def test_world_builds_the_tiles_once():
    world = World(preset("smoke", worlds=2, observation="raster"))
    assert world.consts.lane_tiles is not None
    assert World(preset("smoke", worlds=2)).consts.lane_tiles is None
    state = world.reset(0)
    assert torch.equal(world.observe(state), observe(state, world.road, world.cfg))


def test_bad_raster_config():
    with pytest.raises(ConfigError, match="RasterConfig.pixels"):
        RasterConfig(pixels=0)
    with pytest.raises(ConfigError, match="ahead_m"):
        RasterConfig(pixels=16, metres_per_pixel=1.0, ahead_m=9.0)
    assert OccupancyFeature("on_road") is OccupancyFeature.ON_ROAD


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_row_runs_equal_a_per_pixel_test(seed):
    """The row-run rasteriser against the obvious reference: every pixel centre tested against every rectangle,
    random rectangles (axis-aligned ones included), some partly or wholly off the raster."""
    from fuyao.sim.observe_grid import _RowRuns, _RowSums

    g = torch.Generator().manual_seed(seed)
    k, pixels, px = 24, 20, 0.8
    row = torch.rand(1, 1, k, generator=g) * 30 - 5
    col = torch.rand(1, 1, k, generator=g) * 30 - 5
    angle = torch.rand(1, 1, k, generator=g) * 2 * math.pi
    angle[..., :4] = torch.tensor([0.0, math.pi / 2, math.pi, -math.pi / 2])
    half_along = 0.3 + 3.0 * torch.rand(1, 1, k, generator=g)
    lat_lo = -0.2 - 2.0 * torch.rand(1, 1, k, generator=g)
    lat_hi = lat_lo + 0.1 + 3.0 * torch.rand(1, 1, k, generator=g)
    radius = float(torch.hypot(half_along, torch.maximum(lat_lo.abs(), lat_hi.abs())).max())
    runs = _RowRuns(row, col, torch.cos(angle), torch.sin(angle), half_along, radius, px, pixels)
    sums = _RowSums(1, 1, pixels, row.device)
    sums.add((0,), sums.rows(runs), *runs.columns(lat_lo, lat_hi))
    ours = sums.sums()[0, 0]

    rc = torch.arange(pixels, dtype=torch.float32) + 0.5
    df = (row.view(k, 1, 1) - rc.view(1, pixels, 1)) * px  # [K, H, 1] ahead of the centre
    dl = (col.view(k, 1, 1) - rc.view(1, 1, pixels)) * px  # [K, 1, H] left of the centre
    ca, sa = torch.cos(angle).view(k, 1, 1), torch.sin(angle).view(k, 1, 1)
    along, lat = df * ca + dl * sa, -df * sa + dl * ca
    inside = (along.abs() <= half_along.view(k, 1, 1)) & (lat >= lat_lo.view(k, 1, 1)) & (lat <= lat_hi.view(k, 1, 1))
    reference = inside.float().sum(0)
    assert reference.sum() > 50
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=0)


@pytest.mark.parametrize("obs_type", ["highway-occupancy", "raster"])
def test_grid_observations_build_no_tensor_from_python_values(obs_type, monkeypatch):
    """No `torch.tensor` / `torch.as_tensor` per call (a host-to-device copy each time on CUDA)."""
    world = World(preset("smoke", worlds=3, controlled=2, observation=obs_type))
    state = world.reset(0)

    def refuse(*args, **kwargs):
        raise AssertionError(f"a tensor built from Python values in the observation: {args[:1]}")

    monkeypatch.setattr(torch, "tensor", refuse)
    monkeypatch.setattr(torch, "as_tensor", refuse)
    assert torch.isfinite(world.observe(state)).all()


@pytest.mark.parametrize("obs_type", ["highway-occupancy", "raster"])
def test_grid_observations_compile_fullgraph_and_match_eager(obs_type):
    """One graph, no breaks, the same values (about 20 s of compilation for the raster)."""
    cfg = preset("smoke", worlds=2, controlled=2, observation=obs_type, raster=RasterConfig(pixels=16, ahead_m=2.0))
    world = World(cfg)
    state = world.reset(0)
    compiled = torch.compile(observe, fullgraph=True, dynamic=False)
    torch.testing.assert_close(
        compiled(state, world.road, cfg, world.consts), observe(state, world.road, cfg, world.consts)
    )
