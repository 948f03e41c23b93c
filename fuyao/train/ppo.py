"""PPO on the batched world, top to bottom (after CleanRL's ppo.py, split LeanRL-style into functions that
`torch.compile` can take).

One iteration: `collect` T decisions of every agent into preallocated `[T, E]` tensors (`fuyao.train.rollout`),
compute GAE advantages and lambda-returns, then `epochs` passes of `minibatches` clipped-surrogate updates.

    loss = policy loss (clipped surrogate)  +  vf_coef x value loss  -  ent_coef x entropy
           [+ teacher_coef x -log pi(rule-based pilot's action)]   (teacher regularisation, off by default)

Every mean is over active agent-steps only (agents that left their episode weigh nothing). Meta actions are
sampled from logits with impossible lane changes masked out; continuous actions from a Gaussian whose sample is
clipped to [-1, 1] by the world (the log-probability is of the unclipped sample). Gradients are clipped to
`max_grad_norm`; the learning rate decays linearly to 0 over `anneal_decisions` (default: the run's `steps`). A
NaN or inf in the rollout, the loss or the gradients stops the run (`NonFiniteError`): the rollout is checked
before learning, the update once at its end (`UpdateGuard`: no host sync per minibatch), which then undoes itself.
"""

from __future__ import annotations

import torch

from fuyao.pilots.networks import ActorCritic, distribution
from fuyao.train import precision
from fuyao.train.bc import make_teacher
from fuyao.train.config import PPOConfig, TrainConfig
from fuyao.train.rollout import Rollout, collect, gae
from fuyao.train.session import Bookkeeper, Learner, UpdateGuard, Worlds, check_rollout


def ppo_loss(
    learner: torch.nn.Module,
    model: ActorCritic,
    obs: torch.Tensor,  # [B, *obs_shape]
    mask: torch.Tensor,  # [B, 5] bool
    action: torch.Tensor,  # [B] or [B, 2]
    logp_old: torch.Tensor,  # [B]
    adv: torch.Tensor,  # [B], normalised
    ret: torch.Tensor,  # [B], lambda-returns
    value_old: torch.Tensor,  # [B]
    weight: torch.Tensor,  # [B] float, 1 for active agent-steps
    cfg: PPOConfig,
    teacher: torch.Tensor | None = None,  # [B] or [B, 2], the rule-based pilot's action
    teacher_coef: torch.Tensor | None = None,  # [] float
    bf16: bool = False,  # the network under bfloat16 autocast (`fuyao.train.precision`)
) -> tuple[torch.Tensor, torch.Tensor]:
    """The PPO loss and its parts `[policy, value, entropy, approx_kl, clip_fraction, teacher_nll]`."""
    actor_out, value = precision.forward(learner, obs, bf16)
    dist = distribution(model, actor_out, mask)
    logp = dist.log_prob(action)
    log_ratio = logp - logp_old
    ratio = log_ratio.exp()
    policy = torch.maximum(-adv * ratio, -adv * ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip))
    if cfg.clip_value:
        clipped = value_old + (value - value_old).clamp(-cfg.clip, cfg.clip)
        value_err = torch.maximum((value - ret) ** 2, (clipped - ret) ** 2)
    else:
        value_err = (value - ret) ** 2
    n = weight.sum().clamp(min=1.0)

    def mean(x: torch.Tensor) -> torch.Tensor:
        return (x * weight).sum() / n

    policy_loss = mean(policy)
    value_loss = 0.5 * mean(value_err)
    entropy = mean(dist.entropy())
    approx_kl = mean((ratio - 1.0) - log_ratio)  # Schulman's k3 estimator
    clip_fraction = mean(((ratio - 1.0).abs() > cfg.clip).float())
    loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
    teacher_nll = torch.zeros_like(loss)
    if teacher is not None and teacher_coef is not None:
        if model.log_std is None:  # the teacher's own action always counts as allowed
            mask = mask | torch.nn.functional.one_hot(teacher, mask.shape[-1]).bool()
        teacher_nll = mean(-distribution(model, actor_out, mask).log_prob(teacher))
        loss = loss + teacher_coef * teacher_nll
    parts = [policy_loss, value_loss, entropy, approx_kl, clip_fraction, teacher_nll]
    return loss, torch.stack(parts).detach()


