"""SIGKILL in the middle of `preprocess`, `train` and `infer` (real processes): no partial file under
its final name, and the rerun completes only what is missing.

The kill lands a random moment after the stage's first finished case (or checkpoint), so that over
repeated runs it hits writes in progress as well as the gaps between them.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from world import world_fixture, world_template_fixture  # noqa: F401  (fixtures)

from locseg_cli.config import resolve_config
from locseg_cli.io.atomic import TMP_PREFIX

ROOT = Path(__file__).parents[2]


def _manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "manifest.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _cases_done(folder: Path) -> int:
    m = _manifest(folder)
    return len(m["cases"]) if m else 0


def kill_midway(argv: list[str], ready: Callable[[], bool], max_delay: float, timeout: float = 180) -> float:
    """Start `locseg argv`, wait until `ready()`, wait a random part of `max_delay`, SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-m", "locseg_cli", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read()}"
            assert time.monotonic() < end, "never got going"
            time.sleep(0.005)
        delay = random.uniform(0, max_delay)
        time.sleep(delay)
        assert proc.poll() is None, "finished before it could be killed: make the job larger"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        return delay
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def assert_no_partial_files(folder: Path, may_be_complete: bool = False) -> list[Path]:
    """Every file under a final name reads completely; returns the final files.

    `may_be_complete`: the kill may have landed after the manifest was finished (while the lock was let go).
    """
    finals = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name.startswith(TMP_PREFIX) or p.name == ".locseg.lock":
            continue
        if p.name.endswith((".nii", ".nii.gz")):
            np.asarray(nib.load(str(p)).dataobj)  # raises on a short file
        elif p.suffix == ".npz":
            with np.load(p) as z:
                [z[k] for k in z.files]
        elif p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".jsonl":
            [json.loads(ln) for ln in p.read_text().splitlines()]
        elif p.suffix == ".pt":
            from locseg_cli.runtime.checkpoint import load_checkpoint

            load_checkpoint(p)
        finals.append(p)
    m = _manifest(folder)
    assert may_be_complete or m is None or not m["complete"]  # killed: never claims to be finished
    return finals


def _mtimes(files: list[Path]) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in files}


def _case_files(folder: Path) -> list[Path]:
    """The files of the cases the manifest says are done (what a rerun must not redo)."""
    m = _manifest(folder) or {"cases": {}}
    return [folder / rel for c in m["cases"].values() for rel in c["files"].values()]


@pytest.fixture
def big_raw(tmp_path) -> Path:
    """8 cases large enough (about 0.1 s each to preprocess) for a kill to land mid-way."""
    from locseg_cli.datasets.writers import DatasetWriter

    w = DatasetWriter(tmp_path / "raw", {0: "background", 1: "upper", 2: "lower"}, layout="nnunet", name="Big")
    for i in range(8):
        rng = np.random.default_rng(i)
        z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in (64, 72, 72)], indexing="ij")
        img = np.where(y**2 + x**2 < 0.8, 40.0, -1000.0) + rng.normal(0, 5, z.shape)
        lab = np.zeros(z.shape, np.uint8)
        lab[((z - 0.4) ** 2 + y**2 + x**2) < 0.1] = 1
        lab[((z + 0.4) ** 2 + y**2 + x**2) < 0.1] = 2
        w.write_case(f"case_{i:03d}", img.astype(np.int16).transpose(2, 1, 0).copy(), lab.transpose(2, 1, 0).copy(),
                     np.diag([1.0, 1.0, 1.5, 1.0]))
    w.finish()
    return tmp_path / "raw"


def test_killed_preprocess_resumes_only_missing_cases(big_raw, tmp_path):
    from locseg_cli.preprocessing import PreprocessConfig, preprocess

    out = tmp_path / "pre"
    opts = {"spacing": "1.5,1.5,1.5", "folds": 2}
    kill_midway(["preprocess", "--data", str(big_raw), "--out", str(out), "--spacing", opts["spacing"],
                 "--folds", "2"], lambda: _cases_done(out) >= 1, max_delay=0.3)
    assert_no_partial_files(out)
    done_before = _mtimes(_case_files(out))
    assert 1 <= _cases_done(out) < 8
    man, did = preprocess(big_raw, out, resolve_config(PreprocessConfig, None, opts))
    assert did and man.complete and len(man.cases) == 8
    assert _mtimes(list(done_before)) == done_before  # finished cases were not recomputed
    assert not list(out.rglob(f"{TMP_PREFIX}*"))  # leftovers of the killed write are swept


