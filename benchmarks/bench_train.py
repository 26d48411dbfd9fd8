"""Training throughput: patches/s of `locseg train`'s step against a plain PyTorch loop.

For baseline, CoordConv and LocBAM at 32³ x 8 and 64³ x 1 (the CPU presets' two patch setups, CPU
widths 8, 8, 16, 32, 64, 8, 13 classes, LocBAM gate reduction 1 as in the demo presets):
- `locseg`: the model `locseg train` builds, in the memory layout it picks for the device
  (`models.layout.resolve_memory_format("auto")`: channels-last 3-D on CPU) and the precision it picks
  (`runtime.device.autocast_dtype`: bf16 autocast on a CPU with native bf16, float32 elsewhere), stepped
  by the trainer's own `train_step` (DiceCE, Adam, gradient clipping);
- `locseg-fp32`: the same in float32 (`--no-amp`), which shows what the layout alone gives;
- `plain`: the same network as a newcomer would write it: MONAI `BasicUNet` in the default layout
  (CoordConv: BasicUNet on the CT and the three location channels concatenated; LocBAM, which MONAI
  lacks: locseg's model in the default layout), DiceCE + Adam, zero_grad / forward / backward / step.
Contenders run interleaved round by round (benchlib.interleaved); the headline is the ratio of median
CPU seconds per step (one thread: the time the step ran, not the time it waited for a core), wall
time beside it. Also LocBAM's step over the baseline's in the same (locseg) layout.

Usage: python benchmarks/bench_train.py --out bench-out/train.json [--setups 32x8,64x1] [--rounds 8] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from benchlib import interleaved, machine, stderr, write_result

from locseg_cli.models import ModelConfig, build_model
from locseg_cli.models.layout import resolve_memory_format, to_layout
from locseg_cli.runtime.device import autocast_dtype
from locseg_cli.training.trainer import make_loss, train_step

FEATURES = (8, 8, 16, 32, 64, 8)
CLASSES = 13
MODELS = ("baseline", "coordconv", "locbam")


def _batch(size: int, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 1, size, size, size, generator=g)
    axis = torch.linspace(-0.25, 0.25, size)
    loc = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij")).unsqueeze(0).repeat(batch, 1, 1, 1, 1)
    label = torch.randint(0, CLASSES, (batch, 1, size, size, size), generator=g)
    return image, loc, label


CPU = torch.device("cpu")


def locseg_step(model_name: str, image, loc, label, amp: bool = True):
    """`locseg train`'s step: its model, its layout, its precision, its `train_step`."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(model=model_name, features=FEATURES, out_channels=CLASSES,
                                    locbam_reduction=1)).train()
    fmt = resolve_memory_format("auto", torch.device("cpu"))
    model.to(memory_format=fmt)
    img, lc = to_layout(image, fmt), to_layout(loc, fmt)
    opt, loss_fn = torch.optim.Adam(model.parameters(), lr=3e-3), make_loss()
    dtype = autocast_dtype(amp, "bf16", CPU)
    return lambda: train_step(model, model, opt, loss_fn, img, lc, label, 12.0, amp_dtype=dtype)


def plain_step(model_name: str, image, loc, label):
    """A plain loop over the same network in the default layout."""
    from monai.networks.nets import BasicUNet

    torch.manual_seed(0)
    if model_name == "locbam":
        net = build_model(ModelConfig(model="locbam", features=FEATURES, out_channels=CLASSES, locbam_reduction=1))
        forward = lambda: net(image, loc)  # noqa: E731
    else:
        inputs = torch.cat([image, loc], 1) if model_name == "coordconv" else image
        net = BasicUNet(3, inputs.shape[1], CLASSES, FEATURES)
        forward = lambda: net(inputs)  # noqa: E731
    net.train()
    opt, loss_fn = torch.optim.Adam(net.parameters(), lr=3e-3), make_loss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(forward(), label)
        loss.backward()
        opt.step()

    return step


def run_setup(size: int, batch: int, rounds: int) -> dict:
    image, loc, label = _batch(size, batch)
    tasks = {}
    for m in MODELS:
        tasks[f"{m}/locseg"] = locseg_step(m, image, loc, label)
        tasks[f"{m}/locseg-fp32"] = locseg_step(m, image, loc, label, amp=False)
        tasks[f"{m}/plain"] = plain_step(m, image, loc, label)
    cpu: dict[str, list[float]] = {}
    wall = interleaved(tasks, rounds, cpu=cpu, log=stderr)
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    med_wall = {k: statistics.median(v) for k, v in wall.items()}
    precision = str(autocast_dtype(True, "bf16", CPU) or torch.float32).removeprefix("torch.")
    out = {"patch": size, "batch": batch, "rounds": rounds, "locseg_precision": precision, "cpu_s": cpu, "wall_s": wall,
           "median_cpu_s": med_cpu, "median_wall_s": med_wall,
           "patches_per_s": {k: batch / v for k, v in med_cpu.items()}, "models": {}}
    for m in MODELS:
        out["models"][m] = {
            "speedup_over_plain_cpu": med_cpu[f"{m}/plain"] / med_cpu[f"{m}/locseg"],
            "speedup_over_plain_wall": med_wall[f"{m}/plain"] / med_wall[f"{m}/locseg"],
            "fp32_speedup_over_plain_cpu": med_cpu[f"{m}/plain"] / med_cpu[f"{m}/locseg-fp32"],
            "over_baseline_same_layout_cpu": med_cpu[f"{m}/locseg"] / med_cpu["baseline/locseg"],
            "fp32_over_baseline_same_layout_cpu": med_cpu[f"{m}/locseg-fp32"] / med_cpu["baseline/locseg-fp32"],
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--setups", default="32x8,64x1", help="comma list of SIZExBATCH")
    ap.add_argument("--rounds", type=int, default=8, help="interleaved rounds per setup")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="32³ x 1 and 2 rounds: a smoke run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    setups = "32x1" if args.quick else args.setups
    rounds = 2 if args.quick else args.rounds
    from locseg_cli.runtime.device import cpu_has_native_bf16

    result = {"machine": {**machine(args.threads), "cpu_native_bf16": cpu_has_native_bf16()}, "setups": {}}
    for setup in setups.split(","):
        size, batch = (int(v) for v in setup.split("x"))
        stderr(f"== {size}^3 x {batch}")
        r = run_setup(size, batch, rounds)
        result["setups"][setup] = r
        for m, f in r["models"].items():
            print(f"{setup} {m:9s}: locseg ({r['locseg_precision']}) {r['patches_per_s'][m + '/locseg']:.2f} patches/s, "
                  f"{f['speedup_over_plain_cpu']:.2f}x the plain loop (wall {f['speedup_over_plain_wall']:.2f}x; "
                  f"float32 {f['fp32_speedup_over_plain_cpu']:.2f}x), {f['over_baseline_same_layout_cpu']:.3f}x "
                  f"the baseline's step (float32 {f['fp32_over_baseline_same_layout_cpu']:.3f}x)", flush=True)
    write_result(args.out, result)


if __name__ == "__main__":
    main()
