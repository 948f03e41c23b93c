"""`evaluate`: run a pilot on every scenario of a suite, batched, and reduce the metrics.

    from fuyao.evaluation.runner import evaluate
    from fuyao.evaluation.suites import get_suite
    from fuyao.pilots import RuleBasedPilot

    result = evaluate(RuleBasedPilot, get_suite("highway"), device="cpu")        # every episode of the suite
    result = evaluate(lambda world: my_pilot, get_suite("smoke"), episodes=8)   # scaled down, same seeds
    result.summary["score"], result.summary["collision_rate"], result.summary["route_completion"]
    result.scenarios[0].metrics["progress_m"]                                   # [E] numpy, one per episode

Each scenario's episodes are the worlds of one `World`: `World(scenario.config, device)` is reset with the
scenario's seed and stepped `decisions_per_episode` times (every world's first episode ends by then: the time
limit resets it). Only each world's first episode counts: the runner masks out what follows a world's reset.
Metrics are folded on the device (`metrics.fold`) with no host transfer inside the loop; each scenario is
reduced with one transfer at its end.

`make_pilot(world) -> Pilot` is called once per scenario with that scenario's `World`, so a rule-based pilot
binds to it (`RuleBasedPilot` itself is such a callable) and a learned pilot ignores it (`lambda world: pilot`).
A pilot that has `observation_space` / `action_space` (Gymnasium spaces, as learned pilots do) must match the
suite's, else `SpaceMismatchError` names both. The rule-based pilot (which plans from the state), and any pilot
with `needs_observation = False`, gets `obs=None`, which saves building observations.

Scenarios in parallel processes (`workers`): on a CPU a small batch of worlds is bound by the number of tensor
ops a decision costs, not by arithmetic, so one process leaves cores idle while it steps a scenario of 8-16
worlds. `evaluate(..., workers=N)` runs the scenarios in N spawned processes (each with its share of the
process's threads, results in suite order, bit-identical to one process: each scenario is still one batch with
its own seed). `make_pilot` must then pickle (`RuleBasedPilot`, `LearnedPilot.for_world`, a module-level
function or `functools.partial`; not a lambda). `workers=0` chooses: one process on a GPU, for short episodes
(spawning a process and importing torch costs a few seconds), or when `make_pilot` does not pickle; else one per
core the process may use (`usable_cores`), at most one per scenario.

Cost: a small suite is cheap. `evaluate(make_pilot, get_suite("smoke"))` is 6 episodes of 10 decisions; for a
trainer's periodic evaluation, `episodes=` scales any suite down to about that many episodes in all (every
scenario keeps at least one, and its first episodes, so numbers stay comparable between calls and pilots).
"""

from __future__ import annotations

import functools
import multiprocessing
import pickle
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from fuyao.evaluation.metrics import EpisodeSums, episode_metrics, fold, summarize
from fuyao.evaluation.suites import Scenario, Suite
from fuyao.perf.machine import affinity_cores
from fuyao.pilots.base import Pilot
from fuyao.pilots.rule_based import RuleBasedPilot
from fuyao.sim.config import ConfigError
from fuyao.sim.world import World


class SpaceMismatchError(ConfigError):
    """A pilot's observation or action space differs from the suite's."""


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario's episodes. `E = episodes x controlled`, world-major (`e = world * C + slot`)."""

    name: str
    seed: int
    episodes: int  # worlds
    metrics: dict[str, np.ndarray]  # per-episode metrics [E] float32 (see `metrics.episode_metrics`)
    summary: dict[str, float]  # `metrics.SUMMARY_KEYS`
    wall_s: float

    @property
    def world_index(self) -> np.ndarray:
        """`[E]` int64: the world (and so the `World.reset` key) each episode ran in."""
        e = len(self.metrics["score"])
        return np.arange(e) // (e // self.episodes)


