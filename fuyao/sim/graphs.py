"""CUDA graphs: a pure function of tensors captured once and replayed, one launch for all of its kernels.

A decision is hundreds of small kernels; at a few thousand worlds their launch time, not their work, bounds the
step. `GraphedCall(fn)` captures `fn(*args)` on its first call (after two warm-up calls on a side stream, which
also run any `torch.compile` inside it), then on every call copies the arguments' tensors into the graph's
input buffers, replays, and returns a copy of the outputs (the graph's own buffers are overwritten by the next
replay). That works because the step is capture-safe: fixed shapes, no host synchronisation, no tensor built
from Python values, randomness from the state's own counters.

Arguments and results are tensors, tuples, lists, dicts and dataclasses of them; other leaves (configs) must
be the same object at every call. Where capture is impossible (no CUDA, or a capture error), the caller keeps
the plain function (`World(cuda_graph=True)` warns once and goes on without).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch


def flatten(tree) -> tuple[list[torch.Tensor], Any]:
    """The tensors of `tree` in a fixed order, and a spec to rebuild it with other tensors (`unflatten`)."""
    leaves: list[torch.Tensor] = []

    def walk(x):
        if isinstance(x, torch.Tensor):
            leaves.append(x)
            return ("T",)
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return ("D", type(x), tuple((f.name, walk(getattr(x, f.name))) for f in dataclasses.fields(x)))
        if isinstance(x, dict):
            return ("M", tuple((k, walk(v)) for k, v in x.items()))
        if isinstance(x, (tuple, list)):
            return ("S", type(x), tuple(walk(v) for v in x))
        return ("C", x)

    return leaves, walk(tree)


def unflatten(spec, leaves: list[torch.Tensor]):
    it = iter(leaves)

    def build(s):
        kind = s[0]
        if kind == "T":
            return next(it)
        if kind == "D":
            return s[1](**{name: build(sub) for name, sub in s[2]})
        if kind == "M":
            return {k: build(sub) for k, sub in s[1]}
        if kind == "S":
            return s[1](build(sub) for sub in s[2])
        return s[1]

    return build(spec)


class GraphedCall:
    """`fn(*args)` as a CUDA graph (see the module docstring). `replay=False` runs `fn` on the static buffers
    instead of a graph: the same copies in and out, to test them where there is no GPU."""

    def __init__(self, fn: Callable, warmup: int = 2, replay: bool = True) -> None:
        self.fn, self.warmup, self.replay = fn, warmup, replay
        self.graph = None
        self.static_in: list[torch.Tensor] = []
        self.spec_in = None
        self.static_out = None

    def _capture(self, args: tuple) -> None:
        leaves, self.spec_in = flatten(args)
        self.static_in = [x.clone() for x in leaves]
        static_args = unflatten(self.spec_in, self.static_in)
        if not self.replay:
            self.graph = "eager"
            return
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self.fn(*static_args)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.static_out = self.fn(*static_args)
        self.graph = graph

    def __call__(self, *args):
        if self.graph is None:
            self._capture(args)
        leaves, spec = flatten(args)
        if spec != self.spec_in or [_meta(x) for x in leaves] != [_meta(x) for x in self.static_in]:
            raise ValueError(
                "GraphedCall: the arguments changed structure, constants, shapes or dtypes since the capture"
            )
        for dst, src in zip(self.static_in, leaves):
            dst.copy_(src)
        if self.graph == "eager":
            self.static_out = self.fn(*unflatten(self.spec_in, self.static_in))
        else:
            self.graph.replay()
        out, spec_out = flatten(self.static_out)
        return unflatten(spec_out, [x.clone() for x in out])


def _meta(x: torch.Tensor) -> tuple:
    return x.shape, x.dtype, x.device
