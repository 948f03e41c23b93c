"""The `fuyao` command.

    fuyao run                 the main job: train the default pilot, evaluate it beside the rule-based one, report
    fuyao render              write a top-down GIF/MP4 of an episode
    fuyao bench sim           vehicle-ticks/s and decisions/s over batch sizes
    fuyao bench traffic       background crashes per vehicle-hour
    fuyao bench replay        logged scenarios replayed in one batch: build time, agent-ticks/s
    fuyao maps                draw a preset's maps (or an imported map: --sim.map PATH) to a PNG
    fuyao maps import         import a SUMO network, OpenStreetMap, Lanelet2 or OpenDRIVE file as a map file
    fuyao data import         convert logs (Argoverse 2, CommonRoad, highD, ScenarioNet) to Fuyao scenarios
    fuyao data record         record a rollout to partitioned Parquet

Every command takes `--preset NAME` and any simulation field as `--sim.FIELD VALUE` (`--sim.worlds 4096`,
`--sim.road.lanes 4`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import tyro
from rich.console import Console
from rich.table import Table

from fuyao.presets import PRESETS
from fuyao.roads.lanegraph import MapError
from fuyao.sim.config import ConfigError, MapKind, SimConfig
from fuyao.train.precision import Precision

console = Console(stderr=True)

Device = Literal["auto", "cpu", "cuda"]


def resolve_device(name: str) -> torch.device:
    """The one place that names CUDA: library code takes its device from its inputs."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device: got 'cuda' but no CUDA device is available; allowed here: auto, cpu")
    return torch.device(name)


@dataclass
class RenderArgs:
    """Write a top-down video of one episode driven by the rule-based pilot."""

    preset: str = "highway"
    out: Path = Path("runs/episode.gif")
    seed: int = 0
    world_index: int = 0
    max_decisions: int | None = None
    fps: float | None = None
    """Frames per second of the video (default: real time)."""
    frames_per_decision: int = 1
    """Frames drawn per decision; more than 1 interpolates between decisions for a smoother video."""
    device: Device = "cpu"
    sim: SimConfig = field(default_factory=SimConfig)


@dataclass
class BenchSimArgs:
    """Simulation throughput over batch sizes."""

    preset: str = "highway-v0"
    worlds: tuple[int, ...] = (64, 256, 1024, 4096)
    decisions: int = 3
    repeats: int = 5
    device: Device = "cpu"
    compile: bool = False
    json: bool = False
    threads: int | None = None
    """torch CPU threads (default: torch's choice)."""
    highway_env_seconds: float = 0.0
    """Also measure highway-env's highway-v0 for this many seconds in the same run and report the ratio
    (needs `pip install 'fuyao[compare]'`)."""
    sumo_seconds: float = 0.0
    """Also run SUMO on the same grid (city maps) for about this many seconds in the same run and report its
    vehicle updates per second beside Fuyao's (needs `pip install 'fuyao[sumo]'`)."""
    sim: SimConfig = field(default_factory=SimConfig)


@dataclass
class BenchTrafficArgs:
    """Background traffic safety: crashes per vehicle-hour with the rule-based pilot driving the egos."""

    preset: str = "highway"
    worlds: int = 256
    decisions: int = 120
    # Simulated minutes instead of `decisions` (the city's bar is read after 10 minutes).
    sim_minutes: float | None = None
    seed: int = 0
    device: Device = "cpu"
    json: bool = False
    sim: SimConfig = field(default_factory=SimConfig)


@dataclass
class BenchReplayArgs:
    """Logged scenarios replayed in one batch: cold build (maps, projection) and agent-ticks/s."""

    logs: tyro.conf.Positional[Path]
    """Scenario files (`fuyao data import`'s output) or any log `fuyao data import` reads."""
    scenarios: int = 1024
    """Worlds: the scenarios given, cycled up to this many."""
    vehicles: int = 32
    log_agents: bool = False
    """Replay the logged objects exactly (else they are reactive: their logged paths with IDM speed control)."""
    compile: Literal["none", "tick"] = "tick"
    """`tick`: the world's tick compiled (`World(compile="tick")`), as training runs it."""
    repeats: int = 3
    device: Device = "cpu"
    json: bool = False


@dataclass
class RunArgs:
    """The main job: train the default highway pilot, evaluate it beside the rule-based pilot, write a report."""

    preset: str = "highway"
    out: Path = Path("runs/main")
    steps: int | None = None
    """Decisions of training, BC warm start included (default: the preset's, 4.5M for `highway`). The budget
    is counted in decisions, not seconds, so the pilot does not depend on the machine's speed."""
    time_budget: float | None = None
    """Optional cap in seconds of training (a pilot cut short by it is weaker; the default has none)."""
    eval_episodes: int = 400
    """Episodes of the preset's evaluation suite (scaled; the same seeds for both pilots)."""
    device: Device = "auto"
    sim: tyro.conf.Suppress[SimConfig] = field(default_factory=SimConfig)


