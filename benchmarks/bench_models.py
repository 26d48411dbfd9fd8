"""Cost of location awareness: parameters, train-step time and saved activations per model.

Measures, at the paper's widths (BasicUNet 32,32,64,128,256,32; 14 outputs as on BTCV):
- parameter counts and the overhead of each model over the baseline;
- train-step time (forward, cross-entropy, backward, SGD step) of baseline, coordconv, locbam with
  the straightforward gating (naive) and with the fused recomputing one, interleaved round by
  round (the order rotates) so that load from other processes hits all variants alike. Each step
  is timed in CPU time of this process (time.process_time: one thread, so the time the step ran,
  not the time it waited for a core held by another process) and in wall time; medians of the
  per-round ratios to the baseline are the headline figures, their quartiles show the spread;
- the LocBAM block alone (forward+backward), naive vs fused, in the same rotation: its share of a
  baseline step, a lower-noise view of the same cost (a step's CPU time varies by several percent
  from round to round on a shared machine, the block's far less);
- bytes of tensors autograd keeps for backward (distinct storages), the activation memory;
- peak memory of two train steps (peak RSS of a fresh process, and its rise over the RSS just
  before the first step), baseline vs fused LocBAM.

Usage: python benchmarks/bench_models.py --out bench-out/models.json [--setups 32x2,32x8,64x1] [--repeats 10]
       [--no-memory]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
from benchlib import machine, peak_rss

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

    def step(self, image: torch.Tensor, loc: torch.Tensor, label: torch.Tensor) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process) of one step."""
        t0, c0 = time.perf_counter(), time.process_time()
        self.opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.model(image, loc), label)
        loss.backward()
        self.opt.step()
        return time.perf_counter() - t0, time.process_time() - c0


def _paired(samples: dict[str, list[float]], base: str = "baseline") -> dict[str, dict[str, float]]:
    """Per variant: median and quartiles of the per-round ratios to the baseline, and the ratio of medians."""
    out = {}
    for k, v in samples.items():
        ratios = [a / b for a, b in zip(v, samples[base])]
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        out[k] = {"median": statistics.median(ratios), "q25": q[0], "q75": q[2],
                  "ratio_of_medians": statistics.median(v) / statistics.median(samples[base])}
    return out


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


class _Block:
    """The LocBAM block alone (forward+backward) at the first block's resolution and width."""

    def __init__(self, size: int, batch: int, channels: int, fused: bool) -> None:
        self.x = torch.randn(batch, channels, size, size, size)
        self.grad = torch.randn_like(self.x)
        _, self.loc, _ = _inputs(size, batch)
        torch.manual_seed(0)
        self.block = LocBAM(channels, fused=fused).train()

    def step(self) -> tuple[float, float]:
        x = self.x.clone().requires_grad_(True)
        t0, c0 = time.perf_counter(), time.process_time()
        self.block(x, self.loc).backward(self.grad)
        return time.perf_counter() - t0, time.process_time() - c0


def bench_setup(size: int, batch: int, repeats: int, features: tuple[int, ...]) -> tuple[dict, dict]:
    """Train steps of every variant and the LocBAM block alone (naive, fused), all in one rotation."""
    image, loc, label = _inputs(size, batch)
    trainers = {k: _Trainer(ModelConfig(features=features, out_channels=OUT_CHANNELS, **v))
                for k, v in VARIANTS.items()}
    blocks = {k: _Block(size, batch, features[0], fused=k == "fused") for k in ("naive", "fused")}
    tasks = {**{k: partial(tr.step, image, loc, label) for k, tr in trainers.items()},
             **{f"block_{k}": blk.step for k, blk in blocks.items()}}
    for task in tasks.values():  # warm-up: allocator, oneDNN primitives
        task()
    names = list(tasks)
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            w, c = tasks[k]()
            wall[k].append(w)
            cpu[k].append(c)
        print(f"  {size}^3 x {batch} round {r + 1}/{repeats} (CPU s): "
              + "  ".join(f"{k} {cpu[k][-1]:.3f}" for k in names), file=sys.stderr, flush=True)
    memory = {k: saved_bytes(tr.model, image, loc) for k, tr in trainers.items()}
    cpu_ratio, wall_ratio = _paired(cpu), _paired(wall)
    steps = {
        "patch": [size, size, size], "batch": batch, "repeats": repeats,
        "step_s": {k: wall[k] for k in trainers}, "step_cpu_s": {k: cpu[k] for k in trainers},
        "median_step_s": {k: statistics.median(wall[k]) for k in trainers},
        "median_step_cpu_s": {k: statistics.median(cpu[k]) for k in trainers},
        "ratio_of_medians": {k: wall_ratio[k]["ratio_of_medians"] for k in trainers},
        "median_paired_ratio": {k: wall_ratio[k]["median"] for k in trainers},
        "cpu_ratio": {k: cpu_ratio[k] for k in trainers}, "wall_ratio": {k: wall_ratio[k] for k in trainers},
        "saved_bytes": memory,
        "saved_ratio": {k: memory[k] / memory["baseline"] for k in trainers},
    }
    block = {  # share: the block's CPU time over the baseline step's, per round (same stretch of load), median
        "patch": [size] * 3, "batch": batch, "channels": features[0], "clock": "process_time",
        "median_s": {k: statistics.median(cpu[f"block_{k}"]) for k in blocks},
        "samples_s": {k: cpu[f"block_{k}"] for k in blocks},
        "share_of_baseline_step": {k: cpu_ratio[f"block_{k}"]["median"] for k in blocks},
        "share_quartiles": {k: [cpu_ratio[f"block_{k}"]["q25"], cpu_ratio[f"block_{k}"]["q75"]] for k in blocks},
    }
    return steps, block


