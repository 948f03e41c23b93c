"""`train(cfg, device)`: one training run (PPO, BC, or BC warm start then PPO) in this process, which may be one
rank of a torchrun job. Builds the pieces, resumes if asked, runs the algorithms, evaluates and checkpoints."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from typing import Any

import torch

from fuyao.sim.config import ConfigError
from fuyao.train import bc, distributed, ppo
from fuyao.train.checkpoint import atomic_write_text, existing_checkpoints
from fuyao.train.config import Algo, TrainConfig
from fuyao.train.session import build_session, restore


def make_evaluator(cfg: TrainConfig, device: torch.device):
    """The periodic evaluation: the evaluation suite's metric definitions on a small held-out set."""
    from fuyao.train.evaluator import Evaluator

    return Evaluator(cfg, device)


def open_demonstrations(cfg: TrainConfig, d, device: torch.device, message=print):
    """`cfg.data` as demonstrations on `cfg.sim`'s spaces: a recording folder as it is; a folder of logged
    scenarios replayed and labelled into `OUT/demos` once (rank 0 writes it, atomically; a resumed run reuses it)."""
    from fuyao.data.demos import Demonstrations, is_recording, write_log_demonstrations
    from fuyao.data.scenario import ScenarioError
    from fuyao.evaluation.logs import scenario_files

    try:
        folder = cfg.data
        if not is_recording(folder):
            files = scenario_files(cfg.data)
            folder = cfg.out / "demos"
            if d.is_main and not is_recording(folder):
                message(f"labelling {len(files)} logged scenarios by inverse dynamics into {folder}")
                tmp = cfg.out / f".demos.tmp-{os.getpid()}"
                shutil.rmtree(tmp, ignore_errors=True)
                try:
                    out = write_log_demonstrations(files, cfg.sim, tmp, device=device, source=str(cfg.data))
                    os.replace(tmp, folder)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                message(f"{out['rows']:,} demonstrated decisions from {out['scenarios']} scenarios")
            distributed.barrier(d)
        return Demonstrations(folder, cfg.sim, d.rank, d.world_size)
    except ScenarioError as err:
        raise ConfigError(f"data: {err}") from None


def train(
    cfg: TrainConfig, device: torch.device, evaluator: Any = "default", stop_when: Callable[[dict], bool] | None = None
) -> dict[str, Any]:
    """Train as `cfg` says; return the run's summary (also written to `OUT/summary.json` by rank 0).

    `evaluator`: "default" builds `make_evaluator(cfg)`; None trains without periodic evaluation.
    `stop_when(eval_summary) -> bool` ends the run after a periodic evaluation that satisfies it (time to target).
    """
    earlier = existing_checkpoints(cfg.out) if not cfg.resume else []
    if earlier:
        raise ConfigError(
            f"out: {cfg.out} already holds checkpoints of a run ({earlier[-1].name}, ...); allowed: --resume to "
            "continue it, or another --out (nothing there is overwritten)"
        )
    d = distributed.init(device.type)
    device = distributed.device_for(d, device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if evaluator == "default":
        evaluator = make_evaluator(cfg, device) if d.is_main and (cfg.eval_every or cfg.eval_episodes) else None
    learner, worlds, book = build_session(cfg, d, device, evaluator if d.is_main else None, stop_when)
    demos = open_demonstrations(cfg, d, device, book.message) if cfg.data is not None else None
    progress = book.progress
    try:
        if cfg.resume:
            where = restore(cfg, learner, worlds, book)
            book.message(f"resumed from {where} at iteration {progress.iteration}, {progress.decisions:,} decisions")
        book.checkpointer.write_config(cfg)
        if cfg.algo is Algo.BC:
            bc.train(cfg, learner, worlds, book, cfg.steps, demos)
        else:
            if cfg.bc_warm_start and progress.decisions < cfg.bc_warm_start:
                bc.train(cfg, learner, worlds, book, min(cfg.bc_warm_start, cfg.steps), demos)
            ppo.train(cfg, learner, worlds, book, cfg.steps)
        if book.evaluator is None or progress.target_reached:
            score = None
        elif book.curve and book.curve[-1]["decisions"] == progress.decisions:
            last = book.curve[-1]  # the last iteration's periodic evaluation saw these weights
            score = last.get("eval_selection", last["eval_score"])
        else:
            score = book.evaluate(learner.model)
        book.save(learner, worlds, score)
        summary = {**book.summary(), "processes": d.world_size, "process_group": d.enabled}
        if d.enabled:
            summary["replicas_identical"] = distributed.replicas_identical(d, learner.model)
        if d.is_main:
            atomic_write_text(json.dumps(summary, indent=2) + "\n", cfg.out / "summary.json")
            done = f"done: {progress.decisions:,} decisions in {progress.now():.0f} s"
            book.message(f"{done}; checkpoints in {book.checkpointer.dir}")
        return summary
    finally:
        book.close()
        distributed.close(d)
