"""Oriented-box collisions between nearby pairs (separating axis test on the candidates the neighbour sort
gives: the leader in the own lane and the leaders and followers in both adjacent lanes)."""

from __future__ import annotations

import torch


def boxes_overlap(xy_a, yaw_a, len_a, wid_a, xy_b, yaw_b, len_b, wid_b) -> torch.Tensor:
    """Whether oriented boxes overlap, elementwise over any batch shape (`xy [..., 2]`, the rest `[...]`)."""
    ca, sa = torch.cos(yaw_a), torch.sin(yaw_a)
    cb, sb = torch.cos(yaw_b), torch.sin(yaw_b)
    dx = xy_b[..., 0] - xy_a[..., 0]
    dy = xy_b[..., 1] - xy_a[..., 1]
    hla, hwa, hlb, hwb = 0.5 * len_a, 0.5 * wid_a, 0.5 * len_b, 0.5 * wid_b
    separated = torch.zeros_like(dx, dtype=torch.bool)
    for ux, uy in ((ca, sa), (-sa, ca), (cb, sb), (-sb, cb)):
        ra = hla * (ca * ux + sa * uy).abs() + hwa * (-sa * ux + ca * uy).abs()
        rb = hlb * (cb * ux + sb * uy).abs() + hwb * (-sb * ux + cb * uy).abs()
        separated = separated | ((dx * ux + dy * uy).abs() > ra + rb)
    return ~separated


def collisions(xy, yaw, length, width, present, candidates: torch.Tensor) -> torch.Tensor:
    """Which vehicles touch another present vehicle. `xy [W, N, 2]`, others `[W, N]`, `candidates [W, N, K]`
    slot ids (-1 none). Returns `[W, N]` bool, symmetric (if i hits j, both are flagged)."""
    w, n, k = candidates.shape
    ok = (candidates >= 0) & present.unsqueeze(-1)
    safe = candidates.clamp(min=0)
    flat = safe.view(w, n * k)
    other_xy = xy.gather(1, flat.unsqueeze(-1).expand(-1, -1, 2)).view(w, n, k, 2)
    other_yaw = yaw.gather(1, flat).view(w, n, k)
    other_len = length.gather(1, flat).view(w, n, k)
    other_wid = width.gather(1, flat).view(w, n, k)
    other_present = present.gather(1, flat).view(w, n, k)
    hit = (
        boxes_overlap(
            xy.unsqueeze(2),
            yaw.unsqueeze(2),
            length.unsqueeze(2),
            width.unsqueeze(2),
            other_xy,
            other_yaw,
            other_len,
            other_wid,
        )
        & ok
        & other_present
    )
    mine = hit.any(dim=2)
    theirs = torch.zeros(w, n, dtype=torch.int32, device=xy.device).scatter_add_(1, flat, hit.view(w, n * k).int())
    return mine | (theirs > 0)
