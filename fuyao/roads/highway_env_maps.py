"""highway-env's fixed scenario roads, lane for lane (highway-env 1.12: `envs/merge_env.py`, `envs/exit_env.py`).

Frames: highway-env's x runs along the road and its y to the road's right (screen coordinates); Fuyao's y points
left, so every highway-env point (x, y) is the Fuyao point (x, -y), and highway-env's lane i of a straight road
(y = 4 i) is Fuyao's world line y = -4 i. Lanes of a road section are ordered left (index 0) to right, as
highway-env numbers them, so `RoadMap.lane_from_left` is highway-env's `lane_index[2]`.

merge-v0 (MergeEnv._make_road), x in metres:
    a-b  [0, 230)    2 lanes (y 0, 4)
    b-c  [230, 310)  the 2 lanes and the acceleration lane (y 8), which the ego may not enter (`forbidden`)
                     and whose end holds a stopped obstacle (placed by the reset: `fuyao.sim.highway_env_reset`)
    c-d  [310, 460)  2 lanes; the ego's episode ends once it is past x = 370 (`finish` lanes from there)
    j-k  [0, 150)    the merging lane (y 14.5), then k-b [150, 230): a sine from y 14.5 to y 8 (amplitude
                     3.25 m, half a period over 80 m) as a polyline, into the acceleration lane
    Every lane's speed limit is highway-env's default, 20 m/s.
exit-v0 (ExitEnv._create_road):
    0-1  [0, 400)     6 lanes
    1-2  [400, 500)   7 lanes: the seventh (y 24) is the exit lane (a goal lane)
    2-3  [500, 1000)  6 lanes
    2-exit            a quarter circle of radius 150 m turning right from (500, 24), centre (500, 174) (a goal lane)
    Lane i's speed limit is 26 - 3.4 i m/s (the exit lane's 5.6 m/s); the circle's is highway-env's default 20.
"""

from __future__ import annotations

import numpy as np

from fuyao.roads.lanegraph import LaneGraphBuilder, RoadMap

LANE_WIDTH_M = 4.0  # highway-env's AbstractLane.DEFAULT_WIDTH
DEFAULT_SPEED_LIMIT = 20.0  # m/s, highway-env's StraightLane / SineLane / CircularLane default
POINT_SPACING_M = 2.0
SINE_STEP_M = 0.25  # m between the points of the sine and the circle before resampling

# merge-v0 (MergeEnv._make_road: ends = [150, 80, 80, 150], amplitude 3.25)
MERGE_ENDS_M = (150.0, 80.0, 80.0, 150.0)  # before, converging, merge, after
MERGE_AMPLITUDE_M = 3.25
MERGE_RAMP_Y_M = 6.5 + 4.0 + 4.0  # highway-env y of the merging lane j-k
MERGE_FINISH_X_M = 370.0  # MergeEnv._is_terminated: the ego's x past this ends the episode

# exit-v0 (ExitEnv._create_road defaults)
EXIT_LANES = 6
EXIT_ROAD_M = 1000.0
EXIT_POSITION_M = 400.0
EXIT_LENGTH_M = 100.0
EXIT_RADIUS_M = 150.0


# Lane ids in the order the builders add them, by highway-env lane index (from, to, id); `cd` is split at
# x = 370 m into `cd` and `cd+` (the finish lanes). Checked against the built lanes' names.
MERGE_LANE_IDS = {
    "ab0": 0, "ab1": 1, "bc0": 2, "bc1": 3, "bc2": 4, "cd0": 5, "cd1": 6, "cd+0": 7, "cd+1": 8, "jk": 9, "kb": 10,
}  # fmt: skip
EXIT_LANE_IDS = {
    **{f"01{i}": i for i in range(EXIT_LANES)},
    **{f"12{i}": EXIT_LANES + i for i in range(EXIT_LANES + 1)},
    **{f"23{i}": 2 * EXIT_LANES + 1 + i for i in range(EXIT_LANES)},
    "exit": 3 * EXIT_LANES + 1,
}


def _check_ids(b: LaneGraphBuilder, ids: dict[str, int]) -> None:
    names = {lane.name: i for i, lane in enumerate(b.lanes)}
    if names != ids:
        raise AssertionError(f"{b.name}: lane ids {names} differ from the module's table {ids}")


def exit_speed_limit(lane_id: int) -> float:
    """ExitEnv's speed limit of lane `lane_id` (0 = leftmost), m/s."""
    return 26.0 - 3.4 * lane_id


def _straight(x0: float, x1: float, hy: float) -> np.ndarray:
    """A straight lane from highway-env (x0, hy) to (x1, hy), in Fuyao's frame."""
    return np.array([[x0, -hy], [x1, -hy]])


