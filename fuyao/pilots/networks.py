"""Policy networks: one actor-critic module shared by every controlled vehicle (self-play).

Three encoders, chosen by `PolicyConfig.encoder`:

`mlp`     the flat observation through a two-layer MLP (the baseline).
`pooled`  permutation-invariant: the ego's own features, its lane potential, the lane neighbours (traffic) and
          the route through one MLP; each neighbour (native: K rows of 13 features; highway-kinematics: the V - 1
          rows after the ego) through a shared token MLP, masked by its presence feature and max-pooled; each
          lane-geometry point ahead (own, left, right lane x lookahead points, with a one-hot of which lane)
          through another shared token MLP, masked by the lane's existence and max-pooled. Reordering neighbours
          or points does not change the output. Every slice comes from the observation's layout
          (`fuyao.sim.observe.ObservationLayout`, `KinematicsLayout`), never from offsets of its own.
`cnn`     for the grid observations (raster, highway-occupancy `[channels, H, W]`): a small Nature-CNN-like
          stack (Mnih et al. 2015, narrower: 16-32-32 filters of 8/4, 4/2, 3/1 on grids of 36 cells or more;
          two 3 x 3 convolutions of 32 on smaller ones such as the 11 x 11 occupancy grid), flattened, through
          one linear layer of `hidden`. Channels and size come from the observation's layout
          (`fuyao.sim.observe_grid.RasterLayout`, `OccupancyLayout`).

Heads: `actor` gives 5 logits (meta actions, masked by the world's action mask) or the mean of a 2-D Gaussian
(continuous actions, state-independent log std, sampled and then clipped to [-1, 1]); `critic` gives V(obs).
Inputs are `[B, *obs_shape]` float32; outputs `[B, A]` and `[B]`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import torch
from torch import nn

from fuyao.sim.config import ActionType, ConfigError, ObservationType, SimConfig
from fuyao.sim.observe import (
    POINT_FEATURES,
    KinematicsLayout,
    ObservationLayout,
    observation_layout,
    observation_shape,
)
from fuyao.sim.observe_grid import OccupancyLayout, RasterLayout

NUM_META_ACTIONS = 5
# Per Kinematics column (presence, x, y, vx, vy, then cos_h, sin_h where present): x / 200 m, y / 16 m and v / 80 m/s
# become x / 20 m, y / 4 m (one lane) and v / 5 m/s; the ego's own x is left out (`kinematics_scale`).
KINEMATICS_INPUT_SCALE = {"presence": 1.0, "x": 10.0, "y": 4.0, "vx": 16.0, "vy": 16.0, "cos_h": 1.0, "sin_h": 1.0}
MASKED_LOGIT = -1.0e8  # logit of an impossible action (finite: keeps softmax NaN-free when all are masked)


class Encoder(enum.Enum):
    MLP = "mlp"
    POOLED = "pooled"
    CNN = "cnn"  # grid observations: raster, highway-occupancy


GRID_OBSERVATIONS = (ObservationType.RASTER, ObservationType.HIGHWAY_OCCUPANCY)
NATURE_CNN_MIN_CELLS = 36  # grids this wide or wider take the strided stack (8/4, 4/2, 3/1 leave at least 1 x 1)


@dataclass(frozen=True)
class PolicyConfig:
    """Network shape. `hidden`: width of every layer."""

    encoder: Encoder = Encoder.POOLED
    hidden: int = 64
    init_log_std: float = -0.5  # continuous actions: initial log standard deviation
    # highway-kinematics observations only: multiply each column by `KINEMATICS_INPUT_SCALE` before the encoder,
    # so that a lane, 20 m and 5 m/s are each about one unit (highway-env's normalisation maps them to 0.25, 0.1
    # and 0.06, where an MLP learns the planner's fine distinctions slowly), and the ego's absolute x left out.
    # Part of the network: a pilot with it reads highway-env's own observation unchanged.
    scale_inputs: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, Encoder):
            try:
                object.__setattr__(self, "encoder", Encoder(self.encoder))
            except ValueError:
                allowed = ", ".join(repr(e.value) for e in Encoder)
                raise ConfigError(f"PolicyConfig.encoder: got {self.encoder!r}; allowed: {allowed}") from None
        if not isinstance(self.hidden, int) or self.hidden < 1:
            raise ConfigError(f"PolicyConfig.hidden: got {self.hidden!r}; allowed: an integer >= 1")


def _layer(n_in: int, n_out: int, gain: float = math.sqrt(2.0)) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _mlp(n_in: int, hidden: int, n_out: int | None = None) -> nn.Sequential:
    layers: list[nn.Module] = [_layer(n_in, hidden), nn.ReLU(), _layer(hidden, hidden), nn.ReLU()]
    return nn.Sequential(*layers) if n_out is None else nn.Sequential(*layers, _layer(hidden, n_out))


class FlatEncoder(nn.Module):
    def __init__(self, obs_dim: int, hidden: int, scale: torch.Tensor | None = None) -> None:
        super().__init__()
        self.net = _mlp(obs_dim, hidden)
        self.out_dim = hidden
        self.register_buffer("scale", scale, persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            obs = obs * self.scale
        return self.net(obs.flatten(1))


def kinematics_scale(sim: SimConfig) -> torch.Tensor:
    """`[V, F]`: `KINEMATICS_INPUT_SCALE` laid out as the world's Kinematics observation."""
    if sim.observation not in (ObservationType.HIGHWAY_KINEMATICS, ObservationType.HIGHWAY_EXIT):
        raise ConfigError(
            f"PolicyConfig.scale_inputs: true for the {sim.observation.value!r} observation; allowed only for "
            "'highway-kinematics' and 'highway-exit'"
        )
    layout = KinematicsLayout.of(sim)
    row = torch.tensor([KINEMATICS_INPUT_SCALE[f] for f in layout.features])
    scale = row.expand(layout.rows, -1).clone()
    # The ego's own x is its absolute position along the road, clipped at 200 m: nothing to drive by, and where a
    # road begins is the simulator's choice (highway-env's ego starts near 180 m, Fuyao's near 30 m). A network
    # that read it learned the start of Fuyao's episodes and crashed in 35 % of highway-env's (1.5 % in Fuyao's).
    scale[layout.ego_row, layout.column("x")] = 0.0
    return scale


