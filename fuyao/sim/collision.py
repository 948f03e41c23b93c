"""Oriented-box collisions between nearby pairs (separating axis test on the candidates the neighbour sort
gives: the leader in the own lane and the leaders and followers in both adjacent lanes)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def boxes_overlap(xy_a, yaw_a, len_a, wid_a, xy_b, yaw_b, len_b, wid_b) -> torch.Tensor:
    """Whether oriented boxes overlap, elementwise over any batch shape (`xy [..., 2]`, the rest `[...]`)."""
    return boxes_overlap_cs(
        xy_b[..., 0] - xy_a[..., 0],
        xy_b[..., 1] - xy_a[..., 1],
        torch.cos(yaw_a),
        torch.sin(yaw_a),
        len_a,
        wid_a,
        torch.cos(yaw_b),
        torch.sin(yaw_b),
        len_b,
        wid_b,
    )


def boxes_overlap_cs(dx, dy, ca, sa, len_a, wid_a, cb, sb, len_b, wid_b) -> torch.Tensor:
    """`boxes_overlap` from the centre offset `(dx, dy)` of box b from box a and the headings as cosine and sine
    (computed once per vehicle, not per pair). Separate x and y tensors, no trailing dimension of 2, so compiled
    CPU kernels vectorise over vehicles."""
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


def collisions(x, y, yaw, length, width, present, candidates: Sequence[torch.Tensor]) -> torch.Tensor:
    """Which vehicles touch another present vehicle. `x, y, yaw, length, width, present [W, N]`; `candidates`:
    `[W, N]` slot ids (-1 none), one tensor per candidate kind (the leader, the side leaders and followers, ...),
    each checked in turn so every operation stays `[W, N]`. Returns `[W, N]` bool, symmetric (if i hits j,
    both are flagged)."""
    cos_yaw, sin_yaw = torch.cos(yaw), torch.sin(yaw)
    mine = torch.zeros_like(present)
    theirs = torch.zeros(present.shape, dtype=torch.int32, device=present.device)
    for slot in candidates:
        safe = slot.clamp(min=0)

        def other(t, safe=safe):
            return t.gather(1, safe)

        hit = (
            boxes_overlap_cs(
                other(x) - x,
                other(y) - y,
                cos_yaw,
                sin_yaw,
                length,
                width,
                other(cos_yaw),
                other(sin_yaw),
                other(length),
                other(width),
            )
            & (slot >= 0)
            & present
            & other(present)
        )
        mine = mine | hit
        theirs = theirs.scatter_add(1, safe, hit.int())
    return mine | (theirs > 0)


STOPPED_SPEED = 0.05  # m/s: an ego slower than this is stopped and never at fault (nuPlan's stopped_speed_threshold)


def at_fault_collisions(
    x, y, yaw, length, width, present, new_hit, speed, lateral_d, psi, lane_width, neighbours: torch.Tensor
) -> torch.Tensor:
    """Which of the first `C` vehicles caused a collision that began this tick, `[W, C]` bool.

    In the manner of nuPlan's `no_ego_at_fault_collisions`: every neighbour the ego's box touches is classified
    by where it is in the ego's frame, in units of the two boxes' half sizes: *front* (more ahead than to the
    side), *rear* (more behind than to the side) or *lateral*. The ego is at fault if it was moving (speed
    above `STOPPED_SPEED`) and it hit something in front (rear-ending a leader, moving or stopped), or it hit
    something at its side while its box straddled a lane boundary (changing lanes). Being rear-ended, or
    side-swiped while keeping its lane, is not the ego's fault.

    `neighbours [W, C, K]` slot ids (-1 none): the vehicles each ego can touch, its leader and follower in its
    own lane and both neighbour lanes (and junction conflicts), the candidates `collisions` checks and the
    follower. Judging only those keeps the cost at `[W, C, K]`; every vehicle (`[W, C, N]`) was most of a
    self-play tick, where every vehicle is an ego.

    `x, y [W, N]` m, `yaw [W, N]` rad (world frame); `length, width [W, N]` m; `present, new_hit [W, N]` bool
    (a collision that began this tick); `speed [W, N]` m/s; `lateral_d, psi [W, N]` m and rad in the lane
    frame; `lane_width [W, N]` m of each vehicle's lane.
    """
    w, c, k = neighbours.shape
    safe = neighbours.clamp(min=0).view(w, c * k)

    def other(t):  # [W, N] -> [W, C, K], each ego's neighbours
        return t.gather(1, safe).view(w, c, k)

    def ego(t):  # [W, N] -> [W, C, 1]
        return t[:, :c, None]

    cos_all, sin_all = torch.cos(yaw), torch.sin(yaw)
    ce, se, len_e, wid_e = ego(cos_all), ego(sin_all), ego(length), ego(width)
    len_o, wid_o = other(length), other(width)
    rel_x, rel_y = other(x) - ego(x), other(y) - ego(y)
    touching = boxes_overlap_cs(rel_x, rel_y, ce, se, len_e, wid_e, other(cos_all), other(sin_all), len_o, wid_o)
    touching = touching & (neighbours >= 0) & other(present)
    ahead = (rel_x * ce + rel_y * se) / (0.5 * (len_e + len_o))
    side = ((-rel_x * se + rel_y * ce) / (0.5 * (wid_e + wid_o))).abs()
    front = ahead > side
    lateral = ahead.abs() <= side
    e_psi = psi[:, :c]
    half_extent = 0.5 * length[:, :c] * torch.sin(e_psi).abs() + 0.5 * width[:, :c] * torch.cos(e_psi).abs()
    straddling = lateral_d[:, :c].abs() + half_extent > 0.5 * lane_width[:, :c]  # [W, C]
    fault = touching & (front | (lateral & straddling.unsqueeze(-1)))
    moving = speed[:, :c] > STOPPED_SPEED
    return new_hit[:, :c] & moving & fault.any(dim=-1)
