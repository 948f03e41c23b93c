"""The scenario format: Parquet round trips, atomic writes, schema and version checks, resampling rules."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fuyao.data.scenario import (
    METADATA_KEY,
    AgentType,
    Scenario,
    ScenarioError,
    Signals,
    SignalState,
    VectorMap,
    read_scenario,
    resample,
    scenarios_equal,
    write_scenario,
)


def tiny_map() -> VectorMap:
    return VectorMap(
        lane_ids=("a", "b", "c"),
        points=np.array([[0.0, 0.0], [50.0, 0.0], [50.0, 0.0], [100.0, 0.0], [0.0, 3.5], [50.0, 3.5]]),
        offsets=np.array([0, 2, 4, 6]),
        width=np.array([3.5, 3.5, np.nan]),
        speed_limit=np.array([13.9, np.nan, 13.9]),
        is_intersection=np.array([False, True, False]),
        left=np.array([2, -1, -1]),
        right=np.array([-1, -1, 0]),
        successors=((1,), (), ()),
    )


def tiny_scenario(**changes) -> Scenario:
    """Two tracks over 4 steps at 10 Hz; track 1 appears at step 1."""
    t = np.arange(4) * 0.1
    valid = np.array([[True] * 4, [False, True, True, True]])
    fields = dict(
        scenario_id="tiny",
        timestamps=t,
        x=np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 10.0, 11.0, 12.0]]),
        y=np.zeros((2, 4)),
        yaw=np.array([[3.1, -3.1, 3.1, -3.1], [0.0, 0.0, 0.1, 0.2]]),
        vx=np.full((2, 4), 10.0),
        vy=np.zeros((2, 4)),
        valid=valid,
        length=np.array([4.5, 0.6]),
        width=np.array([2.0, 0.6]),
        agent_type=np.array([AgentType.VEHICLE, AgentType.PEDESTRIAN]),
        track_ids=("ego", "7"),
        ego=0,
        map=tiny_map(),
        signals=Signals(
            ("s1",), ((0,),), np.array([[SignalState.RED, SignalState.RED, SignalState.GREEN, SignalState.GREEN]])
        ),
        source="test",
        metadata={"city": "nowhere", "n": 1},
    )
    fields.update(changes)
    return Scenario(**fields)


def test_round_trip_equal(tmp_path):
    sc = tiny_scenario()
    path = write_scenario(tmp_path / "tiny.parquet", sc)
    back = read_scenario(path)
    assert scenarios_equal(sc, back)
    assert np.isnan(back.x[1, 0]) and not back.valid[1, 0]
    assert back.map.speed_limit[1] != back.map.speed_limit[1]  # NaN survives JSON as null
    # The file is plain Parquet with the header in its key-value metadata (JSON, never pickle).
    table = pq.read_table(path)
    assert table.schema.names[:3] == ["track", "t", "x"] and table.num_rows == int(sc.valid.sum())
    header = json.loads(table.schema.metadata[METADATA_KEY])
    assert header["format"] == "fuyao.scenario" and header["version"] == 1


def test_failed_write_keeps_the_old_file(tmp_path):
    path = write_scenario(tmp_path / "s.parquet", tiny_scenario())
    before = path.read_bytes()
    bad = tiny_scenario(metadata={"not json": object()})
    with pytest.raises(ScenarioError, match="JSON"):
        write_scenario(path, bad)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.parquet"]  # no temporary left behind


def _rewrite_header(path, **changes):
    table = pq.read_table(path)
    header = json.loads(table.schema.metadata[METADATA_KEY])
    header.update(changes)
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps(header).encode()}), path)


def test_read_checks_version_schema_and_file(tmp_path):
    path = write_scenario(tmp_path / "s.parquet", tiny_scenario())
    _rewrite_header(path, version=99)
    with pytest.raises(ScenarioError, match=r"s\.parquet.*'version'.*99"):
        read_scenario(path)
    with pytest.raises(ScenarioError, match="no such file"):
        read_scenario(tmp_path / "missing.parquet")
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1]}), other)
    with pytest.raises(ScenarioError, match="other.parquet.*not a Fuyao scenario"):
        read_scenario(other)
    path = write_scenario(tmp_path / "t.parquet", tiny_scenario())
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["yaw"]).replace_schema_metadata(table.schema.metadata), path)
    with pytest.raises(ScenarioError, match="t.parquet.*column 'yaw'"):
        read_scenario(path)


def test_bad_timestamps_and_nan_positions_are_named():
    with pytest.raises(ScenarioError, match=r"timestamps go backwards.*step 2"):
        tiny_scenario(timestamps=np.array([0.0, 0.1, 0.05, 0.3]))
    x = tiny_scenario().x.copy()
    x[1, 2] = np.nan
    with pytest.raises(ScenarioError, match=r"track '7' step 2: x is NaN"):
        tiny_scenario(x=x, origin="log.csv")
    x[1, 2] = 11.0
    x[1, 0] = np.nan  # not valid there: fine
    tiny_scenario(x=x)
    with pytest.raises(ScenarioError, match="ego"):
        tiny_scenario(ego=5)


def test_resample_interpolation_rules():
    sc = tiny_scenario()
    r = resample(sc, 20.0)  # 0.05 s steps: the midpoints of the log's steps
    np.testing.assert_allclose(r.timestamps, np.arange(7) * 0.05)
    np.testing.assert_allclose(r.x[0], [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    # yaw goes the short way round through pi, not through 0.
    assert np.all(np.abs(np.abs(r.yaw[0]) - np.pi) < 0.05)
    # Track 1 is valid from step 1 (t = 0.1 s): not at 0.05 s (one neighbour invalid), yes at 0.1 s.
    assert r.valid[1].tolist() == [False, False, True, True, True, True, True]
    assert np.isnan(r.x[1, 1]) and r.x[1, 3] == pytest.approx(10.5)
    # Signals hold the last logged state.
    assert r.signals.state[0].tolist() == [1, 1, 1, 1, 3, 3, 3]
    same = resample(sc, 10.0)  # the log's own rate: the log again
    assert np.array_equal(same.valid, sc.valid)
    for name in ("timestamps", "x", "y", "yaw", "vx"):
        np.testing.assert_allclose(getattr(same, name), getattr(sc, name), atol=1e-9)
    with pytest.raises(ScenarioError, match="hz"):
        resample(sc, 0.0)
