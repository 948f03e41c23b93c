"""SUMO beside the city bench: the same grid through netgenerate, stepped at the same tick (needs eclipse-sumo,
installed by the `compare` extra)."""

from __future__ import annotations

import pytest

from fuyao.roads.city import CityConfig

sumo = pytest.importorskip("sumo", reason="SUMO (eclipse-sumo) is not installed: pip install 'fuyao[sumo]'")


def test_sumo_runs_the_same_grid_and_reports_updates_per_second():
    from fuyao.perf.bench_sumo import measure_sumo

    out = measure_sumo(CityConfig(rows=2, cols=2, lanes=1), vehicles=30, sim_hz=10, seconds=0.5)
    assert out["sumo_ups"] > 1000.0
    assert 10.0 < out["sumo_mean_running"] < 90.0, out  # about the vehicle count asked for
    assert out["sumo_step_s"] == pytest.approx(0.1)
    assert out["sumo_version"].startswith("Eclipse SUMO")
