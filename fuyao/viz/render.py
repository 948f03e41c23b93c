"""Top-down episode videos: record one world's vehicles, draw them over a pre-rendered road, write GIF or MP4.

Each step works alone:

    rec = record_episode(world, pilot, seed=0)          # numpy arrays [T, N, ...] of one world
    frames = render_frames(world.road, rec)             # [T, H, W, 3] uint8
    write_video(frames, "runs/episode.gif", fps=4)

or all three at once with `render_episode`.

Image frame: north up, the camera axis-aligned (it follows the ego but does not turn with it). A world point
`(x, y)` seen by a camera centred at `(cx, cy)` lands at column `W / 2 + (x - cx) / metres_per_px` and row
`H / 2 - (y - cy) / metres_per_px` (to the nearest pixel: the crop window snaps to whole pixels).

Speed: the road never changes, so it is rasterised once per map and scale, lazily, in square tiles of a fixed
global pixel grid (`RoadLayer`); a frame is a crop of the cached tiles with the vehicles drawn on top as PIL
polygons. Nothing here is on the simulation's hot path: one host transfer per recorded decision is fine.

Bad arguments a user types (a path's suffix, fps, sizes, world index) raise `ConfigError` (a `ValueError`), which
the CLI prints without a traceback.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from fuyao.pilots.base import Pilot
from fuyao.roads.lanegraph import RoadMap
from fuyao.roads.signals import Signal
from fuyao.sim.config import ConfigError
from fuyao.sim.geometry import box_corners, vehicle_pose, wrap_angle
from fuyao.sim.signals import link_signal
from fuyao.sim.state import WorldState
from fuyao.sim.world import World

VIDEO_SUFFIXES = (".gif", ".mp4")

# Colours, RGB.
OFFROAD_RGB = (196, 204, 186)
ROAD_RGB = (112, 112, 112)
MARKING_RGB = (245, 245, 245)
BACKGROUND_CAR_RGB = (70, 130, 225)
CONTROLLED_CAR_RGB = (50, 200, 80)
CRASHED_CAR_RGB = (230, 40, 40)
OUTLINE_RGB = (25, 25, 25)
LABEL_RGB = (20, 20, 20)
LABEL_SIZE_PX = 13
WINDSCREEN_SHADE = 0.55  # front quarter of every car drawn at this fraction of its colour: shows the heading

# Sizes: metres unless the name says px.
EGO_VIEW_METRES_PER_PX = 0.2  # default scale when following the ego: 800 px = 160 m of road
FIT_MARGIN = 0.04  # fraction of the map's extent left free around it when fitting the whole map
MARKING_WIDTH_M = 0.3
DASH_M = 3.0  # painted length of a dash
DASH_PERIOD_M = 12.0  # dash + gap, measured along the map's reference line so dashes line up across sections
SURFACE_OVERLAP_M = 0.25  # each lane's surface runs on this far past its ends: no hairline gaps between sections
SURFACE_SIDE_OVERLAP_M = 0.05  # and this far past its edges: none between neighbouring lanes either
MIN_MARKED_LANE_PX = 6.0  # lanes drawn narrower than this get no markings (they would hide the surface)
MIN_CAR_PX = (5.0, 3.0)  # (length, width): smallest car drawn, px
MIN_DETAILED_CAR_PX = 4.0  # cars drawn narrower than this get no outline or windscreen (they would be all edge)
MAX_SPEED_M_S = 60.0  # no vehicle moves faster: a larger jump between two frames is a slot reused by a new car

TILE_PX = 256
SUPERSAMPLE = 2  # tiles are drawn this many times larger and box-filtered down: smooth edges on curved roads
CONNECTOR_KIND = 2  # `RoadMap.lane_kind` of junction connectors: surface only, no edge lines


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: compare fields with numpy
class Recording:
    """One world's vehicles over an episode, on the host. `T` frames, `N` vehicle slots.

    Frame 0 is the state after reset; frame `k * frames_per_decision` the state after decision `k`; the last
    frame is the episode's final state (before auto-reset) when the episode ended.
    """

    xy: np.ndarray  # [T, N, 2] float32 m, box centre in the world frame
    yaw: np.ndarray  # [T, N] float32 rad, heading counter-clockwise from +x
    speed: np.ndarray  # [T, N] float32 m/s
    length: np.ndarray  # [T, N] float32 m
    width: np.ndarray  # [T, N] float32 m
    present: np.ndarray  # [T, N] bool
    controlled: np.ndarray  # [T, N] bool
    crashed: np.ndarray  # [T, N] bool
    time_s: np.ndarray  # [T] float32 s since the episode began
    map_id: int  # index of the world's map in the map bank
    frames_per_decision: int = 1  # > 1: frames between decisions are interpolated (see `interpolate`)
    signals: np.ndarray | None = None  # [T, L] int64 `Signal` of every lane of the map (None: no signals)

    def __post_init__(self) -> None:
        t, n = self.present.shape
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, np.ndarray):
                continue
            want = (t,) if f.name == "time_s" else (t, n, 2) if f.name == "xy" else (t, n)
            if f.name == "signals":
                want = (t, value.shape[1])
            if value.shape != want:
                raise ValueError(f"Recording.{f.name}: got shape {value.shape}; must be {want} (T={t}, N={n})")
        if self.frames_per_decision < 1:
            raise ValueError(f"Recording.frames_per_decision: got {self.frames_per_decision}; must be >= 1")

    @property
    def num_frames(self) -> int:
        return self.present.shape[0]

    @property
    def num_slots(self) -> int:
        return self.present.shape[1]

    @property
    def num_decisions(self) -> int:
        return (self.num_frames - 1) // self.frames_per_decision

    def ego_slot(self) -> np.ndarray:
        """`[T]` int64: the first controlled, present slot of each frame; -1 where there is none."""
        ego = self.controlled & self.present
        return np.where(ego.any(axis=1), ego.argmax(axis=1), -1)


# ---------------------------------------------------------------------------------------------------- record


def _frame(road: RoadMap, state: WorldState, world_index: int) -> dict[str, torch.Tensor]:
    """One world of `state` as tensors on the state's device, each with a leading axis of 1."""
    i = slice(world_index, world_index + 1)
    v = state.vehicles
    xy, yaw = vehicle_pose(road, state.map_id[i], v.lane[i], v.s[i], v.d[i], v.psi[i])  # [1, N, 2], [1, N]
    return dict(
        xy=xy,
        yaw=yaw,
        speed=v.speed[i],
        length=v.length[i],
        width=v.width[i],
        present=v.present[i],
        controlled=v.controlled[i],
        crashed=v.crashed[i],
        time_s=state.time_s[i],
        map_id=state.map_id[i],
        signals=link_signal(road, state.map_id[i], _one_clock(state.signals, i), _all_lanes(road, state.map_id)),
    )


