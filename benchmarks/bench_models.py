"""Cost of location awareness: parameters, train-step time and saved activations per model.

Measures, at the paper's widths (BasicUNet 32,32,64,128,256,32; 14 outputs as on BTCV):
- parameter counts and the overhead of each model over the baseline;
- train-step time (forward, cross-entropy, backward, SGD step) of baseline, coordconv, locbam with
  the straightforward gating (naive) and with the fused recomputing one, interleaved round by
  round (the order rotates) so that load from other processes hits all variants alike; medians
  of the per-round ratios to the baseline are the headline figures;
- the LocBAM block alone (forward+backward), naive vs fused, a low-noise view of the same cost;
- bytes of tensors autograd keeps for backward (distinct storages), the activation memory.

Usage: python benchmarks/bench_models.py --out bench-out/models.json [--setups 32x2,64x1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from locseg_cli.io.atomic import write_json
from locseg_cli.models import PAPER_FEATURES, ModelConfig, build_model
from locseg_cli.models.locbam import LocBAM
from locseg_cli.models.summary import model_summaries

VARIANTS = {
    "baseline": dict(model="baseline"),
    "coordconv": dict(model="coordconv"),
    "locbam_naive": dict(model="locbam", locbam_fused=False),
    "locbam_fused": dict(model="locbam", locbam_fused=True),
}
OUT_CHANNELS = 14


def _inputs(size: int, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 1, size, size, size, generator=g)
    axis = torch.linspace(-0.25, 0.25, size)
    loc = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij")).unsqueeze(0).repeat(batch, 1, 1, 1, 1)
    label = torch.randint(0, OUT_CHANNELS, (batch, size, size, size), generator=g)
    return image, loc, label


class _Trainer:
    """One model with its optimiser (the paper's SGD), stepping on fixed inputs."""

    def __init__(self, cfg: ModelConfig) -> None:
        torch.manual_seed(0)
        self.model = build_model(cfg).train()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-2, momentum=0.99, nesterov=True,
                                   weight_decay=3e-5)

    def step(self, image: torch.Tensor, loc: torch.Tensor, label: torch.Tensor) -> float:
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.model(image, loc), label)
        loss.backward()
        self.opt.step()
        return time.perf_counter() - t0


def saved_bytes(model: torch.nn.Module, image: torch.Tensor, loc: torch.Tensor) -> int:
    """Bytes of distinct storages autograd keeps for backward during one forward."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(image, loc)
    del out
    return sum(seen.values())


def bench_setup(size: int, batch: int, repeats: int, features: tuple[int, ...]) -> dict:
    image, loc, label = _inputs(size, batch)
    trainers = {k: _Trainer(ModelConfig(features=features, out_channels=OUT_CHANNELS, **v))
                for k, v in VARIANTS.items()}
    for tr in trainers.values():  # warm-up: allocator, oneDNN primitives
        tr.step(image, loc, label)
    names = list(trainers)
    samples: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            samples[k].append(trainers[k].step(image, loc, label))
        print(f"  {size}^3 x {batch} round {r + 1}/{repeats}: "
              + "  ".join(f"{k} {samples[k][-1]:.2f}s" for k in names), file=sys.stderr, flush=True)
    base = samples["baseline"]
    median = {k: statistics.median(v) for k, v in samples.items()}
    memory = {k: saved_bytes(tr.model, image, loc) for k, tr in trainers.items()}
    return {
        "patch": [size, size, size], "batch": batch, "repeats": repeats,
        "step_s": samples,
        "median_step_s": median,
        "ratio_of_medians": {k: median[k] / median["baseline"] for k in names},
        "median_paired_ratio": {k: statistics.median(a / b for a, b in zip(v, base)) for k, v in samples.items()},
        "saved_bytes": memory,
        "saved_ratio": {k: memory[k] / memory["baseline"] for k in names},
    }


def bench_block(size: int, batch: int, channels: int, repeats: int) -> dict:
    """The LocBAM block alone at the first block's resolution and width, naive vs fused."""
    x = torch.randn(batch, channels, size, size, size)
    _, loc, _ = _inputs(size, batch)
    blocks = {}
    for fused in (False, True):
        torch.manual_seed(0)
        blocks["fused" if fused else "naive"] = LocBAM(channels, fused=fused).train()
    samples: dict[str, list[float]] = {k: [] for k in blocks}
    for r in range(repeats + 1):
        for k, blk in blocks.items():
            xi = x.clone().requires_grad_(True)
            t0 = time.perf_counter()
            y = blk(xi, loc)
            y.backward(torch.ones_like(y))
            if r:  # the first round warms up
                samples[k].append(time.perf_counter() - t0)
    return {"patch": [size] * 3, "batch": batch, "channels": channels,
            "median_s": {k: statistics.median(v) for k, v in samples.items()}, "samples_s": samples}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--setups", default="32x2,64x1", help="comma list of SIZExBATCH train-step setups")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    features = PAPER_FEATURES
    params = {r.name: {"parameters": r.parameters, "overhead": r.overhead}
              for r in model_summaries(ModelConfig(features=features, out_channels=OUT_CHANNELS))}
    setups = [tuple(int(v) for v in s.split("x")) for s in args.setups.split(",") if s]
    steps, blocks = {}, {}
    for size, batch in setups:
        steps[f"{size}x{batch}"] = bench_setup(size, batch, args.repeats, features)
        blocks[f"{size}x{batch}"] = bench_block(size, batch, features[0], 2 * args.repeats)
        blk = blocks[f"{size}x{batch}"]["median_s"]
        base = steps[f"{size}x{batch}"]["median_step_s"]["baseline"]
        blocks[f"{size}x{batch}"]["share_of_baseline_step"] = {k: v / base for k, v in blk.items()}
    result = {
        "torch": torch.__version__, "threads": args.threads, "machine": platform.processor() or platform.machine(),
        "features": list(features), "out_channels": OUT_CHANNELS,
        "parameters": params, "train_step": steps, "locbam_block": blocks,
        "wall_s": time.perf_counter() - t_start,
        "config": dataclasses.asdict(ModelConfig(features=features, out_channels=OUT_CHANNELS)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(f"parameters: locbam {100 * params['locbam']['overhead']:+.3f}%  coordconv "
          f"{100 * params['coordconv']['overhead']:+.3f}% over baseline ({params['baseline']['parameters']:,})")
    for key, s in steps.items():
        print(f"train step {key}: " + "  ".join(
            f"{k} {s['median_step_s'][k]:.2f}s (x{s['median_paired_ratio'][k]:.3f}, saved x{s['saved_ratio'][k]:.3f})"
            for k in VARIANTS))
        b = blocks[key]
        print(f"  locbam block alone: naive {b['median_s']['naive']:.3f}s "
              f"({100 * b['share_of_baseline_step']['naive']:.1f}% of a baseline step), fused "
              f"{b['median_s']['fused']:.3f}s ({100 * b['share_of_baseline_step']['fused']:.1f}%)")
    print(f"wrote {args.out} in {result['wall_s']:.0f}s")


if __name__ == "__main__":
    main()