def test_killed_train_resumes_from_its_last_checkpoint(world, tmp_path):
    from locseg_cli.runtime.checkpoint import load_checkpoint
    from locseg_cli.training import TrainConfig, train

    out = tmp_path / "run"
    opts = {"model": "baseline", "features": "4,4,8,8,16,4", "patch_size": "16,16,32", "batch_size": 2,
            "epochs": 1, "iterations_per_epoch": 40, "val_every": 0, "checkpoint_every": 2, "log_every": 1,
            "workers": 0, "threads": 1, "fold": -1}
    argv = ["train", "--pre", str(world / "pre"), "--out", str(out)]
    for k, v in opts.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    last = out / "checkpoints" / "last.pt"
    kill_midway(argv, last.is_file, max_delay=0.5)
    assert_no_partial_files(out)
    k = int(load_checkpoint(last)["iteration"])
    logged = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    r = train(world / "pre", out, resolve_config(TrainConfig, None, opts))
    assert r.did_work and r.iterations == 40
    after = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["iteration"] for x in after] == list(range(1, 41))  # each iteration once: resumed, not restarted
    assert after[:k] == [x for x in logged if x["iteration"] <= k]  # the first k were not redone
    assert _manifest(out)["complete"]


def test_killed_infer_resumes_only_missing_cases(world, tmp_path, big_raw):
    from locseg_cli.inference import InferConfig, infer

    images = big_raw / "imagesTr"
    out = tmp_path / "pred"
    kill_midway(["infer", "--run", str(world / "run"), "--data", str(images), "--out", str(out), "--threads", "1"],
                lambda: _cases_done(out) >= 1, max_delay=0.3)
    assert_no_partial_files(out)
    done_before = _mtimes(_case_files(out))
    assert 1 <= _cases_done(out) < 8
    man, did = infer(world / "run", out, resolve_config(InferConfig, None, {"threads": 1}), data=images)
    assert did and man.complete and len(man.cases) == 8
    assert _mtimes(list(done_before)) == done_before
    assert not list(out.rglob(f"{TMP_PREFIX}*"))


def test_second_run_on_the_same_out_is_refused_then_the_stale_lock_is_recovered(world, tmp_path, capsys):
    from test_bad_inputs import run_inprocess

    out = tmp_path / "run"
    argv = ["train", "--pre", str(world / "pre"), "--out", str(out), "--features", "4,4,8,8,16,4",
            "--patch-size", "16,16,32", "--batch-size", "2", "--epochs", "1", "--iterations-per-epoch", "30",
            "--val-every", "0", "--checkpoint-every", "2", "--log-every", "1", "--workers", "0", "--threads", "1",
            "--fold", "-1"]
    proc = subprocess.Popen([sys.executable, "-m", "locseg_cli", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 120
        while not (out / "checkpoints" / "last.pt").is_file():
            assert proc.poll() is None and time.monotonic() < end
            time.sleep(0.01)
        code, err = run_inprocess(argv, capsys)  # the first run is still writing
        assert code == 2 and err.splitlines() == [
            f"error: {out}: another locseg run (pid {proc.pid}) is writing here; wait for it to finish"]
        assert proc.poll() is None  # the refused run took nothing from the first
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert json.loads((out / ".locseg.lock").read_text())["pid"] == proc.pid  # left behind by the dead process
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 99, "lo')  # as if the kill had cut a line short
    code, err = run_inprocess(argv, capsys)
    assert code == 0, err
    lines = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["iteration"] for x in lines] == list(range(1, 31)) and not (out / ".locseg.lock").exists()