def _all_lanes(road: RoadMap, like: torch.Tensor) -> torch.Tensor:
    return torch.arange(road.max_lanes, device=like.device).unsqueeze(0)


def _one_clock(clock, i: slice):
    return type(clock)(phase=clock.phase[i], time_s=clock.time_s[i], scale=clock.scale[i])


def _stack_frames(frames: list[dict[str, torch.Tensor]]) -> Recording:
    host = {k: torch.cat([f[k] for f in frames]).cpu().numpy() for k in frames[0]}
    map_ids = host.pop("map_id")
    if (map_ids != map_ids[0]).any():
        raise ValueError(
            f"Recording: the states lie on different maps {sorted(set(map_ids.tolist()))}; one episode "
            "lies on one map (pass states of one episode, before any auto-reset)"
        )
    float_fields = ("xy", "yaw", "speed", "length", "width", "time_s")
    signals = host.pop("signals")
    arrays = {k: (v.astype(np.float32) if k in float_fields else v.astype(bool)) for k, v in host.items()}
    lit = signals if (signals != int(Signal.OFF)).any() else None
    return Recording(map_id=int(map_ids[0]), signals=lit, **arrays)


def recording_from_states(road: RoadMap, states: Sequence[WorldState], world_index: int = 0) -> Recording:
    """A `Recording` of world `world_index` with one frame per state (e.g. a hand-built `scene`, or states kept
    by a custom loop). `road` is the map bank the states index into; all states must lie on one map."""
    if not states:
        raise ValueError("recording_from_states: got no states; need at least one")
    worlds = states[0].num_worlds
    if not 0 <= world_index < worlds:
        raise ValueError(f"recording_from_states: world_index {world_index}; allowed: 0 to {worlds - 1}")
    with torch.no_grad():
        return _stack_frames([_frame(road, s, world_index) for s in states])


