"""Importers: the real Argoverse 2 and CommonRoad files, a generated highD layout, ScenarioNet pickles (and a
malicious one that must be refused), the maps they carry built into `RoadMap`s, and errors for bad input."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from fuyao.data.importers import DataImportError, import_any, read_av2_map
from fuyao.data.logmap import vector_map_to_roadmap
from fuyao.data.scenario import AgentType, SignalState, read_scenario, resample, scenarios_equal, write_scenario

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
AV2 = DATA / "argoverse2"
COMMONROAD = DATA / "commonroad" / "DEU_TrafficLightTest-1.xml"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared test data not present at {DATA}")


@needs_data
def test_argoverse2_scenario_and_map(tmp_path):
    result = import_any(AV2)
    (sc,) = result.scenarios
    assert sc.source == "argoverse2" and sc.track_ids[sc.ego] == "AV"
    assert sc.num_tracks == 58 and sc.num_steps == 110
    np.testing.assert_allclose(np.diff(sc.timestamps), 0.1, atol=1e-6)
    assert sc.valid[sc.ego].all()  # the ego is observed throughout
    assert {AgentType.VEHICLE, AgentType.PEDESTRIAN, AgentType.CYCLIST} <= set(sc.agent_type.tolist())
    assert sc.map is not None and sc.map.num_lanes == 71
    # Positions of the raw table survive: track 138902 step 0 as in the file.
    k = sc.track_ids.index("138902")
    assert sc.x[k, 0] == pytest.approx(-436.0898832937501) and sc.y[k, 0] == pytest.approx(1311.1898651654426)
    assert scenarios_equal(sc, read_scenario(write_scenario(tmp_path / "av2.parquet", sc)))
    assert resample(sc, 15.0).num_steps == 164  # 10.9 s at 15 Hz
    road, summary = vector_map_to_roadmap(sc.map, "av2")
    assert road.lane_xy.shape[1] == summary.lanes > 20 and summary.successors > 0 and summary.destinations >= 1
    assert bool(road.lane_valid.all()) and summary.skipped["bike lane"] > 0


@needs_data
def test_argoverse2_city_map_builds():
    vmap, _ = read_av2_map(AV2 / "log_map_archive_PIT_city_47896.json")
    road, summary = vector_map_to_roadmap(vmap, "pit")
    assert summary.lanes == 163 and summary.conflicts > 0 and road.has_conflicts
    assert summary.skipped["neighbour running the other way"] > 0  # counted, not a crash


@needs_data
def test_commonroad_traffic_lights_and_map():
    (sc,) = import_any(COMMONROAD).scenarios
    assert sc.source == "commonroad" and sc.num_tracks == 11
    assert sc.timestamps[1] == pytest.approx(0.1)
    assert sc.signals is not None and sc.signals.state.shape == (4, sc.num_steps)
    states = set(sc.signals.state.ravel().tolist())
    assert {SignalState.RED, SignalState.GREEN} <= states
    assert all(len(lanes) == 1 for lanes in sc.signals.lanes)  # each light governs its incoming lanelet
    assert sc.map.num_lanes == 20 and sc.map.is_intersection.sum() == 12
    road, summary = vector_map_to_roadmap(sc.map, "commonroad")
    assert summary.lanes == 20 and summary.successors == 24 and summary.conflicts > 0 and not summary.skipped


def test_malformed_commonroad(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<commonRoad timeStepSize='0.1'><lanelet id='1'><leftBound>")
    with pytest.raises(DataImportError, match=r"bad\.xml: malformed XML at line 1"):
        import_any(bad)
    wrong = tmp_path / "wrong.xml"
    wrong.write_text(
        "<commonRoad><dynamicObstacle id='3'><type>car</type><shape><rectangle><length>4</length>"
        "<width>x</width></rectangle></shape></dynamicObstacle></commonRoad>"
    )
    with pytest.raises(DataImportError, match=r"wrong\.xml: <rectangle.*<width> is 'x'; must be a number"):
        import_any(wrong)


# ---- highD -------------------------------------------------------------------------------------------------


def write_highd(folder: Path, frames: int = 60, backwards: bool = False) -> None:
    """Two cars in highD's layout: 25 Hz, image frame (y down), x, y the box's upper-left corner, `width` along
    x (length), `height` along y (width). Car 1 drives towards +x on the lower lanes, car 2 towards -x."""
    rows = ["frame,id,x,y,width,height,xVelocity,yVelocity,xAcceleration,yAcceleration,laneId"]
    for vid, x0, y0, vx, length, width, start in (
        (1, 10.0, 20.0, 30.0, 4.5, 2.0, 1),
        (2, 300.0, 10.0, -25.0, 12.0, 2.5, 11),
    ):
        for k in range(frames if vid == 1 else 30):
            f = start + k
            if backwards and vid == 1 and k == 5:
                f = start + 2
            rows.append(
                f"{f},{vid},{x0 + vx * k / 25:.4f},{y0},{length},{width},{vx},0.0,0.0,0.0,{5 if vid == 1 else 2}"
            )
    (folder / "01_tracks.csv").write_text("\n".join(rows) + "\n")
    (folder / "01_tracksMeta.csv").write_text(
        "id,width,height,initialFrame,finalFrame,numFrames,class,drivingDirection\n"
        f"1,4.5,2.0,1,{frames},{frames},Car,2\n2,12.0,2.5,11,40,30,Truck,1\n"
    )
    (folder / "01_recordingMeta.csv").write_text(
        "id,frameRate,locationId,speedLimit,month,weekDay,startTime,duration,upperLaneMarkings,lowerLaneMarkings\n"
        "1,25,2,33.33,09.2017,Tue,08:38,2,8.5;12.5;16.5,18.5;22.5;26.5\n"
    )


def test_highd_layout(tmp_path):
    write_highd(tmp_path)
    result = import_any(tmp_path)
    (sc,) = result.scenarios
    assert sc.source == "highd" and sc.track_ids == ("1", "2")
    np.testing.assert_allclose(np.diff(sc.timestamps), 0.04)
    # Centre from the upper-left corner, y flipped (highD's y points down).
    assert sc.x[0, 0] == pytest.approx(10.0 + 4.5 / 2) and sc.y[0, 0] == pytest.approx(-(20.0 + 2.0 / 2))
    assert sc.length.tolist() == [4.5, 12.0] and sc.width.tolist() == [2.0, 2.5]
    assert sc.yaw[0, 0] == pytest.approx(0.0) and abs(sc.yaw[1, 10]) == pytest.approx(np.pi)
    assert not sc.valid[1, :10].any() and sc.valid[1, 10:40].all()
    assert sc.ego == 0  # the longest track
    assert sc.map.num_lanes == 4 and np.allclose(sc.map.speed_limit, 33.33)
    road, summary = vector_map_to_roadmap(sc.map, "highd")
    assert summary.neighbours == 2 and summary.destinations == 4
    # Long recordings are cut into windows.
    from fuyao.data.importers import import_highd

    assert len(import_highd(tmp_path / "01_tracks.csv", window_s=1.0).scenarios) == 3  # frames 1-25, 26-50, 51-60


def test_highd_frames_backwards(tmp_path):
    write_highd(tmp_path, backwards=True)
    with pytest.raises(DataImportError, match=r"01_tracks\.csv: track 1: frames go backwards .* CSV row 7"):
        import_any(tmp_path / "01_tracks.csv")


# ---- ScenarioNet -------------------------------------------------------------------------------------------


def scenarionet_description(steps: int = 20) -> dict:
    t = np.arange(steps)
    ego_pos = np.stack([t * 1.0, np.zeros(steps), np.zeros(steps)], axis=1)
    ped_valid = t >= 5
    return {
        "id": "sn-1",
        "version": "2023-10",
        "length": steps,
        "tracks": {
            "sdc": {
                "type": "VEHICLE",
                "state": {
                    "position": ego_pos,
                    "heading": np.zeros(steps),
                    "velocity": np.tile([10.0, 0.0], (steps, 1)),
                    "length": np.full(steps, 4.8),
                    "width": np.full(steps, 2.0),
                    "height": np.full(steps, 1.5),
                    "valid": np.ones(steps, dtype=bool),
                },
                "metadata": {"track_length": steps, "type": "VEHICLE", "object_id": "sdc"},
            },
            "42": {
                "type": "PEDESTRIAN",
                "state": {
                    "position": np.where(ped_valid[:, None], [[5.0, 5.0, 0.0]], 0.0),
                    "heading": np.full(steps, 1.5),
                    "velocity": np.zeros((steps, 2)),
                    "length": np.full(steps, 0.5),
                    "width": np.full(steps, 0.5),
                    "height": np.full(steps, 1.8),
                    "valid": ped_valid,
                },
                "metadata": {},
            },
        },
        "map_features": {
            "100": {
                "type": "LANE_SURFACE_STREET",
                "polyline": np.array([[0.0, 0, 0], [30.0, 0, 0]]),
                "exit_lanes": ["101"],
                "speed_limit_mph": 25.0,
            },
            "101": {
                "type": "LANE_SURFACE_STREET",
                "polyline": np.array([[30.0, 0, 0], [60.0, 0, 0]]),
                "entry_lanes": ["100"],
            },
            "7": {"type": "ROAD_LINE_SOLID_SINGLE_WHITE", "polyline": np.zeros((2, 3))},
        },
        "dynamic_map_states": {
            "9": {
                "type": "TRAFFIC_LIGHT",
                "lane": "100",
                "state": {"object_state": ["LANE_STATE_STOP"] * 10 + ["LANE_STATE_GO"] * 10},
            }
        },
        "metadata": {"sdc_id": "sdc", "ts": np.arange(steps) * 0.1, "dataset": "test", "scenario_id": "sn-1"},
    }


def test_scenarionet_restricted_unpickler(tmp_path):
    path = tmp_path / "sd_test_sn-1.pkl"
    path.write_bytes(pickle.dumps(scenarionet_description()))
    (sc,) = import_any(path).scenarios
    assert sc.source == "scenarionet" and sc.track_ids[sc.ego] == "sdc"
    assert sc.agent_type.tolist() == [AgentType.VEHICLE, AgentType.PEDESTRIAN]
    assert sc.valid[1].sum() == 15 and sc.x[0, 3] == 3.0 and sc.length[0] == pytest.approx(4.8)
    assert sc.map.num_lanes == 2 and sc.map.successors == ((1,), ())
    assert sc.map.speed_limit[0] == pytest.approx(25 * 0.44704)
    assert sc.signals.state[0, 0] == SignalState.RED and sc.signals.state[0, -1] == SignalState.GREEN
    # Older protocols (numpy arrays through copyreg / _codecs) load too.
    path.write_bytes(pickle.dumps(scenarionet_description(), protocol=2))
    assert import_any(path).scenarios[0].num_steps == 20


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_scenarionet_malicious_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    desc = scenarionet_description()
    desc["metadata"]["payload"] = _Evil()
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(desc))
    with pytest.raises(DataImportError, match=r"evil\.pkl: refused to load global (posix|os|nt)\.system"):
        import_any(path)
    assert not (tmp_path / "pwned").exists()
    path.write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(DataImportError, match="not a readable pickle"):
        import_any(path)


def test_unsupported_and_missing_inputs(tmp_path):
    with pytest.raises(DataImportError, match="no such file"):
        import_any(tmp_path / "nope.xml")
    odd = tmp_path / "notes.txt"
    odd.write_text("hello")
    with pytest.raises(DataImportError, match=r"notes\.txt: unsupported input type; supported: .*CommonRoad \.xml"):
        import_any(odd)
    with pytest.raises(DataImportError, match="no supported files"):
        import_any(tmp_path)
