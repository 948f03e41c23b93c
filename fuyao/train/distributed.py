"""Many processes, one run: `torchrun --nproc-per-node N -m fuyao.cli train ...`.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address; without them the run is one process.
Each rank owns its own worlds (seeded `seed + RANK_SEED_STRIDE * rank`), computes gradients on them, and
DistributedDataParallel averages the gradients, so every replica holds the same weights after every step. Only
rank 0 writes logs and checkpoints; decisions to stop are taken on rank 0 and broadcast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

RANK_SEED_STRIDE = 1_000_003  # seed offset per rank: worlds of different ranks never share a random stream


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    grouped: bool = False  # a process group was formed (torchrun launched this process, one rank or more)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Collectives run: the model is wrapped in DistributedDataParallel and statistics are summed over ranks.
        Also with one rank under torchrun, so that a one-GPU machine exercises NCCL (NCCL puts one rank on a GPU)."""
        return self.grouped


def launched() -> bool:
    """Whether a launcher describes a process group: torchrun's rank and rendezvous address (one rank or more)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or all(k in os.environ for k in ("RANK", "MASTER_ADDR"))


def init(device_kind: str) -> Dist:
    """Join the process group torchrun describes (gloo on CPU, NCCL on CUDA), also with one rank; a no-op for a
    process started without a launcher."""
    if not launched():
        return Dist()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return Dist(rank, int(os.environ.get("WORLD_SIZE", "1")), local_rank, grouped=True)


def device_for(d: Dist, device: torch.device) -> torch.device:
    """Each rank drives its own GPU (LOCAL_RANK); CPU ranks share the CPU."""
    if device.type == "cuda" and d.enabled:
        torch.cuda.set_device(d.local_rank)
        return torch.device("cuda", d.local_rank)
    return device


def broadcast_flag(d: Dist, flag: bool, device: torch.device) -> bool:
    """Rank 0's `flag` on every rank."""
    if not d.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def sum_across(d: Dist, values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum of `values` over ranks (statistics)."""
    if not d.enabled:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values


def replicas_identical(d: Dist, model: torch.nn.Module) -> bool:
    """Whether every rank holds bit-identical weights (gathered to every rank; call at the end of a run)."""
    if not d.enabled:
        return True
    flat = torch.cat([p.detach().flatten().double() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(d.world_size)]
    dist.all_gather(gathered, flat)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def close(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()