def interpolate(rec: Recording, frames_per_decision: int) -> Recording:
    """Insert `frames_per_decision - 1` frames between consecutive frames of a one-frame-per-decision recording.

    The in-between frames are NOT simulated ticks: positions, speeds and headings (the short way round) are
    linear between the two decisions, so curved paths and lane changes are drawn as chords. Size and flags come
    from the earlier decision. A vehicle absent at either end, or whose slot jumped further than any car can
    drive (the slot was reused by a new car), is hidden in the in-between frames.
    """
    k = frames_per_decision
    if k < 1:
        raise ValueError(f"interpolate: frames_per_decision {k}; must be >= 1")
    if rec.frames_per_decision != 1:
        raise ValueError(
            f"interpolate: the recording is already interpolated ({rec.frames_per_decision} frames "
            "per decision); interpolate a one-frame-per-decision recording"
        )
    if k == 1 or rec.num_frames < 2:
        return dataclasses.replace(rec, frames_per_decision=k)
    frac = (np.arange(k, dtype=np.float32) / k)[None, :, None]  # [1, k, 1]
    dt = np.diff(rec.time_s)[:, None, None]  # [T-1, 1, 1] s
    jump = np.linalg.norm(rec.xy[1:] - rec.xy[:-1], axis=-1)[:, None, :]  # [T-1, 1, N] m
    same_car = rec.present[:-1, None] & rec.present[1:, None] & (jump <= MAX_SPEED_M_S * np.maximum(dt, 1e-3))

    def lerp(a: np.ndarray) -> np.ndarray:  # [T, N, ...] -> [T-1, k, N, ...]
        f = frac.reshape(1, k, *([1] * (a.ndim - 1)))
        return a[:-1, None] + f * (a[1:, None] - a[:-1, None])

    def hold(a: np.ndarray) -> np.ndarray:
        return np.repeat(a[:-1, None], k, axis=1)

    def join(between: np.ndarray, a: np.ndarray) -> np.ndarray:  # [T-1, k, ...] + last frame -> [(T-1) k + 1, ...]
        return np.concatenate([between.reshape(-1, *between.shape[2:]), a[-1:]])

    moved = np.where(same_car[..., None], lerp(rec.xy), hold(rec.xy))
    turn = wrap_angle(torch.from_numpy(rec.yaw[1:] - rec.yaw[:-1])).numpy()  # [T-1, N] rad
    yaw = wrap_angle(torch.from_numpy(rec.yaw[:-1, None] + frac * turn[:, None])).numpy()
    present = np.where(frac[..., 0:1] == 0, hold(rec.present), same_car)
    return Recording(
        xy=join(moved, rec.xy).astype(np.float32),
        yaw=join(yaw, rec.yaw).astype(np.float32),
        speed=join(np.where(same_car, lerp(rec.speed), hold(rec.speed)), rec.speed).astype(np.float32),
        length=join(hold(rec.length), rec.length),
        width=join(hold(rec.width), rec.width),
        present=join(present, rec.present),
        controlled=join(hold(rec.controlled), rec.controlled),
        crashed=join(hold(rec.crashed), rec.crashed),
        time_s=join(lerp(rec.time_s[:, None])[..., 0], rec.time_s).astype(np.float32),
        map_id=rec.map_id,
        frames_per_decision=k,
        signals=None if rec.signals is None else join(hold(rec.signals), rec.signals),
    )


