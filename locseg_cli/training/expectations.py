"""Honest expectations: a CPU run with GPU-sized settings says early how long it will take, and what to use.

The paper's protocol (250 000 iterations of 128 patches at 32-wide BasicUNet) is weeks on a laptop. The
progress bar's ETA says so too, but only to those who watch it: this prints one line after the first
few iterations, from their measured time, naming the CPU presets instead.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from .config import TrainConfig

CPU_WARN_HOURS = 3.0  # a CPU run projected to take longer than this gets the one line
PROBE_STEPS = 3  # iterations timed before projecting; the first (warm-up, first batches) is left out


def cpu_advice(cfg: TrainConfig, device_type: str, step_seconds: float, remaining: int) -> str | None:
    """The one line for a long CPU run (None on a GPU or when the run is short enough)."""
    seconds = step_seconds * remaining
    if device_type != "cpu" or seconds <= CPU_WARN_HOURS * 3600:
        return None
    patch = "cpu-large" if max(cfg.patch_size) > 32 else "cpu-small"
    return (f"train: on this CPU the run will take about {duration(seconds)} ({step_seconds:.2g} s an iteration x "
            f"{remaining}); for a CPU run use --preset protocol/cpu --patch-size {patch} (presets/protocol/cpu.yaml: "
            "an 8-wide U-Net, 300 iterations)")


def duration(seconds: float) -> str:
    """'41 days', '7.5 hours', '12 minutes': a length the reader takes in at once."""
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            value = seconds / size
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{seconds:.0f} seconds"


@dataclass
class StepProbe:
    """Times the first iterations of a run and, once, projects the rest (`cpu_advice`)."""

    cfg: TrainConfig
    device_type: str
    total: int
    times: list[float] = field(default_factory=list)
    _last: float = field(default_factory=lambda: time.perf_counter())

    def step(self, done: int) -> str | None:
        """Call after each iteration; returns the advice line once, after `PROBE_STEPS` iterations."""
        if len(self.times) >= PROBE_STEPS:
            return None
        now = time.perf_counter()
        self.times.append(now - self._last)
        self._last = now
        if len(self.times) < PROBE_STEPS or done >= self.total:
            return None
        return cpu_advice(self.cfg, self.device_type, statistics.median(self.times[1:]), self.total - done)
