"""Progress on the terminal (rich), TensorBoard event files and a JSON-lines log of every logged row.

Only the process that owns the run (rank 0) logs; the others get a `RunLogger(enabled=False)`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

# Shown on the progress line, in this order, when present: (key, label, format). Return, collision rate and
# progress are over the episodes that ended in the iteration ("ep"): early in a run only crashes end episodes,
# so a "coll 1.000" over a handful of episodes is what it says, not a pilot that always crashes.
PROGRESS_FIELDS = (
    ("decisions_per_s", "dec/s", "{:,.0f}"),
    ("episodes", "ep", "{:,.0f}"),
    ("episode_return", "return", "{:.2f}"),
    ("collision_rate", "coll", "{:.3f}"),
    ("progress_m", "prog m", "{:.0f}"),
    ("time_sim_frac", "sim", "{:.0%}"),
    ("time_act_frac", "act", "{:.0%}"),
    ("time_learn_frac", "learn", "{:.0%}"),
)


def _fmt(row: dict[str, float]) -> str:
    parts = []
    for key, label, fmt in PROGRESS_FIELDS:
        value = row.get(key)
        if value is not None and math.isfinite(value):
            parts.append(f"{label} {fmt.format(value)}")
    return "  ".join(parts)


class RunLogger:
    """`log(step, row)` writes one row of scalars; `message(text)` prints a line above the progress bar."""

    def __init__(self, out: Path, total_steps: int, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.out = Path(out)
        self.writer = None
        self.progress = None
        self.task = None
        self._last_line = 0.0
        if not enabled:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.out / "tensorboard"))
        self.jsonl = open(self.out / "metrics.jsonl", "a")  # noqa: SIM115 (closed in close())
        self.progress = Progress(
            TextColumn("[bold]train[/bold]"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[stats]}"),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=total_steps, stats="")

    def log(self, step: int, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        for key, value in row.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(key, value, step)
        self.jsonl.write(json.dumps({"step": step, **row}) + "\n")
        self.jsonl.flush()
        self.progress.update(self.task, completed=min(step, self.progress.tasks[0].total), stats=_fmt(row))
        # Without a live terminal (CI, pipes) rich draws nothing until the end: print a line now and then.
        if not self.console.is_terminal and time.monotonic() - self._last_line > 10.0:
            self._last_line = time.monotonic()
            self.console.print(f"step {step:,}  {_fmt(row)}")

    def message(self, text: str) -> None:
        if self.enabled:
            self.console.print(text)

    def close(self) -> None:
        if not self.enabled:
            return
        self.progress.stop()
        self.writer.flush()
        self.writer.close()
        self.jsonl.close()
        self.enabled = False