def record_episode(
    world: World,
    pilot: Pilot,
    seed: int,
    world_index: int = 0,
    max_decisions: int | None = None,
    frames_per_decision: int = 1,
) -> Recording:
    """Run one episode of world `world_index` from `world.reset(seed)` and record that world's vehicles.

    Every world of the batch is stepped (the step is batched); only `world_index` is kept. All controlled
    vehicles are driven by `pilot.act(world.observe(state), state)`. Recording stops when that world's episode
    ends (its last frame is the final state before auto-reset) or after `max_decisions` decisions.

    `frames_per_decision > 1` interpolates linearly between decisions (`interpolate`): smooth video at a
    higher frame rate, but the in-between frames are drawn, not simulated ticks.

    Returns a `Recording` with `T = decisions * frames_per_decision + 1` frames.
    """
    cfg = world.cfg
    if not 0 <= world_index < cfg.worlds:
        raise ConfigError(f"record_episode: world_index {world_index}; allowed: 0 to {cfg.worlds - 1} (cfg.worlds)")
    if max_decisions is not None and max_decisions < 0:
        raise ConfigError(f"record_episode: max_decisions {max_decisions}; must be >= 0 or None (whole episode)")
    if frames_per_decision < 1:
        raise ConfigError(f"record_episode: frames_per_decision {frames_per_decision}; must be >= 1")
    # The time limit ends every episode after `decisions_per_episode` decisions, so this bound is never binding.
    limit = cfg.decisions_per_episode if max_decisions is None else max_decisions
    with torch.no_grad():
        state = world.reset(seed)
        frames = [_frame(world.road, state, world_index)]
        for _ in range(limit):
            action = pilot.act(world.observe(state), state)
            result = world.step(state, action)
            if bool(result.world_done[world_index]):
                frames.append(_frame(world.road, result.final_state, world_index))
                break
            state = result.state
            frames.append(_frame(world.road, state, world_index))
    return interpolate(_stack_frames(frames), frames_per_decision)


# ------------------------------------------------------------------------------------------------ road layer


@dataclass(frozen=True)
class _RoadGeometry:
    """The drawable parts of one map, in metres (host)."""

    surfaces: list[np.ndarray]  # each [K, 2]: a lane's surface polygon
    solid_lines: list[np.ndarray]  # each [P, 2]: a lane edge with no lane-change allowed across it
    dashes: np.ndarray  # [D, 2, 2]: start and end of each dash between lanes one may change between
    bounds: tuple[float, float, float, float]  # (x_min, y_min, x_max, y_max) m of all surfaces
    min_lane_width_m: float


def _road_geometry(road: RoadMap, map_id: int) -> _RoadGeometry:
    if not 0 <= map_id < road.num_maps:
        raise ValueError(f"render: map_id {map_id}; the map bank has maps 0 to {road.num_maps - 1}")

    def host(t: torch.Tensor) -> np.ndarray:
        return t[map_id].cpu().numpy()

    xy = host(road.lane_xy).astype(np.float64)  # [L, P, 2]
    length, ds, width = host(road.lane_length), host(road.lane_ds), host(road.lane_width)  # [L]
    valid, kind, s0 = host(road.lane_valid), host(road.lane_kind), host(road.lane_road_s0)
    left, right = host(road.lane_left), host(road.lane_right)
    left_ok, right_ok = host(road.lane_change_left_ok), host(road.lane_change_right_ok)
    surfaces, solid, dashes = [], [], []
    for lane in np.flatnonzero(valid):
        n = min(max(2, int(round(length[lane] / ds[lane])) + 1), xy.shape[1])
        centre = xy[lane, :n]
        tangent = np.gradient(centre, axis=0)
        tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)  # [n, 2], to the left
        half = 0.5 * float(width[lane])
        grown = centre.copy()
        grown[0] -= SURFACE_OVERLAP_M * tangent[0]
        grown[-1] += SURFACE_OVERLAP_M * tangent[-1]
        pad = half + SURFACE_SIDE_OVERLAP_M
        surfaces.append(np.concatenate([grown + pad * normal, (grown - pad * normal)[::-1]]))
        if kind[lane] == CONNECTOR_KIND:
            continue
        left_edge = centre + half * normal
        j = left[lane]
        if j < 0 or not (left_ok[lane] or right_ok[j]):
            solid.append(left_edge)
        else:
            dashes.append(_dashes(left_edge, float(length[lane]), float(s0[lane])))
        if right[lane] < 0:  # a shared right edge is drawn by the right neighbour as its left edge
            solid.append(centre - half * normal)
    points = np.concatenate(surfaces)
    return _RoadGeometry(
        surfaces=surfaces,
        solid_lines=solid,
        dashes=np.concatenate(dashes) if dashes else np.zeros((0, 2, 2)),
        bounds=(*points.min(axis=0).tolist(), *points.max(axis=0).tolist()),
        min_lane_width_m=float(width[valid].min()),
    )


