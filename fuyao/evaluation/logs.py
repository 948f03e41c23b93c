"""Closed-loop evaluation on logged scenarios (`fuyao eval PILOT --logs DIR`): the ego driven by the pilot, the
logged objects replayed (non-reactive) or following their logged paths with IDM (reactive,
`fuyao.sim.replay`), every scenario a world of one batch.

Each scenario's episode is its log: it ends when the log does (whole decisions), or earlier when the ego
crashes, leaves the road or arrives. Metrics are the suites' (`fuyao.evaluation.metrics`) plus the log-based
terms:

- `ade_m`, `fde_m`: the ego's mean and final distance from the logged ego, at the end of every decision it
  drove while the log holds the ego (nuPlan's and Waymax's displacement errors; a crash ends the comparison);
- `expert_progress_m`: route cost-to-go the logged ego covered over the same decisions;
- `progress_vs_expert`: the ego's route progress over the expert's, clipped to [0, 1] (nuPlan's
  `ego_progress_along_expert_route`); 1 where the expert moved less than `MIN_EXPERT_PROGRESS_M`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fuyao.data.replay import ReplayBatch, ReplayConfig, build_replay
from fuyao.data.scenario import ScenarioError, is_scenario_file, read_scenario
from fuyao.evaluation.metrics import EpisodeSums, episode_metrics, fold, summarize
from fuyao.sim.geometry import vehicle_pose_xy
from fuyao.sim.replay import LOG
from fuyao.sim.world import World

MIN_EXPERT_PROGRESS_M = 2.0
LOG_ONLY = ("ade_m", "fde_m", "progress_vs_expert", "expert_progress_m")  # the log-based terms, beside the suites'


@dataclass(frozen=True)
class LogEvalResult:
    pilot: str
    reactive: bool
    names: tuple[str, ...]
    metrics: dict[str, np.ndarray]  # per scenario [W]
    summary: dict[str, float]
    build_s: float
    wall_s: float
    summary_counts: dict[str, int]

    def to_json(self) -> dict:
        per = [
            {"scenario": name, **{k: float(v[i]) for k, v in self.metrics.items() if k in LOG_KEYS}}
            for i, name in enumerate(self.names)
        ]
        return {
            "pilot": self.pilot,
            "logs": len(self.names),
            "agents": "reactive" if self.reactive else "log",
            "summary": self.summary,
            "scenarios": per,
            "build": self.summary_counts,
            "build_s": self.build_s,
            "wall_s": self.wall_s,
        }


LOG_KEYS = (
    "collision",
    "collision_at_fault",
    "offroad",
    "red_light_runs",
    "progress_m",
    "expert_progress_m",
    "progress_vs_expert",
    "ade_m",
    "fde_m",
    "comfort",
    "duration_s",
)


def read_scenarios(path: str | Path) -> list:
    """Every scenario file (`fuyao data import`'s output) in `path`, a file or a folder (sorted by name)."""
    return [read_scenario(f) for f in scenario_files(path)]


def scenario_files(path: str | Path) -> list[Path]:
    """The scenario files in `path`: the file itself, or a folder's, sorted by name."""
    p = Path(path)
    if p.is_file():
        files = [p]
    elif p.is_dir():
        files = sorted(f for f in p.rglob("*.parquet") if is_scenario_file(f))
    else:
        raise ScenarioError(f"{path}: no such file or folder of scenarios")
    if not files:
        raise ScenarioError(f"{path}: no scenario files (Parquet written by `fuyao data import`) in this folder")
    return files


def ego_pose(batch_world: World, state) -> tuple[torch.Tensor, torch.Tensor]:
    """The ego's `(x, y) [W]`: its logged pose where the log drives it, else its lane pose."""
    v = state.vehicles
    x, y, _ = vehicle_pose_xy(batch_world.road, state.map_id, v.lane[:, :1], v.s[:, :1], v.d[:, :1], v.psi[:, :1])
    rp = state.replay
    k = rp.t.clamp(max=rp.x.shape[2] - 1)
    log_x = rp.x[:, 0].gather(1, k.unsqueeze(1))
    log_y = rp.y[:, 0].gather(1, k.unsqueeze(1))
    from_log = rp.mode[:, :1] == LOG
    return torch.where(from_log, log_x, x).squeeze(1), torch.where(from_log, log_y, y).squeeze(1)


def run_logs(make_pilot, batch: ReplayBatch, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Drive every logged scenario of `batch` once; per-scenario metrics `[W]`."""
    world = World(batch.cfg, device=device, road=batch.road, spawns=False)
    pilot = make_pilot(world)
    cfg = batch.cfg
    tpd = cfg.ticks_per_decision
    w = cfg.worlds
    needs_obs = getattr(pilot, "needs_observation", True)
    budget = ((batch.log_ticks - 1) // tpd).clamp(min=1)  # whole decisions each log covers
    state = batch.state
    sums = EpisodeSums.zeros(w, world.device, 1.0 / cfg.decision_hz)
    on = torch.ones(w, dtype=torch.bool, device=world.device)
    disp_sum = torch.zeros(w, device=world.device)
    disp_n = torch.zeros(w, device=world.device)
    fde = torch.zeros(w, device=world.device)
    with torch.inference_mode():
        for t in range(cfg.decisions_per_episode):
            counting = on & (t < budget)
            obs = world.observe(state) if needs_obs else None
            result = world.step(state, pilot.act(obs, state))
            sums = fold(sums, result.info, counting.unsqueeze(1))
            ex, ey = ego_pose(world, result.final_state)
            k = torch.full((w, 1), (t + 1) * tpd, dtype=torch.int64, device=world.device)
            k = k.clamp(max=batch.ego_x.shape[1] - 1)
            lx, ly = batch.ego_x.gather(1, k).squeeze(1), batch.ego_y.gather(1, k).squeeze(1)
            seen = counting & batch.ego_valid.gather(1, k).squeeze(1) & result.info["active"][:, 0]
            dist = torch.hypot(ex - lx, ey - ly)
            disp_sum = disp_sum + torch.where(seen, dist, 0.0)
            disp_n = disp_n + seen.float()
            fde = torch.where(seen, dist, fde)
            on = counting & ~result.world_done
            state = result.state
            if not bool(on.any()):
                break
        m = episode_metrics(sums)
    m["ade_m"] = torch.where(disp_n > 0, disp_sum / disp_n.clamp(min=1.0), float("nan"))
    m["fde_m"] = torch.where(disp_n > 0, fde, float("nan"))
    m["expert_progress_m"] = batch.expert_progress_m
    expert = batch.expert_progress_m
    ratio = (m["progress_m"] / expert.clamp(min=1e-3)).clamp(0.0, 1.0)
    m["progress_vs_expert"] = torch.where(expert < MIN_EXPERT_PROGRESS_M, 1.0, ratio)
    return m


def evaluate_logs(
    make_pilot,
    scenarios: list,
    sim,
    replay: ReplayConfig | None = None,
    device: torch.device | str = "cpu",
    pilot_name: str = "pilot",
) -> LogEvalResult:
    """Build the replay batch (one world per scenario, on `sim`'s spaces) and drive it once."""
    replay = replay or ReplayConfig()
    t0 = time.perf_counter()
    batch = build_replay(scenarios, sim, replay, device)
    t1 = time.perf_counter()
    m = run_logs(make_pilot, batch, device)
    summary = summarize({k: v for k, v in m.items() if k not in LOG_ONLY})
    for key in LOG_ONLY:
        summary[key] = float(torch.nanmean(m[key].float()).item()) if m[key].numel() else float("nan")
    host = {k: v.float().cpu().numpy() for k, v in m.items()}
    return LogEvalResult(
        pilot=pilot_name,
        reactive=replay.reactive,
        names=batch.names,
        metrics=host,
        summary=summary,
        build_s=t1 - t0,
        wall_s=time.perf_counter() - t0,
        summary_counts=batch.summary,
    )
