"""GPU check: what a GPU user needs to know before training the paper's settings, as one JSON.

Three parts, each recorded on its own (a part that fails is recorded with its error and traceback, the
others still run; the JSON is rewritten after every part, so a killed run leaves what it measured):

- steps: samples/s and peak GPU memory of `locseg train`'s step (its `batch_to_device` and
  `train_step`: DiceCE, SGD Nesterov, clip 12) at the paper's widths for baseline, CoordConv and LocBAM,
  at 32^3 x 128 and 128^3 x 2, in bf16 autocast and in fp32, on random lean batches held on the device;
- data_loading: whether the data path keeps the GPU busy: LocBAM's step fed by the trainer's own loader
  (real sampler batches from a synthetic cohort, DataLoader workers, pinned memory, non-blocking
  copies) against the same step on one batch cached on the device; per setting and worker count;
- paper_run: `locseg train` for 200 iterations of the paper preset (experiments/paper-btcv-lowres-small:
  32^3 x 128, 2 volumes x 64, SGD, bf16) on that cohort, through the command line: wall time,
  patches/s, loss, the final validation.

Usage (CUDA):   python benchmarks/gpu_check.py --out bench-out/gpu_check.json     (about 5 minutes on one H100)
CPU smoke run:  python benchmarks/gpu_check.py --out g.json --cpu-smoke           (the same parts at tiny sizes)
Exit status: 0 every part ran; 1 a part failed (the JSON says which and why); 3 no CUDA (without --cpu-smoke).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
MODELS = ("baseline", "coordconv", "locbam")
NO_CUDA_EXIT = 3
PAPER_PRESET = "experiments/paper-btcv-lowres-small"
TINY_FEATURES = (4, 4, 8, 8, 16, 4)


@dataclass(frozen=True)
class Plan:
    """Sizes of one check run: the GPU's (the paper's) or the CPU smoke run's (tiny, seconds)."""

    device: str
    features: tuple[int, ...] | None  # None: the paper's widths
    settings: dict[str, tuple[int, int]]  # name -> (patch edge, batch)
    precisions: tuple[str, ...]
    warmup: int
    iterations: int
    cohort_cases: int
    cohort_synth: tuple[str, ...]  # extra `locseg synth` options
    cohort_spacing: str
    loader_iterations: int
    worker_counts: tuple[int, ...]
    run_iterations: int
    run_options: tuple[str, ...]  # extra `locseg train` options over the paper preset


def gpu_plan(iterations: int, run_iterations: int) -> Plan:
    workers = max(1, min(8, (os.cpu_count() or 2) - 2))
    return Plan("cuda", None, {"small": (32, 128), "large": (128, 2)}, ("bf16", "fp32"), 5, iterations,
                8, (), "2,1.5,1.5", 40, tuple(sorted({2, workers})), run_iterations, ())


