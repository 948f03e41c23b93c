"""Tensors the step needs that come from the config, built once where the world is built.

A tensor made from Python values (`torch.tensor(cfg.target_speeds, device=...)`) is a host-to-device copy on
CUDA each time it is built; built per decision, it stalls the stream and cannot enter a CUDA graph. `World`
builds one `SimConstants` and passes it into the pure step functions, which take it as an argument like the
map bank. Functions called without one (tests, one-off callers) build their own: the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fuyao.roads.lanegraph import RoadMap
from fuyao.sim.config import ObservationType, SimConfig
from fuyao.sim.lane_tiles import LaneTiles, build_lane_tiles

# Observations that look lane points up by tile (`fuyao.sim.observe_grid`).
TILED_OBSERVATIONS = (ObservationType.HIGHWAY_OCCUPANCY, ObservationType.RASTER)


@dataclass(frozen=True)
class SimConstants:
    """Config values as device tensors (read-only; every world shares them)."""

    target_speeds: torch.Tensor  # [S] float32 m/s, the meta actions' cruise set-points, increasing
    lookahead_m: torch.Tensor  # [K] float32 m, where the observation samples the lane geometry ahead
    lane_tiles: LaneTiles | None = None  # the map bank's lane points by tile, for the grid observations

    @staticmethod
    def build(cfg: SimConfig, device: torch.device | str, road: RoadMap | None = None) -> SimConstants:
        """`road`: the world's map bank, indexed by tile when the observation needs it."""
        tiles = None
        if road is not None and cfg.observation in TILED_OBSERVATIONS:
            stride = cfg.raster.segment_points if cfg.observation is ObservationType.RASTER else 1
            tiles = build_lane_tiles(road, stride=stride).to(device)
        return SimConstants(
            target_speeds=torch.tensor(cfg.target_speeds, device=device),
            lookahead_m=torch.tensor(cfg.lookahead_m, device=device),
            lane_tiles=tiles,
        )


def constants_or_build(consts: SimConstants | None, cfg: SimConfig, device: torch.device) -> SimConstants:
    """`consts`, or (called without, outside `World`) the same constants built now."""
    return consts if consts is not None else SimConstants.build(cfg, device)
