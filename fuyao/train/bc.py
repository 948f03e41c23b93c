"""Behaviour cloning from the rule-based pilot, top to bottom, on the same batched worlds PPO trains in, or
from demonstrations on disk (`TrainConfig.data`, `train_offline`).

One iteration: `collect` T decisions of every agent while the rule-based pilot (IDM + MOBIL + route, reading
the world state) labels every observation. Who drives is DAgger's mixture (Ross et al. 2011): each agent's
action is the teacher's with probability beta = 1 - iteration / teacher_iterations (decaying to 0), else the
student's, so the student sees and learns to leave the states its own mistakes lead to. Then `epochs` passes of minibatch updates of

    loss = -log pi(teacher action | obs)  +  vf_coef x 0.5 (V(obs) - lambda-return)^2

over active agent-steps. Meta actions are masked as in PPO (the teacher's own action always counts as allowed);
continuous actions are fitted by the Gaussian's likelihood (mean and std). The value head learns the student's
returns so that PPO warm-started from BC (`--bc-warm-start`) begins with a critic that fits the policy.
"""

from __future__ import annotations

import functools

import torch

from fuyao.pilots.networks import distribution
from fuyao.pilots.rule_based import RuleBasedPilot
from fuyao.sim.step import META_LEFT, META_RIGHT
from fuyao.sim.world import World
from fuyao.train import precision
from fuyao.train.config import BCConfig, TeacherKind, TrainConfig
from fuyao.train.rollout import Rollout, collect, gae
from fuyao.train.session import Bookkeeper, Learner, UpdateGuard, Worlds, check_rollout

# `BCConfig.regret_coef`: the teacher's cost differences in units of one predicted crash step of
# `kinematics-planner` (`PlannerConfig.crash_cost`), capped at three.
REGRET_SCALE = 100.0
REGRET_CAP = 3.0


def bc_loss(learner: Learner, cfg: BCConfig, b: dict[str, torch.Tensor], ret: torch.Tensor, idx: torch.Tensor):
    """The loss on minibatch `idx` (rows of the flat rollout `b`, lambda-returns `ret` `[T x E]`) and its parts
    `[imitation, value, accuracy]`."""
    model = learner.model
    weight = b["active"][idx].float()
    n = weight.sum().clamp(min=1.0)
    actor_out, value = precision.forward(learner.net, b["obs"][idx], learner.bf16)
    label = b["teacher"][idx]
    mask = b["mask"][idx]
    if model.log_std is None:
        mask = mask | torch.nn.functional.one_hot(label, mask.shape[-1]).bool()
        correct = (actor_out.masked_fill(~mask, -1e8).argmax(-1) == label).float()
    else:
        correct = ((actor_out.clamp(-1, 1) - label).abs().amax(-1) < 0.1).float()
    if cfg.soft_temperature > 0.0:
        # Cross-entropy against the teacher's distribution over the available actions, the student's softmax taken
        # over all five: what the mask refuses gets probability 0 and is pushed down, so the network never prefers
        # it and drives as well unmasked. (highway-env hands a pilot no mask; with the student's softmax masked too,
        # FASTER at the top speed was never trained, won where a brake was due, acted as IDLE there, and the clone
        # crashed in 19 % of episodes unmasked against 1 % masked.)
        teacher_logits = b["teacher_logits"][idx].float()
        target = torch.softmax(teacher_logits.masked_fill(~mask, float("-inf")), dim=-1)
        log_pi = torch.log_softmax(actor_out.float(), dim=-1)
        nll = -(target * log_pi).sum(-1)
        if cfg.regret_coef > 0.0:
            # The student's expected regret in the teacher's costs (the logits are -(cost - least) / temperature).
            regret = (-teacher_logits * (cfg.soft_temperature / REGRET_SCALE)).clamp(0.0, REGRET_CAP)
            nll = nll + cfg.regret_coef * (log_pi.exp() * regret).sum(-1)
    else:
        nll = -distribution(model, actor_out, mask).log_prob(label)
    if cfg.lane_change_weight != 1.0 and model.log_std is None:
        change = (label == META_LEFT) | (label == META_RIGHT)
        imitation_weight = weight * torch.where(change, cfg.lane_change_weight, 1.0)
        imitation = (nll * imitation_weight).sum() / imitation_weight.sum().clamp(min=1.0)
    else:
        imitation = (nll * weight).sum() / n
    value_loss = 0.5 * (((value - ret[idx]) ** 2) * weight).sum() / n
    loss = imitation + cfg.vf_coef * value_loss
    return loss, torch.stack([imitation, value_loss, (correct * weight).sum() / n]).detach()