def smoke_plan() -> Plan:
    """Every part and code path at tiny sizes, in fp32: bf16 autocast on a CPU without bf16 units takes
    seconds per tiny step, and the bf16 path is the same `train_step` call with another dtype."""
    return Plan("cpu", TINY_FEATURES, {"small": (32, 2), "large": (32, 1)}, ("fp32",), 1, 1,
                2, ("--spacing", "6,6,6"), "6,6,6", 2, (1,), 2,
                ("--features", ",".join(map(str, TINY_FEATURES)), "--locbam-reduction", "4", "--batch-size", "4",
                 "--patch-size", "32,32,32", "--threads", "1", "--no-amp"))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def lean_batch(batch: int, patch: int, classes: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A random batch in the sampler's lean form: image, per-axis location vectors (B, 3P), uint8 labels."""
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(-0.5, 0.5, 4 * patch)
    starts = torch.randint(0, 3 * patch, (batch, 3), generator=g)
    vectors = torch.cat([ramp[starts[:, a, None] + torch.arange(patch)] for a in range(3)], dim=1)
    return {"image": torch.randn(batch, 1, patch, patch, patch, generator=g).to(device),
            "location": vectors.to(device),
            "label": torch.randint(0, classes, (batch, 1, patch, patch, patch), generator=g, dtype=torch.uint8).to(device)}


class Trainer:
    """`locseg train`'s model, optimiser, loss and step for one (model, precision), outside the stage."""

    def __init__(self, model_name: str, precision: str, features: tuple[int, ...] | None, classes: int,
                 device: torch.device) -> None:
        from locseg_cli.models import PAPER_FEATURES, ModelConfig, build_model
        from locseg_cli.models.layout import resolve_memory_format
        from locseg_cli.training.config import TrainConfig
        from locseg_cli.training.trainer import make_loss, make_optimizer

        self.cfg = TrainConfig()
        torch.manual_seed(0)
        self.layout = resolve_memory_format(self.cfg.memory_format, device)
        self.model = build_model(ModelConfig(model=model_name, features=features or PAPER_FEATURES,
                                             out_channels=classes)).to(device, memory_format=self.layout).train()
        self.optimizer = make_optimizer(self.cfg, self.model.parameters())
        self.loss = make_loss()
        self.device = device
        self.amp_dtype = torch.bfloat16 if precision == "bf16" else None

    def step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The trainer's per-iteration work from a batch (host or device) to the updated weights."""
        from locseg_cli.training.trainer import batch_to_device, train_step

        image, location, label = batch_to_device(batch, self.device, self.layout, self.model.needs_location_channels)
        return train_step(self.model, self.model, self.optimizer, self.loss, image, location, label,
                          self.cfg.grad_clip, None, self.amp_dtype)


def timed_steps(trainer: Trainer, batches: Callable[[], dict[str, torch.Tensor]], warmup: int,
                iterations: int) -> dict:
    """Seconds per step over `iterations` after `warmup`, the device synchronised around the timed stretch."""
    device = trainer.device
    for _ in range(warmup):
        trainer.step(batches())
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(iterations):
        loss = trainer.step(batches())
    final = float(loss)  # waits for the device
    synchronize(device)
    seconds = time.perf_counter() - t0
    return {"iterations": iterations, "warmup": warmup, "seconds": seconds, "step_s": seconds / iterations,
            "final_loss": final, "finite_loss": final == final and abs(final) != float("inf")}


def memory_stats(device: torch.device) -> dict:
    if device.type != "cuda":
        return {}
    return {"peak_memory_allocated_gib": torch.cuda.max_memory_allocated(device) / 1024**3,
            "peak_memory_reserved_gib": torch.cuda.max_memory_reserved(device) / 1024**3}


def reset_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def guarded(record: dict, fn: Callable[[], dict]) -> bool:
    """Run one measurement into `record`; an exception becomes `error` + `traceback` there (False)."""
    try:
        record.update(fn())
        return True
    except Exception as exc:  # noqa: BLE001 -- every failure is recorded, the check goes on
        oom = isinstance(exc, torch.OutOfMemoryError)
        record["error"] = ("out of memory: " if oom else f"{type(exc).__name__}: ") + str(exc).splitlines()[0][:300] \
            if str(exc) else type(exc).__name__
        record["traceback"] = traceback.format_exc()[-3000:]
        return False


def measure_step(name: str, precision: str, patch: int, batch: int, plan: Plan, classes: int,
                 device: torch.device) -> dict:
    """One (model, precision, setting): the step on a random lean batch held on the device."""
    trainer = Trainer(name, precision, plan.features, classes, device)
    data = lean_batch(batch, patch, classes, device)
    out = timed_steps(trainer, lambda: data, plan.warmup, plan.iterations)
    out["samples_per_s"] = batch / out["step_s"]
    return {**out, **memory_stats(device)}


def steps_part(plan: Plan, device: torch.device, classes: int, log: Callable[[str], None]) -> dict:
    """Every (setting, precision, model): the step's samples/s and peak memory on a cached random batch."""
    runs, failed = [], 0
    for setting, (patch, batch) in plan.settings.items():
        for precision in plan.precisions:
            for name in MODELS:
                record = {"model": name, "setting": setting, "patch": [patch] * 3, "batch": batch,
                          "precision": precision}
                reset_memory(device)
                failed += not guarded(record, partial(measure_step, name, precision, patch, batch, plan, classes, device))
                runs.append(record)
                log(f"steps {setting:5s} {precision} {name:9s} {patch}^3 x {batch}: " + (
                    record["error"] if "error" in record else
                    f"{record['samples_per_s']:.0f} samples/s, {record['step_s'] * 1000:.0f} ms/step" +
                    (f", peak {record['peak_memory_allocated_gib']:.2f} GiB" if "peak_memory_allocated_gib" in record
                     else "")))
    for r in runs:  # each model's cost over the baseline's, same setting and precision
        base = next((b for b in runs if b["model"] == "baseline" and b["setting"] == r["setting"]
                     and b["precision"] == r["precision"] and "error" not in b), None)
        if base is not None and "error" not in r:
            r["time_ratio_to_baseline"] = r["step_s"] / base["step_s"]
    return {"runs": runs, "failed": failed}


def run_locseg(args: list[str], log_path: Path, timeout: float) -> subprocess.CompletedProcess:
    """`python -m locseg_cli ARGS` from the repository, output kept in `log_path` (and its tail on failure)."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "LOCSEG_PROGRESS": "lines"}
    proc = subprocess.run([sys.executable, "-m", "locseg_cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)
    log_path.write_text(f"$ locseg {' '.join(args)}\n{proc.stdout}\n{proc.stderr}")
    if proc.returncode != 0:
        raise RuntimeError(f"locseg {args[0]} exited {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}")
    return proc


def cohort_part(plan: Plan, work: Path, log: Callable[[str], None]) -> dict:
    """A synthetic cohort (`locseg synth`) preprocessed at the check's spacing (`locseg preprocess`)."""
    workers = str(max(1, min(8, (os.cpu_count() or 2) - 1)))
    t0 = time.perf_counter()
    run_locseg(["synth", "--out", str(work / "raw"), "--cases", str(plan.cohort_cases), "--seed", "0",
                "--montage-cases", "0", "--workers", workers, *plan.cohort_synth], work / "synth.log", 900)
    t1 = time.perf_counter()
    run_locseg(["preprocess", "--data", str(work / "raw"), "--out", str(work / "pre"), "--spacing",
                plan.cohort_spacing, "--folds", "2", "--workers", workers], work / "preprocess.log", 900)
    t2 = time.perf_counter()
    manifest = json.loads((work / "pre" / "manifest.json").read_text())
    shapes = {cid: c["meta"]["shape"] for cid, c in manifest["cases"].items()}
    log(f"cohort: {len(shapes)} cases, synth {t1 - t0:.0f} s, preprocess {t2 - t1:.0f} s")
    return {"cases": len(shapes), "spacing_zyx": plan.cohort_spacing, "shapes": shapes, "synth_s": t1 - t0,
            "preprocess_s": t2 - t1, "pre": str(work / "pre")}


def cached_batch_steps(plan: Plan, device: torch.device, pre: Path, patch: int, batch: int, made: dict) -> dict:
    """LocBAM's step on one real sampler batch cached on the device (the GPU's own pace); the sampler
    and the trained model go into `made` for the loader runs that follow."""
    from locseg_cli.io.manifest import read_manifest
    from locseg_cli.sampling import PatchBatches, PatchSampler

    manifest = read_manifest(pre, "preprocess")
    classes = max(int(v) for v in manifest.extra["labels"]) + 1  # the cohort's label values
    made["sampler"] = PatchSampler(pre, manifest, sorted(manifest.cases), (patch,) * 3, batch, seed=0,
                                   volumes_per_batch=2 if batch % 2 == 0 else 0)  # the paper: 2 volumes a batch
    c0 = time.process_time()
    host = PatchBatches(made["sampler"])[0]
    sampler_cpu_s = time.process_time() - c0
    made["trainer"] = Trainer("locbam", plan.precisions[0], plan.features, classes, device)
    on_device = {k: v.to(device) for k, v in host.items()}
    out = timed_steps(made["trainer"], lambda: on_device, plan.warmup, plan.loader_iterations)
    return {"cached_step_s": out["step_s"], "sampler_cpu_s_one_batch": sampler_cpu_s,
            "batch_bytes": sum(t.numel() * t.element_size() for t in host.values()), **memory_stats(device)}


def loader_fed_steps(plan: Plan, made: dict, workers: int, pin: bool, batch: int, cached_step_s: float) -> dict:
    """The same step fed by the trainer's loader (`workers` processes, pinned memory where CUDA is)."""
    from locseg_cli.sampling import PatchBatches

    n = plan.warmup + plan.loader_iterations
    batches = iter(PatchBatches(made["sampler"]).loader(1000, 1000 + n, workers=workers, pin_memory=pin))
    out = timed_steps(made["trainer"], lambda: next(batches), plan.warmup, plan.loader_iterations)
    busy = cached_step_s / out["step_s"]
    return {"step_s": out["step_s"], "samples_per_s": batch / out["step_s"], "gpu_busy_fraction": busy,
            "keeps_up": busy >= 0.9}


def loading_part(plan: Plan, device: torch.device, pre: Path, log: Callable[[str], None]) -> dict:
    """Per setting: LocBAM's step on one cached device batch, then fed by the trainer's loader."""
    from locseg_cli.runtime.device import pin_memory_for

    pin = pin_memory_for(device)
    settings, failed = [], 0
    for setting, (patch, batch) in plan.settings.items():
        record = {"setting": setting, "patch": [patch] * 3, "batch": batch, "model": "locbam",
                  "precision": plan.precisions[0], "pin_memory": pin, "loaders": []}
        reset_memory(device)
        made: dict = {}
        ok = guarded(record, partial(cached_batch_steps, plan, device, pre, patch, batch, made))
        settings.append(record)
        if not ok:
            failed += 1
            log(f"loading {setting}: {record['error']}")
            continue
        for workers in plan.worker_counts:
            entry = {"workers": workers}
            failed += not guarded(entry, partial(loader_fed_steps, plan, made, workers, pin, batch,
                                                 record["cached_step_s"]))
            record["loaders"].append(entry)
            log(f"loading {setting} {patch}^3 x {batch}: cached {record['cached_step_s'] * 1000:.0f} ms/step, "
                f"{workers} workers " + (entry["error"] if "error" in entry else
                                         f"{entry['step_s'] * 1000:.0f} ms/step (busy {entry['gpu_busy_fraction']:.2f})"))
    return {"settings": settings, "failed": failed}


def paper_run_part(plan: Plan, device: torch.device, pre: Path, work: Path, log: Callable[[str], None]) -> dict:
    """`locseg train` with the paper preset for `run_iterations` iterations, through the command line."""
    out = work / "run"
    workers = str(max(plan.worker_counts))
    args = ["train", "--pre", str(pre), "--out", str(out), "--model", "locbam", "--preset", PAPER_PRESET,
            "--epochs", "1", "--iterations-per-epoch", str(plan.run_iterations), "--val-every", "0",
            "--val-cases", "1", "--checkpoint-every", str(plan.run_iterations), "--log-every",
            str(max(1, min(10, plan.run_iterations))), "--workers", workers, "--device", plan.device, "--seed", "0",
            *plan.run_options]
    t0 = time.perf_counter()
    run_locseg(args, work / "train.log", 1800)
    wall = time.perf_counter() - t0
    lines = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    rates = [r["patches_per_s"] for r in lines if "patches_per_s" in r]
    losses = [r["loss"] for r in lines if "loss" in r]
    val = [r for r in lines if "val_mean_dice" in r]
    result = {"command": "locseg " + " ".join(args), "preset": PAPER_PRESET, "iterations": plan.run_iterations,
              "wall_s": wall, "patches_per_s_median": statistics.median(rates) if rates else None,
              "patches_per_s_last": rates[-1] if rates else None, "first_loss": losses[0] if losses else None,
              "last_loss": losses[-1] if losses else None,
              "final_val_mean_dice": val[-1]["val_mean_dice"] if val else None,
              "checkpoint": (out / "checkpoints" / "last.pt").is_file()}
    log(f"paper run: {plan.run_iterations} iterations in {wall:.0f} s (with start and validation), "
        f"median {result['patches_per_s_median'] or 0:.0f} patches/s, loss {result['first_loss']} -> "
        f"{result['last_loss']}, val Dice {result['final_val_mean_dice']}")
    if not result["checkpoint"]:
        raise RuntimeError("the run finished without checkpoints/last.pt")
    return result


def machine(device: torch.device) -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "device": str(device), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "command": " ".join([sys.executable, *sys.argv]),
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update({"gpu": props.name, "gpu_memory_gib": props.total_memory / 1024**3,
                     "capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
                     "cudnn": torch.backends.cudnn.version()})
    return info


def write(path: Path, result: dict) -> None:
    from locseg_cli.io.atomic import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cpu-smoke", action="store_true", help="every part at tiny sizes on CPU (a test of this script)")
    ap.add_argument("--iterations", type=int, default=20, help="timed steps per (model, setting, precision)")
    ap.add_argument("--run-iterations", type=int, default=200, help="iterations of the paper-preset training")
    ap.add_argument("--parts", default="steps,data_loading,paper_run")
    ap.add_argument("--work", type=Path, default=None, help="keep the cohort and run here (default: a temp dir)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    plan = smoke_plan() if args.cpu_smoke else gpu_plan(args.iterations, args.run_iterations)
    device = torch.device(plan.device)
    result = {"benchmark": "gpu_check", "cpu_smoke": args.cpu_smoke, "status": "running", "failed_parts": [],
              "plan": {k: v for k, v in plan.__dict__.items()}, "parts": {}}
    t_start = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - t_start:5.0f} s] {message}", flush=True)

    if device.type == "cuda" and not torch.cuda.is_available():
        result.update(status="failed", error=f"CUDA is not available (torch {torch.__version__}, built for CUDA "
                      f"{torch.version.cuda}); run on a GPU machine, or --cpu-smoke to test this script")
        write(args.out, result)
        print(f"gpu_check: {result['error']}", file=sys.stderr)
        return NO_CUDA_EXIT
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as nnU-Net: fixed shapes, the fastest kernels
    else:
        torch.set_num_threads(1)
    result["machine"] = machine(device)
    parts = [p for p in args.parts.split(",") if p]
    classes = 14  # BTCV: 13 organs and background

    def record(name: str, fn: Callable[[], dict]) -> dict:
        part = {}
        t0 = time.perf_counter()
        ok = guarded(part, fn)
        part["wall_s"] = time.perf_counter() - t0
        if not ok or part.get("failed"):
            result["failed_parts"].append(name)
            if not ok:
                log(f"{name} FAILED: {part['error']}")
        result["parts"][name] = part
        result["wall_s"] = time.perf_counter() - t_start
        write(args.out, result)  # after every part: a killed run keeps what it measured
        return part

    with tempfile.TemporaryDirectory(prefix="locseg-gpu-check-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if "steps" in parts:
            record("steps", lambda: steps_part(plan, device, classes, log))
        if {"data_loading", "paper_run"} & set(parts):
            cohort = record("cohort", lambda: cohort_part(plan, work, log))
            pre = Path(cohort["pre"]) if "error" not in cohort else None
            for name, fn in (("data_loading", lambda: loading_part(plan, device, pre, log)),
                             ("paper_run", lambda: paper_run_part(plan, device, pre, work, log))):
                if name not in parts:
                    continue
                if pre is None:
                    result["failed_parts"].append(name)
                    result["parts"][name] = {"error": "not run: the synthetic cohort could not be made"}
                    continue
                record(name, fn)
    result["status"] = "failed" if set(result["failed_parts"]) >= set(parts) else (
        "partial" if result["failed_parts"] else "ok")
    result["wall_s"] = time.perf_counter() - t_start
    write(args.out, result)
    log(f"status {result['status']}" + (f" (failed: {', '.join(result['failed_parts'])})"
                                        if result["failed_parts"] else "") + f"; wrote {args.out}")
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