# Peak memory of two train steps in a fresh process (imports, model and inputs first, then the steps).
STEP_PROBE = """
import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {bench_dir!r})
from locseg_cli.models import ModelConfig
from bench_models import _inputs, _Trainer, OUT_CHANNELS
after_imports = _rss()
image, loc, label = _inputs({size}, {batch})
trainer = _Trainer(ModelConfig(features={features!r}, out_channels=OUT_CHANNELS, **{variant!r}))
with open('/proc/self/status') as f:
    before_steps = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith('VmRSS:'))
for _ in range(2):
    trainer.step(image, loc, label)
RESULT = {{"rss_after_imports_bytes": after_imports, "rss_before_steps_bytes": before_steps}}
"""


def step_peak_memory(size: int, batch: int, features: tuple[int, ...]) -> dict:
    """Peak RSS of two train steps, baseline vs fused LocBAM, each in its own fresh process."""
    out = {}
    for name in ("baseline", "locbam_fused"):
        rec = peak_rss(STEP_PROBE.format(size=size, batch=batch, features=tuple(features), variant=VARIANTS[name],
                                         bench_dir=str(Path(__file__).resolve().parent)))
        rec["step_rise_bytes"] = rec["peak_rss_bytes"] - rec["rss_before_steps_bytes"]
        out[name] = rec
    base, loc = out["baseline"], out["locbam_fused"]
    out["peak_ratio"] = loc["peak_rss_bytes"] / base["peak_rss_bytes"]
    out["step_rise_ratio"] = loc["step_rise_bytes"] / base["step_rise_bytes"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--setups", default="32x2,32x8,64x1", help="comma list of SIZExBATCH train-step setups")
    ap.add_argument("--repeats", type=int, default=10, help="interleaved rounds per setup")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-RSS probes (fresh processes)")
    ap.add_argument("--quick", action="store_true", help="32³ x 2, 2 rounds, no memory probes: a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.setups, args.repeats, args.no_memory = "32x2", 2, True
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    features = PAPER_FEATURES
    params = {r.name: {"parameters": r.parameters, "overhead": r.overhead}
              for r in model_summaries(ModelConfig(features=features, out_channels=OUT_CHANNELS))}
    setups = [tuple(int(v) for v in s.split("x")) for s in args.setups.split(",") if s]
    steps, blocks, peaks = {}, {}, {}
    for size, batch in setups:
        key = f"{size}x{batch}"
        steps[key], blocks[key] = bench_setup(size, batch, args.repeats, features)
        if not args.no_memory:
            peaks[key] = step_peak_memory(size, batch, features)
    result = {
        "torch": torch.__version__, "threads": args.threads, "machine": platform.processor() or platform.machine(),
        "machine_record": machine(args.threads),
        "features": list(features), "out_channels": OUT_CHANNELS,
        "parameters": params, "train_step": steps, "locbam_block": blocks, "step_peak_memory": peaks,
        "wall_s": time.perf_counter() - t_start,
        "config": dataclasses.asdict(ModelConfig(features=features, out_channels=OUT_CHANNELS)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(f"parameters: locbam {100 * params['locbam']['overhead']:+.3f}%  coordconv "
          f"{100 * params['coordconv']['overhead']:+.3f}% over baseline ({params['baseline']['parameters']:,})")
    for key, st in steps.items():
        print(f"train step {key} (CPU time; x median paired ratio [quartiles]; wall-time ratio; saved bytes): " + "  ".join(
            f"{k} {st['median_step_cpu_s'][k]:.2f}s (x{st['cpu_ratio'][k]['median']:.3f} "
            f"[{st['cpu_ratio'][k]['q25']:.3f}, {st['cpu_ratio'][k]['q75']:.3f}], wall x{st['wall_ratio'][k]['median']:.3f}, "
            f"saved x{st['saved_ratio'][k]:.3f})" for k in VARIANTS))
        b = blocks[key]
        print(f"  locbam block alone (forward+backward, CPU time; median per-round share of a baseline step "
              f"[quartiles]): naive {b['median_s']['naive']:.3f}s ({100 * b['share_of_baseline_step']['naive']:.1f}% "
              f"[{100 * b['share_quartiles']['naive'][0]:.1f}, {100 * b['share_quartiles']['naive'][1]:.1f}]), fused "
              f"{b['median_s']['fused']:.3f}s ({100 * b['share_of_baseline_step']['fused']:.1f}% "
              f"[{100 * b['share_quartiles']['fused'][0]:.1f}, {100 * b['share_quartiles']['fused'][1]:.1f}])")
        if key in peaks:
            pk = peaks[key]
            print(f"  peak RSS of 2 steps: baseline {pk['baseline']['peak_rss_gib']:.3f} GiB, locbam "
                  f"{pk['locbam_fused']['peak_rss_gib']:.3f} GiB (x{pk['peak_ratio']:.3f}); rise over the RSS before "
                  f"the steps x{pk['step_rise_ratio']:.3f}")
    print(f"wrote {args.out} in {result['wall_s']:.0f}s")


if __name__ == "__main__":
    main()