@dataclass
class BenchTrainArgs:
    """Time to target (learned pilot matches the rule-based one) and training throughput."""

    preset: str = "highway"
    time_limit: float = 600.0
    """Seconds of training before giving up on the target."""
    eval_episodes: int = 200
    eval_every: int = 12
    """Iterations between evaluations against the target (each 200-episode evaluation takes ~17 s on 2 cores,
    time that counts against the target; 12 iterations of the highway preset are ~390k decisions)."""
    throughput: bool = False
    """Measure training decisions/s with every vehicle driven by the policy (self-play) instead."""
    iterations: int = 6
    """Throughput: PPO iterations to time (the first is not counted)."""
    worlds: int | None = None
    """Throughput: worlds (default: the preset's)."""
    encoder: Literal["mlp", "pooled"] | None = None
    """Throughput: network encoder (default: the preset's)."""
    hidden: int | None = None
    """Throughput: network width (default: the preset's)."""
    respawn: bool | None = None
    """Agents out of their episode enter again at once (`SimConfig.respawn`; default: the preset's for time to
    target, on for --throughput, where every vehicle is the policy's)."""
    sb3_timesteps: int = 0
    """Also time Stable-Baselines3 PPO on highway-fast-v0 for this many timesteps (needs fuyao[compare])."""
    compile: bool | None = None
    """torch.compile the world's tick and the loss (default: as the preset; the `highway` preset compiles)."""
    precision: Precision | None = None
    """The network's matrix multiplies (default: as the preset; see `fuyao.train.precision`)."""
    device: Device = "auto"
    threads: int | None = None
    out: Path = Path("runs/bench-train")
    json: bool = False
    seed: int = 0
    sim: tyro.conf.Suppress[SimConfig] = field(default_factory=SimConfig)


@dataclass
class BenchTransferArgs:
    """Drive a Fuyao pilot in highway-env's own environment: crash rate, speed and return over fixed seeds."""

    env: tyro.conf.Positional[str]
    """highway-env id the pilot's preset mirrors (`highway-v0`, `merge-v0`, `exit-v0`)."""
    pilot: Path = Path("runs/v0/checkpoints/best.pt")
    """A Fuyao checkpoint whose observation and actions mirror ENV."""
    episodes: int = 200
    seed: int = 10_000
    """Episode k uses `env.reset(seed=seed + k)`."""
    processes: int | None = None
    """highway-env processes (default: one per core)."""
    sb3_seconds: float = 0.0
    """Also train an SB3 DQN on highway-env for this many seconds and drive it on the same seeds."""
    json: bool = False


@dataclass
class MapsArgs:
    """Draw every map of a preset's map bank (or an imported map, `--sim.map PATH`) into one PNG."""

    preset: str = "highway"
    out: Path = Path("runs/maps.png")
    sim: SimConfig = field(default_factory=SimConfig)


@dataclass
class MapsImportArgs:
    """Import a SUMO network (.net.xml), OpenStreetMap or Lanelet2 (.osm) or OpenDRIVE (.xodr) file as a Fuyao map
    file."""

    input: tyro.conf.Positional[Path]
    """The file to import (OpenStreetMap .osm and .xodr go through SUMO's netconvert: `pip install 'fuyao[maps]'`;
    an .osm holding lanelets is read as Lanelet2)."""
    out: str | None = None
    """Map file to write (`.npz` is added if missing; default: runs/maps/<input name>.npz). Use it anywhere
    as `--sim.map PATH`."""
    cache: bool = True
    """Reuse an earlier import of the same file content (cached under $FUYAO_CACHE_DIR, ~/.cache/fuyao)."""
    json: bool = False
    """Print one JSON summary (what was built, skipped and noted) on stdout."""


