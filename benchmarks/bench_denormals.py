"""Denormal floats in a CPU training step: the same training run twice, flush-to-zero on and off.

Denormal floats (below ~1e-38) take a slow path on x86, and `torch.set_flush_denormal(True)` is the usual
cure. `locseg train` does not set it; this measures whether it should, on real data: a small synthetic
cohort of the project's phantom with the demo's settings (`synth` + `preprocess`,
presets/experiments/demo.yaml) and the demo's training (its widths, patch setup, optimiser, precision and
layout: `locseg train`'s own `train_step` on the trainer's sampler batches). Two copies of one model start
from the same weights and take the same batches in the same order, step by step, one with denormals
flushed and one without; CPU seconds per step (one thread) for each, and whether their weights are still
bit-identical at the end. The headline is the CPU time without flushing over the time with it.

Usage: python benchmarks/bench_denormals.py --out bench-out/denormals.json [--iterations 100] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch
from benchlib import finish, machine, stderr

SETUPS = {"64x1": "experiments/demo-large", "32x8": "experiments/demo-small"}


def make_pre(workdir: Path, cases: int) -> Path:
    """The demo's cohort, `cases` torsos, synthesised and preprocessed by the project's own stages."""
    from locseg_cli.config import resolve_config
    from locseg_cli.phantom.config import SynthConfig
    from locseg_cli.phantom.synthesize import synthesize
    from locseg_cli.preprocessing import PreprocessConfig, preprocess

    synthesize(resolve_config(SynthConfig, "experiments/demo", {"cases": cases, "seed": 0, "montage_cases": 0}),
               workdir / "raw")
    preprocess(workdir / "raw", workdir / "pre", resolve_config(PreprocessConfig, "experiments/demo", {}))
    return workdir / "pre"


def run_setup(pre: Path, preset: str, model_name: str, iterations: int) -> dict:
    """Two copies of the demo's training, stepped alternately on the same batch: flush-to-zero on, then off."""
    from locseg_cli.config import resolve_config
    from locseg_cli.io.manifest import read_manifest
    from locseg_cli.models import build_model
    from locseg_cli.models.layout import resolve_memory_format
    from locseg_cli.preprocessing.plan import PreprocessPlan
    from locseg_cli.runtime.device import autocast_dtype
    from locseg_cli.sampling.patch_sampler import PatchBatches, PatchSampler
    from locseg_cli.training.config import TrainConfig
    from locseg_cli.training.stage import fold_cases
    from locseg_cli.training.trainer import batch_to_device, lr_at, make_loss, make_optimizer, train_step

    cpu = torch.device("cpu")
    manifest = read_manifest(pre, "preprocess")
    plan = PreprocessPlan.of(manifest, pre)
    cfg = resolve_config(TrainConfig, preset, {"model": model_name})
    # the trainer's poly schedule, stepped every iteration of this shorter run
    cfg = dataclasses.replace(cfg, out_channels=max(int(v) for v in plan.labels) + 1, epochs=iterations,
                              iterations_per_epoch=1)
    train_ids, _ = fold_cases(manifest, plan, cfg.fold, pre)
    batches = PatchBatches(PatchSampler(pre, manifest, train_ids, cfg.patch_size, cfg.batch_size, seed=0,
                                        sampling=cfg.sampling))
    layout = resolve_memory_format("auto", cpu)
    torch.manual_seed(0)
    models = {"flushed": build_model(cfg).to(memory_format=layout).train()}
    models["kept"] = copy.deepcopy(models["flushed"])
    optimizers = {k: make_optimizer(cfg, m.parameters()) for k, m in models.items()}
    loss_fn, dtype = make_loss(), autocast_dtype(cfg.amp, cfg.amp_dtype, cpu)
    cpu_s: dict[str, list[float]] = {k: [] for k in models}
    try:
        for it in range(iterations):
            image, location, label = batch_to_device(batches[it], cpu, layout,
                                                     models["flushed"].needs_location_channels)
            lr = lr_at(cfg, it)
            for name in ("flushed", "kept"):
                torch.set_flush_denormal(name == "flushed")
                for g in optimizers[name].param_groups:
                    g["lr"] = lr
                torch.manual_seed(it)
                t = time.process_time()
                train_step(models[name], models[name], optimizers[name], loss_fn, image, location, label,
                           cfg.grad_clip, amp_dtype=dtype)
                cpu_s[name].append(time.process_time() - t)
            if (it + 1) % 20 == 0:
                stderr(f"  {it + 1}/{iterations}: flushed {statistics.median(cpu_s['flushed'][-20:]):.3f} s, "
                       f"kept {statistics.median(cpu_s['kept'][-20:]):.3f} s a step (median of the last 20)")
    finally:
        torch.set_flush_denormal(False)
    a, b = models["flushed"].state_dict(), models["kept"].state_dict()
    half = iterations // 2
    return {"preset": preset, "model": model_name, "iterations": iterations, "cpu_s": cpu_s,
            "total_cpu_s": {k: sum(v) for k, v in cpu_s.items()},
            "median_cpu_s_second_half": {k: statistics.median(v[half:]) for k, v in cpu_s.items()},
            "kept_over_flushed_total": sum(cpu_s["kept"]) / sum(cpu_s["flushed"]),
            "kept_over_flushed_second_half": (statistics.median(cpu_s["kept"][half:])
                                              / statistics.median(cpu_s["flushed"][half:])),
            "weights_bit_identical": all(torch.equal(a[k], b[k]) for k in a),
            "max_weight_difference": max(float((a[k].float() - b[k].float()).abs().max()) for k in a)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--setups", default="64x1,32x8", help=f"comma list of {', '.join(SETUPS)}")
    ap.add_argument("--models", default="baseline,locbam")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--cases", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="64x1 baseline, 6 iterations, 2 cases: a smoke run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    setups, models = ("64x1", "baseline") if args.quick else (args.setups, args.models)
    iterations, cases = (6, 2) if args.quick else (args.iterations, args.cases)
    start = time.perf_counter()
    result = {"machine": machine(1), "cases": cases, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="locseg-bench-") as tmp:
        pre = make_pre(Path(tmp), cases)
        for setup in setups.split(","):
            for model in models.split(","):
                stderr(f"== {setup} {model}")
                r = run_setup(pre, SETUPS[setup], model, iterations)
                result["runs"][f"{setup}/{model}"] = r
                print(f"{setup} {model:9s}: without flush-to-zero {r['kept_over_flushed_total']:.3f}x the CPU time "
                      f"with it ({r['kept_over_flushed_second_half']:.3f}x in the second half); weights "
                      f"bit-identical: {r['weights_bit_identical']}", flush=True)
    finish(args.out, result, start)


if __name__ == "__main__":
    main()
