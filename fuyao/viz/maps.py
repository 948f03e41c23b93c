"""Static drawings of map banks (a plot, drawn once: matplotlib is fine here)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fuyao.roads.lanegraph import RoadMap

KIND_COLOURS = {0: "#555555", 1: "#c47f00", 2: "#2a7fd4"}  # road, ramp, connector


def draw_map_bank(road: RoadMap, path: str | Path, max_maps: int = 8) -> Path:
    """Draw up to `max_maps` maps of a bank side by side: lane centre lines coloured by kind, destinations
    marked. Returns the written path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = min(road.num_maps, max_maps)
    cols = min(count, 2)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 3.5 * rows), squeeze=False)
    xy = road.lane_xy.cpu().numpy()
    ds = road.lane_ds.cpu().numpy()
    length = road.lane_length.cpu().numpy()
    valid = road.lane_valid.cpu().numpy()
    kind = road.lane_kind.cpu().numpy()
    exit_group = road.lane_exit_group.cpu().numpy()
    for m in range(count):
        ax = axes[m // cols][m % cols]
        for lane in np.nonzero(valid[m])[0]:
            n = int(round(length[m, lane] / ds[m, lane])) + 1
            pts = xy[m, lane, :n]
            ax.plot(pts[:, 0], pts[:, 1], color=KIND_COLOURS[int(kind[m, lane])], lw=1.0)
            if exit_group[m, lane] >= 0:
                ax.plot(pts[-1, 0], pts[-1, 1], "o", color="#1a9641", ms=3)
        name = road.names[m] if m < len(road.names) else f"map {m}"
        ax.set_title(name, fontsize=9)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    for k in range(count, rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
