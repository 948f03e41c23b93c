"""One training process's pieces, each passed explicitly to PPO and BC (`ppo.train`, `bc.train`):

    Learner      the weights and what changes them: the model, its DDP wrapper, the optimizer, the random
                 generator of rollouts and minibatches, the precision
    Worlds       this rank's batched worlds and where their episodes stand between iterations (the carry)
    Bookkeeper   what an iteration reports to: progress counters and the stop rule, episode statistics, timing,
                 the log, periodic evaluation and checkpoints

plus `build_session` (the three, seeded) and `restore` (the three from the newest checkpoint). The algorithms
themselves live in `ppo.py` and `bc.py`; this module holds no learning rule.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from fuyao.configio import to_dict
from fuyao.pilots.learned import CheckpointError, check_state_dict
from fuyao.pilots.networks import ActorCritic
from fuyao.sim.world import World
from fuyao.train.checkpoint import Checkpointer, checkpoint_payload
from fuyao.train.config import RESUMABLE_CHANGES, TrainConfig
from fuyao.train.distributed import RANK_SEED_STRIDE, Dist, broadcast_flag, sum_across
from fuyao.train.logger import RunLogger
from fuyao.train.precision import use_bf16
from fuyao.train.rollout import Carry, Rollout, check_finite, observe_carry, state_from_tensors, state_tensors


class NonFiniteError(RuntimeError):
    """NaN or inf met in training; raised before it reaches the weights or a checkpoint."""


def check_rollout(buf: Rollout, iteration: int) -> None:
    """Raise `NonFiniteError` if the rollout holds NaN or inf (one host sync when all is finite)."""
    problem = check_finite(buf, iteration)
    if problem is not None:
        raise NonFiniteError(f"non-finite rollout: {problem}; stopped before learning from it")


@dataclass(frozen=True)
class Learner:
    """The weights and what changes them: all an update reads besides its batch and its config."""

    model: ActorCritic
    net: torch.nn.Module  # what the loss calls: `model`, or its DistributedDataParallel wrapper (averages gradients)
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # every draw of a rollout (actions, the teacher's share) and of the minibatch order
    bf16: bool = False  # the network under bfloat16 autocast (`TrainConfig.precision` resolved on this device)


@dataclass
class Worlds:
    """This rank's batched worlds and where their episodes stand between iterations."""

    world: World
    carry: Carry  # replaced by every rollout (`collect` returns the next one)
    # DAgger's aggregate dataset (`BCConfig.dagger_iterations`, `fuyao.train.bc.Aggregate`): the labelled decisions
    # of the last iterations, carried between them and checkpointed with the worlds; None without one.
    dagger: dict[str, torch.Tensor] | None = None


class UpdateGuard:
    """Keeps non-finite steps out of the weights without a host synchronisation per minibatch.

    Checking `isfinite(loss)` before every optimizer step reads the device once per minibatch (the host waits
    for the backward pass and the GPU then idles while the host queues the next minibatch). Instead: at the
    start of an update the weights and the optimizer state are copied (on the device, no sync); each minibatch
    folds `isfinite(loss) & isfinite(grad norm)` into a device flag, remembering the first bad minibatch and
    which parameters' gradients were non-finite there; `finish` reads the flag once per update and, if any
    minibatch was bad, puts the weights and the optimizer state back as they were before the update and raises
    `NonFiniteError`. Steps after a bad one may make the weights non-finite in between; nothing reads them
    before `finish` restores them (no checkpoint, no evaluation, no rollout runs inside an update).
    """

    def __init__(self, learner: Learner, algo: str, minibatches: int, iteration: int) -> None:
        self.learner, self.algo, self.minibatches, self.iteration = learner, algo, minibatches, iteration
        params = list(learner.model.parameters())
        device = params[0].device
        with torch.no_grad():
            self.weights = [p.detach().clone() for p in params]
        self.optimizer_state = _clone_tensors(learner.optimizer.state_dict())
        self.ok = torch.ones((), dtype=torch.bool, device=device)
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # epoch * minibatches + k
        self.bad_loss = torch.zeros((), device=device)
        self.bad_params = torch.zeros(len(params), dtype=torch.bool, device=device)
        self.count = 0

    def check(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """After `clip_grad_norm_`, before the optimizer step: note whether this minibatch is finite."""
        finite = torch.isfinite(loss.detach()) & torch.isfinite(grad_norm)
        first = self.ok & ~finite
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.learner.model.parameters()]
        norms = torch.stack(torch._foreach_norm(grads))  # one fused kernel, as `clip_grad_norm_` computes them
        self.bad_params = torch.where(first, ~torch.isfinite(norms), self.bad_params)
        self.bad_loss = torch.where(first, loss.detach().float(), self.bad_loss)
        self.first_bad = torch.where(first, self.count, self.first_bad)
        self.ok = self.ok & finite
        self.count += 1

    def finish(self) -> None:
        """One host sync: raise `NonFiniteError` (weights and optimizer state restored) if a minibatch was bad."""
        if bool(self.ok):
            return
        model, optimizer = self.learner.model, self.learner.optimizer
        with torch.no_grad():
            for p, w in zip(model.parameters(), self.weights):
                p.copy_(w)
        optimizer.load_state_dict(self.optimizer_state)
        names = [n for n, _ in model.named_parameters()]
        bad = [n for n, flag in zip(names, self.bad_params.tolist()) if flag]
        epoch, k = divmod(int(self.first_bad), self.minibatches)
        where = f"iteration {self.iteration}, epoch {epoch}, minibatch {k}"
        raise NonFiniteError(
            f"{self.algo} loss {float(self.bad_loss)} with non-finite gradients in {bad or 'none'} at {where}; "
            "the update was undone (weights and optimizer state as before it; the last checkpoint is untouched)"
        )