def _pool(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked max over tokens `[B, T, H]` (non-negative after ReLU, so a masked token's zero never wins over a
    present one and an empty set pools to zero)."""
    return (tokens * mask.unsqueeze(-1)).amax(dim=1)


class NativeEncoder(nn.Module):
    """Pooled encoder for the native observation; every slice it reads comes from `ObservationLayout`."""

    def __init__(self, cfg: SimConfig, hidden: int) -> None:
        super().__init__()
        self.layout = ObservationLayout.of(cfg)
        lay = self.layout
        # The ego MLP's input, in this order (and the junction block on city maps).
        self.context = (lay.ego, lay.potential, lay.traffic, lay.route)
        if lay.junction is not None:
            self.context = (*self.context, lay.junction)
        self.points = lay.lookahead_points
        lanes = lay.lanes.rows
        self.ego = _mlp(sum(b.size for b in self.context), hidden)
        self.neighbour = _mlp(lay.neighbours.width, hidden)
        self.lane_point = _mlp(len(POINT_FEATURES) + lanes + 1, hidden)  # (x, y, yaw) + which lane + distance rank
        self.out_dim = 3 * hidden
        self.register_buffer("lane_onehot", torch.eye(lanes).repeat_interleave(self.points, 0), persistent=False)
        rank = torch.arange(self.points, dtype=torch.float32).repeat(lanes) / max(self.points - 1, 1)
        self.register_buffer("point_rank", rank.unsqueeze(-1), persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        lay = self.layout
        b = obs.shape[0]
        context = torch.cat([block.flat(obs) for block in self.context], dim=-1)  # [B, 10 + 5 + 18 + 8]
        neigh = lay.neighbours.read(obs)  # [B, K, 13]
        lane_rows = lay.lanes.read(obs)  # [B, 3, 1 + 3 P]
        exists = lane_rows[..., lay.lanes.column("exists")]  # [B, 3]
        lane_exists = exists.unsqueeze(-1).expand(-1, -1, self.points).reshape(b, -1)  # [B, 3 P]
        points = lay.lane_points(obs).flatten(1, 2)  # [B, 3 P, 3]
        extra = torch.cat([self.lane_onehot, self.point_rank], dim=-1).expand(b, -1, -1)
        pooled_neigh = _pool(self.neighbour(neigh), neigh[..., lay.neighbours.column("present")])
        pooled_lanes = _pool(self.lane_point(torch.cat([points, extra], dim=-1)), lane_exists)
        return torch.cat([self.ego(context), pooled_neigh, pooled_lanes], dim=-1)


class KinematicsEncoder(nn.Module):
    """Pooled encoder for highway-kinematics `[V, 5]` (highway-exit `[V, 7]`) rows: ego row, then other vehicles
    (`KinematicsLayout`)."""

    def __init__(self, cfg: SimConfig, hidden: int) -> None:
        super().__init__()
        self.layout = KinematicsLayout.of(cfg)
        f = len(self.layout.features)
        self.ego = _mlp(f, hidden)
        self.other = _mlp(f, hidden)
        self.out_dim = 2 * hidden

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        lay = self.layout
        others = obs[:, lay.others]
        present = others[..., lay.column("presence")]
        return torch.cat([self.ego(obs[:, lay.ego_row]), _pool(self.other(others), present)], dim=-1)


def _conv(n_in: int, n_out: int, kernel: int, stride: int, padding: int = 0) -> nn.Conv2d:
    conv = nn.Conv2d(n_in, n_out, kernel, stride, padding)
    nn.init.orthogonal_(conv.weight, math.sqrt(2.0))
    nn.init.zeros_(conv.bias)
    return conv


class ConvEncoder(nn.Module):
    """CNN over a grid observation `[B, channels, H, W]` (or `[B, ..., channels, H, W]` flattened to it); the
    shape comes from the observation's layout."""

    def __init__(self, layout: RasterLayout | OccupancyLayout, hidden: int) -> None:
        super().__init__()
        self.layout = layout
        channels, height, width = layout.shape
        if min(height, width) >= NATURE_CNN_MIN_CELLS:
            convs = [_conv(channels, 16, 8, 4), nn.ReLU(), _conv(16, 32, 4, 2), nn.ReLU(), _conv(32, 32, 3, 1)]
        else:
            convs = [_conv(channels, 32, 3, 1, 1), nn.ReLU(), _conv(32, 32, 3, 1, 1)]
        self.convs = nn.Sequential(*convs, nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, channels, height, width)).shape[1]
        self.head = nn.Sequential(_layer(flat, hidden), nn.ReLU())
        self.out_dim = hidden

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(obs.reshape(-1, *self.layout.shape)))


