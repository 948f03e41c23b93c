"""Closed-loop evaluation: metrics from the world's per-step terms, one score, scenario suites, reports.

`metrics` (per-episode metrics, `MetricAccumulator` for training), `score` (the combined score), `suites` (named,
seeded, versioned scenario suites), `runner` (`evaluate`), `report` (HTML report, side-by-side comparison).
The names most callers need are re-exported here.
"""

from fuyao.evaluation.metrics import MetricAccumulator, episode_metrics, summarize
from fuyao.evaluation.runner import EvalResult, ScenarioResult, SpaceMismatchError, evaluate
from fuyao.evaluation.suites import SUITES, Scenario, Suite, get_suite

__all__ = [
    "SUITES",
    "EvalResult",
    "MetricAccumulator",
    "Scenario",
    "ScenarioResult",
    "SpaceMismatchError",
    "Suite",
    "episode_metrics",
    "evaluate",
    "get_suite",
    "summarize",
]
