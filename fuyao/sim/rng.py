"""Counter-based random numbers: a pure hash of (world key, counter, slot, stream).

Draws depend only on their inputs, so a step is a pure function of its state, any subset of worlds gives the
same numbers as the whole batch, and the stream is the same on every device and under `torch.compile`.
"""

from __future__ import annotations

import torch

_MASK32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 integer hash on int64 tensors holding 32-bit values (products wrap; the low 32 bits are exact)."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    x = x ^ (x >> 16)
    return x


def uniform(key: torch.Tensor, counter: torch.Tensor, shape_tail: tuple[int, ...], stream: int) -> torch.Tensor:
    """Uniform floats in [0, 1), shape `[W, *shape_tail]`, from `key [W]` and `counter [W]` int64."""
    numel = 1
    for n in shape_tail:
        numel *= n
    idx = torch.arange(numel, device=key.device, dtype=torch.int64).view(1, *shape_tail)
    view = (-1,) + (1,) * len(shape_tail)
    h = _mix32(key.view(view) * 0x9E3779B1 + stream * 0x632BE5AB)
    h = _mix32(h ^ (counter.view(view) & _MASK32))
    h = _mix32(h + idx * 0x85EBCA77)
    return (h >> 8).to(torch.float32) * (1.0 / 16777216.0)