@dataclass(frozen=True)
class EvalResult:
    """A pilot's results on a suite: per-episode metrics per scenario, and summaries."""

    suite: str
    version: str
    pilot: str
    device: str
    scenarios: tuple[ScenarioResult, ...]
    summary: dict[str, float]  # over every episode of the suite (`metrics.SUMMARY_KEYS`)
    wall_s: float
    extra: dict = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # the suite's `Suite.groups`

    def group_summaries(self) -> dict[str, dict[str, float]]:
        """`{group: summary over its scenarios' episodes}` (`metrics.SUMMARY_KEYS`); empty for a suite without
        groups. Scenarios a scaled run left out are skipped."""
        out = {}
        for group, names in self.groups.items():
            parts = [s for s in self.scenarios if s.name in names]
            if parts:
                out[group] = _summarize_scenarios(parts)
        return out

    def scenario(self, name: str) -> ScenarioResult:
        for s in self.scenarios:
            if s.name == name:
                return s
        raise KeyError(f"EvalResult.scenario: no scenario {name!r}; have {[s.name for s in self.scenarios]}")

    def per_episode(self, key: str) -> np.ndarray:
        """`[sum of E]` one metric over every episode, scenarios in suite order."""
        return np.concatenate([s.metrics[key] for s in self.scenarios])

    def to_json(self) -> dict:
        """One JSON-ready object: suite, version, pilot, device, episodes, every summary metric at the top
        level, and `scenarios: {name: summary}`."""
        return {
            "suite": self.suite,
            "version": self.version,
            "pilot": self.pilot,
            "device": self.device,
            **{k: _json_number(v) for k, v in self.summary.items()},
            "scenarios": {s.name: {k: _json_number(v) for k, v in s.summary.items()} for s in self.scenarios},
            **(
                {"groups": {g: {k: _json_number(v) for k, v in m.items()} for g, m in self.group_summaries().items()}}
                if self.groups
                else {}
            ),
            "wall_s": round(self.wall_s, 3),
        }


def _summarize_scenarios(results) -> dict[str, float]:
    """The summary over every episode of `results` (`ScenarioResult`s)."""
    return summarize({k: torch.from_numpy(np.concatenate([r.metrics[k] for r in results])) for k in results[0].metrics})


def _json_number(v):
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _describe(space) -> str:
    return repr(space)


def check_spaces(pilot: Pilot, suite: Suite, pilot_name: str = "pilot") -> None:
    """Raise `SpaceMismatchError` if `pilot` declares an observation or action space other than the suite's."""
    problems = []
    for kind in ("observation", "action"):
        theirs = getattr(pilot, f"{kind}_space", None)
        ours = getattr(suite, f"{kind}_space")
        if theirs is not None and theirs != ours:
            problems.append(f"{kind} space {_describe(theirs)} but suite {suite.id!r} has {_describe(ours)}")
    if problems:
        sim = getattr(pilot, "sim", None)
        trained = (
            f" (it was trained with observation {sim.observation.value!r}, action {sim.action.value!r})"
            if sim is not None
            else ""
        )
        want = f"suite observation {suite.sim.observation.value!r}, action {suite.sim.action.value!r}"
        raise SpaceMismatchError(
            f"{pilot_name} does not fit suite {suite.id!r}{trained}; {want}: " + "; ".join(problems)
        )


CHECK_DONE_EVERY = 16


def run_scenario(
    make_pilot: Callable[[World], Pilot],
    scenario: Scenario,
    suite: Suite,
    device: torch.device,
    compile: bool = False,
    pilot_name: str = "pilot",
) -> ScenarioResult:
    """Run one scenario's episodes as the worlds of one batch and return their metrics."""
    t0 = time.perf_counter()
    cfg = scenario.config
    world = World(cfg, device=device, compile=compile)
    pilot = make_pilot(world)
    check_spaces(pilot, suite, pilot_name)
    needs_obs = getattr(pilot, "needs_observation", not isinstance(pilot, RuleBasedPilot))
    c = cfg.controlled
    with torch.inference_mode():
        state = scenario.initial_state(world)
        sums = EpisodeSums.zeros(cfg.worlds * c, world.device, 1.0 / cfg.decision_hz)
        first = torch.ones(cfg.worlds, dtype=torch.bool, device=world.device)  # still in its first episode
        for t in range(cfg.decisions_per_episode):
            obs = world.observe(state) if needs_obs else None
            result = world.step(state, pilot.act(obs, state))
            sums = fold(sums, result.info, first.unsqueeze(1).expand(-1, c))
            first = first & ~result.world_done
            state = result.state
            # Once every world has ended its first episode nothing more is counted: stop (checked every
            # CHECK_DONE_EVERY decisions, so the host waits on the device that seldom).
            if t % CHECK_DONE_EVERY == CHECK_DONE_EVERY - 1 and not bool(first.any()):
                break
        metrics = episode_metrics(sums)
        summary = summarize(metrics)
        host = {k: v.float().cpu().numpy() for k, v in metrics.items()}
    return ScenarioResult(scenario.name, scenario.seed, cfg.worlds, host, summary, time.perf_counter() - t0)


