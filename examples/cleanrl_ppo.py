"""PPO in the shape of CleanRL's `cleanrl/ppo.py` (discrete actions), training on Fuyao's highway-v0.

    python examples/cleanrl_ppo.py --total-timesteps 200000 --num-envs 16

What this file is, honestly: a PPO written for this repository after CleanRL's single-file PPO (MIT,
github.com/vwxyzjn/cleanrl): its command-line flags and defaults, its 64x64 tanh actor and critic with orthogonal
initialisation, its rollout, GAE, clipped surrogate and clipped value loss, its TensorBoard scalars, read top to
bottom. It is not a copy of CleanRL's file (the rollout, GAE and update are split into functions here), so it
cannot claim to be that script with one line changed; what it shows is that a CleanRL-style NumPy Gymnasium
trainer needs only its env construction replaced:
  1. Env construction (`make_envs`): CleanRL builds `gym.vector.SyncVectorEnv([make_env(...)])` of Gymnasium envs
     wrapped in `RecordEpisodeStatistics`; here one `FuyaoVectorEnv` of `num_envs` worlds (one controlled
     vehicle each) behind `NumpyVectorEnv(flatten=True)` (NumPy, and a flat observation for the MLP) and
     Gymnasium's vector `RecordEpisodeStatistics`. `env_id` names a Fuyao preset.
  2. Episode logging reads Gymnasium 1.x's vector statistics (`infos["episode"]` where `infos["_episode"]`), not
     Gymnasium 0.29's `infos["final_info"]` list.
  3. No Weights & Biases tracking and no video capture (`--track`, `--capture-video`).
Fuyao's own tensors make the NumPy round trip unnecessary; `fuyao train` is the trainer that uses them.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import tyro
from torch.distributions.categorical import Categorical
from torch.utils.tensorboard import SummaryWriter

from fuyao.envs import NumpyVectorEnv, make_vector_env


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    seed: int = 1
    torch_deterministic: bool = True
    cuda: bool = True  # use a GPU for the agent (and the worlds) when there is one

    # Algorithm specific arguments
    env_id: str = "highway-v0"  # a Fuyao preset
    total_timesteps: int = 500000
    learning_rate: float = 2.5e-4
    num_envs: int = 4
    num_steps: int = 128  # steps per environment per policy rollout
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    num_minibatches: int = 4
    update_epochs: int = 4
    norm_adv: bool = True
    clip_coef: float = 0.2
    clip_vloss: bool = True
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None

    # filled in at runtime
    batch_size: int = 0
    minibatch_size: int = 0
    num_iterations: int = 0


# FUYAO: the env construction, the change from CleanRL's script (see the header).
def make_envs(env_id: str, num_envs: int, device: torch.device) -> gym.vector.VectorEnv:
    envs = NumpyVectorEnv(make_vector_env(env_id, device=device, worlds=num_envs), flatten=True)
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


SQRT_2 = float(np.sqrt(2))


def layer_init(layer, std=SQRT_2, bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Separate 64x64 tanh MLPs for the policy logits and the value (CleanRL's)."""

    def __init__(self, envs):
        super().__init__()
        obs_dim = int(np.array(envs.single_observation_space.shape).prod())
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, envs.single_action_space.n), std=0.01),
        )

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


@dataclass
class Rollout:
    """Preallocated `[num_steps, num_envs, ...]` storage of one policy rollout."""

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    values: torch.Tensor

    @staticmethod
    def empty(args: Args, envs, device: torch.device) -> Rollout:
        t, e = args.num_steps, args.num_envs

        def z(*shape):
            return torch.zeros((t, e, *shape), device=device)

        return Rollout(z(*envs.single_observation_space.shape), z(*envs.single_action_space.shape), z(), z(), z(), z())


def collect(args, envs, agent, buf: Rollout, obs_t, done_t, global_step, writer, device):
    """Fill `buf` with `num_steps` decisions of every env; returns the observation and done flags that follow."""
    for t in range(args.num_steps):
        global_step += args.num_envs
        buf.obs[t], buf.dones[t] = obs_t, done_t
        with torch.no_grad():
            action, logprob, _, value = agent.get_action_and_value(obs_t)
        buf.actions[t], buf.logprobs[t], buf.values[t] = action, logprob, value.flatten()
        obs_np, reward, terminated, truncated, infos = envs.step(action.cpu().numpy())
        buf.rewards[t] = torch.as_tensor(reward, dtype=torch.float32, device=device).view(-1)
        obs_t = torch.as_tensor(obs_np, dtype=torch.float32, device=device)
        done_t = torch.as_tensor(np.logical_or(terminated, truncated), dtype=torch.float32, device=device)
        if "episode" in infos:
            for i in np.flatnonzero(infos["_episode"]):
                ret, length = infos["episode"]["r"][i], infos["episode"]["l"][i]
                print(f"global_step={global_step}, episodic_return={ret}")
                writer.add_scalar("charts/episodic_return", ret, global_step)
                writer.add_scalar("charts/episodic_length", length, global_step)
    return obs_t, done_t, global_step


