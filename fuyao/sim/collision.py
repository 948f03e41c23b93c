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


STOPPED_SPEED = 0.05  # m/s: an ego slower than this is stopped and never at fault (nuPlan's stopped_speed_threshold)


def collisions(
    x, y, yaw, length, width, present, candidates: Sequence[torch.Tensor], lateral_d, psi, lane_width
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which vehicles touch another present vehicle, and which are on the faulty side of at least one of those
    contacts, both `[W, N]` bool (`at_fault_collisions` turns the second into the verdict). `x, y, yaw, length,
    width, present [W, N]`; `candidates`: `[W, N]` slot ids (-1 none), one tensor per candidate kind (the leader,
    the side leaders and followers, ...), each checked in turn so every operation stays `[W, N]`. Collisions are
    symmetric (if i hits j, both are flagged).

    Fault, in the manner of nuPlan's `no_ego_at_fault_collisions`: the vehicle touched is classified by where
    it is in the vehicle's frame, in units of the two boxes' half sizes: *front* (more ahead than to the side),
    *rear* (more behind than to the side) or *lateral*. A vehicle is on the faulty side if the other is in front
    (rear-ending a leader, moving or stopped), or at its side while its own box straddles a lane boundary
    (changing lanes). Being rear-ended, or side-swiped while keeping its lane, is not a fault.

    Only the contacts the candidates find are judged (each pair from both sides), the same contacts that make
    `collided`, so the cost is `[W, N]` per candidate kind and not `[W, C, N]`: pairwise over every vehicle,
    that was most of a self-play tick (every vehicle the policy's). `lateral_d, psi [W, N]` m and rad in the
    lane frame, `lane_width [W, N]` m of each vehicle's lane."""
    cos_yaw, sin_yaw = torch.cos(yaw), torch.sin(yaw)
    half_extent = 0.5 * length * torch.sin(psi).abs() + 0.5 * width * torch.cos(psi).abs()
    straddling = lateral_d.abs() + half_extent > 0.5 * lane_width
    mine = torch.zeros_like(present)
    mine_fault = torch.zeros_like(present)
    slots, theirs = [], []  # contacts seen from the other side, scattered onto those vehicles at the end
    for slot in candidates:
        safe = slot.clamp(min=0)

        def other(t, safe=safe):
            return t.gather(1, safe)

        dx, dy = other(x) - x, other(y) - y
        cb, sb, len_b, wid_b = other(cos_yaw), other(sin_yaw), other(length), other(width)
        hit = (
            boxes_overlap_cs(dx, dy, cos_yaw, sin_yaw, length, width, cb, sb, len_b, wid_b)
            & (slot >= 0)
            & present
            & other(present)
        )
        mine = mine | hit
        slots.append(safe)
        half_len, half_wid = 0.5 * (length + len_b), 0.5 * (width + wid_b)
        mine_fault = mine_fault | (hit & _faulty(dx, dy, cos_yaw, sin_yaw, half_len, half_wid, straddling))
        their_fault = hit & _faulty(-dx, -dy, cb, sb, half_len, half_wid, other(straddling))
        theirs.append(torch.stack([hit, their_fault], -1).to(torch.int32))
    index = torch.cat(slots, 1).unsqueeze(-1).expand(-1, -1, 2)
    seen = torch.zeros(*present.shape, 2, dtype=torch.int32, device=present.device)
    seen = seen.scatter_add(1, index, torch.cat(theirs, 1)) > 0  # one scatter for every candidate kind
    return mine | seen[..., 0], mine_fault | seen[..., 1]


def _faulty(dx, dy, c, s, half_len, half_wid, straddling) -> torch.Tensor:
    """Whether a vehicle (heading `c, s`) touching another at offset `(dx, dy)` is on the faulty side."""
    ahead = (dx * c + dy * s) / half_len
    side = (-dx * s + dy * c).abs() / half_wid
    return (ahead > side) | ((ahead.abs() <= side) & straddling)


def at_fault_collisions(new_hit, fault, speed, controlled: int) -> torch.Tensor:
    """Which of the first `controlled` vehicles caused a collision that began this tick, `[W, C]` bool: a
    contact began (`new_hit`), the vehicle was moving (speed above `STOPPED_SPEED`) and it is on the faulty
    side of a contact (`collisions`). `new_hit, fault [W, N]` bool, `speed [W, N]` m/s."""
    c = controlled
    return new_hit[:, :c] & (speed[:, :c] > STOPPED_SPEED) & fault[:, :c]
