"""GPU check: iterations/s and peak GPU memory of the paper's settings for baseline, CoordConv and LocBAM.

Settings (paper §3; nnU-Net v2's protocol): large = 128^3 patches, batch 2; small = 32^3 patches, batch 128; both
with AMP (bf16 autocast, the trainer's default) on the paper's widths (BasicUNet 32,32,64,128,256,32,
14 outputs as on BTCV). Each (model, setting) runs the trainer's step (DiceCE, SGD Nesterov, grad
clip 12) on random tensors for a fixed number of iterations after a warm-up: it measures the
model/optimiser/AMP step, not the data path (see bench_sampling.py for that).

Usage (GPU):       python benchmarks/gpu_check.py --out bench-out/gpu_check.json
Smoke run (CPU):   python benchmarks/gpu_check.py --out g.json --device cpu --iterations 1 --warmup 0 --tiny
Exits with status 3 and one line on stderr when CUDA is requested but not available.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from pathlib import Path

import torch

MODELS = ("baseline", "coordconv", "locbam")
SETTINGS = {"large": {"patch": 128, "batch": 2}, "small": {"patch": 32, "batch": 128}}
TINY = {"large": {"patch": 64, "batch": 1}, "small": {"patch": 32, "batch": 2}}  # U-Net needs >= 32
TINY_FEATURES = (4, 4, 8, 16, 32, 4)
NO_CUDA_EXIT = 3


def location_batch(batch: int, size: int, device: torch.device) -> torch.Tensor:
    """Location channels of `batch` patches at random positions (channel a varies along axis a)."""
    step = 1.0 / 256
    starts = torch.rand(batch, 3, device=device) * 0.75 - 0.5
    ramp = torch.arange(size, device=device, dtype=torch.float32) * step
    out = torch.empty(batch, 3, size, size, size, device=device)
    out[:, 0] = (starts[:, 0, None] + ramp)[:, :, None, None]
    out[:, 1] = (starts[:, 1, None] + ramp)[:, None, :, None]
    out[:, 2] = (starts[:, 2, None] + ramp)[:, None, None, :]
    return out


def check(model_name: str, setting: str, patch: int, batch: int, iterations: int, warmup: int,
          device: torch.device, amp: bool, amp_dtype: torch.dtype, features: tuple[int, ...], out_channels: int) -> dict:
    """One (model, setting): iterations/s, patches/s, peak memory."""
    from locseg_cli.models import ModelConfig, build_model
    from locseg_cli.training.config import TrainConfig
    from locseg_cli.training.trainer import make_loss, make_optimizer, train_step

    proto = TrainConfig()
    torch.manual_seed(0)
    model = build_model(ModelConfig(model=model_name, features=features, out_channels=out_channels)).to(device).train()
    opt = make_optimizer(proto, model.parameters())  # the paper's SGD, as `locseg train` makes it
    loss_fn = make_loss()
    use_amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp and amp_dtype == torch.float16 else None
    image = torch.randn(batch, 1, patch, patch, patch, device=device)
    location = location_batch(batch, patch, device)
    label = torch.randint(0, out_channels, (batch, 1, patch, patch, patch), device=device)
    cuda = device.type == "cuda"

    def step() -> torch.Tensor:  # the training step of `locseg train` itself
        return train_step(model, model, opt, loss_fn, image, location, label, proto.grad_clip, scaler,
                          amp_dtype if use_amp else None)

    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(iterations):
        last = step()
    final_loss = float(last)  # waits for the device
    if cuda:
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - t0
    result = {"model": model_name, "setting": setting, "patch": [patch] * 3, "batch": batch, "amp": use_amp,
              "amp_dtype": str(amp_dtype).removeprefix("torch.") if use_amp else None,
              "iterations": iterations, "warmup": warmup, "seconds": elapsed,
              "iterations_per_s": iterations / elapsed, "patches_per_s": iterations * batch / elapsed,
              "final_loss": final_loss, "finite_loss": bool(torch.isfinite(torch.tensor(final_loss)))}
    if cuda:
        result["peak_memory_allocated_gib"] = torch.cuda.max_memory_allocated(device) / 1024**3
        result["peak_memory_reserved_gib"] = torch.cuda.max_memory_reserved(device) / 1024**3
    return result


def machine(device: torch.device, threads: int | None) -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "device": str(device), "torch_threads": torch.get_num_threads(), "requested_threads": threads,
            "command": " ".join([sys.executable, *sys.argv])}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update({"gpu": props.name, "gpu_memory_gib": props.total_memory / 1024**3,
                     "capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
                     "cudnn": torch.backends.cudnn.version()})
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (smoke runs of this script only)")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--amp-dtype", choices=("bf16", "fp16"), default="bf16")
    ap.add_argument("--no-amp", action="store_true")
    ap.add_argument("--out-channels", type=int, default=14)
    ap.add_argument("--tiny", action="store_true", help="tiny patches and widths (CPU smoke test of this script)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available on this machine (torch "
              f"{torch.__version__}, built for CUDA {torch.version.cuda}); run it on a GPU machine, or "
              "smoke-test the script with --device cpu --iterations 1 --warmup 0 --tiny", file=sys.stderr)
        return NO_CUDA_EXIT
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as nnU-Net: fixed shapes, pick the fastest kernels
    from locseg_cli.models import PAPER_FEATURES

    features = TINY_FEATURES if args.tiny else PAPER_FEATURES
    sizes = TINY if args.tiny else SETTINGS
    amp_dtype = torch.bfloat16 if args.amp_dtype == "bf16" else torch.float16
    runs = []
    t_start = time.perf_counter()
    for setting in [s for s in args.settings.split(",") if s]:
        if setting not in sizes:
            ap.error(f"unknown setting {setting!r} (known: {', '.join(sizes)})")
        for name in [m for m in args.models.split(",") if m]:
            cfg = sizes[setting]
            try:
                r = check(name, setting, cfg["patch"], cfg["batch"], args.iterations, args.warmup, device,
                          not args.no_amp, amp_dtype, features, args.out_channels)
            except torch.OutOfMemoryError as exc:
                r = {"model": name, "setting": setting, "patch": [cfg["patch"]] * 3, "batch": cfg["batch"],
                     "error": f"out of memory: {str(exc).splitlines()[0]}"}
            runs.append(r)
            line = (f"{setting:5s} {name:9s} {cfg['patch']}^3 x {cfg['batch']}: " +
                    (r["error"] if "error" in r else f"{r['iterations_per_s']:.2f} it/s, {r['patches_per_s']:.0f} "
                     f"patches/s" + (f", peak {r['peak_memory_allocated_gib']:.2f} GiB allocated"
                                     if "peak_memory_allocated_gib" in r else "")))
            print(line, flush=True)
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    for setting in {r["setting"] for r in runs}:  # overheads over the baseline, per setting
        base = next((r for r in runs if r["setting"] == setting and r["model"] == "baseline" and "error" not in r), None)
        for r in runs:
            if base is not None and r["setting"] == setting and "error" not in r:
                r["time_ratio_to_baseline"] = base["iterations_per_s"] / r["iterations_per_s"]
                if "peak_memory_allocated_gib" in r:
                    r["memory_ratio_to_baseline"] = r["peak_memory_allocated_gib"] / base["peak_memory_allocated_gib"]
    result = {"benchmark": "gpu_check", "machine": machine(device, args.threads), "tiny": args.tiny,
              "features": list(features), "out_channels": args.out_channels, "runs": runs,
              "wall_s": time.perf_counter() - t_start}
    from locseg_cli.io.atomic import write_json

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(f"wrote {args.out} in {result['wall_s']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
