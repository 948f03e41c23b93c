"""What PPO and BC share: the world's carried state, preallocated rollout storage, collection and GAE.

Every controlled vehicle is one agent: `E = worlds * controlled`, flattened world-major. Nothing here leaves
the world's device; nothing syncs with the host inside the collection loop on CUDA (on the CPU one check per decision
observes only the worlds whose episode the time limit cut off: `truncated_observations`).

Agents leave mid-rollout (a crash or an arrival while other agents of the world drive on) and come back when
their world resets; steps where an agent was not driving carry `active = False` and weigh nothing in a loss.
An episode that ends by the time limit is bootstrapped: its last reward gets `gamma * V(final observation)`,
since the limit is not part of the task (Pardo et al. 2018, "Time limits in reinforcement learning").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch

from fuyao.pilots.base import noisy_action
from fuyao.pilots.networks import ActorCritic, deterministic_action, distribution, masked_logits
from fuyao.sim.config import ActionType
from fuyao.sim.state import WorldState
from fuyao.sim.step import StepResult
from fuyao.sim.world import World
from fuyao.train import precision


@dataclass(frozen=True)
class Carry:
    """The world between iterations: its state and what the agents see in it."""

    state: WorldState
    obs: torch.Tensor  # [E, *obs_shape] float32
    mask: torch.Tensor  # [E, 5] bool, meta actions allowed (all True for continuous actions)


@dataclass
class Rollout:
    """Preallocated `[T, E, ...]` storage, filled in place by `collect`."""

    obs: torch.Tensor  # [T, E, *obs_shape] float32
    mask: torch.Tensor  # [T, E, 5] bool
    action: torch.Tensor  # [T, E] int64 (meta) or [T, E, 2] float32 (continuous, before clipping)
    logp: torch.Tensor  # [T, E] float32, log-probability of `action` under the behaviour policy
    value: torch.Tensor  # [T, E] float32, V(obs)
    reward: torch.Tensor  # [T, E] float32 (with the time-limit bootstrap added)
    done: torch.Tensor  # [T, E] bool, the agent's episode ended with this step (or it was not driving)
    active: torch.Tensor  # [T, E] bool, the agent was driving at this step
    teacher: torch.Tensor  # [T, E] or [T, E, 2]: the teacher's action (behaviour cloning), else unused
    # [T, E, 5]: a teacher's logits over the meta actions, where it gives them (`Teacher` returning a pair), else 0
    teacher_logits: torch.Tensor
    next_value: torch.Tensor  # [E] float32, V of the observation after the last step

    @staticmethod
    def allocate(steps: int, world: World, device: torch.device) -> Rollout:
        cfg = world.cfg
        e = cfg.worlds * cfg.controlled
        shape = (steps, e)
        meta = cfg.action is ActionType.META
        act_shape = shape if meta else (*shape, 2)
        act_dtype = torch.int64 if meta else torch.float32

        def f():
            return torch.zeros(shape, device=device)

        return Rollout(
            obs=torch.zeros(*shape, *world.observation_shape, device=device),
            mask=torch.ones(*shape, 5, dtype=torch.bool, device=device),
            action=torch.zeros(act_shape, dtype=act_dtype, device=device),
            logp=f(),
            value=f(),
            reward=f(),
            done=torch.zeros(shape, dtype=torch.bool, device=device),
            active=torch.zeros(shape, dtype=torch.bool, device=device),
            teacher=torch.zeros(act_shape, dtype=act_dtype, device=device),
            teacher_logits=torch.zeros(*shape, 5, device=device),
            next_value=torch.zeros(e, device=device),
        )

    def flat(self) -> dict[str, torch.Tensor]:
        """`[T * E, ...]` views of the per-step fields."""
        names = ("obs", "mask", "action", "logp", "value", "reward", "done", "active", "teacher", "teacher_logits")
        return {n: getattr(self, n).flatten(0, 1) for n in names}


def truncated_observations(
    world: World, result: StepResult, truncated: torch.Tensor
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """What the agents whose episode the time limit cut off (`truncated [E]`) last saw, to bootstrap their return:
    `(obs, rows)`. Truncated agents are still active in `result.final_state`, so its observation is that.

    With an eager observation on the CPU only the worlds with such an agent are observed: `obs [K, ...]` of the
    agent rows `rows [K]`, or `obs` None where no episode was cut off (a host check, free on the CPU; at 10 Hz
    decisions most decisions cut none, and observing every world a second time per decision cost about a quarter
    of the `ngp` preset's simulation). Elsewhere (CUDA: no host synchronisation; a compiled observation: no
    recompiles for K) every world is observed: `obs [E, ...]`, `rows` None."""
    cfg = world.cfg
    if world.device.type != "cpu" or not world.observes_eagerly:
        return world.observe(result.final_state).reshape(-1, *world.observation_shape), None
    cut_worlds = truncated.view(cfg.worlds, cfg.controlled).any(dim=1).nonzero().squeeze(1)
    if cut_worlds.numel() == 0:  # (and not every encoder takes an empty batch)
        return None, cut_worlds
    obs = world.observe_worlds(result.final_state, cut_worlds)
    rows = (cut_worlds.unsqueeze(1) * cfg.controlled + torch.arange(cfg.controlled, device=truncated.device)).reshape(
        -1
    )
    return obs.reshape(-1, *world.observation_shape), rows


def observe_carry(world: World, state: WorldState) -> Carry:
    e = world.cfg.worlds * world.cfg.controlled
    obs = world.observe(state).reshape(e, *world.observation_shape)
    if world.cfg.action is ActionType.META:
        mask = world.action_mask(state).reshape(e, 5)
    else:
        mask = torch.ones(e, 5, dtype=torch.bool, device=obs.device)
    return Carry(state, obs, mask)


def sample_action(
    model: ActorCritic, actor_out: torch.Tensor, mask: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw actions with an explicit generator (so a resumed run draws the same numbers) and their log-probs.

    Meta: Gumbel-max over the masked logits. Continuous: mean + std * normal noise (unclipped; the world clips).
    """
    if model.log_std is None:
        logits = masked_logits(actor_out, mask)
        u = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_(1e-12, 1.0 - 1e-7)
        action = (logits - torch.log(-torch.log(u))).argmax(dim=-1)
    else:
        noise = torch.randn(actor_out.shape, generator=generator, device=actor_out.device)
        action = actor_out + model.log_std.exp() * noise
    return action, distribution(model, actor_out, mask).log_prob(action)


