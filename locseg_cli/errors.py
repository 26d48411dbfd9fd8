"""One error type for user mistakes: the CLI prints it as one red line and exits 2."""

from __future__ import annotations

from pathlib import Path


class LocsegError(Exception):
    """A problem with the user's input (file, option, preset), not a bug.

    The message names the offending file or option first, so it reads well on one line.
    """

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


def require(condition: bool, message: str, path: str | Path | None = None) -> None:
    """Raise `LocsegError` unless `condition` holds."""
    if not condition:
        raise LocsegError(message, path)