def gae(args, agent, buf: Rollout, obs_t, done_t):
    """Generalised advantage estimates and returns, `[num_steps, num_envs]` each."""
    with torch.no_grad():
        value_after = agent.get_value(obs_t).reshape(1, -1)
        adv = torch.zeros_like(buf.rewards)
        running = 0.0
        for t in reversed(range(args.num_steps)):
            not_done = 1.0 - (done_t if t == args.num_steps - 1 else buf.dones[t + 1])
            next_value = value_after if t == args.num_steps - 1 else buf.values[t + 1]
            delta = buf.rewards[t] + args.gamma * next_value * not_done - buf.values[t]
            running = delta + args.gamma * args.gae_lambda * not_done * running
            adv[t] = running
    return adv, adv + buf.values


def update(args, envs, agent, optimizer, buf: Rollout, adv, returns) -> dict[str, float]:
    """`update_epochs` passes of clipped-PPO minibatch steps over the flattened rollout."""
    obs = buf.obs.reshape((-1,) + envs.single_observation_space.shape)
    actions = buf.actions.reshape((-1,) + envs.single_action_space.shape).long()
    old_logprobs, old_values = buf.logprobs.reshape(-1), buf.values.reshape(-1)
    adv, returns = adv.reshape(-1), returns.reshape(-1)
    order = np.arange(args.batch_size)
    clipfracs = []
    for _ in range(args.update_epochs):
        np.random.shuffle(order)
        for lo in range(0, args.batch_size, args.minibatch_size):
            mb = order[lo : lo + args.minibatch_size]
            _, logprob, entropy, value = agent.get_action_and_value(obs[mb], actions[mb])
            log_ratio = logprob - old_logprobs[mb]
            ratio = log_ratio.exp()
            with torch.no_grad():  # KL estimators of http://joschu.net/blog/kl-approx.html
                old_approx_kl = (-log_ratio).mean()
                approx_kl = ((ratio - 1) - log_ratio).mean()
                clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean().item())
            mb_adv = adv[mb]
            if args.norm_adv:
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
            clipped_ratio = torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
            pg_loss = torch.max(-mb_adv * ratio, -mb_adv * clipped_ratio).mean()
            value = value.view(-1)
            if args.clip_vloss:
                value_clipped = old_values[mb] + torch.clamp(value - old_values[mb], -args.clip_coef, args.clip_coef)
                v_loss = 0.5 * torch.max((value - returns[mb]) ** 2, (value_clipped - returns[mb]) ** 2).mean()
            else:
                v_loss = 0.5 * ((value - returns[mb]) ** 2).mean()
            entropy_loss = entropy.mean()
            loss = pg_loss - args.ent_coef * entropy_loss + args.vf_coef * v_loss
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
            optimizer.step()
        if args.target_kl is not None and approx_kl > args.target_kl:
            break
    predicted, target = old_values.cpu().numpy(), returns.cpu().numpy()
    explained = np.nan if np.var(target) == 0 else 1 - np.var(target - predicted) / np.var(target)
    return {
        "losses/value_loss": v_loss.item(),
        "losses/policy_loss": pg_loss.item(),
        "losses/entropy": entropy_loss.item(),
        "losses/old_approx_kl": old_approx_kl.item(),
        "losses/approx_kl": approx_kl.item(),
        "losses/clipfrac": float(np.mean(clipfracs)),
        "losses/explained_variance": explained,
    }


def main(args: Args) -> None:
    args.batch_size = args.num_envs * args.num_steps
    args.minibatch_size = args.batch_size // args.num_minibatches
    args.num_iterations = args.total_timesteps // args.batch_size
    run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    writer = SummaryWriter(f"runs/{run_name}")
    table = "\n".join(f"|{key}|{value}|" for key, value in vars(args).items())
    writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")

    envs = make_envs(args.env_id, args.num_envs, device)
    assert isinstance(envs.single_action_space, gym.spaces.Discrete), "only discrete action space is supported"
    agent = Agent(envs).to(device)
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    buf = Rollout.empty(args, envs, device)

    global_step, start = 0, time.time()
    obs_np, _ = envs.reset(seed=args.seed)
    obs_t = torch.as_tensor(obs_np, dtype=torch.float32, device=device)
    done_t = torch.zeros(args.num_envs, device=device)
    for iteration in range(1, args.num_iterations + 1):
        if args.anneal_lr:
            optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / args.num_iterations) * args.learning_rate
        obs_t, done_t, global_step = collect(args, envs, agent, buf, obs_t, done_t, global_step, writer, device)
        adv, returns = gae(args, agent, buf, obs_t, done_t)
        stats = update(args, envs, agent, optimizer, buf, adv, returns)
        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        for key, value in stats.items():
            writer.add_scalar(key, value, global_step)
        sps = int(global_step / (time.time() - start))
        print("SPS:", sps)
        writer.add_scalar("charts/SPS", sps, global_step)
    envs.close()
    writer.close()


if __name__ == "__main__":
    main(tyro.cli(Args))