def _dashes(edge: np.ndarray, length: float, road_s0: float) -> np.ndarray:
    """Dashes `[D, 2, 2]` along a lane edge `[n, 2]`, phased by the lane's start on the reference line."""
    arc = np.linspace(0.0, length, edge.shape[0])  # m along the lane at each edge point
    first = math.floor(road_s0 / DASH_PERIOD_M)
    last = math.ceil((road_s0 + length) / DASH_PERIOD_M)
    start = np.arange(first, last + 1) * DASH_PERIOD_M - road_s0
    lo, hi = np.clip(start, 0.0, length), np.clip(start + DASH_M, 0.0, length)
    keep = hi - lo > 0.1
    lo, hi = lo[keep], hi[keep]

    def at(s: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(s, arc, edge[:, 0]), np.interp(s, arc, edge[:, 1])], axis=-1)

    return np.stack([at(lo), at(hi)], axis=1)


class RoadLayer:
    """The road of one map rasterised at a fixed scale, lazily, in cached `TILE_PX` square tiles.

    Global pixel grid: column `u = x / metres_per_px`, row `v = -y / metres_per_px` (continuous; pixel `c`
    spans `[c, c + 1)`). Tiles are drawn the first time a crop touches them, so a follow camera only ever
    rasterises the strip of road it passes over, however large the map.
    """

    def __init__(self, road: RoadMap, map_id: int, metres_per_px: float, geo: _RoadGeometry | None = None) -> None:
        if not metres_per_px > 0:
            raise ValueError(f"render: metres_per_px {metres_per_px!r}; must be > 0")
        self.map_id = map_id
        self.metres_per_px = float(metres_per_px)
        geo = geo if geo is not None else _road_geometry(road, map_id)
        self.bounds = geo.bounds
        scale = np.array([1.0, -1.0]) / self.metres_per_px
        self.line_px = max(1, round(SUPERSAMPLE * MARKING_WIDTH_M / self.metres_per_px))  # supersampled px
        grow = self.line_px + 1
        if geo.min_lane_width_m / self.metres_per_px < MIN_MARKED_LANE_PX:
            geo = dataclasses.replace(geo, solid_lines=[], dashes=np.zeros((0, 2, 2)))
        self._surfaces = [(self._box(p * scale, grow), p * scale) for p in geo.surfaces]
        self._solid = [(self._box(p * scale, grow), p * scale) for p in geo.solid_lines]
        self._dashes = geo.dashes * scale  # [D, 2, 2] px
        lo = self._dashes.min(axis=1) - grow if len(self._dashes) else np.zeros((0, 2))
        hi = self._dashes.max(axis=1) + grow if len(self._dashes) else np.zeros((0, 2))
        self._dash_box = np.concatenate([lo, hi], axis=1)  # [D, 4] (u_lo, v_lo, u_hi, v_hi)
        self._tiles: dict[tuple[int, int], np.ndarray] = {}
        self._empty = np.empty((TILE_PX, TILE_PX, 3), np.uint8)
        self._empty[:] = OFFROAD_RGB
        self._empty.flags.writeable = False

    @staticmethod
    def _box(points: np.ndarray, grow: float) -> tuple[float, float, float, float]:
        lo, hi = points.min(axis=0) - grow, points.max(axis=0) + grow
        return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))

    def _tile(self, row: int, col: int) -> np.ndarray:
        key = (row, col)
        if key in self._tiles:
            return self._tiles[key]
        u0, v0 = col * TILE_PX, row * TILE_PX
        u1, v1 = u0 + TILE_PX, v0 + TILE_PX

        def touches(box) -> bool:
            return box[0] < u1 and box[2] >= u0 and box[1] < v1 and box[3] >= v0

        # PIL puts integer coordinates at pixel centres; pixel c spans [c, c + 1) on our grid.
        origin = np.array([u0, v0])

        def to_tile(p: np.ndarray) -> np.ndarray:
            return (p - origin) * SUPERSAMPLE - 0.5

        surfaces = [to_tile(p) for box, p in self._surfaces if touches(box)]
        solid = [to_tile(p) for box, p in self._solid if touches(box)]
        b = self._dash_box
        near = (b[:, 0] < u1) & (b[:, 2] >= u0) & (b[:, 1] < v1) & (b[:, 3] >= v0)
        dashes = to_tile(self._dashes[near])
        if not surfaces and not solid and not len(dashes):
            tile = self._empty
        else:
            image = Image.new("RGB", (TILE_PX * SUPERSAMPLE, TILE_PX * SUPERSAMPLE), OFFROAD_RGB)
            draw = ImageDraw.Draw(image)
            for p in surfaces:
                draw.polygon(p.ravel().tolist(), fill=ROAD_RGB)
            for p in solid:
                draw.line(p.ravel().tolist(), fill=MARKING_RGB, width=self.line_px, joint="curve")
            for p in dashes:
                draw.line(p.ravel().tolist(), fill=MARKING_RGB, width=self.line_px)
            tile = np.asarray(image.reduce(SUPERSAMPLE))
        self._tiles[key] = tile
        return tile

    def crop(self, row0: int, col0: int, height: int, width: int) -> np.ndarray:
        """`[height, width, 3]` uint8: rows `row0 ...`, columns `col0 ...` of the global pixel grid."""
        out = np.empty((height, width, 3), np.uint8)
        for row in range(row0 // TILE_PX, (row0 + height - 1) // TILE_PX + 1):
            r_lo, r_hi = max(row0, row * TILE_PX), min(row0 + height, (row + 1) * TILE_PX)
            for col in range(col0 // TILE_PX, (col0 + width - 1) // TILE_PX + 1):
                c_lo, c_hi = max(col0, col * TILE_PX), min(col0 + width, (col + 1) * TILE_PX)
                tile = self._tile(row, col)
                out[r_lo - row0 : r_hi - row0, c_lo - col0 : c_hi - col0] = tile[
                    r_lo - row * TILE_PX : r_hi - row * TILE_PX, c_lo - col * TILE_PX : c_hi - col * TILE_PX
                ]
        return out


# ---------------------------------------------------------------------------------------------------- render


def _label_font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=LABEL_SIZE_PX)  # needs Pillow's FreeType support
    except (ImportError, OSError, TypeError):
        return ImageFont.load_default()


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(c * factor) for c in rgb)


