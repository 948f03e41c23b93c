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
    for name in ("run", "train", "eval", "render", "maps", "bench sim", "bench traffic", "bench train"):
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
    out = tmp_path / "main"
    # The main job trains for a decision budget (not seconds), so its pilot does not depend on the machine's speed.
    fuyao("run", "--preset", "smoke", "--out", str(out), "--steps", "300", "--eval-episodes", "6")
    summary = json.loads((out / "summary.json").read_text())
    assert 300 <= summary["training"]["decisions"] < 300 + 8 * 2 * 8  # one iteration (8 worlds x 2 agents x 8) over
    comparison = summary["evaluation"]["comparison"]
    assert set(comparison["score"]) >= {"a", "b", "diff", "ci_low", "ci_high"}
    assert (out / "report" / "index.html").exists()
    assert (out / "train" / "checkpoints" / "last.pt").exists()


def test_train_smoke_writes_checkpoints_logs_and_config(tmp_path):
    out = tmp_path / "run"
    fuyao("train", "--preset", "smoke", "--out", str(out))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["decisions"] >= 512 and summary["eval_episodes"] > 0
    assert {p.name for p in (out / "checkpoints").iterdir()} >= {"best.pt", "last.pt"}
    assert json.loads((out / "config.json").read_text())["preset"] == "smoke"
    assert any((out / "tensorboard").iterdir())
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows and all("decisions_per_s" in r for r in rows)


def test_train_bc_and_resume(tmp_path):
    out = tmp_path / "bc"
    fuyao("train", "--preset", "smoke", "--algo", "bc", "--out", str(out), "--steps", "256", "--eval-every", "0")
    assert "bc_accuracy" in (out / "metrics.jsonl").read_text()
    proc = fuyao("train", "--out", str(out), "--resume", "--steps", "512", "--eval-every", "0")
    assert "resumed from" in proc.stderr
    assert json.loads((out / "summary.json").read_text())["decisions"] >= 512


def test_train_refuses_bad_input(tmp_path):
    proc = fuyao("train", "--preset", "nope", check=False)
    assert proc.returncode == 2 and "--preset" in proc.stderr and "smoke" in proc.stderr
    proc = fuyao("train", "--preset", "smoke", "--out", str(tmp_path / "empty"), "--resume", check=False)
    assert proc.returncode == 2 and "nothing to resume from" in proc.stderr
    proc = fuyao("train", "--preset", "smoke", "--ppo.gamma", "1.5", check=False)
    assert proc.returncode == 2 and "PPOConfig.gamma" in proc.stderr


def test_bench_train_json(tmp_path):
    out = fuyao(
        "bench", "train", "--preset", "smoke", "--time-limit", "20", "--eval-episodes", "6", "--eval-every", "1",
        "--out", str(tmp_path / "b"), "--json",
    )  # fmt: skip
    result = json.loads(out.stdout)
    for key in ("time_to_target_s", "decisions", "reached", "device"):
        assert key in result
    assert isinstance(result["reached"], bool) and result["decisions"] > 0
    out = fuyao(
        "bench", "train", "--preset", "smoke", "--throughput", "--iterations", "2", "--out", str(tmp_path / "t"),
        "--json",
    )  # fmt: skip
    assert json.loads(out.stdout)["decisions_per_s"] > 0


@pytest.mark.slow
def test_killed_training_resumes_from_its_last_checkpoint(tmp_path):
    import os
    import signal
    import time

    out = tmp_path / "killed"
    args = [sys.executable, "-m", "fuyao.cli", "train", "--preset", "smoke", "--out", str(out), "--steps", "100000",
            "--checkpoint-every", "1", "--eval-every", "0"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(list((out / "checkpoints").glob("iter_*.pt"))) < 2:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    saved = sorted((out / "checkpoints").glob("iter_*.pt"))
    assert saved, "no checkpoint was written before the kill"
    killed_at = int(saved[-1].stem.split("_")[1])
    done = fuyao("train", "--out", str(out), "--resume", "--steps", str(512 * (killed_at + 2)), "--eval-every", "0")
    assert "resumed from" in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iteration"] > killed_at


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
