"""Comparing pilots with confidence intervals, and the HTML report (plots and videos of the worst episodes).

    diff = compare(result_a, result_b)          # {metric: {a, b, diff, ci_low, ci_high}}: paired bootstrap
    write_report(out_dir, [result_a, result_b], [make_a, make_b], suite, device)

Pilots evaluated on one suite at one version ran the same episodes (`suites`), so differences are paired per
episode: the 95% interval of the mean difference `b - a` is the percentile interval of `BOOTSTRAP_RESAMPLES`
paired resamples of the episodes (`scipy.stats.bootstrap(..., paired=True, method="percentile")`, one fixed
generator seed, so the interval is reproducible). The statistic stays the mean of per-episode outcomes, so rare
events (a crash is a 1 among 0s) count as they happen; the percentile method, unlike BCa, needs no jackknife
that a sample of all-zero crash flags makes degenerate.

The report re-simulates each pilot's worst episodes (lowest score; ties: least progress) by running their
scenario's batch again and recording those worlds: the step is deterministic, so the video shows exactly the
evaluated episode.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import stats

from fuyao.evaluation.metrics import SUMMARY_MEANS
from fuyao.evaluation.runner import EvalResult
from fuyao.evaluation.suites import Suite
from fuyao.pilots.base import Pilot
from fuyao.pilots.rule_based import RuleBasedPilot
from fuyao.sim.config import ConfigError
from fuyao.sim.world import World
from fuyao.viz.render import recording_from_states, render_frames, write_video

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95

# Summary names compared side by side (each the mean of a per-episode metric, `metrics.SUMMARY_MEANS`).
COMPARE_KEYS = (
    "score",
    "collision_rate",
    "at_fault_collision_rate",
    "offroad_rate",
    "route_failure_rate",
    "route_completion",
    "progress_m",
    "progress_ratio",
    "speed_limit_compliance",
    "ttc_ok",
    "comfort",
    "mean_speed_mps",
)
# Per-episode metrics drawn as distributions in the report.
DISTRIBUTION_KEYS = ("score", "progress_m", "route_completion", "mean_speed_mps", "comfort", "min_ttc_s")


def _mean_difference(b: np.ndarray, a: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(b - a, axis=axis)


def paired_bootstrap(
    b: np.ndarray, a: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """Percentile interval (`CONFIDENCE`) of the mean of per-episode differences `b - a` (`[E]` each, episode
    `e` of one the same episode as of the other), from paired bootstrap resamples of the episodes."""
    b, a = np.asarray(b, np.float64), np.asarray(a, np.float64)
    if b.shape != a.shape or b.ndim != 1:
        raise ValueError(f"paired_bootstrap: b {b.shape} and a {a.shape} must be the same episodes, [E] each")
    if b.size < 2:  # nothing to resample: every resample is the one episode (none: no interval)
        d = float(b[0] - a[0]) if b.size else float("nan")
        return d, d
    result = stats.bootstrap(
        (b, a),
        _mean_difference,
        n_resamples=resamples,
        paired=True,
        vectorized=True,
        axis=-1,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _episode_values(result: EvalResult, name: str) -> np.ndarray:
    key = SUMMARY_MEANS[name]
    return result.per_episode(key).astype(np.float64)


def compare(a: EvalResult, b: EvalResult, keys: Sequence[str] = COMPARE_KEYS) -> dict[str, dict[str, float]]:
    """`{metric: {a, b, diff, ci_low, ci_high}}`: means over the suite's episodes and the paired 95% interval
    of `b - a`. Both results must come from the same suite, version and episodes."""
    same = (a.suite, a.version, [(s.name, s.episodes) for s in a.scenarios]) == (
        b.suite,
        b.version,
        [(s.name, s.episodes) for s in b.scenarios],
    )
    if not same:
        raise ConfigError(
            f"compare: results ran different episodes ({a.suite}@{a.version}, {a.summary['episodes']} episodes vs "
            f"{b.suite}@{b.version}, {b.summary['episodes']}); allowed: the same suite, version and --episodes"
        )
    out = {}
    for name in keys:
        va, vb = _episode_values(a, name), _episode_values(b, name)
        lo, hi = paired_bootstrap(vb, va)
        out[name] = {
            "a": float(va.mean()),
            "b": float(vb.mean()),
            "diff": float((vb - va).mean()),
            "ci_low": lo,
            "ci_high": hi,
        }
    return out


# ------------------------------------------------------------------------------------------------ worst episodes


def worst_episodes(result: EvalResult, count: int) -> list[tuple[str, int, float]]:
    """`[(scenario, world index, score)]` of the `count` lowest-scoring episodes (ties: least progress ratio)."""
    rows = []
    for s in result.scenarios:
        worlds = s.world_index
        for e, (score, ratio) in enumerate(zip(s.metrics["score"], s.metrics["progress_ratio"])):
            rows.append((float(score), float(ratio), s.name, int(worlds[e])))
    rows.sort(key=lambda r: (r[0], r[1], r[2], r[3]))
    return [(name, world, score) for score, _, name, world in rows[:count]]


def record_worlds(
    make_pilot: Callable[[World], Pilot], suite: Suite, scenario_name: str, worlds: Sequence[int], device
) -> tuple[World, dict[int, list]]:
    """Run a scenario's batch again and keep the states of `worlds` until each one's first episode ends
    (its last state is the final one, before auto-reset). Returns the world and `{world index: [states]}`."""
    scenario = next(s for s in suite.scenarios if s.name == scenario_name)
    world = World(scenario.config, device=device)
    pilot = make_pilot(world)
    needs_obs = getattr(pilot, "needs_observation", not isinstance(pilot, RuleBasedPilot))
    kept: dict[int, list] = {w: [] for w in worlds}
    with torch.inference_mode():
        state = scenario.initial_state(world)
        states = [state]
        ended = {}
        for t in range(world.cfg.decisions_per_episode):
            obs = world.observe(state) if needs_obs else None
            result = world.step(state, pilot.act(obs, state))
            done = result.world_done.cpu()
            for w in worlds:
                if w not in ended and bool(done[w]):
                    ended[w] = (t, result.final_state)
            state = result.state
            states.append(state)
        for w in worlds:
            t, final = ended[w]
            kept[w] = [*states[: t + 1], final]
    return world, kept


def write_worst_videos(
    out_dir: Path, make_pilot: Callable[[World], Pilot], suite: Suite, result: EvalResult, count: int, device, tag: str
) -> list[dict]:
    """GIFs of the `count` worst episodes; returns `[{scenario, world, score, path}]`."""
    worst = worst_episodes(result, count)
    videos = []
    by_scenario: dict[str, list[tuple[int, float]]] = {}
    for name, world_index, score in worst:
        by_scenario.setdefault(name, []).append((world_index, score))
    for name, items in by_scenario.items():
        world, kept = record_worlds(make_pilot, suite, name, [w for w, _ in items], device)
        for world_index, score in items:
            rec = recording_from_states(world.road, kept[world_index], world_index)
            path = out_dir / f"{tag}-{name}-world{world_index}.gif"
            write_video(render_frames(world.road, rec), path, fps=world.cfg.decision_hz * 2)
            videos.append({"scenario": name, "world": world_index, "score": score, "path": path.name})
    return videos


# ------------------------------------------------------------------------------------------------ plots, HTML


def _plot_distributions(results: Sequence[EvalResult], path: Path) -> None:
    fig = Figure(figsize=(12, 6.5), layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    for ax, key in zip(axes, DISTRIBUTION_KEYS):
        values = [r.per_episode(key) for r in results]
        if key == "min_ttc_s":
            values = [np.minimum(v, 10.0) for v in values]  # 1000 s means never closing: shown as 10 s
        lo = min(float(v.min()) for v in values)
        hi = max(float(v.max()) for v in values)
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 25)
        for r, v in zip(results, values):
            ax.hist(v, bins=bins, alpha=0.55, label=r.pilot)
        ax.set_title(key + (" (capped at 10 s)" if key == "min_ttc_s" else ""))
        ax.set_ylabel("episodes")
    axes[0].legend()
    fig.savefig(path, dpi=80)


def _plot_scenario_scores(results: Sequence[EvalResult], path: Path) -> None:
    names = [s.name for s in results[0].scenarios]
    fig = Figure(figsize=(max(6, 1.3 * len(names)), 4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(results)
    x = np.arange(len(names))
    for i, r in enumerate(results):
        ax.bar(x + i * width, [s.summary["score"] for s in r.scenarios], width, label=r.pilot)
    ax.set_xticks(x + 0.4 - width / 2, names, rotation=20)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title(f"score per scenario ({results[0].suite}@{results[0].version})")
    ax.legend()
    fig.savefig(path, dpi=80)


def _fmt(v) -> str:
    if isinstance(v, float):
        return "-" if not np.isfinite(v) else f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return html.escape(str(v))


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(
    out_dir: str | Path,
    results: Sequence[EvalResult],
    make_pilots: Sequence[Callable[[World], Pilot]],
    suite: Suite,
    device: torch.device | str = "cpu",
    worst: int = 3,
) -> Path:
    """Write `out_dir/index.html` with summary tables, the comparison (two results), distribution plots, the
    score per scenario and GIFs of each pilot's `worst` worst episodes; also `results.json`. Returns the HTML
    path. `suite` must be the (scaled) suite the results ran on."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--report: {str(out)!r} is a file; allowed: a directory (created if missing)")
    out.mkdir(parents=True, exist_ok=True)
    _plot_distributions(results, out / "distributions.png")
    _plot_scenario_scores(results, out / "scenario_scores.png")
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Fuyao evaluation</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}</style>",
        f"<h1>Evaluation: {html.escape(suite.id)}</h1><p>{html.escape(suite.description)}</p>",
    ]
    keys = list(COMPARE_KEYS) + ["lane_changes_per_km", "episodes"]
    parts.append("<h2>Summary</h2>")
    parts.append(_table(["metric", *[r.pilot for r in results]], [[k, *[r.summary[k] for r in results]] for k in keys]))
    comparison = None
    if len(results) == 2:
        comparison = compare(results[0], results[1])
        parts.append(
            f"<h2>Comparison</h2><p>{html.escape(results[1].pilot)} minus {html.escape(results[0].pilot)}, paired "
            f"over the same episodes; 95% paired bootstrap interval ({BOOTSTRAP_RESAMPLES} resamples).</p>"
        )
        rows = [[k, d["a"], d["b"], d["diff"], d["ci_low"], d["ci_high"]] for k, d in comparison.items()]
        parts.append(_table(["metric", results[0].pilot, results[1].pilot, "difference", "95% low", "95% high"], rows))
    for r in results:
        parts.append(f"<h2>Per scenario: {html.escape(r.pilot)}</h2>")
        cols = [
            "score",
            "collision_rate",
            "route_failure_rate",
            "route_completion",
            "progress_m",
            "comfort",
            "episodes",
        ]
        rows = [[s.name, *[s.summary[c] for c in cols]] for s in r.scenarios]
        parts.append(_table(["scenario", *cols], rows))
    parts.append("<h2>Plots</h2><img src='scenario_scores.png'><br><img src='distributions.png'>")
    all_videos = {}
    for i, (r, make_pilot) in enumerate(zip(results, make_pilots)):
        tag = f"pilot{i}"
        videos = write_worst_videos(out, make_pilot, suite, r, worst, device, tag)
        all_videos[r.pilot] = videos
        parts.append(f"<h2>Worst episodes: {html.escape(r.pilot)}</h2>")
        for v in videos:
            parts.append(
                f"<figure style='display:inline-block'><img src='{html.escape(v['path'])}' width='480'>"
                f"<figcaption>{html.escape(v['scenario'])}, world {v['world']}, score {v['score']:.3f}"
                f"</figcaption></figure>"
            )
    payload = {"results": [r.to_json() for r in results], "comparison": comparison, "videos": all_videos}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    page = out / "index.html"
    page.write_text("\n".join(parts) + "\n")
    return page