def _clone_tensors(tree):
    """A deep copy of a state dict's tensors (on their devices) and containers."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().clone()
    if isinstance(tree, dict):
        return {k: _clone_tensors(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_clone_tensors(v) for v in tree]
    return tree


class Timers:
    """Seconds per phase (`sim`, `act`, `learn`, `eval`, ...), summed since the last `take`.

    On CUDA the host runs ahead of the device, so `perf_counter` around a call measures its launch, not its
    work. There a mark is a CUDA event recorded on the current stream (no synchronisation), a span is the
    device time between two events, and `take` synchronises once to read them all (once per iteration). On
    the CPU a mark is `perf_counter()`.
    """

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.cuda = device is not None and torch.device(device).type == "cuda"
        self._spans: list[tuple[str, Any, Any]] = []  # (name, start event, end event), read in `take`

    def mark(self) -> Any:
        """A point in time: a recorded CUDA event on CUDA, else `perf_counter()` seconds."""
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def span(self, name: str, start: Any, end: Any) -> None:
        """Add the time from mark `start` to mark `end` to `name`."""
        if self.cuda:
            self._spans.append((name, start, end))
        else:
            self.add(name, end - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @contextlib.contextmanager
    def phase(self, name: str):
        start = self.mark()
        try:
            yield
        finally:
            self.span(name, start, self.mark())

    def take(self) -> dict[str, float]:
        if self._spans:
            torch.cuda.synchronize()  # every event recorded so far has happened
            for name, start, end in self._spans:
                self.add(name, start.elapsed_time(end) / 1000.0)  # ms -> s
            self._spans = []
        out, self.seconds = self.seconds, {}
        return out


class EpisodeStats:
    """Episode return and length (training's own numbers) beside the driving metrics, which come from the
    evaluation's `MetricAccumulator` so training and `fuyao eval` share one definition of every metric. Running
    sums stay on the device; `take` reads them once per iteration."""

    def __init__(self, agents: int, device: torch.device, decision_s: float) -> None:
        from fuyao.evaluation.metrics import MetricAccumulator

        self.running = torch.zeros(2, agents, device=device)  # return, length
        self.total = torch.zeros(3, device=device)  # episodes, return, length
        self.metrics = MetricAccumulator(agents, device, decision_s)

    def __call__(self, info: dict[str, torch.Tensor], reward: torch.Tensor, done: torch.Tensor) -> None:
        active = info["active"].float()
        self.running += torch.stack([reward * active, active])
        d = done.float()
        self.total += torch.cat([d.sum().view(1), (self.running * d).sum(dim=1)])
        self.running *= 1.0 - d
        self.metrics.update(info, done)

    def take(self, d: Dist) -> dict[str, float]:
        """Totals over every rank for return and length; the driving metrics of this rank's episodes."""
        n, ret, length = sum_across(d, self.total).tolist()
        self.total.zero_()
        metrics = self.metrics.summary()
        if n == 0:
            return {"episodes": 0.0}
        out = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        return {**out, "episodes": n, "episode_return": ret / n, "episode_length": length / n}


@dataclass
class Progress:
    """How far the run has come, across resumes (all of it goes into a checkpoint's `resume`)."""

    iteration: int = 0
    decisions: int = 0  # active controlled-vehicle decisions so far, every rank summed
    elapsed_at_start: float = 0.0  # s of training before this process started (a resumed run's earlier ones)
    started: float = field(default_factory=time.monotonic)  # this process's start, `time.monotonic()` s
    target_reached: bool = False  # a periodic evaluation met `Bookkeeper.stop_when`

    def now(self) -> float:
        """Training wall-clock so far, s, across resumes."""
        return self.elapsed_at_start + time.monotonic() - self.started


@dataclass
class Bookkeeper:
    """What PPO and BC report to: the stop rule (`should_stop`), episode statistics (`stats`, the rollout's
    `on_step`), timing (`timers`), and `end_iteration`, which counts, logs, evaluates and checkpoints. It holds no
    weights: the learner and the worlds are passed in where they are evaluated or saved."""

    cfg: TrainConfig
    dist: Dist
    device: torch.device
    logger: RunLogger
    checkpointer: Checkpointer
    evaluator: Any  # callable(model) -> dict with "score" (fuyao.train.evaluator.Evaluator) or None
    stats: EpisodeStats
    timers: Timers
    progress: Progress = field(default_factory=Progress)
    stop_when: Any = None  # callable(eval summary) -> bool: stop once it holds (time to target)
    last_eval: dict[str, float] = field(default_factory=dict)
    curve: list[dict[str, float]] = field(default_factory=list)  # every evaluation: decisions, time, metrics

    def message(self, text: str) -> None:
        self.logger.message(text)

    def should_stop(self, until: int) -> bool:
        """Rank 0's verdict on every rank: `until` decisions reached, the target met, or the time budget spent."""
        p = self.progress
        stop = p.decisions >= until or p.target_reached
        if self.cfg.time_budget is not None and p.now() >= self.cfg.time_budget:
            stop = True
        return broadcast_flag(self.dist, stop, self.device)

    def end_iteration(self, learner: Learner, worlds: Worlds, learned: torch.Tensor, row: dict[str, float]) -> None:
        """Count the iteration, log `row` with the episode statistics and timing, evaluate and checkpoint when due.
        `learned`: the decisions this iteration learned from on this rank (a scalar tensor)."""
        p = self.progress
        active = sum_across(self.dist, learned.to(torch.float64).view(1))
        p.decisions += int(active.item())
        p.iteration += 1
        times = self.timers.take()
        spent = sum(times.get(k, 0.0) for k in ("rollout", "learn"))
        row = {**row, **self.stats.take(self.dist), "decisions": float(p.decisions)}
        row["decisions_per_s"] = float(active.item()) / max(spent, 1e-9)
        work = sum(times.get(k, 0.0) for k in ("sim", "act", "learn")) or 1.0
        for k in ("sim", "act", "learn"):
            row[f"time_{k}_frac"] = times.get(k, 0.0) / work
            row[f"time_{k}_s"] = times.get(k, 0.0)
        cfg = self.cfg
        score = None
        if self.dist.is_main and self.evaluator is not None and cfg.eval_every and p.iteration % cfg.eval_every == 0:
            score = self.evaluate(learner.model, row)
        if p.iteration % cfg.checkpoint_every == 0:
            self.save(learner, worlds, score)
        row["elapsed_s"] = p.now()
        self.logger.log(p.decisions, row)

    def evaluate(self, model: ActorCritic, row: dict[str, float] | None = None) -> float:
        """Run the evaluator on `model`; add its numbers to `row` and the curve; return what checkpoints are
        ranked by."""
        p = self.progress
        t0 = time.perf_counter()
        result = self.evaluator(model)
        self.last_eval = {f"eval_{k}": float(v) for k, v in result.items() if isinstance(v, (int, float))}
        self.last_eval["eval_time_s"] = time.perf_counter() - t0
        if row is not None:
            row.update(self.last_eval)
        self.curve.append({"decisions": p.decisions, "elapsed_s": p.now(), **self.last_eval})
        if self.stop_when is not None and self.stop_when(result):
            p.target_reached = True
        shown = (
            "score",
            "collision_rate",
            "at_fault_collision_rate",
            "route_completion",
            "progress_m",
            "red_light_runs_per_km",
            "target_met",
            "selection",
            "episodes",
        )
        groups = dict.fromkeys(k.split("/", 1)[0] for k in result if "/" in k)
        self.message(
            f"eval @ {p.decisions:,} decisions: "
            + ", ".join(f"{k} {result[k]:.3f}" for k in shown if isinstance(result.get(k), (int, float)))
            + "".join(
                f"\n  {g}: " + ", ".join(f"{k} {result[f'{g}/{k}']:.3f}" for k in shown[:6] if f"{g}/{k}" in result)
                for g in groups
            )
        )
        # What checkpoints are ranked by: the target margin where the evaluator gives one, else the score.
        return float(result.get("selection", result["score"]))

    def summary(self) -> dict[str, Any]:
        p = self.progress
        return {
            "iteration": p.iteration,
            "decisions": p.decisions,
            "elapsed_s": p.now(),
            "preset": self.cfg.preset,
            "target_reached": p.target_reached,
            **self.last_eval,
            "curve": self.curve,
        }

    def save(self, learner: Learner, worlds: Worlds, score: float | None = None) -> None:
        """A checkpoint of the weights with all `restore` needs to go on exactly (rank 0 writes)."""
        if not self.dist.is_main:
            return
        p = self.progress
        resume = {
            "optimizer": learner.optimizer.state_dict(),
            "generator": learner.generator.get_state(),
            "world_state": {k: v.cpu() for k, v in state_tensors(worlds.carry.state).items()},
            "iteration": p.iteration,
            "decisions": p.decisions,
            "elapsed_s": p.now(),
            "best_score": max(self.checkpointer.best_score, score if score is not None else -math.inf),
        }
        if worlds.dagger is not None:
            resume["dagger"] = {k: v.cpu() for k, v in worlds.dagger.items()}
        payload = checkpoint_payload(self.cfg, learner.model, resume, self.summary())
        self.checkpointer.save(payload, p.iteration, score)

    def close(self) -> None:
        self.logger.close()


def check_resumable(saved: dict, cfg: TrainConfig, where: str) -> None:
    """Refuse to resume when anything but the budget/output fields differs from the saved run's config."""
    now = to_dict(cfg)
    diff = [k for k in sorted(set(saved) | set(now)) if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k)]
    if diff:
        detail = "; ".join(
            f"{k}: saved {json.dumps(saved.get(k))[:120]}, now {json.dumps(now.get(k))[:120]}" for k in diff
        )
        raise CheckpointError(f"{where}: made with a different configuration ({detail}); resume with the same flags")


