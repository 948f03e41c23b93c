"""Recording rollouts to partitioned Parquet, recordings back into scenarios, and `fuyao data` in a subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest
import torch

from fuyao.data.record import RolloutRecorder, recording_to_scenarios
from fuyao.data.scenario import ScenarioError, read_scenario
from fuyao.pilots import RuleBasedPilot
from fuyao.presets import preset
from fuyao.sim.geometry import vehicle_pose_xy
from fuyao.sim.world import World

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"


def run_recorded(tmp_path, decisions: int, **overrides):
    world = World(preset("smoke", worlds=2, **overrides))
    pilot = RuleBasedPilot(world)
    state = world.reset(3)
    poses = []  # what the world says, independently of the recorder: (x, y, active) per decision
    rec = RolloutRecorder(tmp_path / "rec", world, flush_every=5, seed=3, pilot="rule-based")
    with torch.inference_mode():
        for _ in range(decisions):
            v = state.vehicles
            x, y, _ = vehicle_pose_xy(world.road, state.map_id, v.lane, v.s, v.d, v.psi)
            c = world.cfg.controlled
            poses.append(
                (
                    x[:, :c].numpy().copy(),
                    y[:, :c].numpy().copy(),
                    state.active.numpy().copy(),
                    state.episode.numpy().copy(),
                )
            )
            action = pilot.act(None, state)
            result = world.step(state, action)
            rec.record(state, action, result)
            state = result.state
    summary = rec.close()
    return world, summary, poses


def test_recording_is_a_dataset_and_converts_to_scenarios(tmp_path):
    decisions = 12  # the smoke preset's episodes are 10 decisions: every world starts a second episode
    world, summary, poses = run_recorded(tmp_path, decisions)
    folder = tmp_path / "rec"
    assert summary["parts"] == 3 and summary["rows"] == decisions * 2
    assert sorted(p.name for p in folder.glob("part-*.parquet")) == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    table = pads.dataset(folder, format="parquet").to_table()  # the index file is skipped ("_" prefix)
    assert table.num_rows == decisions * 2
    for name in (
        "world",
        "slot",
        "lane",
        "s",
        "d",
        "x",
        "y",
        "yaw",
        "speed",
        "action",
        "reward",
        "done",
        "seed",
        "map",
    ):
        assert name in table.schema.names
    assert "info_collision" in table.schema.names and "info_progress_m" in table.schema.names
    assert set(table.column("map").to_pylist()) <= set(world.road.names)

    scenarios = recording_to_scenarios(folder)
    assert len(scenarios) == 4  # 2 worlds x 2 episodes
    for sc in scenarios:
        w, e = sc.metadata["world"], sc.metadata["episode"]
        rows = [k for k, p in enumerate(poses) if p[3][w] == e]
        xs = np.array([poses[k][0][w, 0] for k in rows])
        ys = np.array([poses[k][1][w, 0] for k in rows])
        active = np.array([poses[k][2][w, 0] for k in rows])
        assert sc.num_steps == len(rows) and np.array_equal(sc.valid[0], active)
        np.testing.assert_array_equal(sc.x[0][active], xs[active].astype(np.float64))
        np.testing.assert_array_equal(sc.y[0][active], ys[active].astype(np.float64))
        map_index = list(world.road.names).index(sc.metadata["map"])
        assert sc.map.num_lanes == int(world.road.lane_valid[map_index].sum())
    with pytest.raises(ScenarioError, match="already holds a recording"):
        RolloutRecorder(folder, world)


def test_several_controlled_slots_each_a_track(tmp_path):
    world, summary, poses = run_recorded(tmp_path, 4, controlled=2, respawn=True)
    scenarios = recording_to_scenarios(tmp_path / "rec")
    assert summary["rows"] == 4 * 2 * 2
    active_rows = sum(int(p[2].sum()) for p in poses)
    assert sum(int(sc.valid.sum()) for sc in scenarios) == active_rows
    for sc in scenarios:
        # One track per slot, plus one per agent that entered again after its episode ended.
        assert {t.split("-")[0] for t in sc.track_ids} <= {"slot0", "slot1"}
        assert sc.track_ids[0] == "slot0" and sc.num_tracks >= 2


def fuyao(*args, cwd):
    proc = subprocess.run(
        [sys.executable, "-m", "fuyao.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    assert proc.returncode == 0, f"fuyao {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_cli_data_record_and_import(tmp_path):
    out = json.loads(
        fuyao(
            "data",
            "record",
            "--preset",
            "smoke",
            "--decisions",
            "3",
            "--sim.worlds",
            "2",
            "--out",
            "rec",
            "--json",
            cwd=tmp_path,
        ).stdout
    )
    assert out["rows"] == 6 and out["parts"] == 1 and (tmp_path / "rec" / "part-00000.parquet").is_file()
    back = json.loads(fuyao("data", "import", "rec", "--out", "scenarios", "--json", cwd=tmp_path).stdout)
    assert back["scenarios"] == 2 and back["tracks"] == 2
    files = sorted((tmp_path / "scenarios").glob("*.parquet"))
    assert len(files) == 2 and read_scenario(files[0]).source == "fuyao-recording"
    if DATA.is_dir():
        proc = fuyao("data", "import", str(DATA / "argoverse2"), "--out", "av2", cwd=tmp_path)
        assert "skipped" in proc.stderr and (tmp_path / "av2").is_dir()
        assert read_scenario(next((tmp_path / "av2").glob("*.parquet"))).num_tracks == 58
    bad = subprocess.run(
        [sys.executable, "-m", "fuyao.cli", "data", "import", "missing.xml", "--out", "x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert bad.returncode == 2 and "no such file" in bad.stderr
