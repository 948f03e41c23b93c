"""Oriented-box collisions between nearby pairs (separating axis test on the candidates the neighbour sort
gives: the leader in the own lane and the leaders and followers in both adjacent lanes)."""

from __future__ import annotations

import torch


def boxes_overlap(xy_a, yaw_a, len_a, wid_a, xy_b, yaw_b, len_b, wid_b) -> torch.Tensor:
    """Whether oriented boxes overlap, elementwise over any batch shape (`xy [..., 2]`, the rest `[...]`)."""
    return boxes_overlap_cs(
        xy_a, torch.cos(yaw_a), torch.sin(yaw_a), len_a, wid_a, xy_b, torch.cos(yaw_b), torch.sin(yaw_b), len_b, wid_b
    )


def boxes_overlap_cs(xy_a, ca, sa, len_a, wid_a, xy_b, cb, sb, len_b, wid_b) -> torch.Tensor:
    """`boxes_overlap` with headings given as cosine and sine (computed once per vehicle, not per pair)."""
    dx = xy_b[..., 0] - xy_a[..., 0]
    dy = xy_b[..., 1] - xy_a[..., 1]
    hla, hwa, hlb, hwb = 0.5 * len_a, 0.5 * wid_a, 0.5 * len_b, 0.5 * wid_b
    # Separating axes: both boxes' length and width directions. |cos| and |sin| of the relative heading give
    # each box's extent along the other's axes.
    c_rel = (ca * cb + sa * sb).abs()
    s_rel = (sa * cb - ca * sb).abs()
    sep_a_len = (dx * ca + dy * sa).abs() > hla + hlb * c_rel + hwb * s_rel
    sep_a_wid = (-dx * sa + dy * ca).abs() > hwa + hlb * s_rel + hwb * c_rel
    sep_b_len = (dx * cb + dy * sb).abs() > hlb + hla * c_rel + hwa * s_rel
    sep_b_wid = (-dx * sb + dy * cb).abs() > hwb + hla * s_rel + hwa * c_rel
    return ~(sep_a_len | sep_a_wid | sep_b_len | sep_b_wid)


def collisions(xy, yaw, length, width, present, candidates: torch.Tensor) -> torch.Tensor:
    """Which vehicles touch another present vehicle. `xy [W, N, 2]`, others `[W, N]`, `candidates [W, N, K]`
    slot ids (-1 none). Returns `[W, N]` bool, symmetric (if i hits j, both are flagged)."""
    w, n, k = candidates.shape
    ok = (candidates >= 0) & present.unsqueeze(-1)
    flat = candidates.clamp(min=0).view(w, n * k)
    cos_yaw, sin_yaw = torch.cos(yaw), torch.sin(yaw)

    def other(x):
        return x.gather(1, flat).view(w, n, k)

    other_xy = torch.stack([other(xy[..., 0]), other(xy[..., 1])], dim=-1)
    hit = (
        boxes_overlap_cs(
            xy.unsqueeze(2),
            cos_yaw.unsqueeze(2),
            sin_yaw.unsqueeze(2),
            length.unsqueeze(2),
            width.unsqueeze(2),
            other_xy,
            other(cos_yaw),
            other(sin_yaw),
            other(length),
            other(width),
        )
        & ok
        & other(present)
    )
    mine = hit.any(dim=2)
    theirs = torch.zeros(w, n, dtype=torch.int32, device=xy.device).scatter_add_(1, flat, hit.view(w, n * k).int())
    return mine | (theirs > 0)