def build_merge_v0() -> RoadMap:
    """highway-env's merge-v0 road (see the module docstring). Destination 0: the end of the road."""
    before, converge, merge, after = MERGE_ENDS_M
    x_b, x_c, x_d = before + converge, before + converge + merge, before + converge + merge + after
    w, limit = LANE_WIDTH_M, DEFAULT_SPEED_LIMIT
    b = LaneGraphBuilder(spacing=POINT_SPACING_M, name="merge-v0")
    sections = [(0.0, x_b, "ab"), (x_b, x_c, "bc"), (x_c, MERGE_FINISH_X_M, "cd"), (MERGE_FINISH_X_M, x_d, "cd+")]
    prev: list[int] = []
    for x0, x1, name in sections:
        finish = x0 >= MERGE_FINISH_X_M
        lanes = [
            b.add_lane(_straight(x0, x1, i * w), w, limit, road_s0=x0, name=f"{name}{i}", finish=finish)
            for i in range(2)
        ]
        b.neighbours(lanes[0], lanes[1])
        for a, c in zip(prev, lanes, strict=False):
            b.connect(a, c)
        if name == "bc":
            # The acceleration lane: `forbidden` in highway-env, so the ego may not change into it; merging cars
            # leave it to the left. It ends at an obstacle (no successor).
            acc = b.add_lane(_straight(x0, x1, 2 * w), w, limit, kind="ramp", road_s0=x0, name="bc2")
            b.neighbours(lanes[1], acc, to_right_ok=False, to_left_ok=True)
        prev = lanes
    for lane in prev:
        b.lanes[lane].exit_group = 0
    ramp = b.add_lane(_straight(0.0, before, MERGE_RAMP_Y_M), w, limit, kind="ramp", name="jk")
    # SineLane(start, end, amplitude, pulsation 2 pi / (2 converge), phase pi / 2) about the line y = 14.5 - 3.25:
    # lateral offset amplitude sin(pulsation s + phase), s the distance along that line.
    s = np.arange(0.0, converge + 1e-9, SINE_STEP_M)
    hy = MERGE_RAMP_Y_M - MERGE_AMPLITUDE_M + MERGE_AMPLITUDE_M * np.sin(np.pi / converge * s + np.pi / 2)
    sine = b.add_lane(np.stack([before + s, -hy], axis=1), w, limit, kind="ramp", road_s0=before, name="kb")
    b.connect(ramp, sine)
    b.connect(sine, acc)
    _check_ids(b, MERGE_LANE_IDS)
    return b.build()


def build_exit_v0() -> RoadMap:
    """highway-env's exit-v0 road (see the module docstring). Destination 0: leaving the map by either end (the
    exit does not end an episode in highway-env, and missing it is no failure)."""
    w = LANE_WIDTH_M
    b = LaneGraphBuilder(spacing=POINT_SPACING_M, name="exit-v0")
    x1, x2 = EXIT_POSITION_M, EXIT_POSITION_M + EXIT_LENGTH_M
    sections = [(0.0, x1, EXIT_LANES, "01"), (x1, x2, EXIT_LANES + 1, "12"), (x2, EXIT_ROAD_M, EXIT_LANES, "23")]
    prev: list[int] = []
    exit_lane = -1
    for x0, x_end, count, name in sections:
        lanes = []
        for i in range(count):
            is_exit = i == EXIT_LANES
            lane = b.add_lane(
                _straight(x0, x_end, i * w),
                w,
                exit_speed_limit(i),
                kind="ramp" if is_exit else "road",
                road_s0=x0,
                name=f"{name}{i}",
                goal=is_exit,
            )
            lanes.append(lane)
        for i in range(count - 1):
            b.neighbours(lanes[i], lanes[i + 1])
        for a, c in zip(prev, lanes, strict=False):
            b.connect(a, c)  # highway-env's next lane: the same index where it exists
        if count > EXIT_LANES:
            exit_lane = lanes[EXIT_LANES]
        prev = lanes
    for lane in prev:
        b.lanes[lane].exit_group = 0
    # CircularLane(centre (x2, 6 w + radius), radius, phase 3 pi / 2 -> 2 pi), clockwise in Fuyao's frame.
    phase = np.arange(1.5 * np.pi, 2.0 * np.pi + 1e-9, SINE_STEP_M / EXIT_RADIUS_M)
    phase[-1] = 2.0 * np.pi
    cx, cy = x2, EXIT_LANES * w + EXIT_RADIUS_M
    arc = np.stack([cx + EXIT_RADIUS_M * np.cos(phase), -(cy + EXIT_RADIUS_M * np.sin(phase))], axis=1)
    ramp = b.add_lane(arc, w, DEFAULT_SPEED_LIMIT, kind="ramp", road_s0=x2, name="exit", goal=True, exit_group=0)
    b.connect(exit_lane, ramp)
    _check_ids(b, EXIT_LANE_IDS)
    return b.build()
