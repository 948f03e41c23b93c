"""`fuyao bench transfer`: a Fuyao checkpoint driven in highway-env's own environment (needs fuyao[compare])."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("highway_env")

from fuyao.perf.transfer import _episodes, measure_transfer  # noqa: E402
from fuyao.pilots.networks import ActorCritic  # noqa: E402
from fuyao.train.checkpoint import checkpoint_payload  # noqa: E402
from fuyao.train.config import TRAIN_PRESETS  # noqa: E402


def _checkpoint(tmp_path, bias_action: int):
    """An untrained highway-v0 network whose actor always prefers `bias_action`."""
    cfg = TRAIN_PRESETS["highway-v0"]
    model = ActorCritic(cfg.sim, cfg.policy)
    with torch.no_grad():
        last = model.actor[-1]
        last.weight.zero_()
        last.bias.zero_()
        last.bias[bias_action] = 5.0
    path = tmp_path / f"always_{bias_action}.pt"
    torch.save(checkpoint_payload(cfg, model, None, {}), path)
    return path


class _FakeEnv:
    """Three decisions; crashes on the second of an odd seed."""

    def reset(self, seed):
        self.seed, self.t = seed, 0
        return np.zeros((5, 5), np.float32), {}

    def step(self, action):
        self.t += 1
        crashed = self.seed % 2 == 1 and self.t == 2
        info = {"speed": 20.0 + action, "crashed": crashed}
        return np.zeros((5, 5), np.float32), 1.0, crashed, self.t == 3, info


def test_episode_reduction_counts_crashes_speed_and_return():
    rows = _episodes(_FakeEnv(), lambda obs: 4, [0, 1])
    assert [r["crashed"] for r in rows] == [False, True]
    assert [r["length"] for r in rows] == [3, 2]
    assert [r["return"] for r in rows] == [3.0, 2.0]
    assert rows[0]["speed_sum"] == pytest.approx(72.0)


@pytest.mark.slow
def test_a_pilot_that_always_speeds_up_drives_fast_in_highway_env(tmp_path):
    fast = measure_transfer("highway-v0", _checkpoint(tmp_path, 3), episodes=1, seed=0, processes=1)
    slow = measure_transfer("highway-v0", _checkpoint(tmp_path, 4), episodes=1, seed=0, processes=1)
    assert set(fast) >= {"env", "episodes", "crash_rate", "mean_speed", "mean_return"}
    assert fast["episodes"] == 1 and 0.0 <= fast["crash_rate"] <= 1.0
    # FASTER every decision reaches highway-env's top target speed (30 m/s); SLOWER its lowest (20 m/s).
    assert fast["mean_speed"] > 27.0 > 22.0 > slow["mean_speed"]


def test_cli_refuses_an_env_it_does_not_mirror_and_a_missing_pilot(tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "fuyao.cli", "bench", "transfer", *args], capture_output=True, text=True
        )

    bad = run("racetrack-v0", "--pilot", str(_checkpoint(tmp_path, 1)))
    assert bad.returncode == 2 and "racetrack-v0" in bad.stderr and "highway-v0" in bad.stderr
    missing = run("highway-v0", "--pilot", str(tmp_path / "nope.pt"))
    assert missing.returncode == 2 and "nope.pt" in missing.stderr


@pytest.mark.slow
def test_cli_prints_one_json_object(tmp_path):
    path = _checkpoint(tmp_path, 1)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fuyao.cli",
            "bench",
            "transfer",
            "highway-v0",
            "--pilot",
            str(path),
            "--episodes",
            "1",
            "--processes",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout)
    assert out["env"] == "highway-v0" and out["episodes"] == 1 and "machine" in out
