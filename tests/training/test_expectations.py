"""Honest expectations: a long CPU run says early how long it takes and which CPU presets to use."""

from __future__ import annotations

import pytest

from locseg_cli.config import resolve_config
from locseg_cli.progress import Progress
from locseg_cli.training import TrainConfig, expectations
from locseg_cli.training.expectations import StepProbe, cpu_advice, duration

PAPER_SMALL = {"patch_size": "small"}  # 32^3 x 128 at the paper's widths (the defaults)


def test_paper_sized_cpu_run_is_told_its_time_and_the_cpu_presets():
    cfg = resolve_config(TrainConfig, "protocol/paper", PAPER_SMALL)
    line = cpu_advice(cfg, "cpu", step_seconds=30.0, remaining=cfg.total_iterations)
    assert line == ("train: on this CPU the run will take about 87 days (30 s an iteration x 250000); for a CPU run "
                    "use --preset protocol/cpu --patch-size cpu-small (presets/protocol/cpu.yaml: an 8-wide U-Net, "
                    "300 iterations)")
    large = resolve_config(TrainConfig, "protocol/paper", {"patch_size": "large"})
    assert "--patch-size cpu-large" in cpu_advice(large, "cpu", 30.0, 1000)


@pytest.mark.parametrize("device, step, remaining", [("cuda", 30.0, 250000), ("cpu", 1.0, 300), ("cpu", 3.0, 3600)])
def test_no_line_on_a_gpu_or_for_a_run_of_a_few_hours(device, step, remaining):
    assert cpu_advice(resolve_config(TrainConfig), device, step, remaining) is None


def test_durations_read_at_once():
    assert [duration(s) for s in (50, 720, 27000, 7.5e6)] == ["50 seconds", "12 minutes", "7.5 hours", "87 days"]


def test_probe_projects_from_measured_steps_once(monkeypatch):
    clock = iter([0.0, 100.0, 105.0, 110.0, 115.0])  # a slow first step (warm-up), then 5 s steps
    monkeypatch.setattr(expectations.time, "perf_counter", lambda: next(clock))
    probe = StepProbe(resolve_config(TrainConfig), "cpu", total=10_000)
    lines = [probe.step(done) for done in (1, 2, 3, 4)]
    assert lines[:2] == [None, None] and lines[3] is None
    assert lines[2].startswith("train: on this CPU the run will take about 14 hours (5 s an iteration x 9997)")


class _Recorder(Progress):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


def test_training_prints_the_line_from_its_own_step_time(tmp_path, monkeypatch):
    from synthdata import write_dataset

    from locseg_cli.preprocessing import PreprocessConfig, preprocess
    from locseg_cli.training import train

    write_dataset(tmp_path / "raw", n=2)
    preprocess(tmp_path / "raw", tmp_path / "pre", resolve_config(PreprocessConfig, None, {"folds": 2}))
    monkeypatch.setattr(expectations, "CPU_WARN_HOURS", 0.0)  # any projected time is "too long" here
    cfg = resolve_config(TrainConfig, None, {"features": "4,4,8,8,16,4", "patch_size": "16,16,32", "batch_size": 2,
                                             "epochs": 1, "iterations_per_epoch": 4, "val_every": 0, "workers": 0,
                                             "threads": 1, "fold": -1, "device": "cpu"})
    progress = _Recorder()
    train(tmp_path / "pre", tmp_path / "run", cfg, progress=progress)
    assert len(progress.lines) == 1 and progress.lines[0].startswith("train: on this CPU the run will take about")
    assert "iteration x 1); for a CPU run use --preset protocol/cpu --patch-size cpu-small" in progress.lines[0]
