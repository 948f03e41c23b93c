"""The rule-based pilot's gap alignment (`gap_alignment`): where a car that must change lanes lines up in the target
lane when the gap beside it is too short. Constructed scenes: slot 0 is the car, which must go left; slot 1 the
left lane's leader, slot 2 its follower, slot 3 the car beyond one of them."""

from types import SimpleNamespace

import pytest
import torch

from fuyao.pilots.rule_based import ALIGN_GAIN, gap_alignment, gap_room
from fuyao.sim.neighbours import FAR, Neighbour, Surroundings
from fuyao.sim.traffic import SAFE_BRAKE, DriverParams

N = 4
LENGTH = 5.0


def params(desired: float) -> DriverParams:
    def full(x):
        return torch.full((1, N), x)

    return DriverParams(full(desired), full(1.5), full(2.0), full(1.5), full(2.0), full(4.0), full(0.3))


def nb(slots, gaps, speeds) -> Neighbour:
    return Neighbour(torch.tensor([slots]), torch.tensor([gaps]), torch.tensor([speeds]))


def scene(lead_gap, follow_gap, lead_speed, follow_speed, beyond_gap, beyond_of: int, own_lead=None):
    """The car (5 m/s) beside the left lane's leader and follower; the car `beyond_gap` m beyond the leader
    (`beyond_of` 1) or behind the follower (2). In its own lane no car, or `own_lead` (gap m, speed m/s): the car
    beyond stands in for it."""
    none = ([-1] * N, [FAR] * N, [5.0] * N)
    lead_slots, lead_gaps, lead_speeds = [-1] * N, [FAR] * N, [5.0] * N
    follow_slots, follow_gaps = [-1] * N, [FAR] * N
    if beyond_of == 1:
        lead_slots[1], lead_gaps[1] = 3, beyond_gap
    else:
        follow_slots[2], follow_gaps[2] = 3, beyond_gap
    if own_lead is not None:
        lead_slots[0], lead_gaps[0], lead_speeds[0] = 3, own_lead[0], own_lead[1]
    lanes = torch.zeros(1, N, dtype=torch.int64)
    sur = Surroundings(
        lead=nb(lead_slots, lead_gaps, lead_speeds),
        follow=nb(follow_slots, follow_gaps, [5.0] * N),
        left_lead=nb([1, -1, -1, -1], [lead_gap, FAR, FAR, FAR], [lead_speed, 5.0, 5.0, 5.0]),
        left_follow=nb([2, -1, -1, -1], [follow_gap, FAR, FAR, FAR], [follow_speed, 5.0, 5.0, 5.0]),
        right_lead=nb(*none),
        right_follow=nb(*none),
        left_lane=lanes,
        right_lane=lanes - 1,
        left_s=torch.zeros(1, N),
        right_s=torch.zeros(1, N),
    )
    v = SimpleNamespace(length=torch.full((1, N), LENGTH), speed=torch.tensor([[5.0, lead_speed, follow_speed, 5.0]]))
    return sur, v


def room(p: DriverParams) -> float:
    """m a car at 5 m/s (every car here) needs to the car ahead at the same speed, by MOBIL's safety test."""
    return float(gap_room(torch.tensor(5.0), p, SAFE_BRAKE)[0, 0])


def aligned_speed(scene_: tuple, p: DriverParams) -> float:
    """The speed m/s at which the car (slot 0), which must go left, lines up with a gap."""
    return float(gap_alignment(*scene_, p, torch.full((1, N), -1), torch.full((1, N), SAFE_BRAKE))[0, 0])


def test_pulls_ahead_of_a_slower_leader_to_the_gap_beyond_it():
    """The leader beside is slower than the car wants to go and the follower close behind: the car lines up with
    the gap beyond the leader, one exactly long enough for it. It drives at the leader's speed plus `ALIGN_GAIN`
    per metre it must still gain: until its rear is the follower's room ahead of the leader's front."""
    p = params(desired=10.0)
    need_front = need_back = room(p)
    lead_gap = -8.0  # the leader's rear 8 m behind the car's front: nearly level
    speed = aligned_speed(scene(lead_gap, 3.0, 5.0, 5.0, beyond_gap=need_front + need_back + LENGTH, beyond_of=1), p)
    to_gain = lead_gap + LENGTH + LENGTH + need_back  # m, the car's rear past the leader's front by `need_back`
    assert 0.0 < ALIGN_GAIN * to_gain < 5.0  # (inside the speed offset's bound, so the test can see it)
    assert speed == pytest.approx(5.0 + ALIGN_GAIN * to_gain, abs=1e-4)


def test_drops_back_behind_a_follower_it_cannot_pass_to_the_gap_behind_it():
    """The leader beside is as fast as the car may go: the car drops back behind the follower, to a gap behind it
    exactly long enough for it, at the follower's speed less `ALIGN_GAIN` per metre it must still lose: until its
    front is its own room behind the follower's rear."""
    p = params(desired=6.0)
    need = room(p)
    follow_gap = -6.0  # the follower's front 6 m ahead of the car's rear
    speed = aligned_speed(scene(1.0, follow_gap, 6.0, 5.0, beyond_gap=2 * need + LENGTH, beyond_of=2), p)
    to_lose = follow_gap + LENGTH + LENGTH + need  # m, the car's front behind the follower's rear by `need`
    assert 0.0 < ALIGN_GAIN * to_lose < 5.0
    assert speed == pytest.approx(5.0 - ALIGN_GAIN * to_lose, abs=1e-4)


def test_rides_in_the_gap_beside_it_when_it_fits():
    """A gap beside the car long enough for it: the car holds the gap's mean speed, offset toward the place where
    both its ends have the room they need."""
    p = params(desired=10.0)
    need = room(p)
    speed = aligned_speed(scene(need + 2.0, need, 5.0, 5.0, beyond_gap=FAR, beyond_of=1), p)
    assert speed == pytest.approx(5.0 + ALIGN_GAIN * 1.0, abs=1e-4)  # 1 m behind the gap's middle


def test_drops_back_when_its_own_lane_leader_keeps_it_level():
    """The pull-ahead scene, but with a leader in the car's own lane at the target lane leader's speed, too close
    for the car to get past: the car would ride level with the leader beside it and never change (a missed
    exit). It drops back behind the follower instead."""
    p = params(desired=10.0)
    need = room(p)
    free = scene(-8.0, 3.0, 5.0, 5.0, beyond_gap=2 * need + LENGTH, beyond_of=1)
    assert aligned_speed(free, p) > 5.0  # no own leader: ahead
    blocked = scene(-8.0, 3.0, 5.0, 5.0, beyond_gap=2 * need + LENGTH, beyond_of=1, own_lead=(need + 6.0, 5.0))
    assert aligned_speed(blocked, p) < 5.0
    # An own leader that pulls away as fast as the car gains does not hold it back.
    pulling = scene(-8.0, 3.0, 5.0, 5.0, beyond_gap=2 * need + LENGTH, beyond_of=1, own_lead=(need + 6.0, 9.0))
    assert aligned_speed(pulling, p) > 5.0
