"""SIGKILL at a random moment of every stage that writes, then the same command again: the result equals
the uninterrupted run's and nothing half-written is left.

Each stage reruns the chain's command (tests/reliability/chain.py) into a fresh folder, is killed a random
time after it claimed the folder (anywhere up to most of its uninterrupted duration, so kills land in
set-up, in writes and between them), is checked for partial files, then is run again to the end and
compared with the chain's output file by file: bitwise, except the fields that time the run (patches per
second) and the bytes of torch's .pt container (a random serialisation id; the tensors must be equal).
`make test` kills each stage once; the `slow` test kills each five times and prints the counts.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from chain import BY_NAME, STAGES, Chain, Stage, chain_fixture  # noqa: F401  (fixture)
from test_interruptions import ROOT, assert_no_partial_files

from locseg_cli.io.atomic import TMP_PREFIX
from locseg_cli.io.lock import LOCK

KILLED = [s.name for s in STAGES if s.name != "bpr-cohort"]  # bpr-cohort is `synth` again
VOLATILE = {"patches_per_s"}  # timings: differ between any two runs


@dataclass
class KillRun:
    stage: str
    tries: int  # starts needed until a kill landed before the stage finished
    delay: float
    present: int  # files under their final names at the kill (checkpoints, cases, summaries)
    finished_before: int  # case files the manifest listed as finished at the kill
    lost: int  # of those, missing or changed after the rerun


def _claimed(out: Path) -> bool:
    return (out / "manifest.json").is_file()


def kill_at_random(argv: list[str], out: Path, window: float, tries: int = 4) -> tuple[int, float]:
    """Start `locseg argv`, SIGKILL it uniformly within `window` s after it claimed `out`; (tries, delay).

    Should a run finish before its kill (the window is a guess from the in-process reference), it starts
    over on an emptied `out` with the window it was seen to need from its claim to its exit.
    """
    for attempt in range(1, tries + 1):
        shutil.rmtree(out, ignore_errors=True)
        with open(out.parent / f"{out.name}.stderr", "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "locseg_cli", *argv], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=err)
        try:
            end = time.monotonic() + 300
            while not _claimed(out) and proc.poll() is None:
                assert time.monotonic() < end, "never got going"
                time.sleep(0.002)
            claimed = time.monotonic()
            delay = random.uniform(0, window)
            while proc.poll() is None and time.monotonic() < claimed + delay:
                time.sleep(0.002)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return attempt, delay
            assert proc.returncode == 0, (out.parent / f"{out.name}.stderr").read_text()
            window = 0.9 * (time.monotonic() - claimed)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    pytest.fail(f"{argv[0]} finished before each of {tries} kills")


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _finished_files(out: Path) -> dict[Path, str]:
    """The files the killed run's manifest lists as done, with their content hashes."""
    try:
        m = json.loads((out / "manifest.json").read_text())
    except FileNotFoundError:
        return {}
    files = [out / rel for c in m["cases"].values() for rel in (c.get("files") or {}).values()]
    return {p: _digest(p) for p in files}


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _same_tensors(a, b) -> bool:
    import torch

    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_tensors, a, b))
    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def _same_file(a: Path, b: Path) -> bool:
    if a.read_bytes() == b.read_bytes():
        return True
    if a.suffix == ".json":
        return _strip(json.loads(a.read_text())) == _strip(json.loads(b.read_text()))
    if a.suffix == ".jsonl":
        return [_strip(json.loads(x)) for x in a.read_text().splitlines()] == \
            [_strip(json.loads(x)) for x in b.read_text().splitlines()]
    if a.suffix == ".pt":
        import torch

        return _same_tensors(torch.load(a, weights_only=False), torch.load(b, weights_only=False))
    return False


def assert_same_output(ref: Path, out: Path) -> None:
    """`out` holds the files of `ref`, no more, each with the same content (see the module)."""
    def listing(folder: Path) -> list[str]:
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

    assert listing(out) == listing(ref)  # also: no lock, no temporaries left
    differ = [rel for rel in listing(ref) if not _same_file(ref / rel, out / rel)]
    assert not differ, f"differ from the uninterrupted run: {differ}"


def kill_and_rerun(chain: Chain, stage: Stage, tag: str) -> KillRun:
    from locseg_cli.app import main

    out = chain.sibling(stage, tag)
    out.parent.mkdir(parents=True, exist_ok=True)
    tries, delay = kill_at_random(stage.argv(chain.root, out), out, chain.seconds[stage.name])
    if out.exists():
        assert_no_partial_files(out, may_be_complete=True)
    finished = _finished_files(out) if out.exists() else {}
    present = sum(p.is_file() and not p.name.startswith((TMP_PREFIX, LOCK)) and p.name != "manifest.json"
                  for p in out.rglob("*")) if out.exists() else 0
    with pytest.raises(SystemExit) as exc:
        main(stage.argv(chain.root, out, rerun=True))
    assert exc.value.code == 0
    assert not list(out.rglob(f"{TMP_PREFIX}*")) and not (out / LOCK).exists()
    assert_no_partial_files(out, may_be_complete=True)
    lost = sum(not p.is_file() or _digest(p) != h for p, h in finished.items())
    assert_same_output(chain.ref(stage), out)
    assert json.loads((out / "manifest.json").read_text())["complete"]
    return KillRun(stage.name, tries, delay, present, len(finished), lost)


@pytest.mark.parametrize("name", KILLED)
def test_a_killed_stage_reruns_to_the_uninterrupted_result(chain, name):
    run = kill_and_rerun(chain, BY_NAME[name], "k")
    assert run.lost == 0


@pytest.mark.slow
def test_five_kills_of_every_stage(chain):
    runs = [kill_and_rerun(chain, BY_NAME[name], f"k{i}") for i in range(5) for name in KILLED]
    for name in KILLED:
        mine = [r for r in runs if r.stage == name]
        print(f"{name}: {len(mine)} kills, {sum(r.tries for r in mine)} starts, delays "
              f"{', '.join(f'{r.delay:.2f}' for r in mine)} s, files at the kill {[r.present for r in mine]}, "
              f"of them finished cases {[r.finished_before for r in mine]}, lost {sum(r.lost for r in mine)}")
    assert sum(r.lost for r in runs) == 0