def _camera_centres(rec: Recording, bounds: tuple[float, float, float, float], follow_ego: bool) -> np.ndarray:
    """`[T, 2]` m: the first controlled vehicle (held over frames without one), or the map's centre."""
    map_centre = np.array([0.5 * (bounds[0] + bounds[2]), 0.5 * (bounds[1] + bounds[3])])
    slot = rec.ego_slot()
    if not follow_ego or (slot < 0).all():
        return np.tile(map_centre, (rec.num_frames, 1))
    frames = np.arange(rec.num_frames)
    have = np.where(slot >= 0, frames, -1)
    have = np.maximum.accumulate(have)  # last frame with an ego, at or before each frame
    have = np.where(have < 0, np.flatnonzero(slot >= 0)[0], have)  # frames before the first ego: the first
    return rec.xy[have, slot[have]].astype(np.float64)


STOP_BAR_M = 0.6  # m, thickness of a drawn stop line
SIGNAL_RGB = {
    int(Signal.RED): (220, 40, 40),
    int(Signal.YELLOW): (240, 200, 40),
    int(Signal.GREEN): (40, 200, 70),
    int(Signal.GREEN_YIELD): (160, 230, 120),
    int(Signal.STOP_GO): (230, 120, 60),
}


def _stop_bars(road: RoadMap, map_id: int) -> np.ndarray:
    """`[L, 2, 2]` m: a segment across the start of every lane (where a connector's stop line is), lane wide."""
    xy = road.lane_xy[map_id].cpu().numpy()  # [L, P, 2]
    yaw = road.lane_yaw[map_id, :, 0].cpu().numpy()  # [L]
    half = 0.5 * road.lane_width[map_id].cpu().numpy()  # [L]
    normal = np.stack([-np.sin(yaw), np.cos(yaw)], axis=-1) * half[:, None]
    start = xy[:, 0]
    return np.stack([start - normal, start + normal], axis=1)


