"""Progress reporting for the core library without depending on the terminal.

Core functions take a `Progress`; the CLI passes a rich-backed one, tests and Python callers get
`NullProgress` by default. Every loop over cases or iterations reports through it.
"""

from __future__ import annotations

from typing import Any


class Progress:
    """Default: report nothing."""

    def start(self, description: str, total: int | None = None) -> None:
        """Begin a new task (a loop over `total` items)."""

    def advance(self, n: int = 1, **fields: Any) -> None:
        """`n` more items done; `fields` are live figures (loss, lr, dice) shown beside the bar."""

    def log(self, message: str) -> None:
        """A line of text for the user."""

    def stop(self) -> None:
        """The current task is over."""


NullProgress = Progress
