"""A run's checkpoints: written atomically, the last K kept beside `best.pt`, the resolved config beside them.

    OUT/config.json                    the resolved TrainConfig (JSON)
    OUT/checkpoints/iter_00000040.pt   periodic, the newest `keep_last` kept
    OUT/checkpoints/best.pt            best periodic evaluation score so far
    OUT/checkpoints/last.pt            the newest, also written at the end of the run

A file is written to a temporary name in the same folder, flushed to disk and renamed over its target, so a
kill at any moment leaves either the old file or the new one, never half of one. The file format is
`fuyao.pilots.learned` (one `torch.save` dict, readable with `weights_only=True`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from fuyao.configio import to_dict
from fuyao.pilots.learned import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CheckpointError, read_checkpoint

PERIODIC = re.compile(r"iter_(\d{8})\.pt$")


def _fsync_replace(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        os.fsync(dir_fd)
        os.close(dir_fd)
    except OSError:
        pass


def atomic_save(obj: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    _fsync_replace(tmp, path)
    return path


def atomic_write_text(text: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    _fsync_replace(tmp, path)
    return path


def checkpoint_payload(
    cfg, model: torch.nn.Module, resume: dict[str, Any] | None, summary: dict[str, Any]
) -> dict[str, Any]:
    """The dict `fuyao.pilots.load` reads; `resume` (optimizer, world state, ...) makes `--resume` exact."""
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "sim": json.dumps(to_dict(cfg.sim)),
        "policy": json.dumps(to_dict(cfg.policy)),
        "train": json.dumps(to_dict(cfg)),
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "summary": json.dumps(summary),
    }
    if resume is not None:
        payload["resume"] = resume
    return payload


def existing_checkpoints(out: Path) -> list[Path]:
    """The checkpoint files a run in `out` has written (`out/checkpoints/*.pt`), sorted by name."""
    return sorted((Path(out) / "checkpoints").glob("*.pt"))


class Checkpointer:
    """Writes and finds a run's checkpoints. Only the process that owns the run (rank 0) writes."""

    def __init__(self, out: Path, keep_last: int, enabled: bool = True) -> None:
        self.out = Path(out)
        self.dir = self.out / "checkpoints"
        self.keep_last = keep_last
        self.enabled = enabled
        self.best_score = float("-inf")

    def write_config(self, cfg) -> None:
        if self.enabled:
            atomic_write_text(json.dumps(to_dict(cfg), indent=2) + "\n", self.out / "config.json")

    def save(self, payload: dict[str, Any], iteration: int, score: float | None = None) -> Path | None:
        """Write `iter_N.pt` and `last.pt`; also `best.pt` when `score` beats every earlier one."""
        if not self.enabled:
            return None
        path = atomic_save(payload, self.dir / f"iter_{iteration:08d}.pt")
        atomic_save(payload, self.dir / "last.pt")
        if score is not None and score > self.best_score:
            self.best_score = score
            # The pilot users load: without DAgger's dataset (a hundred MB or more; resuming reads `last.pt` and the
            # periodic checkpoints, never this one).
            lean = {**payload, "resume": {k: v for k, v in payload["resume"].items() if k != "dagger"}}
            atomic_save(lean, self.dir / "best.pt")
        for old in self.periodic()[self.keep_last :]:
            old.unlink(missing_ok=True)
        return path

    def periodic(self) -> list[Path]:
        """Periodic checkpoints, newest first."""
        if not self.dir.is_dir():
            return []
        found = [p for p in self.dir.iterdir() if PERIODIC.search(p.name)]
        return sorted(found, key=lambda p: int(PERIODIC.search(p.name).group(1)), reverse=True)

    def latest_good(self, warn) -> tuple[Path, dict[str, Any]]:
        """The newest readable checkpoint with resume data. A truncated or corrupt newer file is reported through
        `warn` and skipped (it is never half-loaded); none usable raises `CheckpointError` listing why."""
        problems = []
        for path in [*self.periodic(), self.dir / "last.pt"]:
            if not path.exists():
                continue
            try:
                data = read_checkpoint(path)
            except CheckpointError as err:
                problems.append(str(err))
                warn(f"skipping {err}")
                continue
            if "resume" not in data:
                problems.append(f"{path}: no resume data (an exported pilot, not a training checkpoint)")
                continue
            return path, data
        detail = "; ".join(problems) if problems else "no checkpoints found"
        raise CheckpointError(f"{self.dir}: nothing to resume from ({detail})")
