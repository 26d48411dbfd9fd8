"""Disk space: a stage estimates what it will write and refuses up front when the disk cannot hold it,
instead of failing hours later with a half-written output."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import LocsegError

MARGIN = 1.1  # headroom over the estimate (manifests, temporaries during atomic writes)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def existing_bytes(folder: str | Path) -> int:
    """Bytes already under `folder` (a rerun reuses or replaces them, so they do not count twice)."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def ensure_free_space(folder: str | Path, needed_bytes: float, what: str) -> None:
    """Refuse (LocsegError naming `folder`) when the disk holding `folder` has less than the estimate free.

    `folder` need not exist yet: its nearest existing parent tells which disk it will be on.
    """
    folder = Path(folder)
    needed = max(0.0, float(needed_bytes) - existing_bytes(folder)) * MARGIN
    probe = folder.absolute()
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise LocsegError(f"not enough disk space for {what}: needs about {human_bytes(needed)}, "
                          f"{human_bytes(free)} free", folder)
