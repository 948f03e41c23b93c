"""Test-session settings shared by every test module.

Under pytest-xdist (the README's `-n 2`) each worker process shares the machine's cores with the others. torch
would give every worker one thread per core, so two workers on two cores would run four busy OpenMP threads, and
each parallel region would wait for a thread the OS has descheduled: a small MLP's training step measured 3.5-4x
slower that way than with one thread per worker (two processes at once, 2 cores: 35 s against 9-10 s). So each
worker gets its share of the cores, and so do the `fuyao` subprocesses the tests start (`OMP_NUM_THREADS`).
"""

from __future__ import annotations

import os

import torch

from fuyao.perf.machine import affinity_cores

if os.environ.get("PYTEST_XDIST_WORKER"):
    _cores = affinity_cores()
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    _threads = max(1, _cores // max(1, _workers))
    os.environ["OMP_NUM_THREADS"] = str(_threads)
    torch.set_num_threads(_threads)
