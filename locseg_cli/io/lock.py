"""The lock on a stage's output folder, right on a file system that several hosts share.

A run owns a folder while `.locseg.lock` names it: the holder (host, boot id, pid, process start
time, a random token and a heartbeat time) is written right after an atomic exclusive create, and a
background thread refreshes the heartbeat every `HEARTBEAT_EVERY` seconds while the stage runs.

Another run treats the lock as stale (and takes the folder over) only when it can tell the holder
is gone:

- same host (same name and boot): its pid is dead, a zombie, or now belongs to a process that
  started at another time (pid reuse); a lock from an earlier boot of this host is stale too;
- another host: its heartbeat (and the lock file's modification time) is older than `STALE_AFTER`
  seconds; a process on another host cannot be asked whether it is alive;
- an empty or unreadable holder (a run that is between its create and its write, or a file written
  by hand) is held, unless the file has not been modified for `STALE_AFTER` seconds.

Taking over is race-free: a taker first creates the guard `.locseg.lock.break` exclusively, re-reads
the holder under the guard, removes it only if it is still the stale one it judged, then creates its
own lock exclusively. Of several runs taking over one stale lock, exactly one wins; the others get a
`LocsegError` (the guard is taken, or the winner's fresh lock is there). A guard whose taker was
killed in its few milliseconds of work is itself stale after `STALE_AFTER` seconds.

The one assumption (as with every lease): a holder whose heartbeat stopped for `STALE_AFTER` seconds
is not coming back. A run that was frozen that long (suspended, a hung mount) finds on waking that its
lock was taken, and refuses to mark its output finished.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import LocsegError

LOCK = ".locseg.lock"
GUARD = LOCK + ".break"
HEARTBEAT_EVERY = 30.0  # seconds between heartbeats of a running stage
STALE_AFTER = 600.0  # a heartbeat this old (or an unwritten holder this old) means the holder is gone
_HOLDER_BYTES = 4096  # a holder is far smaller; more is not a locseg holder


@dataclass(frozen=True)
class Holder:
    """Who holds a lock; `heartbeat` is the holder's wall-clock time of its last sign of life."""

    host: str
    pid: int
    start: str = ""  # the process's start time as the kernel counts it ("" where unknown)
    boot: str = ""  # the host's boot id ("" where unknown)
    token: str = ""
    heartbeat: float = 0.0

    def encode(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True) + "\n").encode()

    def describe(self, now: float) -> str:
        if self.host == _HOST:
            return f"pid {self.pid}"
        return f"pid {self.pid} on host {self.host}, heartbeat {max(0, round(now - self.heartbeat))} s ago"


def _read_first_line(path: str) -> str:
    try:
        with open(path) as f:
            return f.readline().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (None where there is no /proc entry)."""
    line = _read_first_line(f"/proc/{pid}/stat")
    return line.rpartition(")")[2].split() if line else None


def process_start(pid: int) -> str:
    """When `pid` started, in clock ticks since boot (Linux); "" where the system does not say."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else ""


_HOST = socket.gethostname()
_BOOT = _read_first_line("/proc/sys/kernel/random/boot_id")


