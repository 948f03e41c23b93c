"""What every importer returns, and the helpers they share."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from fuyao.data.scenario import AgentType, Scenario, ScenarioError

# Box sizes (m) for datasets that log none (Argoverse 2 motion forecasting): length, width per type.
DEFAULT_SIZE_M: dict[AgentType, tuple[float, float]] = {
    AgentType.VEHICLE: (4.5, 2.0),
    AgentType.PEDESTRIAN: (0.6, 0.6),
    AgentType.CYCLIST: (1.8, 0.7),
    AgentType.OTHER: (1.0, 1.0),
}


class DataImportError(ScenarioError):
    """An input file that cannot be imported: the message names the file, the element or field, the value."""


@dataclass
class ImportResult:
    """Scenarios read from one input, and what was left out on the way (`skipped[reason] = count`)."""

    scenarios: list[Scenario] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    def extend(self, other: ImportResult) -> None:
        self.scenarios.extend(other.scenarios)
        self.skipped.update(other.skipped)


def centre_from_bounds(left: np.ndarray, right: np.ndarray, samples: int | None = None) -> tuple[np.ndarray, float]:
    """Centre line `[P, 2]` m and mean width (m) of a lane from its left and right boundaries, each resampled at
    the same fractions of its arc length (boundaries may carry different point counts)."""
    n = samples or max(len(left), len(right), 2)
    lf, rf = _at_fractions(left, n), _at_fractions(right, n)
    return 0.5 * (lf + rf), float(np.linalg.norm(lf - rf, axis=1).mean())


def _at_fractions(points: np.ndarray, n: int) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)[:, :2]
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    if cum[-1] <= 0:
        return np.repeat(points[:1], n, axis=0)
    f = np.linspace(0.0, 1.0, n) * cum[-1]
    return np.stack([np.interp(f, cum, points[:, 0]), np.interp(f, cum, points[:, 1])], axis=1)
