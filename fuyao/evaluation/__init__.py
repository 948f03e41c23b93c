"""Closed-loop evaluation: metrics from the world's per-step terms, one score, scenario suites, reports.

`fuyao.evaluation.metrics` (per-episode metrics and `MetricAccumulator` for training), `.score` (the combined
score), `.suites` (named, seeded, versioned scenario suites), `.runner` (`evaluate`), `.report` (HTML report,
side-by-side comparison). Import the submodules; this package imports nothing on its own.
"""
