"""The benchmarks time and measure project functions by patching them by name; a rename elsewhere
must fail here, in `make test`, not an hour into `make bench` (it once did: bench_infer's memory probe
watched a reader that had moved)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def bench_infer():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_infer

        yield bench_infer
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_bench_infer_memory_probe_watches_functions_that_exist(bench_infer):
    probe = bench_infer.INFER_PROBE
    namespace: dict = {}
    exec("\n".join(ln for ln in probe.splitlines() if ln.startswith(("from ", "import "))), namespace)
    watched = re.findall(r'_watch\(([\w.]+), "(\w+)"', probe)
    assert len(watched) >= 5
    for owner, name in watched:
        assert hasattr(eval(owner, namespace), name), f"bench_infer watches {owner}.{name}, which does not exist"


def test_bench_infer_phases_times_functions_that_exist():
    source = (BENCHMARKS / "bench_infer_phases.py").read_text()
    loop = source[source.index("for owner, name, phase in"):source.index("_timed(owner, name, phase")]
    pairs = re.findall(r'\(([\w.]+), "(\w+)", "[^"]+"\)', loop)
    assert len(pairs) >= 5
    from locseg_cli.inference import inputs, predictor, stage  # noqa: F401  (the owners the benchmark patches)
    from locseg_cli.preprocessing.geometry import CaseGeometry  # noqa: F401

    for owner, name in pairs:
        assert hasattr(eval(owner), name), f"bench_infer_phases times {owner}.{name}, which does not exist"


@pytest.mark.slow
def test_make_bench_quick_runs_every_benchmark(tmp_path):
    """`make bench QUICK=1`'s loop, each benchmark with `--quick`: every script runs to its JSON."""
    import json
    import subprocess

    scripts = sorted(BENCHMARKS.glob("bench_*.py"))
    assert len(scripts) >= 9
    for script in scripts:
        out = tmp_path / f"{script.stem}.json"
        run = subprocess.run([sys.executable, str(script), "--out", str(out), "--quick"], cwd=BENCHMARKS.parent,
                             capture_output=True, text=True, timeout=1200)
        assert run.returncode == 0, f"{script.name}: {run.stderr[-2000:]}"
        assert json.loads(out.read_text()), script.name
