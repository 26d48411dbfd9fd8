"""Terminal output for the CLI: one rich console, progress bars, one error convention."""

from __future__ import annotations

import os
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .progress import Progress as ProgressBase

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class RichProgress(ProgressBase):
    """Progress bars on stderr: description, bar, n/total, elapsed, ETA and live figures."""

    LOG_EVERY_S = 30.0  # without a terminal (CI, `make demo > log`), a plain status line this often
    SPEED_WINDOW_S = 600.0

    def __init__(self) -> None:
        self._p: Progress | None = None
        self._task = None
        self._last_line = 0.0
        # LOCSEG_PROGRESS=lines: status lines instead of live bars even on a terminal, for several
        # stages writing to one terminal at once (`make demo` runs two chains side by side).
        self._lines_only = os.environ.get("LOCSEG_PROGRESS", "") == "lines"
        self._plain = self._lines_only or not err_console.is_terminal

    def __enter__(self) -> RichProgress:
        # the ETA comes from the measured rate over the last SPEED_WINDOW_S: long enough to span slow steps
        self._p = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                           MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                           TextColumn("{task.fields[info]}"), console=err_console, transient=False,
                           disable=self._lines_only, speed_estimate_period=self.SPEED_WINDOW_S)
        self._p.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            if exc and exc[0] is not None:  # an error ends the stage: its one line stands alone (no bars,
                self._p.live.transient = True  # and not the blank line rich's Progress.stop adds in logs)
                self._p.live.stop()
                return
            self._p.__exit__(*exc)

    def start(self, description: str, total: int | None = None) -> None:
        self._task = self._p.add_task(description, total=total, info="")
        self._last_line = time.monotonic()  # short tasks print no status line at all

    def advance(self, n: int = 1, **fields: Any) -> None:
        info = "  ".join(f"{k} {_fmt(v)}" for k, v in fields.items())
        self._p.update(self._task, advance=n, **({"info": info} if fields else {}))
        if self._plain and time.monotonic() - self._last_line > self.LOG_EVERY_S:
            self._status_line()

    def _status_line(self) -> None:
        self._last_line = time.monotonic()
        task = self._p.tasks[-1]
        total = f"/{int(task.total)}" if task.total else ""
        left = task.time_remaining if task.total and not task.finished else None
        eta = f"  eta {_clock(left)}" if left is not None else ""
        err_console.print(f"{task.description}: {int(task.completed)}{total}{eta}  {task.fields.get('info', '')}",
                          markup=False)

    def log(self, message: str) -> None:
        self._p.console.print(message)

    def stop(self) -> None:
        if self._task is not None:
            self._p.stop_task(self._task)
            if self._lines_only:  # no bar shows the final state
                self._status_line()


def _clock(seconds: float) -> str:
    """H:MM:SS, as the live bar's ETA column shows it."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def error_line(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", markup=True)
