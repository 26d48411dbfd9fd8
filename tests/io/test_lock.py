"""The folder lock on a shared file system: who may take a lock over, and races between processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import time
from pathlib import Path

import pytest
from lock_race import dead_pid, plant_stale_lock, race

from locseg_cli.errors import LocsegError
from locseg_cli.io import lock as lockmod
from locseg_cli.io.lock import GUARD, LOCK, STALE_AFTER, FolderLock, Holder, parse_holder, process_start
from locseg_cli.io.manifest import StageWriter

OLD = time.time() - 2 * STALE_AFTER
HERE = socket.gethostname()


def _plant(folder: Path, content: bytes, mtime: float | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    path.write_bytes(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _takes(folder: Path) -> None:
    """A writer takes the folder over and leaves no lock behind."""
    with StageWriter("toy", folder, {}, {}) as w:
        assert parse_holder((folder / LOCK).read_bytes()).token == w._lock.holder.token
        w.finish()
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json"]


def _refused(folder: Path, match: str) -> None:
    before = (folder / LOCK).read_bytes()
    with pytest.raises(LocsegError, match=match):
        StageWriter("toy", folder, {}, {}).__enter__()
    assert (folder / LOCK).read_bytes() == before  # the holder's lock is untouched


def test_holder_names_host_pid_start_and_heartbeat(tmp_path):
    lk = FolderLock(tmp_path)
    lk.acquire()
    try:
        h = parse_holder((tmp_path / LOCK).read_bytes())
        assert (h.host, h.pid, h.start, h.token) == (HERE, os.getpid(), process_start(os.getpid()), lk.holder.token)
        assert abs(h.heartbeat - time.time()) < 5
    finally:
        lk.release()
    assert not (tmp_path / LOCK).exists()


def test_foreign_host_with_a_fresh_heartbeat_is_refused(tmp_path):
    _plant(tmp_path, Holder(host="node07", pid=123, token="t", heartbeat=time.time() - 5).encode())
    _refused(tmp_path, r"another locseg run \(pid 123 on host node07, heartbeat 5 s ago\) is writing here")


def test_foreign_host_with_an_old_heartbeat_is_recovered(tmp_path):
    _plant(tmp_path, Holder(host="node07", pid=123, token="t", heartbeat=OLD).encode(), mtime=OLD)
    _takes(tmp_path)


def test_foreign_host_with_an_old_heartbeat_but_a_fresh_file_is_refused(tmp_path):
    """The host's clock may lag: a lock file the shared file system saw change recently is held."""
    _plant(tmp_path, Holder(host="node07", pid=123, token="t", heartbeat=OLD).encode())
    _refused(tmp_path, "another locseg run")


@pytest.mark.parametrize("content", [b"", b'{"host": "node07", "pi'], ids=["empty", "half-written"])
def test_an_unwritten_holder_is_held_until_the_limit(tmp_path, content):
    _plant(tmp_path, content)
    _refused(tmp_path, r"another locseg run \(whose lock is still being written\) is writing here")
    os.utime(tmp_path / LOCK, (OLD, OLD))
    _takes(tmp_path)


def test_same_host_dead_pid_is_recovered_at_once(tmp_path):
    _plant(tmp_path, Holder(host=HERE, pid=dead_pid(), token="t", heartbeat=time.time()).encode())
    _takes(tmp_path)


def test_same_host_live_pid_is_refused_even_with_an_old_heartbeat(tmp_path):
    _plant(tmp_path, Holder(host=HERE, pid=os.getpid(), start=process_start(os.getpid()), boot=lockmod._BOOT,
                            token="t", heartbeat=OLD).encode(), mtime=OLD)
    _refused(tmp_path, rf"another locseg run \(pid {os.getpid()}\) is writing here")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc for process start times")
