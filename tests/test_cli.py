"""The command line: every subcommand listed, fast help, one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from locseg_cli import __version__
from locseg_cli.commands import REGISTERED

EXPECTED = {"synth", "check", "bpr", "preprocess", "atlas", "train", "infer", "postprocess", "evaluate", "models"}


def _locseg(*args, **kw):
    return subprocess.run([sys.executable, "-m", "locseg_cli", *args], capture_output=True, text=True,
                          timeout=120, **kw)


def test_help_lists_every_subcommand_quickly():
    t = time.perf_counter()
    proc = _locseg("--help", env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    elapsed = time.perf_counter() - t
    assert proc.returncode == 0
    for name in EXPECTED | {n for n, _ in REGISTERED}:
        assert f" {name} " in proc.stdout, name
    assert elapsed < 5  # interpreter start included; heavy imports happen inside commands


def test_help_does_not_import_torch():
    code = "import sys; from locseg_cli.app import app; print('torch' in sys.modules, 'monai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split()
    assert out == ["False", "False"]


def test_version():
    proc = _locseg("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"locseg {__version__}"


@pytest.mark.parametrize("args, needle", [
    (["preprocess", "--data", "/no/such/dir", "--out", "x"], "/no/such/dir"),
    (["train", "--pre", "."], "--out"),
    (["preprocess", "--data", ".", "--out", "OUT", "--spacing", "1,2"], "expected 3 values"),
    (["preprocess", "--data", ".", "--out", "OUT", "--preset", "no-such-preset"], "no such preset"),
    (["preprocess", "--data", ".", "--out", "OUT", "--spacing", "low"], "give one of cpu-coarse, dataset-median"),
    (["train", "--pre", ".", "--out", "OUT", "--patch-size", "tiny"], "give one of cpu-large, cpu-small, large"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, args, needle):
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    proc = _locseg(*args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback(tmp_path):
    proc = _locseg("--debug", "preprocess", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--spacing", "1")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