def render_frames(
    road: RoadMap,
    rec: Recording,
    width_px: int = 800,
    height_px: int = 300,
    metres_per_px: float | None = None,
    follow_ego: bool = True,
    label: bool = True,
) -> np.ndarray:
    """Draw a recording top-down. Returns `[T, height_px, width_px, 3]` uint8 RGB.

    `road` is the map bank the recording was made on (`world.road`). Grey lanes with white edges (dashed where
    a lane change is allowed), signalised connectors with a stop bar in their signal's colour, cars as oriented
    boxes with a dark front quarter: background traffic blue,
    controlled vehicles green, crashed ones red. `follow_ego`: the camera centres on the first controlled
    vehicle (default scale `EGO_VIEW_METRES_PER_PX`); otherwise it frames the whole map (scale fitted unless
    given; cars are drawn at least `MIN_CAR_PX` large). `label` writes the time and the ego's speed in the top-left corner.
    """
    if width_px < 8 or height_px < 8:
        raise ConfigError(f"render_frames: image {width_px} x {height_px} px; each side must be >= 8 px")
    if metres_per_px is not None and not metres_per_px > 0:
        raise ConfigError(f"render_frames: metres_per_px {metres_per_px!r}; must be > 0 or None (automatic)")
    geo = _road_geometry(road, rec.map_id)
    bounds = geo.bounds
    if metres_per_px is None:
        if follow_ego:
            metres_per_px = EGO_VIEW_METRES_PER_PX
        else:
            extent_x, extent_y = bounds[2] - bounds[0], bounds[3] - bounds[1]
            metres_per_px = (1.0 + 2 * FIT_MARGIN) * max(extent_x / width_px, extent_y / height_px, 1e-3)
    layer = RoadLayer(road, rec.map_id, metres_per_px, geo)
    centre = _camera_centres(rec, bounds, follow_ego)  # [T, 2] m
    col0 = np.round(centre[:, 0] / metres_per_px - 0.5 * width_px).astype(np.int64)  # [T]
    row0 = np.round(-centre[:, 1] / metres_per_px - 0.5 * height_px).astype(np.int64)  # [T]

    # Zoomed far out, cars are drawn at least MIN_CAR_PX so that they stay visible.
    length = np.maximum(rec.length, MIN_CAR_PX[0] * metres_per_px)  # [T, N] m
    width = np.maximum(rec.width, MIN_CAR_PX[1] * metres_per_px)  # [T, N] m
    corners = box_corners(
        torch.from_numpy(rec.xy), torch.from_numpy(rec.yaw), torch.from_numpy(length), torch.from_numpy(width)
    ).numpy()  # [T, N, 4, 2] m: front-left, front-right, rear-right, rear-left
    corners_px = corners * (np.array([1.0, -1.0]) / metres_per_px) - 0.5  # PIL: integer = pixel centre
    front = corners_px[:, :, :2] + 0.25 * (corners_px[:, :, [3, 2]] - corners_px[:, :, :2])  # [T, N, 2, 2]
    windscreen = np.concatenate([corners_px[:, :, :2], front[:, :, ::-1]], axis=2)  # [T, N, 4, 2]
    colour_index = np.where(rec.crashed, 2, np.where(rec.controlled, 1, 0))  # [T, N]
    colours = (BACKGROUND_CAR_RGB, CONTROLLED_CAR_RGB, CRASHED_CAR_RGB)
    detailed = rec.width / metres_per_px >= MIN_DETAILED_CAR_PX  # [T, N]
    ego = rec.ego_slot()
    font = _label_font() if label else None
    stop_bars = _stop_bars(road, rec.map_id) * (np.array([1.0, -1.0]) / metres_per_px) - 0.5  # [L, 2, 2] px
    bar_px = max(2, round(STOP_BAR_M / metres_per_px))

    frames = np.empty((rec.num_frames, height_px, width_px, 3), np.uint8)
    for t in range(rec.num_frames):
        image = Image.fromarray(layer.crop(int(row0[t]), int(col0[t]), height_px, width_px))
        draw = ImageDraw.Draw(image)
        shift = np.array([col0[t], row0[t]], dtype=np.float64)
        box = corners_px[t] - shift  # [N, 4, 2]
        inside = (
            (box[..., 0].max(axis=1) >= -1)
            & (box[..., 0].min(axis=1) <= width_px)
            & (box[..., 1].max(axis=1) >= -1)
            & (box[..., 1].min(axis=1) <= height_px)
        )
        if rec.signals is not None:  # a bar across each signalised connector's start, in its colour
            for lane in np.flatnonzero(rec.signals[t] != int(Signal.OFF)):
                bar = stop_bars[lane] - shift
                draw.line(bar.ravel().tolist(), fill=SIGNAL_RGB[int(rec.signals[t, lane])], width=bar_px)
        visible = np.flatnonzero(rec.present[t] & inside)
        # Controlled cars on top of background traffic, crashed on top of all.
        for n in visible[np.argsort(colour_index[t, visible], kind="stable")]:
            rgb = colours[colour_index[t, n]]
            if detailed[t, n]:
                draw.polygon(box[n].ravel().tolist(), fill=rgb, outline=OUTLINE_RGB)
                draw.polygon((windscreen[t, n] - shift).ravel().tolist(), fill=_shade(rgb, WINDSCREEN_SHADE))
            else:
                draw.polygon(box[n].ravel().tolist(), fill=rgb)
        if label:
            text = f"t {rec.time_s[t]:5.1f} s"
            if ego[t] >= 0:
                text += f"   ego {rec.speed[t, ego[t]]:4.1f} m/s"
            draw.text((4, 2), text, fill=LABEL_RGB, font=font)
        frames[t] = np.asarray(image)
    return frames