def test_a_reused_pid_or_an_earlier_boot_is_stale(tmp_path):
    start = process_start(os.getpid())
    _plant(tmp_path / "a", Holder(host=HERE, pid=os.getpid(), start=str(int(start) + 1), token="t",
                                  heartbeat=time.time()).encode())
    _takes(tmp_path / "a")
    _plant(tmp_path / "b", Holder(host=HERE, pid=os.getpid(), start=start, boot="another-boot", token="t",
                                  heartbeat=time.time()).encode())
    _takes(tmp_path / "b")


def test_a_lock_of_an_earlier_locseg_version_is_read(tmp_path):
    _plant(tmp_path, f"{HERE}:{os.getpid()}".encode())
    _refused(tmp_path, rf"\(pid {os.getpid()}\)")
    _plant(tmp_path, f"{HERE}:{dead_pid()}".encode())
    _takes(tmp_path)


def test_heartbeat_is_refreshed_while_held(tmp_path, monkeypatch):
    monkeypatch.setattr(lockmod, "HEARTBEAT_EVERY", 0.02)
    lk = FolderLock(tmp_path)
    lk.acquire()
    try:
        first = parse_holder((tmp_path / LOCK).read_bytes()).heartbeat
        end = time.monotonic() + 5
        while parse_holder((tmp_path / LOCK).read_bytes()).heartbeat == first:
            assert time.monotonic() < end, "no heartbeat"
            time.sleep(0.01)
    finally:
        lk.release()


def test_a_run_whose_lock_was_taken_over_does_not_finish(tmp_path):
    w = StageWriter("toy", tmp_path / "out", {}, {}).__enter__()
    (tmp_path / "out" / LOCK).write_bytes(Holder(host="node07", pid=1, token="other").encode())
    with pytest.raises(LocsegError, match="another run took over .locseg.lock while this one was stalled"):
        w.finish()
    w.__exit__()
    assert (tmp_path / "out" / LOCK).is_file()  # the other run's lock stays


def test_a_guard_left_by_a_killed_taker_is_cleared_after_the_limit(tmp_path):
    plant_stale_lock(tmp_path, "dead-pid")
    guard = tmp_path / GUARD
    guard.write_text("")
    _refused(tmp_path, "another locseg run is taking over the stale lock here")
    assert guard.is_file()  # a fresh guard: its taker may be at work
    os.utime(guard, (OLD, OLD))
    _refused(tmp_path, "another locseg run is taking over the stale lock here")
    assert not guard.exists()  # cleared; the next run takes the lock
    _takes(tmp_path)


def _race(root: Path, rounds: int, mode: str) -> dict[int, list[str]]:
    ctx = mp.get_context("spawn")  # a fresh interpreter each: no threads or locks copied from pytest
    barrier, results = ctx.Barrier(2, timeout=60), ctx.Queue()
    procs = [ctx.Process(target=race, args=(str(root), rounds, mode, who, barrier, results)) for who in (0, 1)]
    for p in procs:
        p.start()
    outcomes: dict[int, list[str]] = {}
    for _ in range(2 * rounds):
        r, who, outcome = results.get(timeout=120)
        outcomes.setdefault(r, [None, None])[who] = outcome
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return outcomes


@pytest.mark.parametrize("mode", ["fresh", "stale"])
def test_two_processes_racing_for_one_folder_one_writes_each_round(tmp_path, mode):
    """100 rounds (fresh folder, or a stale lock both take over at once): one winner, one clear refusal."""
    import json

    rounds = 100
    outcomes = _race(tmp_path, rounds, mode)
    lost = 0
    for r, (a, b) in sorted(outcomes.items()):
        assert sorted([a == "won", b == "won"]) == [False, True], (r, a, b)
        loser = b if a == "won" else a
        assert loser.startswith("refused: ") and "another locseg run" in loser, (r, loser)
        folder = tmp_path / f"r{r:03d}"
        winner = json.loads((folder / "winner.json").read_text())["who"]
        lost += winner != (0 if a == "won" else 1)
        assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "winner.json"]
    assert lost == 0 and len(outcomes) == rounds