def restore(cfg: TrainConfig, learner: Learner, worlds: Worlds, book: Bookkeeper) -> str:
    """Load the newest usable checkpoint of `cfg.out` into the three (every rank reads the same file)."""
    path, data = book.checkpointer.latest_good(book.message)
    where = str(path)
    check_resumable(json.loads(data["train"]), cfg, where)
    check_state_dict(learner.model, data["model"], where)
    r = data["resume"]
    template = worlds.carry.state
    state = state_from_tensors(template, r["world_state"], where)
    try:
        learner.optimizer.load_state_dict(r["optimizer"])
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"{where}: optimizer state does not fit: {err}") from None
    learner.model.load_state_dict(data["model"])
    learner.generator.set_state(r["generator"])
    rank = book.dist.rank
    if rank == 0:
        worlds.carry = observe_carry(worlds.world, state)
    else:  # only rank 0's worlds are in the file: the others begin fresh worlds, seeded by the iteration too
        fresh = worlds.world.reset(cfg.seed + RANK_SEED_STRIDE * rank + 7919 * int(r["iteration"]))
        worlds.carry = observe_carry(worlds.world, fresh)
    if "dagger" in r:  # rank 0's dataset, for every rank (its decisions are as good a sample for the others)
        worlds.dagger = {k: v if k == "count" else v.to(book.device) for k, v in r["dagger"].items()}
    p = book.progress
    p.iteration = int(r["iteration"])
    p.decisions = int(r["decisions"])
    p.elapsed_at_start = float(r["elapsed_s"])
    book.checkpointer.best_score = float(r["best_score"])
    return where