# ----------------------------------------------------------------------------------------------------- video


def _check_video_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ConfigError(
            f"write_video: {str(path)!r} has suffix {path.suffix or '(none)'!r}; allowed: {', '.join(VIDEO_SUFFIXES)}"
        )
    return path


def write_video(frames: np.ndarray, path: str | Path, fps: float = 15) -> Path:
    """Write `frames [T, H, W, 3]` uint8 to `path`: a looping GIF (`.gif`) or an H.264 MP4 (`.mp4`).

    Parent folders are created. MP4 frames with an odd side are padded by one edge pixel (yuv420p needs even
    sides). GIF notes: Pillow merges identical consecutive frames into one longer frame (same playing time,
    fewer frames), and GIF delays are whole centiseconds. Returns the path written.
    """
    path = _check_video_path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or frames.shape[0] == 0:
        raise ValueError(
            f"write_video: frames of shape {frames.shape} and dtype {frames.dtype}; need [T >= 1, H, W, 3] uint8"
        )
    if not fps > 0:
        raise ConfigError(f"write_video: fps {fps!r}; must be > 0")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        import imageio.v3 as iio

        iio.imwrite(path, frames, plugin="pillow", duration=int(round(1000.0 / fps)), loop=0)
        return path

    import imageio.v2 as iio2

    pad_rows, pad_cols = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_rows or pad_cols:
        frames = np.pad(frames, ((0, 0), (0, pad_rows), (0, pad_cols), (0, 0)), mode="edge")
    with iio2.get_writer(
        path,
        format="FFMPEG",
        mode="I",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=1,
        ffmpeg_log_level="error",
    ) as writer:
        for frame in frames:
            writer.append_data(frame)
    return path


def render_episode(
    world: World,
    pilot: Pilot,
    path: str | Path,
    seed: int = 0,
    world_index: int = 0,
    max_decisions: int | None = None,
    fps: float | None = None,
    frames_per_decision: int = 1,
    width_px: int = 800,
    height_px: int = 300,
    metres_per_px: float | None = None,
    follow_ego: bool = True,
) -> dict:
    """Record one episode, render it and write it to `path` (`.gif` or `.mp4`).

    `fps` defaults to real time (`decision_hz * frames_per_decision`). Returns a summary: `path`, `frames`,
    `decisions`, `sim_s` (simulated seconds), `ego_crashed` (any controlled vehicle crashed), `map_id`, and the
    wall-clock seconds spent recording, rendering and writing (`record_s`, `render_s`, `write_s`).
    """
    path = _check_video_path(path)  # fail on a typo before simulating
    if fps is None:
        fps = world.cfg.decision_hz * frames_per_decision
    if not fps > 0:
        raise ConfigError(f"render_episode: fps {fps!r}; must be > 0")
    t0 = time.perf_counter()
    rec = record_episode(world, pilot, seed, world_index, max_decisions, frames_per_decision)
    t1 = time.perf_counter()
    frames = render_frames(
        world.road, rec, width_px=width_px, height_px=height_px, metres_per_px=metres_per_px, follow_ego=follow_ego
    )
    t2 = time.perf_counter()
    write_video(frames, path, fps)
    t3 = time.perf_counter()
    return dict(
        path=path,
        frames=rec.num_frames,
        decisions=rec.num_decisions,
        sim_s=float(rec.time_s[-1] - rec.time_s[0]),
        ego_crashed=bool((rec.crashed & rec.controlled & rec.present).any()),
        map_id=rec.map_id,
        record_s=round(t1 - t0, 3),
        render_s=round(t2 - t1, 3),
        write_s=round(t3 - t2, 3),
    )
