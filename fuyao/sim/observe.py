"""Observations of the controlled vehicles: pure functions of (state, map).

native `[W, C, F]` (flat, fixed size):
    ego (10)            speed/30, accel/5, heading to lane, lateral offset/width, length/10, width/3,
                        speed limit/30, target speed/30, lane change under way, steering
    K neighbours (13 each, nearest first)
                        present, dx/50, dy/10 (ego frame), cos and sin of relative yaw, dvx/30, dvy/30 (ego
                        frame), length/10, width/3, lane relation one-hot (same, left, right, other)
    3 lanes (own, left, right) x (exists + len(lookahead) points x (x/100, y/10, relative yaw)), ego frame,
                        continuing on the route's successor past a lane's end
    lane potential (5)  the car-following quantities MOBIL weighs, as IDM accelerations/5 clipped to [-2, 1]:
                        the ego's behind the own, left and right lane's leader (-2 where the lane does not
                        exist), and the one a new follower in the left and right lane would need behind the ego
                        (0 where there is none); the ego's own driver parameters stand for the follower's, which
                        are not observable
    traffic (18)        leader and follower in the own, left and right lanes (along the lanes, as car
                        following and lane-change decisions see them): present, bumper gap/50 (clipped to
                        [-1, 2]), their speed minus own/30
    route (8)           lane changes needed/3 (signed), metres left to do them/1000, own/left/right lane on
                        route, cost-to-go/2000, lanes here/6, episode time fraction
    junction (20)       city presets only (`SimConfig.junction_features`): a junction ahead on the route (the
                        connector the ego is on or enters next), its front bumper's distance to the stop line/50
                        (negative inside, clipped to [-1, 2]), the same distance/5 (clipped to [-1, 2]: the last
                        metres, where a stop is decided, at a resolution a network resolves), the deceleration
                        that stops the bumper at the line, v^2 / 2d, /5 (clipped to [0, 2]; 0 past the line),
                        the connector's signal one-hot (off, red, yellow,
                        green, green-but-yield, stop-then-go) and seconds in that state/30 (clipped to 2), the
                        manoeuvre one-hot (straight, left, right), the exit street blocked, and the most urgent
                        conflicting vehicle: present, its time to the conflict point/10, the ego's distance to
                        that point/50, it has priority over the ego, it is inside the junction

highway-kinematics `[W, C, V, 5]`: highway-env's Kinematics observation with its defaults: rows (presence, x,
y, vx, vy), ego first in absolute coordinates, then up to V - 1 vehicles within 200 m that are not more than
two car lengths behind (along the ego's lane), nearest along the lane first, relative to the ego; x in
[-200, 200] m, y in [-4 n_lanes, 4 n_lanes] m, vx and vy in [-80, 80] m/s mapped to [-1, 1] and clipped;
missing rows zero. highway-env's y axis points to the right of the road (screen coordinates), so y here is
the negated world y. `SimConfig.kinematics_lanes` fixes the lanes the y range spans (highway-env fixes it at an
episode's first observation).

highway-exit `[W, C, V, 7]`: exit-v0's ExitObservation: the same rows with (cos_h, sin_h) of each vehicle's
heading after vy, 15 rows, not clipped, the ego's x measured from the start of the exit lane.

highway-occupancy `[W, C, F, Nx, Ny]` (highway-env's OccupancyGrid) and raster `[W, C, 9, H, H]` (a bird's-eye
raster for convolutional policies) live in `fuyao.sim.observe_grid`, with their layouts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.sim.config import ObservationType, SimConfig
from fuyao.sim.constants import SimConstants, constants_or_build
from fuyao.sim.geometry import lane_attr, lane_index, lane_point, next_lane, route_attr, vehicle_pose, wrap_angle
from fuyao.sim.neighbours import Surroundings, surroundings
from fuyao.sim.observe_grid import HIGHWAY_ENV_MAX_SPEED, OccupancyLayout, RasterLayout, highway_occupancy, raster
from fuyao.sim.signals import link_signal, link_time_in_state
from fuyao.sim.state import WorldState, first_slots
from fuyao.sim.traffic import driver_params, effective_limit, exit_blocked, has_right_of_way, idm_acceleration

# Feature names of one row of each native block, in the order `native` writes them (normalisers in the docstring).
EGO_ROW = (
    "speed",
    "accel",
    "heading",
    "lateral",
    "length",
    "width",
    "speed_limit",
    "target_speed",
    "lane_change",
    "steer",
)
NEIGHBOUR_ROW = (
    *("present", "dx", "dy", "cos_yaw", "sin_yaw", "dvx", "dvy", "length", "width"),
    *("same_lane", "left_lane", "right_lane", "other_lane"),
)
LANE_ROWS = ("own", "left", "right")  # one row per lane, each: exists, then (x, y, yaw) per lookahead point
POINT_FEATURES = ("x", "y", "yaw")
POTENTIAL_ROW = ("behind_lead", "behind_left_lead", "behind_right_lead", "imposed_left_follow", "imposed_right_follow")
TRAFFIC_NEIGHBOURS = ("lead", "follow", "left_lead", "left_follow", "right_lead", "right_follow")
TRAFFIC_ROW = tuple(f"{nb}_{q}" for nb in TRAFFIC_NEIGHBOURS for q in ("present", "gap", "dv"))
ROUTE_ROW = (
    *("changes", "remaining", "on_route_own", "on_route_left", "on_route_right"),
    *("cost_to_go", "lanes_here", "time"),
)
EGO_FEATURES = len(EGO_ROW)
NEIGHBOUR_FEATURES = len(NEIGHBOUR_ROW)
JUNCTION_ROW = (
    *("ahead", "stop_dist", "stop_near", "stop_decel"),
    *("signal_off", "signal_red", "signal_yellow", "signal_green", "signal_green_yield", "signal_stop_go"),
    *("signal_time", "straight", "left", "right", "exit_blocked"),
    *("conflict_present", "conflict_their_time", "conflict_my_dist", "conflict_priority", "conflict_inside"),
)
TURN_RAD = 0.5  # rad: a connector turning more than this is a left or right turn
ROUTE_FEATURES = len(ROUTE_ROW)
TRAFFIC_FEATURES = len(TRAFFIC_ROW)  # 6 lane neighbours x (present, gap, relative speed)
# IDM acceleration behind the own / left / right lane's leader, and imposed on the new left / right follower
POTENTIAL_FEATURES = len(POTENTIAL_ROW)
KINEMATICS_FEATURES = ("presence", "x", "y", "vx", "vy")
EXIT_FEATURES = (*KINEMATICS_FEATURES, "cos_h", "sin_h")  # ExitObservation's (exit-v0's default config)
HIGHWAY_ENV_LANE_WIDTH = 4.0  # m, AbstractLane.DEFAULT_WIDTH


@dataclass(frozen=True)
class Block:
    """A run of the flat native observation: `rows` tokens (neighbours, lanes; 1 for the others) of `features`."""

    name: str
    start: int  # index of its first feature in the observation
    rows: int
    features: tuple[str, ...]  # one row's features, in order

    @property
    def width(self) -> int:
        return len(self.features)

    @property
    def size(self) -> int:
        return self.rows * self.width

    @property
    def stop(self) -> int:
        return self.start + self.size

    def column(self, feature: str) -> int:
        """Index of `feature` within a row."""
        return self.features.index(feature)

    def flat(self, obs: torch.Tensor) -> torch.Tensor:
        """`[..., F]` -> `[..., size]`."""
        return obs[..., self.start : self.stop]

    def read(self, obs: torch.Tensor) -> torch.Tensor:
        """`[..., F]` -> `[..., rows, width]`."""
        return self.flat(obs).unflatten(-1, (self.rows, self.width))


@dataclass(frozen=True)
class ObservationLayout:
    """The native observation's layout, the one definition `native` writes by and the encoders read by.

    Blocks follow each other in field order; lane row features are `exists`, then `x{i}`, `y{i}`, `yaw{i}` for
    the point `cfg.lookahead_m[i]` metres ahead."""

    ego: Block
    neighbours: Block
    lanes: Block
    potential: Block
    traffic: Block
    route: Block
    junction: Block | None = None  # city presets (`SimConfig.junction_features`)

    @staticmethod
    def of(cfg: SimConfig) -> ObservationLayout:
        points = tuple(f"{f}{i}" for i in range(len(cfg.lookahead_m)) for f in POINT_FEATURES)
        shapes = {
            "ego": (1, EGO_ROW),
            "neighbours": (cfg.neighbours, NEIGHBOUR_ROW),
            "lanes": (len(LANE_ROWS), ("exists", *points)),
            "potential": (1, POTENTIAL_ROW),
            "traffic": (1, TRAFFIC_ROW),
            "route": (1, ROUTE_ROW),
        }
        if cfg.junction_features:
            shapes["junction"] = (1, JUNCTION_ROW)
        blocks, start = {}, 0
        for name, (rows, features) in shapes.items():
            blocks[name] = Block(name, start, rows, features)
            start = blocks[name].stop
        return ObservationLayout(**blocks)

    @property
    def blocks(self) -> tuple[Block, ...]:
        extra = (self.junction,) if self.junction is not None else ()
        return (self.ego, self.neighbours, self.lanes, self.potential, self.traffic, self.route, *extra)

    @property
    def size(self) -> int:
        return self.blocks[-1].stop

    @property
    def lookahead_points(self) -> int:
        return (self.lanes.width - 1) // len(POINT_FEATURES)

    def lane_points(self, obs: torch.Tensor) -> torch.Tensor:
        """`[..., F]` -> `[..., 3 lanes, P points, (x, y, yaw)]`."""
        rows = self.lanes.read(obs)
        first = self.lanes.column(f"{POINT_FEATURES[0]}0")
        return rows[..., first:].unflatten(-1, (self.lookahead_points, len(POINT_FEATURES)))

    def assemble(self, **parts: torch.Tensor) -> torch.Tensor:
        """Concatenate one tensor `[..., size]` per block (by name) in layout order: `[..., F]`."""
        if set(parts) != {b.name for b in self.blocks}:
            raise ValueError(
                f"ObservationLayout.assemble: got blocks {sorted(parts)}; need {[b.name for b in self.blocks]}"
            )
        for b in self.blocks:
            if parts[b.name].shape[-1] != b.size:
                raise ValueError(
                    f"observation block {b.name!r}: {parts[b.name].shape[-1]} features; layout has {b.size}"
                )
        return torch.cat([parts[b.name] for b in self.blocks], dim=-1)


@dataclass(frozen=True)
class KinematicsLayout:
    """highway-kinematics `[V, 5]`: row 0 the ego, rows 1.. the others; columns `KINEMATICS_FEATURES`
    (highway-exit: `EXIT_FEATURES`)."""

    rows: int
    features: tuple[str, ...] = KINEMATICS_FEATURES
    ego_row: int = 0

    @staticmethod
    def of(cfg: SimConfig) -> KinematicsLayout:
        if cfg.observation is ObservationType.HIGHWAY_EXIT:
            return KinematicsLayout(rows=cfg.kinematics_vehicles, features=EXIT_FEATURES)
        return KinematicsLayout(rows=cfg.kinematics_vehicles)

    @property
    def others(self) -> slice:
        return slice(self.ego_row + 1, self.rows)

    def column(self, feature: str) -> int:
        return self.features.index(feature)


def observation_layout(cfg: SimConfig) -> ObservationLayout | KinematicsLayout | OccupancyLayout | RasterLayout:
    if cfg.observation in (ObservationType.HIGHWAY_KINEMATICS, ObservationType.HIGHWAY_EXIT):
        return KinematicsLayout.of(cfg)
    if cfg.observation is ObservationType.HIGHWAY_OCCUPANCY:
        return OccupancyLayout.of(cfg)
    if cfg.observation is ObservationType.RASTER:
        return RasterLayout.of(cfg)
    return ObservationLayout.of(cfg)


def observation_shape(cfg: SimConfig) -> tuple[int, ...]:
    layout = observation_layout(cfg)
    if isinstance(layout, KinematicsLayout):
        return (layout.rows, len(layout.features))
    if isinstance(layout, (OccupancyLayout, RasterLayout)):
        return layout.shape
    return (layout.size,)


def observe(
    state: WorldState,
    road: RoadMap,
    cfg: SimConfig,
    consts: SimConstants | None = None,
    sur: Surroundings | None = None,
) -> torch.Tensor:
    """`sur`: the surroundings of every vehicle in `state` where the caller has them (the native observation)."""
    if cfg.observation in (ObservationType.HIGHWAY_KINEMATICS, ObservationType.HIGHWAY_EXIT):
        return highway_kinematics(state, road, cfg)
    if cfg.observation is ObservationType.HIGHWAY_OCCUPANCY:
        return highway_occupancy(state, road, cfg, consts)
    if cfg.observation is ObservationType.RASTER:
        return raster(state, road, cfg, consts)
    return native(state, road, cfg, consts, sur)


def junction_block(state: WorldState, road: RoadMap, sur, c: int) -> torch.Tensor:
    """The junction features (`JUNCTION_ROW`) of the first `c` slots, `[W, C, 20]`; zeros on maps without
    junctions. `sur`: the surroundings of every vehicle."""
    v = state.vehicles
    w = v.s.shape[0]
    if sur.upcoming is None:
        return torch.zeros(w, c, len(JUNCTION_ROW), device=v.s.device)
    m = state.map_id
    up = sur.upcoming[:, :c]
    ahead = up >= 0
    half = 0.5 * v.length[:, :c]
    to_line = sur.conflict_entry_dist[:, :c] - half
    stop_dist = torch.where(ahead, (to_line / 50.0).clamp(-1.0, 2.0), 2.0)
    # Where to stop is decided in the last few metres: at /50 they are a hundredth of the feature's range, and a
    # cloned pilot crept over the line at red (38 red runs in 512 agents x 25 s against none with these two).
    stop_near = torch.where(ahead, (to_line / 5.0).clamp(-1.0, 2.0), 2.0)
    speed = v.speed[:, :c]
    stop_decel = torch.where(
        ahead & (to_line > 0), (speed * speed / (2.0 * to_line.clamp(min=0.5)) / 5.0).clamp(max=2.0), 0.0
    )
    sig = link_signal(road, m, state.signals, up)
    onehot = torch.nn.functional.one_hot(sig.clamp(0, 5), 6).float()
    t_sig = (link_time_in_state(road, m, state.signals, up) / 30.0).clamp(max=2.0)
    num_p = road.lane_yaw.shape[2]
    idx = lane_index(road, m, up)
    ds = road.lane_ds.reshape(-1)[idx]
    last = (road.lane_length.reshape(-1)[idx] / ds).round().int().clamp(min=1, max=num_p - 1)
    yaw_table = road.lane_yaw.reshape(-1)
    turn = wrap_angle(yaw_table[idx * num_p + last - 1] - yaw_table[idx * num_p])
    left, right = ahead & (turn > TURN_RAD), ahead & (turn < -TURN_RAD)
    straight = ahead & ~left & ~right
    blocked = ahead & exit_blocked(sur.exit_room[:, :c], v.length[:, :c], v.idm_gap[:, :c])

    # The most urgent conflict: the other vehicle that reaches its conflict point soonest.
    other = sur.conflict_slot[:, :c]  # [W, C, K]
    k = other.shape[-1]
    safe = other.clamp(min=0).reshape(w, -1)
    their_speed = v.speed.gather(1, safe).view(w, c, k)
    their_dist = sur.conflict_their_dist[:, :c]
    their_t = their_dist.clamp(min=0.0) / their_speed.clamp(min=1.0)
    present = (other >= 0) & (their_dist > -3.0)
    their_t = torch.where(present, their_t, 1.0e3)
    t_min, j = their_t.min(dim=-1, keepdim=True)
    has = present.gather(-1, j).squeeze(-1)
    my_dist = sur.conflict_my_dist[:, :c].gather(-1, j).squeeze(-1)
    their_sig = link_signal(road, m, state.signals, sur.conflict_lane[:, :c].gather(-1, j).squeeze(-1))
    static = sur.conflict_rule[:, :c].gather(-1, j).squeeze(-1)
    priority = has_right_of_way(sig, their_sig, static)
    inside = sur.conflict_other_inside[:, :c].gather(-1, j).squeeze(-1)
    conflict = torch.stack(
        [
            has.float(),
            torch.where(has, (t_min.squeeze(-1) / 10.0).clamp(max=2.0), 2.0),
            torch.where(has, (my_dist / 50.0).clamp(-1.0, 2.0), 2.0),
            (has & priority).float(),
            (has & inside).float(),
        ],
        dim=-1,
    )
    head = torch.stack([ahead.float(), stop_dist, stop_near, stop_decel], dim=-1)
    tail = torch.stack([t_sig, straight.float(), left.float(), right.float(), blocked.float()], dim=-1)
    return torch.cat([head, onehot * ahead.unsqueeze(-1), tail, conflict], dim=-1)


def _to_frame(dx, dy, yaw):
    c, s = torch.cos(yaw), torch.sin(yaw)
    return c * dx + s * dy, -s * dx + c * dy


def native(
    state: WorldState,
    road: RoadMap,
    cfg: SimConfig,
    consts: SimConstants | None = None,
    sur: Surroundings | None = None,
) -> torch.Tensor:
    v = state.vehicles
    m = state.map_id
    c, k = cfg.controlled, min(cfg.neighbours, v.s.shape[1] - 1)
    xy, yaw = vehicle_pose(road, m, v.lane, v.s, v.d, v.psi)  # [W, N, 2], [W, N]
    ego_xy, ego_yaw = xy[:, :c], yaw[:, :c]
    lane = v.lane[:, :c]
    width = lane_attr(road.lane_width, road, m, lane)
    limit = lane_attr(road.lane_speed_limit, road, m, lane)
    ego = torch.stack(
        [
            v.speed[:, :c] / 30.0,
            v.accel[:, :c] / 5.0,
            v.psi[:, :c],
            v.d[:, :c] / width,
            v.length[:, :c] / 10.0,
            v.width[:, :c] / 3.0,
            limit / 30.0,
            v.target_speed[:, :c] / 30.0,
            v.lc_dir[:, :c].float(),
            v.steer[:, :c],
        ],
        dim=-1,
    )

    # K nearest present vehicles by centre distance (never the vehicle itself).
    dx = xy[:, None, :, 0] - ego_xy[:, :, None, 0]  # [W, C, N]
    dy = xy[:, None, :, 1] - ego_xy[:, :, None, 1]
    dist = torch.sqrt(dx * dx + dy * dy)
    self_mask = torch.eye(c, v.s.shape[1], dtype=torch.bool, device=v.s.device).unsqueeze(0)
    valid = v.present.unsqueeze(1) & ~self_mask
    dist = torch.where(valid, dist, 1.0e9)
    near_d, near = torch.topk(dist, k, dim=-1, largest=False)  # [W, C, K]
    present = near_d < 1.0e8

    def pick(x):  # [W, N] -> [W, C, K]
        return x.unsqueeze(1).expand(-1, c, -1).gather(2, near)

    rx, ry = _to_frame(dx.gather(2, near), dy.gather(2, near), ego_yaw.unsqueeze(-1))
    ryaw = pick(yaw) - ego_yaw.unsqueeze(-1)
    vx_w, vy_w = v.speed * torch.cos(yaw), v.speed * torch.sin(yaw)
    ego_vx, ego_vy = vx_w[:, :c].unsqueeze(-1), vy_w[:, :c].unsqueeze(-1)
    rvx, rvy = _to_frame(pick(vx_w) - ego_vx, pick(vy_w) - ego_vy, ego_yaw.unsqueeze(-1))
    other_lane = pick(v.lane)
    left = lane_attr(road.lane_left, road, m, lane).unsqueeze(-1)
    right = lane_attr(road.lane_right, road, m, lane).unsqueeze(-1)
    same = other_lane == lane.unsqueeze(-1)
    is_left = (other_lane == left) & (left >= 0)
    is_right = (other_lane == right) & (right >= 0)
    relation = torch.stack([same, is_left, is_right, ~(same | is_left | is_right)], dim=-1).float()
    neighbours = torch.cat(
        [
            torch.stack(
                [
                    present.float(),
                    rx / 50.0,
                    ry / 10.0,
                    torch.cos(ryaw),
                    torch.sin(ryaw),
                    rvx / 30.0,
                    rvy / 30.0,
                    pick(v.length) / 10.0,
                    pick(v.width) / 3.0,
                ],
                dim=-1,
            ),
            relation,
        ],
        dim=-1,
    ) * present.unsqueeze(-1)
    if k < cfg.neighbours:
        neighbours = torch.nn.functional.pad(neighbours, (0, 0, 0, cfg.neighbours - k))
    neighbours = neighbours.flatten(2)

    # Lane geometry ahead for own, left and right lanes, following the route past lane ends.
    ahead = constants_or_build(consts, cfg, v.s.device).lookahead_m
    dest = v.dest[:, :c]
    lane_len = lane_attr(road.lane_length, road, m, lane)
    lanes = []
    for which in (lane, left.squeeze(-1), right.squeeze(-1)):
        exists = which >= 0
        w_len = lane_attr(road.lane_length, road, m, which)
        s0 = v.s[:, :c] * w_len / lane_len
        s = s0.unsqueeze(-1) + ahead  # [W, C, A]
        nxt = next_lane(road, m, which, dest)
        beyond = (s > w_len.unsqueeze(-1)) & (nxt.unsqueeze(-1) >= 0)
        q_lane = torch.where(beyond, nxt.unsqueeze(-1), which.unsqueeze(-1))
        q_s = torch.where(beyond, s - w_len.unsqueeze(-1), s)
        p, p_yaw, _ = lane_point(road, m, q_lane, q_s)
        px, py = _to_frame(p[..., 0] - ego_xy[..., 0:1], p[..., 1] - ego_xy[..., 1:2], ego_yaw.unsqueeze(-1))
        pts = torch.stack([px / 100.0, py / 10.0, wrap_angle(p_yaw - ego_yaw.unsqueeze(-1))], dim=-1)
        pts = pts * exists[..., None, None]
        lanes.append(torch.cat([exists.float().unsqueeze(-1), pts.flatten(2)], dim=-1))
    lanes = torch.cat(lanes, dim=-1)

    if sur is None:
        sur = surroundings(road, m, v.lane, v.s, v.length, v.speed, v.present, v.dest)
    own_speed = v.speed[:, :c]
    traffic = []
    for nb in (sur.lead, sur.follow, sur.left_lead, sur.left_follow, sur.right_lead, sur.right_follow):
        ok = nb.exists[:, :c]
        traffic += [
            ok.float(),
            torch.where(ok, (nb.gap[:, :c] / 50.0).clamp(-1.0, 2.0), 2.0),
            torch.where(ok, (nb.speed[:, :c] - own_speed) / 30.0, 0.0),
        ]
    traffic = torch.stack(traffic, dim=-1)

    # Lane potential: what MOBIL compares, so that a pilot can see where a lane change pays (a cloned pilot that saw
    # only gaps and speed differences almost never overtook, BENCHMARKS.md "Runs 17-20 and a diagnosis").
    egos = first_slots(v, c)
    params = driver_params(egos, effective_limit(road, m, egos))  # [W, C] each

    def behind(nb):  # the ego following `nb`
        return idm_acceleration(own_speed, nb.gap[:, :c], nb.speed[:, :c], nb.exists[:, :c], params)

    def imposed(nb):  # `nb` following the ego
        ok = nb.exists[:, :c]
        return torch.where(ok, idm_acceleration(nb.speed[:, :c], nb.gap[:, :c], own_speed, ok, params), 0.0)

    has_left, has_right = sur.left_lane[:, :c] >= 0, sur.right_lane[:, :c] >= 0
    potential = torch.stack(
        [
            behind(sur.lead),
            torch.where(has_left, behind(sur.left_lead), -10.0),
            torch.where(has_right, behind(sur.right_lead), -10.0),
            imposed(sur.left_follow),
            imposed(sur.right_follow),
        ],
        dim=-1,
    )
    potential = (potential / 5.0).clamp(-2.0, 1.0)

    changes = route_attr(road.route.changes, road, m, lane, dest)
    remaining = route_attr(road.route.deadline, road, m, lane, dest) - v.s[:, :c]
    cost = route_attr(road.route.cost, road, m, lane, dest) - v.s[:, :c]

    def on_route(which):
        ch = route_attr(road.route.changes, road, m, which, dest)
        reach = route_attr(road.route.cost, road, m, which, dest) < 5.0e8
        return ((ch == 0) & reach & (which >= 0)).float()

    route = torch.stack(
        [
            changes.float() / 3.0,
            (remaining / 1000.0).clamp(-1.0, 2.0),
            on_route(lane),
            on_route(left.squeeze(-1)),
            on_route(right.squeeze(-1)),
            (cost / 2000.0).clamp(0.0, 2.0),
            lane_attr(road.lane_section_lanes, road, m, lane).float() / 6.0,
            (state.decisions.float() / cfg.decisions_per_episode).unsqueeze(-1).expand(-1, c),
        ],
        dim=-1,
    )
    layout = ObservationLayout.of(cfg)
    extra = {"junction": junction_block(state, road, sur, c)} if layout.junction is not None else {}
    obs = layout.assemble(
        ego=ego, neighbours=neighbours, lanes=lanes, potential=potential, traffic=traffic, route=route, **extra
    )
    return obs * state.active.unsqueeze(-1)


def _exit_origin_x(road: RoadMap, map_id: torch.Tensor) -> torch.Tensor:
    """World x `[W]` of the start of each map's first goal lane (exit-v0: the exit lane, from x = 400 m), which
    ExitObservation measures the ego's x from."""
    key = torch.where(road.lane_goal, road.lane_road_s0, 1.0e9)  # [M, L]
    first = key.argmin(dim=1)[map_id]  # [W]
    return road.lane_xy[map_id, first, 0, 0]


