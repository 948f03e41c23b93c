"""A spatial index of the map bank's lane centre-line points, so that the grid observations find the lane points
near a vehicle with a gather instead of testing every point of the map.

Each map is cut into square tiles of `tile_m`; a tile lists the points (every `stride`-th of each lane, as
`lane * P + point`, local to its map) that lie in it, padded with -1 to the fullest tile's count. Built once on the host (numpy) when the world is
built; a query is fixed-shape: the `n x n` tiles around a point, `n = ceil(2 radius / tile_m) + 1`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from fuyao.roads.lanegraph import RoadMap

TILE_M = 32.0  # m, the tile side: a query of radius 40-45 m gathers 4 x 4 tiles


@dataclass(frozen=True)
class LaneTiles:
    """Tiles of lane points per map. Shapes for `M` maps, `G = gx * gy` tiles each, `K` slots per tile."""

    points: torch.Tensor  # [M * G + 1, K] int32, `lane * P + point` local to the map, -1 empty; last row empty
    origin: torch.Tensor  # [M, 2] float32 m, world x, y of each map's tile (0, 0) corner
    tile_m: float  # m
    gx: int  # tiles along x per map
    gy: int  # tiles along y per map
    max_spacing_m: float  # m, the widest spacing between consecutive points of any lane (static window sizes)
    max_width_m: float  # m, the widest lane
    stride: int = 1  # every `stride`-th point of each lane is indexed

    def to(self, device: torch.device | str) -> LaneTiles:
        return dataclasses.replace(self, points=self.points.to(device), origin=self.origin.to(device))

    def span(self, radius_m: float) -> int:
        """Tiles per axis a query of `radius_m` gathers."""
        return int(math.ceil(2.0 * radius_m / self.tile_m)) + 1


def point_counts(road: RoadMap) -> torch.Tensor:
    """Centre-line points each lane really has (the rest of `P` repeats its last point): `[M, L]` int64, 0 for
    padding lanes."""
    n = (road.lane_length / road.lane_ds).round().long() + 1
    return torch.where(road.lane_valid, n.clamp(max=road.lane_xy.shape[2]), 0)


def build_lane_tiles(road: RoadMap, tile_m: float = TILE_M, stride: int = 1) -> LaneTiles:
    """Bucket every `stride`-th real centre-line point of every map (from each lane's first) into tiles of
    `tile_m` metres. Host side, once."""
    xy = road.lane_xy.detach().cpu().double().numpy()  # [M, L, P, 2]
    m_maps, n_lanes, n_points, _ = xy.shape
    counts = point_counts(road).cpu().numpy()
    real = np.arange(n_points)[None, None, :] < counts[..., None]  # [M, L, P]
    big = np.where(real[..., None], xy, np.nan)
    real &= (np.arange(n_points) % stride == 0)[None, None, :]
    lo = np.nanmin(big.reshape(m_maps, -1, 2), axis=1) - 1.0  # [M, 2]
    hi = np.nanmax(big.reshape(m_maps, -1, 2), axis=1) + 1.0
    gx, gy = (int(v) for v in np.ceil((hi - lo).max(axis=0) / tile_m))
    mi, li, pi = np.nonzero(real)
    t = np.floor((xy[mi, li, pi] - lo[mi]) / tile_m).astype(np.int64)  # [Q, 2]
    key = mi * (gx * gy) + t[:, 0] * gy + t[:, 1]
    order = np.argsort(key, kind="stable")
    key, ids = key[order], (li * n_points + pi)[order]
    per_tile = np.bincount(key, minlength=m_maps * gx * gy)
    start = np.concatenate([[0], np.cumsum(per_tile)[:-1]])
    rank = np.arange(len(key)) - start[key]
    table = -np.ones((m_maps * gx * gy + 1, max(1, int(per_tile.max()))), dtype=np.int32)
    table[key, rank] = ids
    return LaneTiles(
        points=torch.from_numpy(table).to(road.device),
        origin=torch.from_numpy(lo.astype(np.float32)).to(road.device),
        tile_m=float(tile_m),
        gx=gx,
        gy=gy,
        max_spacing_m=float(road.lane_ds[road.lane_valid].max()),
        max_width_m=float(road.lane_width[road.lane_valid].max()),
        stride=stride,
    )


def nearby_points(
    tiles: LaneTiles, map_id: torch.Tensor, x: torch.Tensor, y: torch.Tensor, radius_m: float
) -> torch.Tensor:
    """Lane points in the tiles that cover the square of half side `radius_m` around `(x, y)` `[W, ...]` m (a
    superset of the points within `radius_m`). Returns `[W, ..., n * n * K]` int64 `lane * P + point` local to
    the map, -1 for empty slots; `n = tiles.span(radius_m)`."""
    n = tiles.span(radius_m)
    offsets = torch.arange(n, device=x.device)
    view = (-1, *([1] * (x.dim() - 1)))
    org = tiles.origin[map_id]  # [W, 2]
    tx0 = torch.floor((x - radius_m - org[:, 0].view(view)) / tiles.tile_m).long()
    ty0 = torch.floor((y - radius_m - org[:, 1].view(view)) / tiles.tile_m).long()
    tx = tx0.unsqueeze(-1).unsqueeze(-1) + offsets.view(n, 1)  # [W, ..., n, 1]
    ty = ty0.unsqueeze(-1).unsqueeze(-1) + offsets.view(1, n)  # [W, ..., 1, n]
    inside = (tx >= 0) & (tx < tiles.gx) & (ty >= 0) & (ty < tiles.gy)
    base = (map_id.long() * (tiles.gx * tiles.gy)).view(*view, 1, 1)
    empty = tiles.points.shape[0] - 1
    row = torch.where(inside, base + tx * tiles.gy + ty, empty)  # [W, ..., n, n]
    return tiles.points[row.flatten(-2)].flatten(-2).long()