class ActorCritic(nn.Module):
    """`forward(obs) -> (actor_out [B, A], value [B])`; `A` = 5 logits (meta) or 2 Gaussian means (continuous)."""

    def __init__(self, sim: SimConfig, cfg: PolicyConfig) -> None:
        super().__init__()
        self.obs_shape = observation_shape(sim)
        self.continuous = sim.action is ActionType.CONTINUOUS
        h = cfg.hidden
        grid = sim.observation in GRID_OBSERVATIONS
        if (cfg.encoder is Encoder.CNN) != grid and not (grid and cfg.encoder is Encoder.MLP):
            allowed = "'cnn', 'mlp'" if grid else "'mlp', 'pooled'"
            raise ConfigError(
                f"PolicyConfig.encoder: got {cfg.encoder.value!r} for the {sim.observation.value!r} observation; "
                f"allowed: {allowed}"
            )
        scale = kinematics_scale(sim) if cfg.scale_inputs else None
        if scale is not None and cfg.encoder is not Encoder.MLP:
            raise ConfigError(f"PolicyConfig.scale_inputs: true with encoder {cfg.encoder.value!r}; allowed: 'mlp'")
        if cfg.encoder is Encoder.MLP:
            self.encoder: nn.Module = FlatEncoder(math.prod(self.obs_shape), h, scale)
        elif cfg.encoder is Encoder.CNN:
            self.encoder = ConvEncoder(observation_layout(sim), h)
        elif sim.observation in (ObservationType.HIGHWAY_KINEMATICS, ObservationType.HIGHWAY_EXIT):
            self.encoder = KinematicsEncoder(sim, h)
        else:
            self.encoder = NativeEncoder(sim, h)
        n_actions = 2 if self.continuous else NUM_META_ACTIONS
        d = self.encoder.out_dim
        self.actor = nn.Sequential(_layer(d, h), nn.ReLU(), _layer(h, n_actions, gain=0.01))
        self.critic = nn.Sequential(_layer(d, h), nn.ReLU(), _layer(h, 1, gain=1.0))
        self.log_std = nn.Parameter(torch.full((2,), cfg.init_log_std)) if self.continuous else None

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(obs)
        return self.actor(z), self.critic(z).squeeze(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.encoder(obs)).squeeze(-1)


def masked_logits(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return logits if mask is None else logits.masked_fill(~mask, MASKED_LOGIT)


def distribution(
    model: ActorCritic, actor_out: torch.Tensor, mask: torch.Tensor | None
) -> torch.distributions.Distribution:
    """The action distribution: Categorical over masked logits, or a diagonal Gaussian (clipped when applied)."""
    if model.log_std is None:
        return torch.distributions.Categorical(logits=masked_logits(actor_out, mask), validate_args=False)
    std = model.log_std.exp().expand_as(actor_out)
    return torch.distributions.Independent(torch.distributions.Normal(actor_out, std, validate_args=False), 1)


def deterministic_action(model: ActorCritic, actor_out: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The mode: argmax of the masked logits `[B]` int64, or the clipped mean `[B, 2]`."""
    if model.log_std is None:
        return masked_logits(actor_out, mask).argmax(dim=-1)
    return actor_out.clamp(-1.0, 1.0)
