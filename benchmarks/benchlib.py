"""Shared pieces of the benchmarks: machine record, interleaved timing, synthetic CT cases, peak RSS.

Not a benchmark itself (`make bench` runs `bench_*.py` only). Timings on a shared machine are noisy,
so every comparison runs its contenders interleaved round by round (the order rotates) and quotes
medians and ratios measured in the same run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
GIB = 1024**3

# BTCV-like organs: (label, name, HU, centre (x, y, z) as fractions of the body box, radii in mm (x, y, z))
ORGANS = (
    (1, "spleen", 50, (0.78, 0.62, 0.62), (45, 35, 50)),
    (2, "right_kidney", 35, (0.30, 0.72, 0.45), (28, 30, 50)),
    (3, "left_kidney", 35, (0.70, 0.72, 0.47), (28, 30, 50)),
    (4, "gallbladder", 20, (0.36, 0.38, 0.58), (16, 16, 30)),
    (5, "esophagus", 45, (0.52, 0.58, 0.85), (8, 8, 60)),
    (6, "liver", 60, (0.32, 0.50, 0.66), (75, 65, 70)),
    (7, "stomach", 25, (0.64, 0.42, 0.66), (45, 35, 45)),
    (8, "aorta", 180, (0.53, 0.66, 0.55), (11, 11, 120)),
    (9, "inferior_vena_cava", 150, (0.44, 0.64, 0.55), (11, 11, 110)),
    (10, "portal_splenic_vein", 140, (0.50, 0.52, 0.57), (25, 8, 8)),
    (11, "pancreas", 40, (0.55, 0.56, 0.52), (45, 12, 14)),
    (12, "right_adrenal", 30, (0.36, 0.68, 0.62), (8, 8, 14)),
    (13, "left_adrenal", 30, (0.63, 0.68, 0.62), (8, 8, 14)),
)
LABELS = {0: "background", **{label: name for label, name, *_ in ORGANS}}


def machine(threads: int | None = None) -> dict:
    """Where and how a benchmark ran (recorded next to every figure)."""
    import torch

    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "torch_threads": torch.get_num_threads(), "requested_threads": threads,
            "load_average_at_start": list(os.getloadavg()), "command": " ".join([sys.executable, *sys.argv])}
    try:
        import monai

        info["monai"] = monai.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


def interleaved(tasks: dict[str, Callable[[], object]], rounds: int, calls: dict[str, int] | None = None,
                warmup: bool = True, log: Callable[[str], None] | None = None,
                cpu: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each task, the tasks interleaved round by round with a rotating order.

    `calls[name]` timed calls of a task per round (cheap tasks get more, so every task spans the
    same stretch of wall time and background load hits them alike). One untimed warm-up call each.
    `cpu`, if given, receives the CPU seconds of this process per call (less sensitive than wall
    time to other jobs taking the cores, for single-threaded work).
    """
    calls = calls or {}
    names = list(tasks)
    if warmup:
        for name in names:
            tasks[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            for _ in range(calls.get(name, 1)):
                c0, t0 = time.process_time(), time.perf_counter()
                tasks[name]()
                samples[name].append(time.perf_counter() - t0)
                if cpu is not None:
                    cpu.setdefault(name, []).append(time.process_time() - c0)
        if log:
            log(f"round {r + 1}/{rounds}: " + "  ".join(f"{n} {statistics.median(samples[n]):.4g}s" for n in names))
    return samples


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


def stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ct_case(shape_xyz: tuple[int, int, int], spacing_xyz: tuple[float, float, float],
            seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A CT-like int16 volume (air, body, spine, 13 BTCV-like organs, noise) and its uint8 label.

    Arrays are stored like DICOM-derived NIfTI files (x, y, z with axcodes L, P, S), so the
    project's preprocessing has to reorient them by the affine like real data.
    """
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape_xyz
    sx, sy, sz = spacing_xyz
    image = np.full(shape_xyz, -1000, dtype=np.int16)
    label = np.zeros(shape_xyz, dtype=np.uint8)
    # body: an elliptic cylinder filling ~85% x 65% of the slice
    x = (np.arange(nx) - nx / 2) / (0.42 * nx)
    y = (np.arange(ny) - ny * 0.52) / (0.32 * ny)
    body2d = x[:, None] ** 2 + y[None, :] ** 2 < 1
    image[body2d] = 30
    bx, by = np.flatnonzero(body2d.any(1)), np.flatnonzero(body2d.any(0))
    box_lo = np.array([bx[0], by[0], 0])
    box_len = np.array([bx[-1] - bx[0] + 1, by[-1] - by[0] + 1, nz])
    spacing = np.array(spacing_xyz)

    def ellipsoid(centre_frac, radii_mm):
        centre = box_lo + np.asarray(centre_frac) * box_len
        radii = np.asarray(radii_mm) / spacing
        lo = np.maximum(np.floor(centre - radii).astype(int), 0)
        hi = np.minimum(np.ceil(centre + radii).astype(int) + 1, shape_xyz)
        if np.any(hi <= lo):
            return None, None
        grids = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) < 1
        return tuple(slice(a, b) for a, b in zip(lo, hi)), inside

    spine, inside = ellipsoid((0.5, 0.86, 0.5), (18, 16, nz * sz))
    if spine is not None:
        image[spine][inside] = 450
    for value, _, hu, centre, radii in ORGANS:
        sl, inside = ellipsoid(centre, radii)
        if sl is None:
            continue
        image[sl][inside] = hu
        label[sl][inside] = value
    for k in range(nz):  # slice by slice: no float32 copy of the whole volume
        noise = rng.standard_normal((nx, ny), dtype=np.float32) * 12
        image[:, :, k] += np.where(body2d, noise, 0).astype(np.int16)
    affine = np.diag([-sx, -sy, sz, 1.0])
    affine[:3, 3] = [sx * nx / 2, sy * ny / 2, -sz * nz / 2]
    return image, label, affine


def write_raw_dataset(root: Path, cases: int, shape_xyz: tuple[int, int, int],
                      spacing_xyz: tuple[float, float, float], seed: int = 0, labels: bool = True) -> Path:
    """An nnU-Net v2 raw dataset of synthetic CT cases (compressed NIfTI like BTCV)."""
    from locseg_cli.datasets.writers import DatasetWriter

    writer = DatasetWriter(root, LABELS, layout="nnunet", name="BenchCT")
    for i in range(cases):
        image, label, affine = ct_case(shape_xyz, spacing_xyz, seed + i)
        writer.write_case(f"bench_{i:03d}", image, label if labels else None, affine)
    writer.finish()
    return root


def peak_rss(code: str, timeout: float = 900) -> dict:
    """Run `code` in a fresh Python process; its peak RSS, its wall time and its `RESULT` dict (merged in).

    The child reports its own peak RSS (VmHWM) right after its imports and at the end, so the
    figures belong to that one process and not to anything this process ran before.
    """
    # VmHWM belongs to the process's own address space; ru_maxrss would carry over the peak of the
    # process that spawned it (Linux keeps it across exec, and subprocess may vfork).
    prologue = ("import resource as _r, json as _j\n"
                "def _rss():\n"
                "    try:\n"
                "        with open('/proc/self/status') as f:\n"
                "            return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith('VmHWM:'))\n"
                "    except (OSError, StopIteration):\n"
                "        return _r.getrusage(_r.RUSAGE_SELF).ru_maxrss * 1024\n")
    epilogue = "\nprint(_j.dumps({'peak_rss_bytes': _rss(), 'result': RESULT}))\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", prologue + code + epilogue], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    record.update(record.pop("result"))
    if "rss_after_imports_bytes" in record:
        record["rss_after_imports_gib"] = record["rss_after_imports_bytes"] / GIB
    record["wall_s"] = wall
    record["peak_rss_gib"] = record["peak_rss_bytes"] / GIB
    return record


def write_result(path: Path, result: dict) -> None:
    from locseg_cli.io.atomic import write_json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)


def finish(path: Path, result: dict, start: float) -> None:
    """A benchmark's last step: its wall time since `start` (`time.perf_counter()`) recorded, the JSON
    written, and where it went said."""
    result["wall_s"] = time.perf_counter() - start
    write_result(path, result)
    stderr(f"wrote {path} in {result['wall_s']:.0f} s")
