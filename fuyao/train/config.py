"""Typed training configuration and the named training presets.

A training preset is a full `TrainConfig`: the world it trains in (`sim`), the network (`policy`) and the
algorithm settings (`ppo`, `bc`). The CLI starts from a preset and applies flags on top
(`fuyao train --preset highway --ppo.lr 1e-3 --sim.worlds 512`).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fuyao.pilots.networks import Encoder, PolicyConfig
from fuyao.presets import PRESETS
from fuyao.sim.config import ConfigError, RewardConfig, SimConfig
from fuyao.train.precision import PRECISIONS, Precision


def _bad(owner: str, name: str, value, allowed: str) -> ConfigError:
    return ConfigError(f"{owner}.{name}: got {value!r}; allowed: {allowed}")


def _check_positive(owner: str, cfg, names: tuple[str, ...], kind=int) -> None:
    for name in names:
        value = getattr(cfg, name)
        if kind is int and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise _bad(owner, name, value, "an integer >= 1")
        if kind is float and not value > 0:
            raise _bad(owner, name, value, "a number > 0")


class Algo(enum.Enum):
    PPO = "ppo"
    BC = "bc"


class TeacherKind(enum.Enum):
    """Who labels behaviour cloning's observations and PPO's teacher term."""

    RULE_BASED = "rule-based"  # IDM + MOBIL + route, reading the world state (`fuyao.pilots.rule_based`)
    # a model-predictive pilot reading only highway-env's Kinematics observation (`fuyao.pilots.kinematics_planner`)
    KINEMATICS_PLANNER = "kinematics-planner"


@dataclass(frozen=True)
class PPOConfig:
    """Proximal Policy Optimisation (Schulman et al. 2017) with GAE (Schulman et al. 2016)."""

    rollout_steps: int = 16  # decisions per world per iteration (T)
    epochs: int = 4
    minibatches: int = 4
    lr: float = 3.0e-4
    anneal_lr: bool = True  # linear decay to 0 over `anneal_decisions`
    # Decisions over which the learning rate decays to 0 (0: `TrainConfig.steps`). Separate from `steps` so that a
    # run can stop at a decision budget while keeping the schedule it was tuned with.
    anneal_decisions: int = 0
    gamma: float = 0.95  # per decision (1 s in the highway presets)
    gae_lambda: float = 0.95
    clip: float = 0.2
    clip_value: bool = False
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    max_grad_norm: float = 0.5
    norm_adv: bool = True
    # Teacher regularisation (after DAPG, Rajeswaran et al. 2018, and human-regularised PPO, Cornelisse et al.
    # 2024): + teacher_coef x -log pi(rule-based pilot's action | obs), with the teacher labelling the PPO
    # rollouts; the weight decays linearly to 0 over `teacher_decay` decisions of PPO (0: constant).
    teacher_coef: float = 0.0
    teacher_decay: int = 0

    def __post_init__(self) -> None:
        _check_positive("PPOConfig", self, ("rollout_steps", "epochs", "minibatches"))
        _check_positive("PPOConfig", self, ("lr", "clip", "max_grad_norm"), float)
        if not self.teacher_coef >= 0.0:
            raise _bad("PPOConfig", "teacher_coef", self.teacher_coef, "a number >= 0")
        for name in ("teacher_decay", "anneal_decisions"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise _bad("PPOConfig", name, value, "an integer >= 0")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise _bad("PPOConfig", name, getattr(self, name), "0 to 1")


@dataclass(frozen=True)
class BCConfig:
    """Behaviour cloning from the rule-based pilot, with DAgger (Ross et al. 2011): the teacher's share of the
    driving decays linearly from 1 to 0 over `teacher_iterations` iterations; the teacher labels everything,
    so the student learns to recover from its own mistakes. The value head is fitted to the rollouts' lambda-returns so a PPO
    run warm-started from BC begins with a critic."""

    rollout_steps: int = 16
    epochs: int = 2
    minibatches: int = 4
    lr: float = 1.0e-3
    # Linear decay of the learning rate to 0 over the cloning phase's decisions (`steps` with `algo bc`, else
    # `bc_warm_start`); off: constant.
    anneal_lr: bool = False
    teacher_iterations: int = 8
    vf_coef: float = 0.5
    greedy_student: bool = True  # the student drives by its mode (as it is evaluated), not by samples
    # > 0: imitate the teacher's whole ranking of the meta actions, cross-entropy against softmax(teacher logits),
    # the logits being -(cost - least cost) / soft_temperature (teachers that score actions: kinematics-planner);
    # 0: its chosen action only.
    soft_temperature: float = 0.0
    # DART (Laskey et al. 2017) in the collection: each executed meta action is, with this probability, replaced
    # by a uniformly drawn available one (continuous: Gaussian noise of this deviation), the teacher still
    # labelling, so the student sees how to leave states that neither it nor the teacher would drive into.
    action_noise: float = 0.0
    # > 0 (soft targets only): add this times the student's expected regret, sum_a pi(a) min(regret(a), 3) with
    # regret(a) = (cost(a) - least cost) / 100 (a crash step of the planner's costs), to the loss: cost-sensitive
    # imitation (AggreVaTe, Ross & Bagnell 2014), so the rare decisions where one action avoids a predicted crash
    # weigh by what a wrong choice costs, not as one sample among many.
    regret_coef: float = 0.0
    # The imitation loss's weight on decisions the teacher labels a lane change (meta actions; the others weigh 1):
    # at 10 Hz a change is one decision in a hundred or more, and a merge or an exit hangs on it.
    lane_change_weight: float = 1.0
    # DAgger's aggregate dataset (Ross et al. 2011 train on every iteration's labelled states, not the last
    # iteration's alone): the decisions of the last `dagger_iterations` iterations are kept and every epoch draws
    # one iteration's worth of them at random. 0: each iteration learns from its own rollout only. Checkpointed
    # with the run (rollout_steps x worlds x controlled x iterations observations) so a resumed run goes on exactly.
    dagger_iterations: int = 0

    def __post_init__(self) -> None:
        _check_positive("BCConfig", self, ("rollout_steps", "epochs", "minibatches"))
        if not self.regret_coef >= 0.0:
            raise _bad("BCConfig", "regret_coef", self.regret_coef, "a number >= 0")
        if not isinstance(self.dagger_iterations, int) or self.dagger_iterations < 0:
            raise _bad("BCConfig", "dagger_iterations", self.dagger_iterations, "an integer >= 0")
        if not self.lane_change_weight > 0.0:
            raise _bad("BCConfig", "lane_change_weight", self.lane_change_weight, "a number > 0")
        if self.regret_coef > 0.0 and self.soft_temperature == 0.0:
            raise _bad(
                "BCConfig", "regret_coef", self.regret_coef, "0 unless soft_temperature > 0 (it reads the costs)"
            )
        if not 0.0 <= self.action_noise <= 1.0:
            raise _bad("BCConfig", "action_noise", self.action_noise, "a number in [0, 1]")
        _check_positive("BCConfig", self, ("lr",), float)
        if self.teacher_iterations < 0:
            raise _bad("BCConfig", "teacher_iterations", self.teacher_iterations, "an integer >= 0")
        if not self.soft_temperature >= 0.0:
            raise _bad("BCConfig", "soft_temperature", self.soft_temperature, "a number >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. `steps` counts decisions of controlled vehicles, summed over every process."""

    preset: str = "highway"
    algo: Algo = Algo.PPO
    steps: int = 3_000_000
    time_budget: float | None = None  # seconds of training (evaluation and checkpoints included); None: no limit
    bc_warm_start: int = 0  # decisions of behaviour cloning before PPO starts (algo ppo)
    # Behaviour cloning from demonstrations instead of the rule-based pilot (`algo bc`, or the warm start): a
    # recording folder (`fuyao data record`, with observations) or a folder of logged scenarios (`fuyao data
    # import`; replayed and labelled by inverse dynamics into OUT/demos first). See `fuyao.data.demos`.
    data: Path | None = None
    teacher: TeacherKind = TeacherKind.RULE_BASED
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    out: Path = Path("runs/train")
    resume: bool = False
    compile: bool = False  # torch.compile the world's tick and observation and the PPO loss (CPU: needs a C++ compiler)
    # The network's matrix multiplies: "fp32", "bf16" (autocast) or "auto" (bf16 where the hardware does it
    # natively); see `fuyao.train.precision`.
    precision: Precision = "fp32"
    threads: int | None = None  # torch CPU threads (default: torch's choice)
    eval_every: int = 20  # iterations between periodic evaluations (0: only at the end)
    eval_episodes: int = 64  # episodes per periodic evaluation
    # processes that run the evaluation's scenarios (0: chosen, see `fuyao.evaluation.runner`; 1: this process)
    eval_workers: int = 0
    checkpoint_every: int = 10  # iterations between checkpoints
    keep_last: int = 3  # periodic checkpoints kept besides best.pt
    sim: SimConfig = field(default_factory=SimConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    bc: BCConfig = field(default_factory=BCConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.algo, Algo):
            try:
                object.__setattr__(self, "algo", Algo(self.algo))
            except ValueError:
                raise _bad("TrainConfig", "algo", self.algo, "'ppo', 'bc'") from None
        if not isinstance(self.teacher, TeacherKind):
            try:
                object.__setattr__(self, "teacher", TeacherKind(self.teacher))
            except ValueError:
                allowed = ", ".join(repr(k.value) for k in TeacherKind)
                raise _bad("TrainConfig", "teacher", self.teacher, allowed) from None
        _check_positive("TrainConfig", self, ("steps", "keep_last"))
        if self.bc.soft_temperature > 0.0 and self.teacher is TeacherKind.RULE_BASED:
            raise ConfigError(
                f"BCConfig.soft_temperature: got {self.bc.soft_temperature!r} with teacher 'rule-based', which ranks "
                "no actions; allowed: 0, or teacher 'kinematics-planner'"
            )
        if self.time_budget is not None and not self.time_budget > 0:
            raise _bad("TrainConfig", "time_budget", self.time_budget, "a number of seconds > 0, or None")
        for name in ("bc_warm_start", "eval_every", "checkpoint_every", "eval_episodes", "eval_workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise _bad("TrainConfig", name, value, "an integer >= 0")
        if self.device not in ("auto", "cpu", "cuda"):
            raise _bad("TrainConfig", "device", self.device, "'auto', 'cpu', 'cuda'")
        if self.precision not in PRECISIONS:
            raise _bad("TrainConfig", "precision", self.precision, ", ".join(map(repr, PRECISIONS)))
        if self.data is not None:
            object.__setattr__(self, "data", Path(self.data))
            if self.algo is not Algo.BC and not self.bc_warm_start:
                raise _bad("TrainConfig", "data", str(self.data), "only with algo 'bc' or bc_warm_start > 0")

    def with_budget(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)


# Fields a resumed run may change: how long it runs and where.
RESUMABLE_CHANGES = (
    "steps",
    "time_budget",
    "device",
    "resume",
    "out",
    "threads",
    "compile",
    "precision",
    "eval_workers",
)

# The default highway pilot: the `highway` world (curves, ramps, routes, mixed traffic) with 4 of its 32
# vehicles driven by the policy (self-play beside IDM/MOBIL traffic), native observation, meta actions; an MLP
# cloned from the rule-based pilot (DAgger), then PPO regularised toward the rule-based pilot's actions.
HIGHWAY = TrainConfig(
    preset="highway",
    # A decision budget, not a wall-clock one, so that a slower machine takes longer instead of ending with a
    # worse pilot: `fuyao run` trains these 4.5M decisions (the main job reached 4.65-4.75M in its former 500 s
    # on the AMD VM and beat the rule-based pilot; at 1.8M, on a slower machine, it lost).
    steps=4_500_000,
    bc_warm_start=300_000,
    # The best checkpoint is chosen on 200 episodes (64 picked an early one by noise).
    eval_episodes=200,
    sim=dataclasses.replace(
        PRESETS["highway"],
        worlds=512,
        controlled=4,
        # Half the episodes begin with a merge from the on-ramp (the evaluation's `merge` scenario): without
        # them the pilot never sees an acceleration lane end and drives off it.
        ego_ramp_fraction=0.5,
        # No respawn (`sim.respawn`): an agent that crashed, arrived or missed its exit waits for its world's reset.
        # Respawning at a road entry keeps every slot driving (~20% of them idle without it) and trains ~10% more
        # decisions in the same time, but on the time-to-target bench it learned a pilot that crashes more
        # (collisions 0.030-0.045 against 0.000-0.015 at the same decisions; seed 0 not reached in 600 s, against
        # reached in 407 s without it; BENCHMARKS.md runs 22-23).
        respawn=False,
        # A crash must cost more than the progress a bolder pilot gains over an episode (~40 decisions). A missed
        # exit costs half a crash: at -40 the pilot forced its way to the off-ramp and crashed there (10% of `exit`
        # episodes); at -10 it drifted into off-ramp lanes it did not need (BENCHMARKS.md runs 6-7, 19-20).
        reward=RewardConfig(collision=-50.0, offroad=-20.0, route_failure=-25.0),
    ),
    policy=PolicyConfig(encoder=Encoder.MLP, hidden=256),
    # The world's tick and observation compiled: ~90 s of compilation once (cached on disk after), then a
    # decision 2.9x and an observation 3.5x faster.
    compile=True,
    # bfloat16 matrix multiplies where the hardware has them (AMX / AVX512-BF16 CPUs, Ampere+ GPUs): the
    # update and the policy's forward 2.3x faster on a Sapphire Rapids CPU (BENCHMARKS.md).
    precision="auto",
    # Fine-tuning a cloned policy: small steps, little entropy and the teacher term keep PPO from unlearning it.
    # The learning rate anneals to 0 over 12M decisions, which keeps it near 1e-4 through the 4.5M decisions
    # trained (annealed over 3M it was down to a fifth by 2.5M decisions, and merges were never learned).
    ppo=PPOConfig(lr=1.0e-4, ent_coef=0.001, teacher_coef=1.0, teacher_decay=3_000_000, anneal_decisions=12_000_000),
    bc=BCConfig(epochs=4, teacher_iterations=8),
)

# highway-env's highway-v0: highway-kinematics observation and meta actions, so the pilot acts in highway-env.
# Behaviour cloning (DAgger) of `kinematics-planner`, a model-predictive pilot that reads only the same Kinematics
# observation (so the network can copy it exactly) and in highway-env's own highway-v0 crashes in 1 % of episodes at
# 29 m/s. What made the copy work (BENCHMARKS.md, "The highway-v0 pilot"): one ego per world among highway-env's
# traffic, as in highway-env (with 8 planners per world, 24 % of them crashed into each other); the planner's
# ranking of all five actions as the target (`soft_temperature`: a near-tie costs little, a crash is never
# copied), not its choice alone; inputs scaled to a lane, 20 m and 5 m/s (`scale_inputs`); 4 x 16 minibatches an
# iteration and the rate annealed to 0. PPO from scratch on this world (the preset until 2026-12-07) learned
# 12-40 % crashes at 23-25 m/s in 10 minutes; highway-env's own normalised reward with its gamma 0.8 collapsed to
# FASTER at every decision (94 % crashes). The loss also pushes down what the action mask refuses (FASTER at the
# top speed, a lane that is not there): highway-env hands a pilot no mask, and untaught, those logits won where a
# brake was due (21.5 % crashes there before, 5.5 % after). This preset's pilot (1.2M decisions, 517 s of training
# on 2 cores) drives highway-env's highway-v0 at 29.0 m/s, return 36.4, and crashes in 5.5 % of its episodes (200
# seeds; 1.5 % on Fuyao's highway-v0): not yet its teacher's 1 %.
# The reward and gamma below fit the value head (and a PPO run started
# from this preset with `--algo ppo --bc-warm-start N`): a crash at -10 against the speed and right-lane terms
# unnormalised, gamma 0.95 (tests/test_highway_v0_preset.py).
HIGHWAY_V0 = TrainConfig(
    preset="highway-v0",
    algo=Algo.BC,
    teacher=TeacherKind.KINEMATICS_PLANNER,
    steps=1_200_000,
    sim=dataclasses.replace(
        PRESETS["highway-v0"],
        worlds=1024,
        controlled=1,
        reward=dataclasses.replace(PRESETS["highway-v0"].reward, collision=-10.0, normalize=False),
    ),
    policy=PolicyConfig(encoder=Encoder.MLP, hidden=256, scale_inputs=True),
    compile=True,
    precision="auto",
    # Validation only at the end: the rate anneals to 0, so the last weights are the clone, and 64 validation
    # episodes could not tell checkpoints apart (try10: the one they chose, at 0.98M decisions, crashed in 3.0 % of
    # 400 highway-v0 episodes, the last in 1.5 %); six periodic evaluations also cost about 90 s of the 10 minutes.
    eval_every=0,
    ppo=PPOConfig(gamma=0.95, ent_coef=0.01),
    # `--bc.regret-coef 1` (the student's expected regret in the planner's costs) crashed in 2.5 % of highway-env's
    # episodes, 3 in 5.5 %, as without it (one run each, 200 seeds, p = 0.2): not established, so not the default.
    # DAgger's dataset (`--bc.dagger-iterations 4 --bc.epochs 2`) crashed in 19.5 % (BENCHMARKS.md, "Two training
    # settings that did not pay").
    bc=BCConfig(epochs=4, minibatches=16, anneal_lr=True, soft_temperature=1.0),
)

# highway-env's merge-v0 and exit-v0: the worlds are highway-env's (observation, actions, traffic). merge-v0 trains
# on highway-env's own reward, normalised to [0, 1] per decision: it pays for every decision survived (the episode
# ends at x = 370 m, so a slower safe drive earns more decisions) and a crash forfeits the rest, which with gamma
# 0.95 (a 20-decision horizon, about an episode) is what the return a highway-env user compares measures. One ego
# per world (the scenes have one), 256 worlds. (A 130 s run: training crash rate 0.86 -> 0.14, 8 % crashes over 50
# highway-env episodes.)
MERGE_V0 = TrainConfig(
    preset="merge-v0",
    steps=1_000_000,
    sim=dataclasses.replace(PRESETS["merge-v0"], worlds=256),
    policy=PolicyConfig(encoder=Encoder.MLP, hidden=128),
    eval_every=10,
    eval_episodes=200,
    ppo=PPOConfig(gamma=0.95, ent_coef=0.01),
)

# exit-v0 on its own reward found only the nearest optimum, staying in the left lane without crashing (return 1.8
# of a possible ~10): the exit is five lane changes through slower traffic away and pays only once reached. The
# training reward adds a right-lane term (0.1 per lane from the left, 0.6 a decision in the exit lane; exit-v0's
# own weight is 0) and a crash at -2, unnormalised; the goal (1 a decision) and speed terms are exit-v0's. (With
# 0.04 per lane and a crash at -1, 420 s of training still kept to the left lanes, crash-free.)
EXIT_V0 = TrainConfig(
    preset="exit-v0",
    steps=1_000_000,
    sim=dataclasses.replace(
        PRESETS["exit-v0"],
        worlds=256,
        reward=dataclasses.replace(PRESETS["exit-v0"].reward, right_lane=0.1, collision=-2.0, normalize=False),
    ),
    policy=PolicyConfig(encoder=Encoder.MLP, hidden=128),
    eval_every=10,
    eval_episodes=200,
    ppo=PPOConfig(gamma=0.95, ent_coef=0.01),
)

# The city pilot: the `city` world (3 x 3 grid cities, signalised and priority junctions, random trips, 10 Hz
# decisions) with 4 of each world's vehicles driven by the policy, meeting each other at junctions, cloned from the
# rule-based pilot by DAgger at the one-junction learning test's settings (tests/test_city_learning.py: 40 teacher
# iterations, 4 epochs x 16 minibatches; at 150k-300k decisions there the clone still ran red lights, at 400k it
# did not). Its periodic evaluation is 64 validation episodes of 900 decisions, so it runs rarely and its
# scenarios in parallel processes (`eval_workers`). 3M decisions: at 1.5M the clone lost to the rule-based pilot
# on `city@1` (0.803 against 0.891, 0.36 red-light runs / km); at 3M it matched its score (0.889 against 0.891),
# still with 0.14 red-light runs / km and one at-fault collision in 65 episodes (BENCHMARKS.md, "The `city`
# training preset").
CITY = TrainConfig(
    preset="city",
    algo=Algo.BC,
    steps=3_000_000,
    eval_every=40,
    eval_episodes=64,
    sim=dataclasses.replace(PRESETS["city"], worlds=256, controlled=4),
    policy=PolicyConfig(encoder=Encoder.MLP, hidden=256),
    bc=BCConfig(rollout_steps=16, epochs=4, minibatches=16, teacher_iterations=40),
)

# The navigation-guided pilot: one network for every road, trained on the `ngp` world's mixed bank (highways with
# ramps, grid cities, and NGP maps that join a city street, the on-ramp, the highway, the off-ramp and another city;
# routes to random destinations, signal timings drawn per world). 8 of each world's 48 vehicles are driven by the
# policy, so it meets itself at junctions and merges as well as the rule-based traffic. Behaviour cloning of the
# rule-based pilot with DAgger, at the city preset's settings (the teacher's share decaying over 40 iterations,
# 4 epochs x 16 minibatches). Checkpoints are chosen on the `ngp` suite's validation twin (other seeds, other
# maps), every kind of road at once. See BENCHMARKS.md, "The `ngp` training preset".
# Two BC settings against the validation scores' swings (the highway group read 0.2-0.4 apart from one evaluation to
# the next, 66 episodes each): DAgger's aggregate dataset of the last 4 iterations (`dagger_iterations`: every
# iteration learned only from its own 32k decisions, a handful of merges and exits among them, and forgot the rest),
# and lane changes weighing 5 in the imitation loss (`lane_change_weight`: at 10 Hz a merge or an exit hangs on one
# decision in a hundred). BENCHMARKS.md, "DAgger's dataset and weighted lane changes".
NGP = TrainConfig(
    preset="ngp",
    algo=Algo.BC,
    steps=3_000_000,
    eval_every=40,
    eval_episodes=64,
    # Half the episodes start the first agent on the on-ramp (on maps that have one: highways and NGP maps). Without
    # them a merge is rare in this bank (only NGP trips reach an on-ramp, once in 100-130 s of driving, and at 10 Hz
    # the change itself is one decision): the clone held IDLE along the whole acceleration lane and drove off its
    # end in 53 % of `highway-merge` episodes (BENCHMARKS.md, "The `ngp` training preset").
    sim=dataclasses.replace(PRESETS["ngp"], worlds=256, controlled=8, ego_ramp_fraction=0.5),
    policy=PolicyConfig(encoder=Encoder.MLP, hidden=256),
    bc=BCConfig(
        rollout_steps=16, epochs=4, minibatches=16, teacher_iterations=40, lane_change_weight=5.0, dagger_iterations=4
    ),
)

# Seconds, for tests and CLI checks.
SMOKE = TrainConfig(
    preset="smoke",
    steps=512,
    sim=dataclasses.replace(PRESETS["smoke"], worlds=8, controlled=2),
    policy=PolicyConfig(encoder=Encoder.POOLED, hidden=16),
    ppo=PPOConfig(rollout_steps=8, epochs=2, minibatches=2),
    bc=BCConfig(rollout_steps=8, epochs=1, minibatches=2, teacher_iterations=1),
    eval_every=2,
    eval_episodes=8,
    checkpoint_every=2,
)

TRAIN_PRESETS: dict[str, TrainConfig] = {
    "highway": HIGHWAY,
    "highway-v0": HIGHWAY_V0,
    "merge-v0": MERGE_V0,
    "exit-v0": EXIT_V0,
    "city": CITY,
    "ngp": NGP,
    "smoke": SMOKE,
}


def train_preset(name: str, **changes) -> TrainConfig:
    if name not in TRAIN_PRESETS:
        raise ConfigError(f"preset: got {name!r}; allowed: {', '.join(sorted(TRAIN_PRESETS))}")
    return dataclasses.replace(TRAIN_PRESETS[name], **changes)
