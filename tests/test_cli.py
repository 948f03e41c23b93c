"""Every `fuyao` command, run as a user would, in a subprocess, with the tiny `smoke` preset."""

import json
import subprocess
import sys

import pytest


def fuyao(*args, cwd=None, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "fuyao.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"fuyao {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_help_lists_commands():
    out = fuyao("--help").stdout
    for name in ("run", "render", "maps", "bench sim", "bench traffic"):
        assert name in out


def test_bench_sim_json():
    out = fuyao("bench", "sim", "--preset", "smoke", "--worlds", "4", "--decisions", "1", "--repeats", "1", "--json")
    result = json.loads(out.stdout)
    for key in ("vehicle_ticks_per_s", "decisions_per_s", "worlds", "vehicles", "device"):
        assert key in result
    assert result["worlds"] == 4 and result["device"] == "cpu" and result["vehicle_ticks_per_s"] > 0


def test_bench_traffic_json():
    out = fuyao("bench", "traffic", "--preset", "smoke", "--worlds", "4", "--decisions", "3", "--json")
    result = json.loads(out.stdout)
    assert result["background_vehicle_hours"] > 0
    assert result["background_crashes_per_vehicle_hour"] >= 0


def test_render_writes_a_gif(tmp_path):
    path = tmp_path / "episode.gif"
    fuyao("render", "--preset", "smoke", "--out", str(path), "--max-decisions", "3")
    assert path.exists() and path.stat().st_size > 1000


def test_maps_writes_a_png(tmp_path):
    path = tmp_path / "maps.png"
    fuyao("maps", "--preset", "smoke", "--out", str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_run_main_job(tmp_path):
    fuyao("run", "--preset", "smoke", "--out", str(tmp_path / "main"), "--worlds", "8")
    summary = json.loads((tmp_path / "main" / "summary.json").read_text())
    assert summary["throughput"]["vehicle_ticks_per_s"] > 0
    assert (tmp_path / "main" / "episode.gif").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (("bench", "sim", "--preset", "nope"), "--preset: got 'nope'; allowed:"),
        (("bench", "sim", "--preset", "smoke", "--sim.road.lanes", "0"), "HighwayConfig.lanes: got 0"),
        (("bench", "sim", "--preset", "smoke", "--sim.controlled", "9"), "SimConfig.controlled: got 9"),
        (("teleport",), "unknown command 'teleport'"),
    ],
)
def test_bad_input_is_a_clear_error(args, expected):
    proc = fuyao(*args, check=False)
    assert proc.returncode == 2
    assert expected in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