AGGREGATED = ("obs", "mask", "teacher", "teacher_logits", "active")


def aggregate(
    worlds: Worlds, b: dict[str, torch.Tensor], ret: torch.Tensor, iterations: int
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """DAgger's dataset: this iteration's labelled rows `b` (and their returns `ret`) written over the oldest of
    the last `iterations` iterations' in `worlds.dagger` (a ring, allocated on first use); returns every row held
    so far, `[filled x rows, ...]`."""
    rows = ret.shape[0]
    if worlds.dagger is None:
        worlds.dagger = {
            k: torch.zeros(iterations, *b[k].shape, dtype=b[k].dtype, device=ret.device) for k in AGGREGATED
        }
        worlds.dagger["ret"] = torch.zeros(iterations, rows, device=ret.device)
        worlds.dagger["count"] = torch.zeros((), dtype=torch.int64)
    d = worlds.dagger
    count = int(d["count"])  # a CPU tensor: no device synchronisation
    slot = count % iterations
    for k in AGGREGATED:
        d[k][slot].copy_(b[k])
    d["ret"][slot].copy_(ret)
    d["count"] = torch.tensor(count + 1)
    filled = min(count + 1, iterations)
    return {k: d[k][:filled].flatten(0, 1) for k in AGGREGATED}, d["ret"][:filled].flatten()


def make_teacher(cfg: TrainConfig, world: World, soft: bool = False):
    """The run's teacher (`TrainConfig.teacher`) for `world`, as `collect` calls it: `(obs, state) -> [W, C]`
    actions, or with `soft` (`BCConfig.soft_temperature > 0`) `(actions, [W, C, 5] logits)`."""
    if cfg.teacher is TeacherKind.KINEMATICS_PLANNER:
        from fuyao.pilots.kinematics_planner import KinematicsPlanner

        planner = KinematicsPlanner(world)
        if soft:
            return functools.partial(planner.teach, temperature=cfg.bc.soft_temperature)
        return planner.act
    return RuleBasedPilot(world).act  # `TrainConfig` refuses soft targets from it: it ranks no actions


def train(cfg: TrainConfig, learner: Learner, worlds: Worlds, book: Bookkeeper, until: int, demos=None) -> None:
    """BC iterations until `until` decisions (or the time budget) are reached: from `demos`
    (`fuyao.data.demos.Demonstrations`, `TrainConfig.data`) where the run has them, else from the rule-based pilot
    in `worlds`. Each iteration updates `learner` and reports to `book` (log, evaluation, checkpoint)."""
    if demos is not None:
        train_offline(cfg, learner, worlds, book, demos, until)
        return
    bc, ppo = cfg.bc, cfg.ppo
    progress, timers = book.progress, book.timers
    teacher = make_teacher(cfg, worlds.world, soft=bc.soft_temperature > 0.0)
    buf = Rollout.allocate(bc.rollout_steps, worlds.world, worlds.world.device)
    book.message(f"behaviour cloning from the {cfg.teacher.value} pilot until {until:,} decisions")
    while not book.should_stop(until):
        lr = bc.lr * max(0.0, 1.0 - progress.decisions / until) if bc.anneal_lr else bc.lr
        for group in learner.optimizer.param_groups:
            group["lr"] = lr
        teacher_share = max(0.0, 1.0 - progress.iteration / bc.teacher_iterations) if bc.teacher_iterations else 0.0
        with timers.phase("rollout"):
            worlds.carry = collect(
                worlds.world,
                learner.model,
                worlds.carry,
                buf,
                learner.generator,
                ppo.gamma,
                book.stats,
                teacher=teacher,
                teacher_share=teacher_share,
                timers=timers,
                greedy=bc.greedy_student,
                bf16=learner.bf16,
                action_noise=bc.action_noise,
            )
        check_rollout(buf, progress.iteration)
        with timers.phase("learn"):
            _, ret = gae(buf.reward, buf.value, buf.done, buf.next_value, ppo.gamma, ppo.gae_lambda)
            b = buf.flat()
            ret = ret.flatten()
            n = ret.shape[0]
            if bc.dagger_iterations:
                b, ret = aggregate(worlds, b, ret, bc.dagger_iterations)
            size = n // bc.minibatches
            parts = torch.zeros(3, device=ret.device)
            generator, optimizer = learner.generator, learner.optimizer
            guard = UpdateGuard(learner, "BC", bc.minibatches, progress.iteration)
            for _ in range(bc.epochs):
                # One iteration's worth of rows (of the aggregate dataset's, where there is one).
                order = torch.randperm(ret.shape[0], generator=generator, device=generator.device)[:n].to(ret.device)
                for k in range(bc.minibatches):
                    loss, part = bc_loss(learner, bc, b, ret, order[k * size : (k + 1) * size])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    norm = torch.nn.utils.clip_grad_norm_(learner.model.parameters(), ppo.max_grad_norm)
                    guard.check(loss, norm)
                    optimizer.step()
                    parts += part
            guard.finish()
            host = (parts / (bc.epochs * bc.minibatches)).tolist()
        row = {
            "bc_loss_imitation": host[0],
            "bc_loss_value": host[1],
            "bc_accuracy": host[2],
            "bc_teacher_share": teacher_share,
            "lr": lr,
            "phase_ppo": 0.0,
        }
        book.end_iteration(learner, worlds, buf.active.sum(), row)


def demo_loss(learner: Learner, b: dict[str, torch.Tensor], idx: torch.Tensor):
    """The imitation loss on rows `idx` of a demonstration batch and its parts `[imitation, accuracy]`."""
    actor_out, _ = precision.forward(learner.net, b["obs"][idx], learner.bf16)
    label = b["action"][idx]
    if learner.model.log_std is None:
        mask = b["mask"][idx] | torch.nn.functional.one_hot(label, b["mask"].shape[-1]).bool()
        correct = (actor_out.masked_fill(~mask, -1e8).argmax(-1) == label).float()
    else:
        mask = None
        correct = ((actor_out.clamp(-1, 1) - label).abs().amax(-1) < 0.1).float()
    imitation = -distribution(learner.model, actor_out, mask).log_prob(label).mean()
    return imitation, torch.stack([imitation, correct.mean()]).detach()


def train_offline(cfg: TrainConfig, learner: Learner, worlds: Worlds, book: Bookkeeper, demos, until: int) -> None:
    """BC iterations from the demonstrations `demos` until `until` decisions. Each iteration learns from
    `rollout_steps x worlds x controlled` demonstrated decisions, as many as an iteration from the rule-based
    pilot, in `epochs` passes of `minibatches` minibatches. The stream's position follows from the decisions
    already learned, so a resumed run reads on where it stopped. The value head is not fitted: demonstrations
    hold no returns of the student's policy (a PPO warm start fits it in its first iterations). `worlds` only
    goes into the checkpoints (a PPO phase after this one goes on from them)."""
    bc = cfg.bc
    progress, timers, device = book.progress, book.timers, book.device
    size = bc.rollout_steps * cfg.sim.worlds * cfg.sim.controlled
    stream = demos.batches(cfg.seed, progress.decisions // book.dist.world_size, size)
    book.message(
        f"behaviour cloning from {demos.folder} ({demos.rows:,} demonstrated decisions in {len(demos.parts)} parts "
        f"on this process) until {until:,} decisions"
    )
    while not book.should_stop(until):
        lr = bc.lr * max(0.0, 1.0 - progress.decisions / until) if bc.anneal_lr else bc.lr
        for group in learner.optimizer.param_groups:
            group["lr"] = lr
        with timers.phase("rollout"):  # reading the demonstrations stands where the rollout would
            b = {k: v.to(device, non_blocking=True) for k, v in next(stream).items()}
        with timers.phase("learn"):
            n = b["obs"].shape[0]
            mb = max(1, n // bc.minibatches)
            parts = torch.zeros(2, device=device)
            generator, optimizer = learner.generator, learner.optimizer
            guard = UpdateGuard(learner, "BC", bc.minibatches, progress.iteration)
            for _ in range(bc.epochs):
                order = torch.randperm(n, generator=generator, device=generator.device).to(device)
                for k in range(bc.minibatches):
                    loss, part = demo_loss(learner, b, order[k * mb : (k + 1) * mb])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    norm = torch.nn.utils.clip_grad_norm_(learner.model.parameters(), cfg.ppo.max_grad_norm)
                    guard.check(loss, norm)
                    optimizer.step()
                    parts += part
            guard.finish()
            host = (parts / (bc.epochs * bc.minibatches)).tolist()
        row = {
            "bc_loss_imitation": host[0],
            "bc_accuracy": host[1],
            "bc_teacher_share": 1.0,
            "lr": lr,
            "phase_ppo": 0.0,
        }
        book.end_iteration(learner, worlds, torch.tensor(n), row)
