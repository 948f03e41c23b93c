"""Periodic evaluation during training, and the target the learned pilot is held to.

The evaluator runs the closed-loop evaluation (`fuyao.evaluation`) of the current weights on the *validation
twin* of the training preset's suite (`Suite.validation()`: other episode seeds, other maps), scaled down to
`eval_episodes`, with the same metric definitions and score as `fuyao eval`. The suite itself only reports: no
checkpoint is chosen and no run is stopped on its episodes.

The target is the rule-based pilot on the same validation episodes: route progress at least its progress,
at-fault collisions and red-light runs at most its rates. Each criterion's margin is measured in a unit of what
matters (5 % of the rule-based progress, one at-fault collision per 100 episodes, 0.1 red-light runs per km).
Where the suite has groups (the `ngp` suite: highway, city and NGP-trip scenarios), every criterion is measured
on each group's episodes, and the target holds only where it holds on all of them at once: a pilot that beats the
rule-based pilot on highways cannot buy back red-light runs in town. A checkpoint that meets every criterion outranks every one that does not, and among those the largest smallest
margin wins (`selection`), the score only breaking ties: there a faster but riskier pilot does not win on score.
While no checkpoint meets the target, the score ranks them. (Ranking those by their smallest margin as well
chose, in the main job, a checkpoint that had one at-fault collision fewer in 200 validation episodes and lost to
the rule-based pilot on `highway@1`: at that many episodes one collision is 0.5 of a unit, noise that outweighs
the score; BENCHMARKS.md, "Choosing the checkpoint on validation episodes".)
"""

from __future__ import annotations

import copy
import math

import torch

from fuyao.pilots.learned import LearnedPilot
from fuyao.pilots.networks import ActorCritic
from fuyao.train.config import TrainConfig

# criterion: (metric, +1 if more is better else -1, the unit its margin is measured in; relative if None)
TARGET_CRITERIA: tuple[tuple[str, int, float | None], ...] = (
    ("progress_m", +1, None),
    ("at_fault_collision_rate", -1, 0.01),
    ("red_light_runs_per_km", -1, 0.1),
)
PROGRESS_UNIT = 0.05  # of the rule-based pilot's progress
SCORE_TIE_BREAK = 1.0e-3
MET_RANK = 10.0  # above any score: a checkpoint that meets the target outranks every one that does not


def _parts(summary: dict[str, float], reference: dict[str, float]) -> list[tuple[str, dict, dict]]:
    """`(prefix, summary, reference)` per group the reference has (keys `group/metric`, `Suite.groups`), or the
    pooled summaries alone for a suite without groups."""
    groups = list(dict.fromkeys(k.split("/", 1)[0] for k in reference if "/" in k))
    if not groups:
        return [("", summary, reference)]
    return [(f"{g}/", _group(summary, g), _group(reference, g)) for g in groups]


def _group(summary: dict[str, float], group: str) -> dict[str, float]:
    prefix = f"{group}/"
    return {k[len(prefix) :]: v for k, v in summary.items() if k.startswith(prefix)}


def target_margins(summary: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
    """Each criterion's margin over the reference, in its unit: >= 0 where the criterion holds. With groups (keys
    `group/metric` in both, from a suite with `Suite.groups`), one margin per group and criterion, named
    `group/metric`: the target holds only where it holds on every kind of road at once."""
    margins = {}
    for prefix, part, ref_part in _parts(summary, reference):
        for name, sign, unit in TARGET_CRITERIA:
            value, ref = float(part[name]), float(ref_part[name])
            if unit is not None:  # a rate over no distance or no episodes is no event
                value, ref = _rate(value), _rate(ref)
            scale = unit if unit is not None else PROGRESS_UNIT * max(abs(ref), 1.0)
            margins[prefix + name] = sign * (value - ref) / scale
    return margins


def _rate(x) -> float:
    x = float(x)
    return 0.0 if math.isnan(x) else x


def _all_met(margins: dict[str, float]) -> bool:
    return all(m >= 0.0 for m in margins.values())


def target_met(summary: dict[str, float], reference: dict[str, float]) -> bool:
    """Progress at least the reference's, at-fault collisions and red-light runs at most its rates (on every
    group, where the summaries have groups)."""
    return _all_met(target_margins(summary, reference))


def selection_value(summary: dict[str, float], reference: dict[str, float]) -> float:
    """What checkpoints are ranked by. One that meets the target ranks above every one that does not, and among
    those that meet it the largest smallest margin wins (the score breaking ties): `MET_RANK + margin`. While
    none meets it, the score ranks them (in [0, 1], below `MET_RANK`). A rate that both pilots hold at zero (no
    red-light run by either) is met and cannot be beaten, so it does not cap the margin."""
    score = float(summary["score"])
    score = score if math.isfinite(score) else 0.0
    margins = target_margins(summary, reference)
    if not _all_met(margins):
        return score
    informative = [
        margins[prefix + name]
        for prefix, _, ref_part in _parts(summary, reference)
        for name, _, unit in TARGET_CRITERIA
        if unit is None or margins[prefix + name] != 0.0 or _rate(ref_part[name]) != 0.0
    ]
    return MET_RANK + (min(informative) if informative else 0.0) + SCORE_TIE_BREAK * score


def grouped_summary(result) -> dict[str, float]:
    """An `EvalResult`'s summary over every episode, with each group's summary beside it as `group/metric`."""
    summary = dict(result.summary)
    for group, part in result.group_summaries().items():
        summary.update({f"{group}/{k}": v for k, v in part.items()})
    return summary


class Evaluator:
    """`evaluator(model) -> summary dict` (score, collision_rate, route_completion, progress_m, ..., and
    `target_met`, `selection` and `margin_*` against the rule-based pilot on the same validation episodes). For a
    suite with groups (`ngp`: highway, city, ngp) the summary also holds every group's metrics as `group/metric`,
    and the target must hold on each group."""

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        from fuyao.evaluation import get_suite

        self.cfg = cfg
        self.device = device
        self.suite = get_suite(cfg.preset).validation()
        self._reference: dict[str, float] | None = None

    def evaluate(self, make_pilot) -> dict[str, float]:
        from fuyao.evaluation import evaluate

        result = evaluate(
            make_pilot, self.suite, self.device, episodes=self.cfg.eval_episodes, workers=self.cfg.eval_workers
        )
        return grouped_summary(result)

    @property
    def reference(self) -> dict[str, float]:
        """The rule-based pilot on the validation episodes (computed once; the episodes are seeded)."""
        if self._reference is None:
            from fuyao.pilots.rule_based import RuleBasedPilot

            self._reference = self.evaluate(RuleBasedPilot)
        return self._reference

    def __call__(self, model: ActorCritic) -> dict[str, float]:
        frozen = copy.deepcopy(model).eval()  # the pilot must not change while training goes on
        pilot = LearnedPilot(frozen, self.cfg.sim, self.cfg.policy)
        summary = self.evaluate(pilot.for_world)  # a bound method pickles: scenarios may run in other processes
        reference = self.reference
        margins = target_margins(summary, reference)
        summary.update({f"margin_{k}": v for k, v in margins.items()})
        summary["target_met"] = float(_all_met(margins))
        summary["selection"] = selection_value(summary, reference)
        return summary