def highway_kinematics(state: WorldState, road: RoadMap, cfg: SimConfig) -> torch.Tensor:
    """highway-kinematics `[W, C, V, 5]` or, for `ObservationType.HIGHWAY_EXIT`, exit-v0's ExitObservation
    `[W, C, V, 7]`: the same rows with `cos_h, sin_h` (absolute, highway-env's frame) after `vy`, unclipped,
    the ego's x measured from the start of the exit lane (`_exit_origin_x`), vehicles only."""
    layout = KinematicsLayout.of(cfg)
    exit_obs = cfg.observation is ObservationType.HIGHWAY_EXIT
    v = state.vehicles
    m = state.map_id
    c, rows = cfg.controlled, layout.rows
    n = v.s.shape[1]
    xy, yaw = vehicle_pose(road, m, v.lane, v.s, v.d, v.psi)
    # highway-env frame: x along the road, y to its right.
    hx, hy = xy[..., 0], -xy[..., 1]
    hvx, hvy = v.speed * torch.cos(yaw), -v.speed * torch.sin(yaw)
    ex, ey, evx, evy = (t[:, :c].unsqueeze(-1) for t in (hx, hy, hvx, hvy))
    dx, dy = hx.unsqueeze(1) - ex, hy.unsqueeze(1) - ey  # [W, C, N]
    dist = torch.sqrt(dx * dx + dy * dy)
    _, lane_yaw, _ = lane_point(road, m, v.lane[:, :c], v.s[:, :c])
    # Longitudinal distance along the ego's lane (highway-env's lane_distance_to); world frame direction.
    along = dx * torch.cos(lane_yaw).unsqueeze(-1) - dy * torch.sin(lane_yaw).unsqueeze(-1)
    self_mask = torch.eye(c, n, dtype=torch.bool, device=v.s.device).unsqueeze(0)
    ego_length = v.length[:, :c].unsqueeze(-1)
    valid = v.present.unsqueeze(1) & ~self_mask & (dist < 5.0 * HIGHWAY_ENV_MAX_SPEED) & (along > -2.0 * ego_length)
    if exit_obs:
        # close_vehicles_to: vehicles only, not standing objects (none stand on exit-v0's road).
        valid = valid & (v.target_speed > 0.0).unsqueeze(1)
    k = min(rows - 1, n - 1)
    key = torch.where(valid, along.abs(), 1.0e9)
    # Stable ascending sort, as Python's sorted() in highway-env.
    sorted_key, order = torch.sort(key, dim=-1, stable=True)
    near, near_ok = order[..., :k], sorted_key[..., :k] < 1.0e8

    def pick(x):
        return x.gather(2, near)

    columns = [
        near_ok.float(),
        pick(dx),
        pick(dy),
        pick(hvx.unsqueeze(1).expand_as(dx)) - evx,
        pick(hvy.unsqueeze(1).expand_as(dx)) - evy,
    ]
    ego_x = ex - _exit_origin_x(road, m).view(-1, 1, 1) if exit_obs else ex
    ego_columns = [torch.ones_like(ex), ego_x, ey, evx, evy]
    if exit_obs:
        cos_h, sin_h = torch.cos(yaw), -torch.sin(yaw)
        columns += [pick(cos_h.unsqueeze(1).expand_as(dx)), pick(sin_h.unsqueeze(1).expand_as(dx))]
        ego_columns += [cos_h[:, :c].unsqueeze(-1), sin_h[:, :c].unsqueeze(-1)]
    others = torch.stack(columns, dim=-1)
    ego = torch.stack(ego_columns, dim=-1)
    table = torch.cat([ego, others], dim=2)  # [W, C, 1 + k, F]
    if cfg.kinematics_lanes is not None:
        lanes = torch.full_like(ex.squeeze(-1), float(cfg.kinematics_lanes))
    else:
        lanes = lane_attr(road.lane_section_lanes, road, m, v.lane[:, :c]).float()
    y_range = (HIGHWAY_ENV_LANE_WIDTH * lanes).unsqueeze(-1)
    x_range = 5.0 * HIGHWAY_ENV_MAX_SPEED
    v_range = 2.0 * HIGHWAY_ENV_MAX_SPEED
    scaled = [
        table[..., 0],
        table[..., 1] / x_range,
        table[..., 2] / y_range,
        table[..., 3] / v_range,
        table[..., 4] / v_range,
    ]
    scaled = torch.stack(scaled + [table[..., i] for i in range(5, table.shape[-1])], dim=-1)
    if not exit_obs:
        scaled = scaled.clamp(-1.0, 1.0)
    present = torch.cat([torch.ones_like(near_ok[..., :1]), near_ok], dim=-1)
    scaled = scaled * present.unsqueeze(-1)
    if 1 + k < rows:
        scaled = torch.nn.functional.pad(scaled, (0, 0, 0, rows - 1 - k))
    return scaled * state.active[..., None, None]
