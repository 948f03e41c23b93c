"""Mixed precision for the network in training: bfloat16 matrix multiplies (`torch.autocast`) where the device
does them natively, float32 everywhere else.

`TrainConfig.precision`:
    fp32   every operation in float32.
    bf16   the network's forward (rollout actions, values, the PPO and BC losses) under
           `torch.autocast(dtype=torch.bfloat16)`; its outputs (logits, means, values) are cast back to float32
           at once, so log-probabilities, ratios, advantages, losses, gradients and the weights (and Adam's
           state) stay float32. No loss scaling: bfloat16 has float32's exponent range.
    auto   bf16 where the hardware multiplies bfloat16 natively, else fp32: CUDA GPUs of compute capability 8.0
           and later (A100, H100, RTX 30xx+); CPUs with AMX or AVX512-BF16 (Intel Xeon from Cooper / Sapphire
           Rapids, AMD Zen 4+), where oneDNN's bfloat16 GEMMs are several times float32's (`fuyao bench train
           --throughput --precision bf16` measures it). Elsewhere bfloat16 is emulated and slower.

The world, the observations, rewards, GAE and the optimiser never leave float32; a checkpoint's weights are
float32 and a pilot loaded from it acts in float32 whatever precision trained it. Same seed, same machine, same
precision: the same run, bit for bit.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

Precision = Literal["fp32", "bf16", "auto"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX tiles or AVX512-BF16), as oneDNN uses them."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch.cpu's own probes (private API)
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def use_bf16(precision: str, device: torch.device) -> bool:
    """Resolve `TrainConfig.precision` on `device`: True where the network runs under bfloat16 autocast."""
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and cpu_has_native_bf16()


def _autocast(obs: torch.Tensor, bf16: bool) -> torch.autocast:
    return torch.autocast(obs.device.type, dtype=torch.bfloat16, enabled=bf16)


def forward(module: torch.nn.Module, obs: torch.Tensor, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """`module(obs) -> (actor_out, value)` with the matrix multiplies in bfloat16 if `bf16`; outputs float32."""
    with _autocast(obs, bf16):
        actor_out, value = module(obs)
    return actor_out.float(), value.float()


def value(model: torch.nn.Module, obs: torch.Tensor, bf16: bool) -> torch.Tensor:
    """`model.value(obs)` as `forward` computes it."""
    with _autocast(obs, bf16):
        v = model.value(obs)
    return v.float()