PARALLEL_MIN_DECISIONS = 300  # episodes shorter than this run in one process when `workers=0` chooses


def usable_cores() -> int:
    """The cores this process may use: those it may run on, capped by torch's thread count (which a trainer's
    `threads`, or a test session's share of the cores, sets)."""
    return max(1, min(affinity_cores(), torch.get_num_threads()))


def _pickles(obj) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:  # noqa: BLE001 - any failure to pickle means "run in this process"
        return False
    return True


def same_pilot(pilot: Pilot, world: World) -> Pilot:
    """`functools.partial(same_pilot, pilot)`: a `make_pilot` that gives one pilot to every scenario and pickles."""
    return pilot


def resolve_workers(workers: int, suite: Suite, device: torch.device, make_pilot) -> int:
    """How many processes run `suite`'s scenarios (see the module docstring)."""
    if workers < 0:
        raise ConfigError(f"evaluate: workers must be >= 0 (0 chooses), got {workers}")
    if device.type != "cpu":
        return 1
    n = len(suite.scenarios)
    if workers == 0:
        long = max(s.config.decisions_per_episode for s in suite.scenarios) >= PARALLEL_MIN_DECISIONS
        if not long or n < 2 or usable_cores() < 2 or not _pickles(make_pilot):
            return 1
        workers = usable_cores()
    elif workers > 1 and not _pickles(make_pilot):
        raise ConfigError(
            f"evaluate: workers={workers} runs scenarios in other processes, but make_pilot {make_pilot!r} cannot be "
            "pickled (a lambda?); pass RuleBasedPilot, pilot.for_world or functools.partial(same_pilot, pilot)"
        )
    return max(1, min(workers, n))


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


def _scenario_results(run: Callable[[Scenario], ScenarioResult], scenarios, workers: int):
    """`run(scenario)` for each scenario, yielded in their order: here, or in `workers` spawned processes (each
    result as soon as it and those before it are done)."""
    if workers == 1:
        yield from map(run, scenarios)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's thread pools
    threads = max(1, usable_cores() // workers)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init, initargs=(threads,)) as pool:
        futures = [pool.submit(run, scenario) for scenario in scenarios]
        for future in futures:
            yield future.result()


def evaluate(
    make_pilot: Callable[[World], Pilot],
    suite: Suite,
    device: torch.device | str = "cpu",
    episodes: int | None = None,
    compile: bool = False,
    pilot_name: str = "pilot",
    on_scenario: Callable[[ScenarioResult], None] | None = None,
    workers: int = 1,
) -> EvalResult:
    """Evaluate a pilot on every scenario of `suite` (scaled to about `episodes` in all if given).

    `make_pilot(world) -> Pilot` per scenario (see the module docstring); `compile=True` compiles each
    scenario's step (worth it only for large suites on a GPU); `on_scenario` is called after each scenario, in
    suite order (progress display); `workers` processes run the scenarios (1: this process; 0: chosen; see the
    module docstring). Returns an `EvalResult`; its `summary` is over every episode of the suite.
    """
    t0 = time.perf_counter()
    if episodes is not None:
        suite = suite.scaled(episodes)
    device = torch.device(device)
    workers = resolve_workers(workers, suite, device, make_pilot)
    run = functools.partial(
        run_scenario, make_pilot, suite=suite, device=device, compile=compile, pilot_name=pilot_name
    )
    results = []
    for r in _scenario_results(run, suite.scenarios, workers):
        results.append(r)
        if on_scenario is not None:
            on_scenario(r)
    summary = _summarize_scenarios(results)
    return EvalResult(
        suite=suite.name,
        version=suite.version,
        pilot=pilot_name,
        device=str(device),
        scenarios=tuple(results),
        summary=summary,
        wall_s=time.perf_counter() - t0,
        extra={"episodes_per_scenario": {s.name: s.episodes for s in suite.scenarios}, "workers": workers},
        groups=suite.groups,
    )
