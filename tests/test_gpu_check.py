"""benchmarks/gpu_check.sh must run first time on a GPU machine: its CPU smoke mode runs every part end to
end at tiny sizes, a failing part is recorded loudly in the JSON (and the exit status), no CUDA exits 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_check  # noqa: E402 -- a script directory, not a package


def test_cpu_smoke_runs_every_part_end_to_end(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(REPO / "benchmarks" / "gpu_check.sh"), "--cpu-smoke", str(out)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["status"] == "ok" and result["failed_parts"] == [] and result["cpu_smoke"]
    parts = result["parts"]
    assert set(parts) == {"steps", "cohort", "data_loading", "paper_run"}
    runs = parts["steps"]["runs"]
    assert {(r["model"], r["setting"]) for r in runs} == {(m, s) for m in gpu_check.MODELS for s in ("small", "large")}
    assert all(r["samples_per_s"] > 0 and r["finite_loss"] and "time_ratio_to_baseline" in r for r in runs)
    for setting in parts["data_loading"]["settings"]:
        assert setting["cached_step_s"] > 0 and setting["batch_bytes"] > 0
        assert all(loader["gpu_busy_fraction"] > 0 for loader in setting["loaders"])
    run = parts["paper_run"]
    assert run["checkpoint"] and run["iterations"] == 2 and run["patches_per_s_median"] > 0
    assert "--preset experiments/paper-btcv-lowres-small" in run["command"]


def test_a_failing_measurement_is_recorded_and_fails_the_run(tmp_path, monkeypatch):
    # one model's step raises: its entry carries the error and traceback, the others still ran, exit 1
    step = gpu_check.Trainer.step

    def failing(self, batch):
        if self.model.needs_location_channels:  # CoordConv only
            raise RuntimeError("simulated kernel failure")
        return step(self, batch)

    monkeypatch.setattr(gpu_check.Trainer, "step", failing)
    monkeypatch.setattr(gpu_check, "smoke_plan", lambda: gpu_check.Plan(
        "cpu", gpu_check.TINY_FEATURES, {"small": (32, 1)}, ("fp32",), 0, 1, 2, (), "6,6,6", 1, (1,), 1, ()))
    out = tmp_path / "g.json"
    assert gpu_check.main(["--out", str(out), "--cpu-smoke", "--parts", "steps"]) == 1
    result = json.loads(out.read_text())
    assert result["status"] == "failed" and result["failed_parts"] == ["steps"]
    runs = {r["model"]: r for r in result["parts"]["steps"]["runs"]}
    assert "simulated kernel failure" in runs["coordconv"]["error"] and "Traceback" in runs["coordconv"]["traceback"]
    assert runs["baseline"]["samples_per_s"] > 0 and runs["locbam"]["samples_per_s"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_without_cuda_it_exits_3_with_a_json_saying_why(tmp_path, capsys):
    out = tmp_path / "g.json"
    assert gpu_check.main(["--out", str(out)]) == gpu_check.NO_CUDA_EXIT
    result = json.loads(out.read_text())
    assert result["status"] == "failed" and "CUDA is not available" in result["error"]
    assert "--cpu-smoke" in capsys.readouterr().err