def _flag_value(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _parse_train(argv: list[str], prog: str):
    """Training flags on top of a training preset; with `--resume`, on top of the run's saved config."""
    from fuyao.configio import from_dict
    from fuyao.train.config import TRAIN_PRESETS, TrainConfig

    name = _flag_value(argv, "--preset") or "highway"
    if name not in TRAIN_PRESETS:
        raise ConfigError(f"--preset: got {name!r}; allowed: {', '.join(sorted(TRAIN_PRESETS))}")
    default = TRAIN_PRESETS[name]
    out = Path(_flag_value(argv, "--out") or default.out)
    saved = out / "config.json"
    if "--resume" in argv and saved.is_file() and _flag_value(argv, "--preset") is None:
        try:
            default = from_dict(TrainConfig, json.loads(saved.read_text()), str(saved))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{saved}: not valid JSON ({err})") from None
    return tyro.cli(TrainConfig, args=argv, default=default, prog=prog, config=(tyro.conf.EnumChoicesFromValues,))


def _parse(cls, argv: list[str], prog: str):
    """Pick the preset first, then let tyro apply the flags on top of it."""
    if "preset" not in {f.name for f in dataclasses.fields(cls)}:
        return tyro.cli(cls, args=argv, prog=prog, config=(tyro.conf.EnumChoicesFromValues,))
    name = cls.preset if isinstance(getattr(cls, "preset", None), str) else "highway"
    for i, arg in enumerate(argv):
        if arg == "--preset" and i + 1 < len(argv):
            name = argv[i + 1]
        elif arg.startswith("--preset="):
            name = arg.split("=", 1)[1]
    if name not in PRESETS:
        raise ConfigError(f"--preset: got {name!r}; allowed: {', '.join(sorted(PRESETS))}")
    default = cls(preset=name, sim=PRESETS[name])
    return tyro.cli(cls, args=argv, default=default, prog=prog, config=(tyro.conf.EnumChoicesFromValues,))


def _sim_with(args, **overrides) -> SimConfig:
    return dataclasses.replace(args.sim, **overrides)


def cmd_render(args: RenderArgs) -> dict:
    from fuyao.pilots import RuleBasedPilot
    from fuyao.sim.world import World
    from fuyao.viz.render import render_episode

    if not 0 <= args.world_index < args.sim.worlds:
        raise ConfigError(f"--world-index: got {args.world_index}; allowed: 0 to {args.sim.worlds - 1} (--sim.worlds)")
    world = World(args.sim, device=resolve_device(args.device))
    pilot = RuleBasedPilot(world)
    summary = render_episode(
        world,
        pilot,
        args.out,
        seed=args.seed,
        world_index=args.world_index,
        max_decisions=args.max_decisions,
        fps=args.fps,
        frames_per_decision=args.frames_per_decision,
    )
    console.print(f"[green]wrote[/green] {args.out}  {summary}")
    return summary


def _print_sim_table(rows: list[dict]) -> None:
    table = Table(title="fuyao bench sim")
    for col in ("device", "worlds", "vehicles", "vehicle-ticks/s", "decisions/s", "ms/decision", "state/world", "fits"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["device"],
            str(r["worlds"]),
            str(r["vehicles"]),
            f"{r['vehicle_ticks_per_s']:,.0f}",
            f"{r['decisions_per_s']:,.0f}",
            f"{1000 * r['decision_s_median']:.1f}",
            f"{r['state_bytes_per_world'] / 1024:,.1f} KiB",
            f"{r['max_worlds_fit']:,} worlds",
        )
    console.print(table)
    last = rows[-1]
    console.print(
        f"fits: {last['free_memory_bytes'] / 2**30:,.1f} GiB free ({last['free_memory_source']}) / "
        f"{last['bytes_per_world'] / 1024:,.1f} KiB per world ({last['bytes_per_world_basis']})"
    )


def cmd_bench_sim(args: BenchSimArgs) -> dict:
    from fuyao.perf.bench_sim import sweep

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    rows = sweep(args.sim, args.worlds, device, decisions=args.decisions, repeats=args.repeats, compile=args.compile)
    best = max(rows, key=lambda r: r["vehicle_ticks_per_s"])
    out = dict(best, preset=args.preset)
    if len(rows) > 1:
        out["sweep"] = rows
    if args.highway_env_seconds > 0:
        from fuyao.perf.highway_env_ref import measure_highway_env

        ref = measure_highway_env("highway-v0", seconds=args.highway_env_seconds)
        out["highway_env"] = ref
        out["speedup_vs_highway_env"] = out["vehicle_ticks_per_s"] / ref["vehicle_ticks_per_s"]
        if not args.json:
            console.print(
                f"highway-env {ref['env_id']}: {ref['vehicle_ticks_per_s']:,.0f} vehicle-ticks/s, "
                f"{ref['decisions_per_s']:.1f} decisions/s -> Fuyao is {out['speedup_vs_highway_env']:,.0f}x faster"
            )
    if args.sumo_seconds > 0:
        from fuyao.perf.bench_sumo import measure_sumo

        if args.sim.map is not MapKind.CITY:
            shown = args.sim.map.value if isinstance(args.sim.map, MapKind) else str(args.sim.map)
            raise ConfigError(f"--sumo-seconds: needs a city map (--sim.map city); got --sim.map {shown}")
        ref = measure_sumo(args.sim.city, args.sim.vehicles, args.sim.sim_hz, seconds=args.sumo_seconds)
        out.update(ref)
        out["speedup_vs_sumo"] = out["vehicle_ticks_per_s"] / ref["sumo_ups"]
        if not args.json:
            console.print(
                f"SUMO {ref['sumo_version']}: {ref['sumo_ups']:,.0f} vehicle updates/s with "
                f"{ref['sumo_mean_running']:.0f} running -> Fuyao is {out['speedup_vs_sumo']:,.1f}x"
            )
    if args.json:
        print(json.dumps(out))
    else:
        _print_sim_table(rows)
    return out


def cmd_bench_replay(args: BenchReplayArgs) -> dict:
    from fuyao.data.importers import import_any
    from fuyao.data.scenario import ScenarioError, is_scenario_file
    from fuyao.evaluation.logs import read_scenarios
    from fuyao.perf.bench_replay import measure_replay
    from fuyao.train.config import TRAIN_PRESETS

    path = args.logs
    stored = (path.is_file() and is_scenario_file(path)) or (
        path.is_dir() and any(is_scenario_file(f) for f in path.rglob("*.parquet"))
    )
    try:
        scenarios = read_scenarios(path) if stored else import_any(path).scenarios
    except ScenarioError as err:
        raise ConfigError(str(err)) from None
    if not scenarios:
        raise ConfigError(f"fuyao bench replay: {path}: no scenarios")
    out = measure_replay(
        scenarios,
        TRAIN_PRESETS["city"].sim,
        args.scenarios,
        args.vehicles,
        reactive=not args.log_agents,
        device=resolve_device(args.device),
        repeats=args.repeats,
        compile=args.compile == "tick",
    )
    out["logs"] = str(path)
    if args.json:
        print(json.dumps(out))
    else:
        console.print(
            f"{out['scenarios']} scenarios x {out['vehicles']} slots ({out['agents']} agents), {out['ticks']} ticks: "
            f"built in {out['build_s']:.1f} s ({out['maps_built']} maps), "
            f"{out['agent_ticks_per_s']:,.0f} agent-ticks/s ({out['logged_agent_ticks_per_s']:,.0f} logged), "
            f"median of {args.repeats} passes {out['step_s_median']:.2f} s"
        )
    return out


def cmd_bench_traffic(args: BenchTrafficArgs) -> dict:
    from fuyao.perf.bench_sim import measure_traffic_safety

    cfg = _sim_with(args, worlds=args.worlds)
    out = dict(
        measure_traffic_safety(cfg, resolve_device(args.device), args.decisions, args.seed, args.sim_minutes),
        preset=args.preset,
    )
    if args.json:
        print(json.dumps(out))
    else:
        console.print_json(json.dumps(out))
    return out


def cmd_maps(args: MapsArgs) -> Path:
    from fuyao.sim.world import build_bank
    from fuyao.viz.maps import draw_map_bank

    road = build_bank(args.sim)
    draw_map_bank(road, args.out)
    console.print(f"[green]wrote[/green] {args.out}")
    return args.out


def cmd_maps_import(args: MapsImportArgs) -> dict:
    from fuyao.roads.io.importer import file_type, import_map
    from fuyao.roads.io.mapfile import SUFFIX

    kind = file_type(args.input)
    out = Path(args.out) if args.out else Path("runs/maps") / (args.input.name[: -len(kind)] or "map")
    if out.suffix != SUFFIX:
        out = out.with_name(out.name + SUFFIX)
    result = import_map(args.input, out, use_cache=args.cache)
    summary = result.header["summary"]
    report = {
        "input": str(args.input),
        "out": str(result.out),
        "cached": result.cached,
        "seconds": round(result.seconds, 3),
        **{k: v for k, v in summary.items() if k != "source"},
    }
    if args.json:
        print(json.dumps(report))
    else:
        table = Table(title=f"fuyao maps import {args.input}")
        for col in ("lanes", "connectors", "junctions", "signals", "conflicts", "destinations", "seconds"):
            table.add_column(col, justify="right")
        table.add_row(
            *(str(report[k]) for k in ("lanes", "connectors", "junctions", "signals", "conflicts")),
            str(report["destinations"]),
            f"{report['seconds']:.2f}" + (" (cached)" if result.cached else ""),
        )
        console.print(table)
        for reason, count in summary["skipped"].items():
            console.print(f"skipped {count:>6}  {reason}")
        for note, count in summary["notes"].items():
            console.print(f"note    {count:>6}  {note}")
        console.print(f"[green]wrote[/green] {result.out}  (use it as --sim.map {result.out})")
    return report


def cmd_run(args: RunArgs) -> dict:
    """The main job: train the default pilot, evaluate it beside the rule-based pilot on the same episodes,
    write the HTML report (plots, videos of the worst episodes) and a summary."""
    from fuyao.train.checkpoint import existing_checkpoints
    from fuyao.train.config import train_preset

    device = resolve_device(args.device)
    train_dir = args.out / "train"
    # A main job that was killed (or ran before) continues from its last checkpoint instead of starting over.
    earlier = bool(existing_checkpoints(train_dir))
    budget = {"steps": args.steps} if args.steps is not None else {}
    cfg = train_preset(
        args.preset, out=train_dir, time_budget=args.time_budget, device=args.device, resume=earlier, **budget
    )
    trained = cmd_train(cfg)
    checkpoint = (
        train_dir / "checkpoints" / ("best.pt" if (train_dir / "checkpoints" / "best.pt").exists() else "last.pt")
    )
    evaluation = cmd_eval(
        EvalArgs(
            pilots=("rule-based", str(checkpoint)),
            suite=args.preset,
            episodes=args.eval_episodes,
            report=args.out / "report",
            device="cpu" if device.type == "cpu" else args.device,
        )
    )
    summary = {
        "checkpoint": str(checkpoint),
        "training": {k: v for k, v in trained.items() if k != "curve"},
        "evaluation": evaluation,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    console.print(f"[green]wrote[/green] {args.out / 'summary.json'} and {evaluation.get('report')}")
    return summary


def cmd_bench_transfer(args: BenchTransferArgs) -> dict:
    from fuyao.perf.machine import machine_info
    from fuyao.perf.transfer import measure_transfer

    try:
        out = measure_transfer(args.env, args.pilot, args.episodes, args.seed, args.processes, args.sb3_seconds)
    except (ValueError, FileNotFoundError) as err:
        raise ConfigError(str(err)) from None
    out["machine"] = machine_info(torch.device("cpu"))
    if args.json:
        print(json.dumps(out, indent=2))
    table = Table(title=f"{out['env']} in highway-env, {out['episodes']} episodes from seed {out['seed']}")
    for col in ("pilot", "crash rate", "mean speed m/s", "mean return", "decisions/episode"):
        table.add_column(col)
    for row in [out] + ([out["sb3"]] if "sb3" in out else []):
        name = row["pilot"] if row is out else f"SB3 DQN ({row['train_s']:.0f} s)"
        table.add_row(
            name,
            f"{row['crash_rate']:.3f}",
            f"{row['mean_speed']:.2f}",
            f"{row['mean_return']:.2f}",
            f"{row['mean_length']:.1f}",
        )
    console.print(table)
    return out


def cmd_bench_train(args: BenchTrainArgs) -> dict:
    from fuyao.perf import bench_train

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.throughput:
        out = bench_train.training_throughput(
            args.preset,
            device,
            args.iterations,
            args.out,
            compile=args.compile,
            worlds=args.worlds,
            encoder=args.encoder,
            hidden=args.hidden,
            precision=args.precision,
            respawn=args.respawn,
        )
    else:
        out = bench_train.time_to_target(
            args.preset,
            device,
            args.time_limit,
            args.eval_episodes,
            args.eval_every,
            args.out,
            args.seed,
            args.compile,
            args.precision,
            args.respawn,
        )
    if args.sb3_timesteps > 0:
        ref = bench_train.sb3_highway_fast(args.sb3_timesteps)
        out["sb3_highway_fast"] = ref
        if "decisions_per_s" in out and args.throughput:
            out["speedup_vs_sb3"] = out["decisions_per_s"] / ref["decisions_per_s"]
    if args.json:
        print(json.dumps(out, default=str))
    else:
        console.print_json(json.dumps({k: v for k, v in out.items() if k != "curve"}, default=str))
    return out


@dataclass
class EvalArgs:
    """Closed-loop evaluation of a pilot (or two, side by side) on a scenario suite."""

    pilots: tyro.conf.Positional[tuple[str, ...]] = ()
    """`rule-based` or a checkpoint path; two of them compare the pilots on the same episodes."""
    suite: str = "highway"
    """Scenario suite: highway, highway-v0, merge-v0, exit-v0, city, ngp or smoke."""
    episodes: int | None = None
    """Scale the suite down (or up) to about this many episodes in all; same seeds, so a prefix of its episodes."""
    json: bool = False
    """Print one JSON object (score, every metric, episode count, suite name and version) on stdout."""
    report: Path | None = None
    """Write an HTML report (plots, videos of the worst episodes) into this directory."""
    device: Device = "cpu"
    workers: int = 0
    """Processes that run the suite's scenarios: 0 chooses (one per core for long episodes on a CPU), 1 this one."""
    logs: Path | None = None
    """Evaluate on logged scenarios instead of a suite: a scenario file or a folder of them (`fuyao data import`'s
    output). The ego is driven by the pilot (`log`: by its log, the logged driver as a reference)."""
    reactive: bool = False
    """With --logs: the logged objects follow their logged paths with IDM speed control (else they replay the log)."""
    log_vehicles: int = 32
    """With --logs: slots per scenario, the ego and the logged objects nearest to it."""
    preset: tyro.conf.Suppress[str] = "highway"
    sim: tyro.conf.Suppress[SimConfig] = field(default_factory=SimConfig)


def _eval_logs(args: EvalArgs, device: torch.device) -> dict:
    """`fuyao eval PILOT --logs DIR`: each pilot on every logged scenario, one world per scenario."""
    from fuyao.data.replay import ReplayConfig
    from fuyao.evaluation.logs import LOG_KEYS, evaluate_logs, read_scenarios
    from fuyao.pilots import RuleBasedPilot
    from fuyao.train.config import TRAIN_PRESETS

    scenarios = read_scenarios(args.logs)
    results = []
    for spec in args.pilots:
        ego = "pilot"
        if spec == "log":
            name, make_pilot, sim, ego = "log", RuleBasedPilot, TRAIN_PRESETS["city"].sim, "log"
        else:
            name, make_pilot = _eval_pilot(spec, device)
            # The worlds take the pilot's own spaces: a checkpoint's config, the city preset's for rule-based.
            sim = TRAIN_PRESETS["city"].sim if spec == "rule-based" else make_pilot(None).sim
        replay = ReplayConfig(vehicles=args.log_vehicles, reactive=args.reactive, ego=ego)
        result = evaluate_logs(make_pilot, scenarios, sim, replay, device, pilot_name=name)
        console.print(f"{name}: {len(result.names)} logged scenarios, {result.wall_s:.1f} s")
        results.append(result)
    out = (
        results[0].to_json()
        if len(results) == 1
        else {"logs": len(scenarios), "results": [r.to_json() for r in results]}
    )
    if args.json:
        print(json.dumps(out, default=str))
        return out
    cols = {
        "collision_rate": "collisions",
        "at_fault_collision_rate": "at fault",
        "offroad_rate": "off-road",
        "progress_vs_expert": "vs expert",
        "ade_m": "ADE m",
        "fde_m": "FDE m",
    }
    keys = tuple(cols)
    table = Table(title=f"fuyao eval on {args.logs} ({'reactive' if args.reactive else 'log-replay'} agents)")
    table.add_column("pilot")
    for label in (*cols.values(), "logs"):
        table.add_column(label, justify="right")
    for r in results:
        table.add_row(r.pilot, *(f"{r.summary[k]:.3f}" for k in keys), str(r.summary["episodes"]))
    console.print(table)
    console.print(f"per scenario: {', '.join(LOG_KEYS)} in the JSON (--json)")
    return out


def _eval_pilot(spec: str, device: torch.device):
    """`(name, make_pilot)` for `rule-based` or a checkpoint path; bad paths and checkpoints are `ConfigError`s."""
    from fuyao.evaluation.runner import same_pilot
    from fuyao.pilots import RuleBasedPilot

    if spec == "rule-based":
        return "rule-based", RuleBasedPilot
    if spec == "kinematics-planner":
        from fuyao.pilots.kinematics_planner import KinematicsPlanner

        return spec, KinematicsPlanner
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(
            f"pilot: got {spec!r}, no such checkpoint file; allowed: 'rule-based', 'kinematics-planner' "
            "or a checkpoint path"
        )
    from fuyao.pilots import CheckpointError, load

    try:
        pilot = load(path, device=device)
    except CheckpointError as err:
        raise ConfigError(f"pilot {spec!r}: {err}") from None
    if hasattr(pilot, "for_world"):  # bound to each scenario's world: it reads the action mask from it
        return spec, pilot.for_world
    return spec, functools.partial(same_pilot, pilot)


def _print_eval_table(result) -> None:
    cols = {
        "score": "score",
        "collision_rate": "collisions",
        "at_fault_collision_rate": "at fault",
        "offroad_rate": "off-road",
        "route_failure_rate": "route failed",
        "route_completion": "route done",
        "progress_m": "progress m",
        "speed_limit_compliance": "speed limit",
        "ttc_ok": "TTC ok",
        "comfort": "comfort",
    }
    table = Table(title=f"fuyao eval {result.pilot} on {result.suite}@{result.version} ({result.device})")
    table.add_column("scenario")
    table.add_column("episodes", justify="right")
    for label in cols.values():
        table.add_column(label, justify="right")

    def row(name, summary, style=None):
        cells = [f"{summary[k]:.0f}" if k == "progress_m" else f"{summary[k]:.3f}" for k in cols]
        table.add_row(name, str(summary["episodes"]), *cells, style=style)

    for s in result.scenarios:
        row(s.name, s.summary)
    row("all", result.summary, style="bold")
    console.print(table)
    console.print(f"{result.summary['episodes']} episodes in {result.wall_s:.1f} s")


def _print_compare_table(a, b, comparison: dict) -> None:
    table = Table(title=f"fuyao eval: {b.pilot} - {a.pilot} on {a.suite}@{a.version}, paired, 95% bootstrap")
    for col in ("metric", a.pilot, b.pilot, "difference", "95% interval"):
        table.add_column(col, justify="right")
    for key, d in comparison.items():
        table.add_row(
            key, f"{d['a']:.3f}", f"{d['b']:.3f}", f"{d['diff']:+.3f}", f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
        )
    console.print(table)


def cmd_eval(args: EvalArgs) -> dict:
    from fuyao.evaluation.report import compare, write_report
    from fuyao.evaluation.runner import evaluate
    from fuyao.evaluation.suites import get_suite

    if not 1 <= len(args.pilots) <= 2:
        raise ConfigError(
            f"fuyao eval: got {len(args.pilots)} pilots {list(args.pilots)}; allowed: one or two "
            "(`rule-based` or checkpoint paths), e.g. `fuyao eval rule-based --suite highway`"
        )
    device = resolve_device(args.device)
    if args.logs is not None:
        return _eval_logs(args, device)
    suite = get_suite(args.suite)
    if args.episodes is not None:
        suite = suite.scaled(args.episodes)
    pilots = [_eval_pilot(spec, device) for spec in args.pilots]
    results = []
    for name, make_pilot in pilots:
        results.append(
            evaluate(
                make_pilot,
                suite,
                device,
                pilot_name=name,
                workers=args.workers,
                on_scenario=lambda s, name=name: console.print(
                    f"{name} {s.name}: {s.episodes} episodes, {s.wall_s:.1f} s"
                ),
            )
        )
    if len(results) == 1:
        out = {**results[0].to_json()}
    else:
        comparison = compare(results[0], results[1])
        out = {
            "suite": suite.name,
            "version": suite.version,
            "episodes": results[0].summary["episodes"],
            "a": results[0].to_json(),
            "b": results[1].to_json(),
            "comparison": comparison,
        }
    if args.report is not None:
        page = write_report(args.report, results, [m for _, m in pilots], suite, device)
        out["report"] = str(page)
        console.print(f"[green]wrote[/green] {page}")
    if args.json:
        print(json.dumps(out, default=str))
    else:
        for r in results:
            _print_eval_table(r)
        if len(results) == 2:
            _print_compare_table(results[0], results[1], out["comparison"])
    return out


def cmd_train(cfg) -> dict:
    """Train a pilot (PPO self-play, behaviour cloning, or BC then PPO) on the batched world."""
    from fuyao.train.run import train

    device = resolve_device(cfg.device)
    return train(cfg, device)


@dataclass
class DataImportArgs:
    """Convert logs (Argoverse 2, CommonRoad, highD, ScenarioNet, recordings) to Fuyao scenario files."""

    input: tyro.conf.Positional[Path]
    """A file or a folder of supported files (see docs/data.md)."""
    out: Path = Path("runs/scenarios")
    """Folder for the scenario files (one `<scenario_id>.parquet` each)."""
    json: bool = False


@dataclass
class DataRecordArgs:
    """Record a rollout of the batched world (every decision of every controlled vehicle) to Parquet."""

    preset: str = "highway"
    decisions: int = 100
    """Decisions of every world to record."""
    out: Path = Path("runs/recording")
    pilot: str = "rule"
    """`rule` (the rule-based pilot) or a checkpoint path."""
    seed: int = 0
    flush_every: int = 256
    """Decisions per part file (bounds the memory the recorder holds)."""
    observations: bool = True
    """Record what the drivers saw (`obs`, `action_mask`): what `fuyao train --algo bc --data` learns from."""
    action_noise: float = 0.0
    """Drive a random available action with this probability (continuous: Gaussian noise of this std) while
    recording the pilot's own as the label (DART): demonstrations of recovering from mistakes."""
    logs: Path | None = None
    """Instead of driving a pilot: turn the logged scenarios in this folder (`fuyao data import`'s output) into
    demonstrations on the preset's spaces, the logged driver's actions recovered by inverse dynamics."""
    chunk: int = 256
    """With --logs: scenarios replayed at once (bounds the memory held)."""
    device: Device = "cpu"
    json: bool = False
    sim: SimConfig = field(default_factory=SimConfig)


def cmd_data_import(args: DataImportArgs) -> dict:
    import time

    from fuyao.data.importers import import_any
    from fuyao.data.scenario import ScenarioError, write_scenario

    start = time.perf_counter()
    try:
        result = import_any(args.input)
        written = [write_scenario(args.out / f"{sc.scenario_id}.parquet", sc) for sc in result.scenarios]
    except ScenarioError as err:
        raise ConfigError(str(err)) from None
    out = {
        "input": str(args.input),
        "out": str(args.out),
        "scenarios": len(written),
        "tracks": sum(sc.num_tracks for sc in result.scenarios),
        "map_lanes": sum(sc.map.num_lanes for sc in result.scenarios if sc.map is not None),
        "skipped": dict(result.skipped),
        "seconds": round(time.perf_counter() - start, 3),
    }
    if args.json:
        print(json.dumps(out))
    else:
        table = Table(title=f"fuyao data import {args.input}")
        for col in ("scenarios", "tracks", "map lanes", "seconds"):
            table.add_column(col, justify="right")
        table.add_row(str(out["scenarios"]), str(out["tracks"]), str(out["map_lanes"]), f"{out['seconds']:.2f}")
        console.print(table)
        for reason, count in sorted(out["skipped"].items()):
            console.print(f"skipped {count:>6}  {reason}")
        console.print(f"[green]wrote[/green] {len(written)} scenarios to {args.out}")
    return out


def cmd_data_record(args: DataRecordArgs) -> dict:
    import time

    from fuyao.data.record import record_rollout
    from fuyao.data.scenario import ScenarioError
    from fuyao.sim.world import World

    if args.decisions < 1:
        raise ConfigError(f"--decisions: got {args.decisions}; allowed: >= 1")
    device = resolve_device(args.device)
    if args.logs is not None:
        return _record_logs(args, device)
    world = World(args.sim, device=device)
    name, make_pilot = _eval_pilot("rule-based" if args.pilot == "rule" else args.pilot, device)
    pilot = make_pilot(world)
    start = time.perf_counter()
    try:
        out = record_rollout(
            world,
            pilot,
            args.out,
            args.decisions,
            seed=args.seed,
            flush_every=args.flush_every,
            pilot_name=name,
            observations=args.observations,
            action_noise=args.action_noise,
        )
    except ScenarioError as err:
        raise ConfigError(str(err)) from None
    seconds = time.perf_counter() - start
    out.update(preset=args.preset, seconds=round(seconds, 3), decisions_per_s=round(out["rows"] / seconds, 1))
    if args.json:
        print(json.dumps(out))
    else:
        console.print(
            f"[green]wrote[/green] {args.out}: {out['parts']} parts, {out['rows']:,} rows "
            f"({out['decisions']} decisions x {args.sim.worlds} worlds x {args.sim.controlled} controlled) "
            f"in {seconds:.1f} s"
        )
    return out


def _record_logs(args: DataRecordArgs, device) -> dict:
    import time

    from fuyao.data.demos import write_log_demonstrations
    from fuyao.data.scenario import ScenarioError
    from fuyao.evaluation.logs import scenario_files

    start = time.perf_counter()
    try:
        files = scenario_files(args.logs)
        out = write_log_demonstrations(files, args.sim, args.out, args.chunk, device=device, source=str(args.logs))
    except ScenarioError as err:
        raise ConfigError(str(err)) from None
    seconds = time.perf_counter() - start
    out.update(preset=args.preset, seconds=round(seconds, 3), scenarios_per_s=round(out["scenarios"] / seconds, 2))
    if args.json:
        print(json.dumps(out))
    else:
        console.print(
            f"[green]wrote[/green] {args.out}: {out['rows']:,} demonstrated decisions from {out['scenarios']} "
            f"logged scenarios ({out['parts']} parts) in {seconds:.1f} s"
        )
    return out


COMMANDS = {
    "run": (RunArgs, cmd_run),
    "train": (None, cmd_train),
    "render": (RenderArgs, cmd_render),
    "maps": (MapsArgs, cmd_maps),
    "maps import": (MapsImportArgs, cmd_maps_import),
    "bench sim": (BenchSimArgs, cmd_bench_sim),
    "bench traffic": (BenchTrafficArgs, cmd_bench_traffic),
    "bench replay": (BenchReplayArgs, cmd_bench_replay),
    "bench train": (BenchTrainArgs, cmd_bench_train),
    "bench transfer": (BenchTransferArgs, cmd_bench_transfer),
    "eval": (EvalArgs, cmd_eval),
    "data import": (DataImportArgs, cmd_data_import),
    "data record": (DataRecordArgs, cmd_data_record),
}


def _usage() -> str:
    lines = ["usage: fuyao COMMAND [--help] [flags]", "", "commands:"]
    for name, (cls, fn) in COMMANDS.items():
        doc = ((cls or fn).__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {name:<16}{doc}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name = argv[0]
    rest = argv[1:]
    if name == "bench":
        if not rest or rest[0] not in ("sim", "traffic", "train", "transfer", "replay"):
            print("usage: fuyao bench {sim,traffic,train,transfer,replay} [--help]", file=sys.stderr)
            return 2
        name, rest = f"bench {rest[0]}", rest[1:]
    if name == "data":
        if not rest or rest[0] not in ("import", "record"):
            print("usage: fuyao data {import,record} [--help]", file=sys.stderr)
            return 2
        name, rest = f"data {rest[0]}", rest[1:]
    if name == "maps" and rest and rest[0] == "import":
        name, rest = "maps import", rest[1:]
    if name not in COMMANDS:
        print(f"fuyao: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    cls, fn = COMMANDS[name]
    from fuyao.pilots.learned import CheckpointError
    from fuyao.train.session import NonFiniteError

    try:
        args = _parse_train(rest, prog="fuyao train") if name == "train" else _parse(cls, rest, prog=f"fuyao {name}")
        fn(args)
    except (ConfigError, MapError, CheckpointError) as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    except NonFiniteError as err:
        console.print(f"[red]stopped:[/red] {err}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