def _alive(pid: int, start: str) -> bool:
    """`pid` runs (not a zombie) and, where both start times are known, is the process that wrote the holder."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    fields = _proc_stat(pid)
    if fields is None:
        return not Path("/proc/self/stat").exists()  # no /proc at all: trust kill(0)
    if fields[0] in ("Z", "X"):
        return False
    return not (start and len(fields) > 19 and fields[19] != start)


def parse_holder(blob: bytes) -> Holder | None:
    """The holder a lock file names; None when it is empty, half-written or not a holder.

    Also reads the `host:pid` holders of earlier locseg versions (no start time, no heartbeat).
    """
    text = blob.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
        return Holder(host=str(data["host"]), pid=int(data["pid"]), start=str(data.get("start", "")),
                      boot=str(data.get("boot", "")), token=str(data.get("token", "")),
                      heartbeat=float(data.get("heartbeat", 0.0)))
    except (ValueError, KeyError, TypeError):
        host, sep, pid = text.rpartition(":")
        return Holder(host=host, pid=int(pid)) if sep and host and pid.isdigit() else None


def is_stale(holder: Holder | None, mtime: float, now: float) -> bool:
    """Whether a lock with this holder and file modification time may be taken over (see the module)."""
    fresh = now - mtime < STALE_AFTER
    if holder is None:
        return not fresh
    if holder.host == _HOST and (not holder.boot or not _BOOT or holder.boot == _BOOT):
        return not _alive(holder.pid, holder.start)
    if holder.host == _HOST:
        return True  # written before this host last booted
    return not fresh and now - holder.heartbeat >= STALE_AFTER


class FolderLock:
    """An exclusive, heartbeating lock on one folder; `acquire()` raises `LocsegError` when it is held."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self.holder = Holder(host=_HOST, pid=os.getpid(), start=process_start(os.getpid()), boot=_BOOT,
                             token=uuid.uuid4().hex)
        self.lost = False  # the heartbeat found another run's holder in our place
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- acquire / release --------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the lock, taking over a stale one; a clear `LocsegError` when another run holds it."""
        if not self._create():
            seen = self._read()
            if seen is None:  # released between our create and our read: one more fair try
                if not self._create():
                    self._refuse(self._read())
            else:
                blob, mtime = seen
                if not is_stale(parse_holder(blob), mtime, time.time()):
                    self._refuse(seen)
                self._take_over(blob)
        self._start_heartbeat()

    def release(self) -> None:
        """Stop the heartbeat and remove the lock if it is still ours (a taken-over lock is left alone)."""
        if self._fd is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        os.close(self._fd)
        self._fd = None
        if self.owned():
            self.path.unlink(missing_ok=True)

    def owned(self) -> bool:
        """The lock file still names this run."""
        seen = self._read()
        holder = parse_holder(seen[0]) if seen else None
        return holder is not None and holder.token == self.holder.token

    def check(self) -> None:
        """Raise `LocsegError` if another run took the lock over while this one was frozen."""
        if self._fd is not None and (self.lost or not self.owned()):
            self.lost = True
            raise LocsegError(f"another run took over {LOCK} while this one was stalled for over "
                              f"{STALE_AFTER:.0f} s; its output may be mixed with this one's: rerun with --force",
                              self.folder)

    # -- internals ------------------------------------------------------------------------------
    def _create(self) -> bool:
        """Exclusive create + holder write; False if the lock file exists."""
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        except FileExistsError:
            return False
        except FileNotFoundError:  # a run that failed removed the folder it had created
            raise LocsegError("was removed by another run meanwhile; rerun", self.folder) from None
        self._fd = fd
        self._beat()
        return True

    def _beat(self) -> None:
        """Write the holder with a new heartbeat in place (same length: no reader sees it shrink)."""
        self.holder = Holder(**{**asdict(self.holder), "heartbeat": round(time.time(), 3)})
        blob = self.holder.encode()
        os.pwrite(self._fd, blob, 0)
        os.ftruncate(self._fd, len(blob))
        os.fsync(self._fd)

    def _read(self, path: Path | None = None) -> tuple[bytes, float] | None:
        """(content, modification time) of the lock file; None when it is not there."""
        try:
            with open(path or self.path, "rb") as f:
                return f.read(_HOLDER_BYTES), os.fstat(f.fileno()).st_mtime
        except FileNotFoundError:
            return None

    def _refuse(self, seen: tuple[bytes, float] | None) -> None:
        holder = parse_holder(seen[0]) if seen else None
        who = holder.describe(time.time()) if holder else "whose lock is still being written"
        raise LocsegError(f"another locseg run ({who}) is writing here; wait for it to finish", self.folder)

    def _take_over(self, stale: bytes) -> None:
        """Replace the stale lock whose content is `stale`, under the guard; one winner."""
        guard = self.folder / GUARD
        try:
            gfd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            self._break_stale_guard(guard)
            raise LocsegError("another locseg run is taking over the stale lock here; wait for it to finish",
                              self.folder) from None
        try:
            os.write(gfd, self.holder.encode())
            os.close(gfd)
            seen = self._read()
            if seen is not None:
                if seen[0] != stale:  # someone else's lock now: they won
                    self._refuse(seen)
                self.path.unlink()
            if not self._create():  # a fresh run created the lock between our unlink and create
                self._refuse(self._read())
        finally:
            guard.unlink(missing_ok=True)

    def _break_stale_guard(self, guard: Path) -> None:
        """Remove a guard left by a taker that was killed; the caller still refuses (it retries later)."""
        seen = self._read(guard)
        if seen is None or time.time() - seen[1] < STALE_AFTER:
            return
        aside = guard.with_name(f"{GUARD}.{self.holder.token}")
        try:
            os.rename(guard, aside)
        except FileNotFoundError:
            return
        if self._read(aside) != seen:  # a live taker's fresh guard: put it back
            try:
                os.link(aside, guard)
            except FileExistsError:
                pass
        aside.unlink(missing_ok=True)

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat, name="locseg-lock-heartbeat", daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY):
            if not self.owned():
                self.lost = True
                return
            try:
                self._beat()
            except OSError:  # a full or flaky disk: the next beat tries again
                pass
