"""SUMO beside Fuyao's city: the same grid (junctions, block length, lanes per direction, speed limit, traffic
lights) built by SUMO's own `netgenerate`, random trips between boundary streets (`randomTrips.py`, fringe
factor 1000) at a rate that keeps about as many vehicles running as one Fuyao world holds, stepped at the same
tick. SUMO's `UPS` (vehicle updates per second, as it prints it under `--duration-log.statistics`) is the figure
that `vehicle_ticks_per_s` compares with: both count every running vehicle, every tick.

SUMO comes from the `eclipse-sumo` package (`pip install 'fuyao[sumo]'`); nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from fuyao.roads.city import CityConfig

CALIBRATION_S = 30.0  # s simulated in the run that sets the measured run's length
TRIP_S = 86.0  # s, a trip's mean duration on the 3 x 3 grid at 50 km/h (SUMO's own statistics), sets the rate


def sumo_home() -> Path:
    try:
        import sumo  # the eclipse-sumo wheel
    except ImportError as err:
        raise RuntimeError("SUMO is not installed: pip install 'fuyao[sumo]' (the eclipse-sumo package)") from err
    return Path(sumo.SUMO_HOME)


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({done.returncode}): {done.stderr[-500:]}")
    return done.stdout + done.stderr


def build_sumo_grid(city: CityConfig, work: Path, env: dict, home: Path) -> Path:
    """`netgenerate` grid like `city` (all junctions signalised; `--no-turnarounds`, as the city has no U-turns)."""
    net = work / "grid.net.xml"
    _run(
        [
            str(home / "bin" / "netgenerate"),
            "--grid",
            f"--grid.x-number={city.cols}",
            f"--grid.y-number={city.rows}",
            f"--grid.length={city.block_m}",
            f"--grid.attach-length={city.stub_m}",
            f"--default.lanenumber={city.lanes}",
            f"--default.speed={city.speed_limit}",
            "--default-junction-type=traffic_light",
            "--no-turnarounds=true",
            f"--output-file={net}",
        ],
        work,
        env,
    )
    return net


def measure_sumo(city: CityConfig, vehicles: int, sim_hz: int, seconds: float = 30.0, seed: int = 0) -> dict:
    """SUMO's vehicle updates per second on `city`'s grid with about `vehicles` running, stepped at `sim_hz`,
    for about `seconds` of wall-clock time (a short calibration run sets the simulated duration)."""
    home = sumo_home()
    env = dict(os.environ, SUMO_HOME=str(home))
    with tempfile.TemporaryDirectory(prefix="fuyao-sumo-") as tmp:
        work = Path(tmp)
        net = build_sumo_grid(city, work, env, home)

        def run(end_s: float) -> tuple[float, float, float]:
            trips = work / "trips.xml"
            period = TRIP_S / max(vehicles, 1)
            _run(
                [
                    sys.executable,
                    str(home / "tools" / "randomTrips.py"),
                    "-n",
                    str(net),
                    "--fringe-factor=1000",
                    f"--period={period}",
                    f"--end={end_s}",
                    f"--seed={seed}",
                    "--validate",
                    "-o",
                    str(trips),
                ],
                work,
                env,
            )
            summary = work / "summary.xml"
            t0 = time.perf_counter()
            out = _run(
                [
                    str(home / "bin" / "sumo"),
                    "-n",
                    str(net),
                    "-r",
                    str(trips),
                    f"--step-length={1.0 / sim_hz}",
                    f"--end={end_s}",
                    "--no-step-log",
                    "--duration-log.statistics=true",
                    f"--summary-output={summary}",
                    f"--seed={seed}",
                ],
                work,
                env,
            )
            wall = time.perf_counter() - t0
            ups = re.search(r"UPS:\s*([0-9.]+)", out)
            running = [int(s.get("running")) for s in ET.parse(summary).getroot().iter("step")]
            # Mean running over the second half (the first fills the network).
            half = running[len(running) // 2 :]
            return float(ups.group(1)) if ups else float("nan"), sum(half) / max(len(half), 1), wall

        _, _, wall = run(CALIBRATION_S)
        end_s = max(CALIBRATION_S, CALIBRATION_S * seconds / max(wall, 1e-3))
        ups, running, wall = run(end_s)
    version = _run([str(home / "bin" / "sumo"), "--version"], Path("."), env).splitlines()[0]
    return {
        "sumo_ups": ups,
        "sumo_mean_running": running,
        "sumo_sim_s": end_s,
        "sumo_wall_s": wall,
        "sumo_step_s": 1.0 / sim_hz,
        "sumo_grid": f"{city.rows} x {city.cols} junctions, {city.block_m} m blocks, {city.lanes} lanes, all signalised",
        "sumo_version": version,
    }


__all__ = ["measure_sumo", "sumo_home"]
