"""Worker for test_lock's races: two processes on one host try to write one folder, round after round.

Not a test module: test_lock starts `race` in spawned processes. Each round both workers meet at a
barrier, try to enter a `StageWriter` on the round's folder, and the winner holds it until the loser
has tried, so that the two attempts overlap.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from locseg_cli.errors import LocsegError
from locseg_cli.io.atomic import write_text
from locseg_cli.io.lock import LOCK, STALE_AFTER, Holder
from locseg_cli.io.manifest import StageWriter


def dead_pid() -> int:
    """A pid no process can have (above the kernel's limit)."""
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    except OSError:
        return 2**22 + 1


def plant_stale_lock(folder: Path, kind: str) -> None:
    """A lock left by a run that is gone: a dead pid on this host, or a silent host."""
    import socket

    folder.mkdir(parents=True, exist_ok=True)
    old = time.time() - 2 * STALE_AFTER
    if kind == "dead-pid":
        holder = Holder(host=socket.gethostname(), pid=dead_pid(), token="gone")
    else:
        holder = Holder(host="node-that-died", pid=4242, token="gone", heartbeat=old)
    (folder / LOCK).write_bytes(holder.encode())
    os.utime(folder / LOCK, (old, old))


def race(root: str, rounds: int, mode: str, who: int, barrier, results) -> None:
    """Play `rounds` rounds; put (round, who, outcome) on `results` for each."""
    for r in range(rounds):
        out = Path(root) / f"r{r:03d}"
        if mode == "stale" and who == 0:
            plant_stale_lock(out, "dead-pid" if r % 2 else "silent-host")
        barrier.wait()
        met = False
        try:
            with StageWriter("race", out, {}, {}) as w:
                write_text(w.path("winner.json"), json.dumps({"who": who, "pid": os.getpid()}))
                barrier.wait()  # the other has tried by now
                met = True
                w.finish()
            outcome = "won"
        except LocsegError as exc:
            outcome = f"refused: {exc}"
        except Exception as exc:  # noqa: BLE001  (reported to the test, which fails on it)
            outcome = f"crashed: {exc!r}"
        if not met:
            barrier.wait()
        results.put((r, who, outcome))