def world_action(world: World, action: torch.Tensor) -> torch.Tensor:
    """`[E]` / `[E, 2]` agent actions -> the world's `[W, C]` / `[W, C, 2]` (continuous clipped to [-1, 1])."""
    cfg = world.cfg
    if cfg.action is ActionType.META:
        return action.view(cfg.worlds, cfg.controlled)
    return action.clamp(-1.0, 1.0).view(cfg.worlds, cfg.controlled, 2)


# (obs [W, C, ...], state) -> [W, C] actions, or ([W, C] actions, [W, C, 5] logits over the meta actions)
Teacher = Callable[[torch.Tensor, WorldState], torch.Tensor | tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def collect(
    world: World,
    model: ActorCritic,
    carry: Carry,
    buf: Rollout,
    generator: torch.Generator,
    gamma: float,
    on_step: Callable[[dict[str, torch.Tensor], torch.Tensor, torch.Tensor], None] | None = None,
    teacher: Teacher | None = None,
    teacher_share: float = 0.0,
    timers=None,
    greedy: bool = False,
    bf16: bool = False,
    action_noise: float = 0.0,
) -> Carry:
    """Fill `buf` with `T` decisions of every agent; return the carry for the next rollout.

    `on_step(info, reward, done)` receives the per-step metric terms `[E]`, the reward `[E]` and the
    episode-end mask `[E]` (episode statistics). `timers` (`fuyao.train.session.Timers`) splits the time between
    the policy (and teacher) and the world: marks are CUDA events on CUDA (no sync here; read once per
    iteration), `perf_counter` on the CPU. With a `teacher`, its action for every observation goes to `buf.teacher`, and each agent's
    executed action is the teacher's with probability `teacher_share` (drawn per agent and step), else the
    policy's sample (DAgger's mixture policy). `greedy`: the policy's own actions are its mode (the pilot it
    will be judged as) instead of samples; `logp` is still of the taken action under the sampling distribution.
    `bf16`: the network runs under bfloat16 autocast (`fuyao.train.precision`), as the update does.
    `action_noise` > 0 perturbs what is executed after that (`fuyao.pilots.base.noisy_action`, DART) while the
    teacher's labels stay as they are: the student then learns to recover from states neither it nor the teacher
    would drive into.
    """
    cfg = world.cfg
    e = cfg.worlds * cfg.controlled
    steps = buf.obs.shape[0]

    def clock():
        return timers.mark() if timers is not None else None

    for t in range(steps):
        t0 = clock()
        state = carry.state
        actor_out, value = precision.forward(model, carry.obs, bf16)
        action, logp = sample_action(model, actor_out, carry.mask, generator)
        replaced = greedy  # the executed action is not the sample: its log-probability is taken again below
        if greedy:
            action = deterministic_action(model, actor_out, carry.mask)
        if teacher is not None:
            shape = (e,) if cfg.action is ActionType.META else (e, 2)
            label = teacher(carry.obs.view(cfg.worlds, cfg.controlled, *world.observation_shape), state)
            if isinstance(label, tuple):  # (actions, logits over the meta actions)
                label, logits = label
                buf.teacher_logits[t] = logits.reshape(e, -1)
            label = label.reshape(shape)
            buf.teacher[t] = label
            if teacher_share > 0.0:
                pick = torch.rand(e, generator=generator, device=label.device) < teacher_share
                action = torch.where(pick if label.ndim == 1 else pick.unsqueeze(-1), label, action)
                replaced = True
        if action_noise > 0.0:
            meta = cfg.action is ActionType.META
            action = noisy_action(action, carry.mask.reshape(e, -1) if meta else None, action_noise, generator)
            replaced = True
        if replaced:
            logp = distribution(model, actor_out, carry.mask).log_prob(action)
        t1 = clock()
        result = world.step(state, world_action(world, action))
        active = state.active.reshape(e)
        terminated = result.terminated.reshape(e)
        truncated = result.truncated.reshape(e)
        reward = result.reward.reshape(e)
        cut_obs, cut_rows = truncated_observations(world, result, truncated)
        t2 = clock()
        if cut_rows is None:
            cut_value = precision.value(model, cut_obs, bf16)
        else:
            cut_value = torch.zeros_like(reward)
            if cut_obs is not None:
                cut_value.index_copy_(0, cut_rows, precision.value(model, cut_obs, bf16))
        reward = torch.where(truncated, reward + gamma * cut_value, reward)
        t3 = clock()
        buf.obs[t] = carry.obs
        buf.mask[t] = carry.mask
        buf.action[t] = action
        buf.logp[t] = logp
        buf.value[t] = value
        buf.reward[t] = reward
        buf.done[t] = terminated | truncated | ~active
        buf.active[t] = active
        if on_step is not None:
            info = {k: v.reshape(e) for k, v in result.info.items() if not k.startswith("world_")}
            on_step(info, result.reward.reshape(e), (terminated | truncated) & active)
        carry = observe_carry(world, result.state)
        if timers is not None:
            t4 = clock()
            timers.span("act", t0, t1)
            timers.span("act", t2, t3)
            timers.span("sim", t1, t2)
            timers.span("sim", t3, t4)
    buf.next_value.copy_(precision.value(model, carry.obs, bf16))
    return carry


def gae(
    reward: torch.Tensor, value: torch.Tensor, done: torch.Tensor, next_value: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and lambda-returns, `[T, E]` each.

    `done[t]` ends the agent's episode after step `t` (no bootstrap across it); `next_value` `[E]` is V of the
    observation after the last step. A plain backward recursion over T (small), vectorised over agents.
    """
    steps = reward.shape[0]
    adv = torch.zeros_like(reward)
    last = torch.zeros_like(next_value)
    for t in range(steps - 1, -1, -1):
        following = next_value if t == steps - 1 else value[t + 1]
        keep = (~done[t]).to(reward.dtype)
        delta = reward[t] + gamma * following * keep - value[t]
        last = delta + gamma * lam * keep * last
        adv[t] = last
    return adv, adv + value


def check_finite(buf: Rollout, iteration: int) -> str | None:
    """Where the rollout holds NaN or inf (one host sync when all is finite), or None."""
    names = ("obs", "value", "reward")
    if bool(torch.stack([torch.isfinite(getattr(buf, name)).all() for name in names]).all()):
        return None
    for name in names:
        x = getattr(buf, name)
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            idx = bad.nonzero()[0].tolist()
            where = f"step {idx[0]} of the rollout, agent {idx[1]}"
            if name == "obs":
                where += f", observation index {tuple(idx[2:])}"
            return f"{name} is {x[tuple(idx)].item()} at iteration {iteration}, {where}"
    return None


def state_tensors(state: WorldState) -> dict[str, torch.Tensor]:
    """A `WorldState` as a flat dict of tensors (`vehicles.lane`, `map_id`, ...) for a checkpoint."""
    out = {}
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if value is None:  # an optional part (`WorldState.replay`): training worlds have none
            continue
        if dataclasses.is_dataclass(value):
            out.update({f"{f.name}.{g.name}": getattr(value, g.name) for g in dataclasses.fields(value)})
        else:
            out[f.name] = value
    return out


def state_from_tensors(template: WorldState, data: dict[str, torch.Tensor], where: str) -> WorldState:
    """Inverse of `state_tensors`, checked field by field against `template` (shapes and dtypes)."""
    from fuyao.pilots.learned import CheckpointError

    def take(name: str, like: torch.Tensor) -> torch.Tensor:
        x = data.get(name)
        if not isinstance(x, torch.Tensor) or x.shape != like.shape or x.dtype != like.dtype:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else x
            raise CheckpointError(f"{where}: world state field {name!r}: got {got}; expected {tuple(like.shape)}")
        return x.to(like.device).clone()

    fields = {}
    for f in dataclasses.fields(template):
        value = getattr(template, f.name)
        if value is None:
            fields[f.name] = None
        elif dataclasses.is_dataclass(value):
            sub = {g.name: take(f"{f.name}.{g.name}", getattr(value, g.name)) for g in dataclasses.fields(value)}
            fields[f.name] = type(value)(**sub)
        else:
            fields[f.name] = take(f.name, value)
    return type(template)(**fields)