def normalise(adv: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    n = weight.sum().clamp(min=1.0)
    mean = (adv * weight).sum() / n
    std = (((adv - mean) ** 2) * weight).sum().div(n).sqrt()
    return (adv - mean) / (std + 1e-8)


def update(
    learner: Learner,
    cfg: PPOConfig,
    buf: Rollout,
    adv: torch.Tensor,  # [T, E]
    ret: torch.Tensor,  # [T, E]
    loss_fn=ppo_loss,
    teacher_coef: float = 0.0,
    iteration: int = 0,  # for the message of a non-finite update
) -> dict[str, float]:
    """`cfg.epochs` passes of `cfg.minibatches` clipped-surrogate steps on `buf`; the update's mean statistics."""
    b = buf.flat()
    weight = b["active"].float()
    adv = adv.flatten()
    ret = ret.flatten()
    if cfg.norm_adv:
        adv = normalise(adv, weight)
    n = adv.shape[0]
    size = n // cfg.minibatches
    parts = torch.zeros(6, device=adv.device)
    coef = torch.full((), teacher_coef, device=adv.device) if teacher_coef > 0.0 else None  # a fill, no copy
    grad_norm = torch.zeros((), device=adv.device)
    generator, optimizer = learner.generator, learner.optimizer
    guard = UpdateGuard(learner, "PPO", cfg.minibatches, iteration)
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=generator, device=generator.device).to(adv.device)
        for k in range(cfg.minibatches):
            idx = order[k * size : (k + 1) * size]
            loss, part = loss_fn(
                learner.net,
                learner.model,
                b["obs"][idx],
                b["mask"][idx],
                b["action"][idx],
                b["logp"][idx],
                adv[idx],
                ret[idx],
                b["value"][idx],
                weight[idx],
                cfg,
                b["teacher"][idx] if coef is not None else None,
                coef,
                learner.bf16,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(learner.model.parameters(), cfg.max_grad_norm)
            guard.check(loss, norm)
            optimizer.step()
            parts += part
            grad_norm += norm.detach()
    guard.finish()  # the update's one host sync (with the statistics below)
    steps = cfg.epochs * cfg.minibatches
    names = ("loss_policy", "loss_value", "entropy", "approx_kl", "clip_fraction", "teacher_nll")
    host = (parts / steps).tolist()
    return {**dict(zip(names, host)), "grad_norm": float(grad_norm) / steps}


def train(cfg: TrainConfig, learner: Learner, worlds: Worlds, book: Bookkeeper, until: int) -> None:
    """PPO iterations until `until` decisions (or the time budget) are reached: each collects a rollout in
    `worlds` with `learner`'s policy, updates `learner`, and reports to `book` (log, evaluation, checkpoint)."""
    ppo = cfg.ppo
    progress, timers = book.progress, book.timers
    buf = Rollout.allocate(ppo.rollout_steps, worlds.world, worlds.world.device)
    loss_fn = torch.compile(ppo_loss) if cfg.compile else ppo_loss
    teacher = make_teacher(cfg, worlds.world) if ppo.teacher_coef > 0.0 else None
    agents = cfg.sim.worlds * cfg.sim.controlled * book.dist.world_size
    book.message(f"PPO: {agents:,} agents x {ppo.rollout_steps} decisions per iteration")
    while not book.should_stop(until):
        horizon = ppo.anneal_decisions or cfg.steps
        lr = ppo.lr * max(0.0, 1.0 - progress.decisions / horizon) if ppo.anneal_lr else ppo.lr
        for group in learner.optimizer.param_groups:
            group["lr"] = lr
        coef = ppo.teacher_coef
        if ppo.teacher_decay:
            # PPO begins after the BC warm start; counting from there keeps a resumed run on the same schedule.
            coef *= max(0.0, 1.0 - max(0, progress.decisions - cfg.bc_warm_start) / ppo.teacher_decay)
        with timers.phase("rollout"):
            worlds.carry = collect(
                worlds.world,
                learner.model,
                worlds.carry,
                buf,
                learner.generator,
                ppo.gamma,
                book.stats,
                teacher=teacher if teacher is not None and coef > 0.0 else None,
                timers=timers,
                bf16=learner.bf16,
            )
        check_rollout(buf, progress.iteration)
        with timers.phase("learn"):
            adv, ret = gae(buf.reward, buf.value, buf.done, buf.next_value, ppo.gamma, ppo.gae_lambda)
            row = update(learner, ppo, buf, adv, ret, loss_fn, teacher_coef=coef, iteration=progress.iteration)
        book.end_iteration(learner, worlds, buf.active.sum(), {**row, "lr": lr, "teacher_coef": coef, "phase_ppo": 1.0})
