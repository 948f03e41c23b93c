"""Junctions: incoming and outgoing arm lanes joined by connector lanes, with the table of which connectors
cross or merge and where. The city grid builds on this; the T-junction here is its smallest case.

Right-hand traffic. Connector centre lines are quadratic Bezier curves from the end of an incoming lane to
the start of an outgoing lane, with the control point where the two lanes' lines meet (straight through:
a straight segment).
"""

from __future__ import annotations

import numpy as np

from fuyao.roads.lanegraph import LaneGraphBuilder, MapError, RoadMap


def _bezier(p0, p1, p2, n: int = 40) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)


COMFORT_LAT_ACCEL = 2.0  # m/s^2, sets the speed limit of turning connectors from their tightest curvature


def _comfortable_speed(pts: np.ndarray) -> float:
    seg = np.diff(pts, axis=0)
    yaw = np.unwrap(np.arctan2(seg[:, 1], seg[:, 0]))
    kappa = np.abs(np.diff(yaw)) / np.linalg.norm(seg[:-1], axis=1)
    return float(np.sqrt(COMFORT_LAT_ACCEL / max(kappa.max(), 1e-6)))


def build_t_junction(
    arm_length_m: float = 120.0,
    lane_width_m: float = 3.5,
    junction_half_m: float = 12.0,
    speed_limit: float = 14.0,
    turn_speed_limit: float = 8.0,
    spacing: float = 1.0,
) -> RoadMap:
    """A T-junction: a west-east road with one lane each way, and a side road from the south.

    Destinations: 0 = leave to the west, 1 = leave to the east, 2 = leave to the south.
    Lane names: `in_w, in_e, in_s` (incoming), `out_w, out_e, out_s` (outgoing), `w_e, w_s, e_w, e_s, s_e, s_w`
    (connectors, from-to).
    """
    if arm_length_m <= junction_half_m:
        raise MapError(f"T-junction arm_length_m: got {arm_length_m}; allowed: > junction_half_m = {junction_half_m}")
    h, r, big = lane_width_m / 2, junction_half_m, arm_length_m
    b = LaneGraphBuilder(spacing=spacing, name="t-junction")

    def lane(a, z, **kw):
        return b.add_lane(np.array([a, z], dtype=float), lane_width_m, speed_limit, **kw)

    ids = {
        "in_w": lane((-big, -h), (-r, -h), name="in_w"),
        "out_w": lane((-r, h), (-big, h), name="out_w", exit_group=0),
        "in_e": lane((big, h), (r, h), name="in_e"),
        "out_e": lane((r, -h), (big, -h), name="out_e", exit_group=1),
        "in_s": lane((h, -big), (h, -r), name="in_s"),
        "out_s": lane((-h, -r), (-h, -big), name="out_s", exit_group=2),
    }
    connectors = {
        "w_e": ("in_w", "out_e", None),
        "w_s": ("in_w", "out_s", (-h, -h)),
        "e_w": ("in_e", "out_w", None),
        "e_s": ("in_e", "out_s", (-h, h)),
        "s_e": ("in_s", "out_e", (h, -h)),
        "s_w": ("in_s", "out_w", (h, h)),
    }
    for name, (src, dst, control) in connectors.items():
        p0 = b.lanes[ids[src]].centre[-1]
        p2 = b.lanes[ids[dst]].centre[0]
        pts = np.array([p0, p2]) if control is None else _bezier(p0, control, p2)
        limit = speed_limit if control is None else min(turn_speed_limit, _comfortable_speed(pts))
        ids[name] = b.add_lane(pts, lane_width_m, limit, kind="connector", name=name)
        b.connect(ids[src], ids[name])
        b.connect(ids[name], ids[dst])
    b.add_conflicts_by_geometry([ids[k] for k in connectors], threshold=lane_width_m * 0.75)
    road = b.build(spawn_window=(0.0, 1.0e9))
    return road


def lane_ids(road: RoadMap) -> dict[str, int]:
    """Not stored in the tensors: rebuild the name -> id table of `build_t_junction`'s layout."""
    order = ["in_w", "out_w", "in_e", "out_e", "in_s", "out_s", "w_e", "w_s", "e_w", "e_s", "s_e", "s_w"]
    return {name: i for i, name in enumerate(order)}