def build_session(
    cfg: TrainConfig, d: Dist, device: torch.device, evaluator, stop_when=None
) -> tuple[Learner, Worlds, Bookkeeper]:
    """This process's learner, worlds and bookkeeper for `cfg`, seeded by `cfg.seed` and the rank."""
    torch.manual_seed(cfg.seed + RANK_SEED_STRIDE * d.rank)
    sim = dataclasses.replace(cfg.sim)
    world = World(sim, device, compile="tick+observe" if cfg.compile else False)  # see World: minutes-long runs
    model = ActorCritic(sim, cfg.policy).to(device)
    if d.enabled:
        from torch.nn.parallel import DistributedDataParallel

        net: torch.nn.Module = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    else:
        net = model
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.ppo.lr, eps=1e-5)
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.seed + RANK_SEED_STRIDE * d.rank)
    carry = observe_carry(world, world.reset(cfg.seed + RANK_SEED_STRIDE * d.rank))
    logger = RunLogger(cfg.out, cfg.steps, enabled=d.is_main)
    checkpointer = Checkpointer(cfg.out, cfg.keep_last, enabled=d.is_main)
    stats = EpisodeStats(sim.worlds * sim.controlled, device, 1.0 / sim.decision_hz)
    bf16 = use_bf16(cfg.precision, device)
    logger.message(f"precision: {'bf16 autocast' if bf16 else 'fp32'} ({cfg.precision} on {device})")
    learner = Learner(model, net, optimizer, generator, bf16)
    book = Bookkeeper(cfg, d, device, logger, checkpointer, evaluator, stats, Timers(device), stop_when=stop_when)
    return learner, Worlds(world, carry), book
