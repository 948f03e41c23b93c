"""Traffic-signal programs and right of way, as SUMO writes them (`<tlLogic>` and `<junction>` in a `.net.xml`).

A junction's links are its connector lanes in a fixed order (SUMO's link indices). A program is a cycle of
phases, each a duration and one state letter per link:

    G  priority green: go, nobody to yield to (a conflicting link is red or yields)
    g  green, but yield: go after giving way to conflicting traffic that has priority (a permissive left turn)
    s  stop, then go: a right turn on red, taken as a yielding movement after a stop at the line
    y  yellow: stop if you can stop comfortably, else go (the dilemma zone)
    r  red: stop at the stop line (the connector's start)
    O  off: no signal; right of way comes from the junction's static table (priority road, yield signs)

A program in which two links that cross or merge are both `G` in one phase (neither yields) is refused when the
map is built. Unsignalised right of way is a static table per conflicting pair (SUMO's `foes` and `response`):
which of the two yields, or neither (first come, first served).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Signal(enum.IntEnum):
    """State of one link (connector lane) in one phase. The integer codes are stored in `RoadMap.lane_signal`."""

    OFF = 0  # no signal on this link (or no phase)
    RED = 1
    YELLOW = 2
    GREEN = 3  # SUMO 'G', priority green
    GREEN_YIELD = 4  # SUMO 'g', permissive
    STOP_GO = 5  # SUMO 's', right turn on red after stopping


LETTERS = {"O": Signal.OFF, "r": Signal.RED, "y": Signal.YELLOW, "G": Signal.GREEN, "g": Signal.GREEN_YIELD}
LETTERS["s"] = Signal.STOP_GO
LETTER_OF = {v: k for k, v in LETTERS.items()}

# Static right of way between two conflicting lanes (`RoadMap.conflict_yield`): from this lane's side.
YIELDS = 1  # this lane yields to the other
HAS_PRIORITY = -1  # the other yields to this one
FIRST_COME = 0  # neither: first come, first served


@dataclass(frozen=True)
class Phase:
    """One phase of a signal program: `duration_s` and a state letter per link of the junction (SUMO's
    `<phase duration="31" state="GGggrrrrGGggrrrr"/>`). `min_s` / `max_s`: actuated bounds (kept for import;
    the step runs fixed-time programs)."""

    duration_s: float
    state: str
    min_s: float | None = None
    max_s: float | None = None

    def signals(self) -> list[Signal]:
        return [LETTERS[c] for c in self.state]


def parse_phase(owner: str, index: int, phase: Phase, num_links: int) -> list[Signal]:
    """The phase's signal per link, checked: raises `ValueError` naming the junction, phase, field and value."""
    if not phase.duration_s > 0:
        raise ValueError(f"{owner}: phase {index} duration_s: got {phase.duration_s!r}; allowed: > 0 s")
    if len(phase.state) != num_links:
        raise ValueError(
            f"{owner}: phase {index} state {phase.state!r} has {len(phase.state)} letters; the junction has "
            f"{num_links} connector lanes (one letter each)"
        )
    bad = sorted(set(phase.state) - set(LETTERS))
    if bad:
        raise ValueError(f"{owner}: phase {index} state {phase.state!r}: letters {bad}; allowed: {''.join(LETTERS)}")
    return phase.signals()


__all__ = ["FIRST_COME", "HAS_PRIORITY", "LETTERS", "LETTER_OF", "Phase", "Signal", "YIELDS", "parse_phase"]
