"""Patch sampling: batches/s of the project's sampler against the train step and against MONAI crops.

The small preset (32^3 patches, batch 128, class-balanced, with location) on a real `preprocess`
output (synthetic CT cases at the paper's low-res spacing, memory-mapped), all in one process with one
torch thread, interleaved round by round (medians of CPU seconds per call, wall seconds beside them):
- sampler: `PatchBatches(PatchSampler(...))[i]`, the exact work of one DataLoader worker per batch
  (the lean batch: image float32, location as per-axis vectors, labels uint8; its bytes are recorded
  beside the bytes the same batch took as location channels and int64 labels);
- train step: the paper's default model (baseline BasicUNet, widths 32,32,64,128,256,32) with the
  trainer's loss/optimiser (DiceCE, SGD Nesterov, clip 12). A 128-patch step takes minutes on this
  CPU, so the step is timed at two small batches and extended linearly to 128 (the smaller of the
  linear fit and the per-patch cost of the larger batch is the headline: the conservative one);
- MONAI: the paper code's dict pipeline on the same volumes loaded in memory: image with its
  coordinate channels (3 + 1 channels), `RandCropByLabelClassesd` (equal class ratios, 2 volumes x
  64 crops), stacked into batch tensors; with the class indices cached once (`ClassesToIndicesd`,
  MONAI's fastest use) and, as the public code does, recomputed per call; and, the crop work alone,
  with cached indices on the CT and labels only (no coordinate channels: what MONAI would cut for a
  batch that carries the location as vectors, those not included).
The figures are per CPU core: the trainer runs `--workers` such processes beside the step. The data
path's contenders alternate within short rounds (the sampler 5 calls, each MONAI variant 1), and the
ratios are also given as the median of per-round ratios; the train steps run in rounds of their own.

Usage: python benchmarks/bench_sampling.py --out bench-out/sampling.json [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from benchlib import LABELS, finish, interleaved, machine, medians, stderr, write_raw_dataset

PATCH = (32, 32, 32)
BATCH = 128
LOWRES = (2.0, 1.5, 1.5)


def make_dataset(workdir: Path, cases: int, shape_xyz: tuple[int, int, int]) -> Path:
    """Raw synthetic CT cases stored at the low-res spacing, run through the real `preprocess` stage."""
    from locseg_cli.preprocessing import PreprocessConfig, preprocess

    raw = write_raw_dataset(workdir / "raw", cases, shape_xyz, (LOWRES[2], LOWRES[1], LOWRES[0]), seed=3)
    preprocess(raw, workdir / "pre", PreprocessConfig(spacing=LOWRES))
    return workdir / "pre"


class TrainStep:
    """The trainer's step (DiceCE, SGD Nesterov, grad clip 12) on the paper's default model."""

    def __init__(self, out_channels: int) -> None:
        from monai.losses import DiceCELoss

        from locseg_cli.models import ModelConfig, build_model
        from locseg_cli.training.config import TrainConfig

        cfg = TrainConfig()
        torch.manual_seed(0)
        self.model = build_model(ModelConfig(model="baseline", out_channels=out_channels)).train()
        self.features = list(cfg.features)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                   nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
        self.loss = DiceCELoss(to_onehot_y=True, softmax=True, batch=True, include_background=False,
                               squared_pred=True)
        self.clip = cfg.grad_clip

    def __call__(self, batch: dict[str, torch.Tensor]) -> float:
        from locseg_cli.training.trainer import batch_to_device

        image, location, label = batch_to_device(batch, torch.device("cpu"), torch.contiguous_format,
                                                 self.model.needs_location_channels)
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(self.model(image, location).float(), label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        return float(loss.detach())


class MonaiCrops:
    """The paper code's data path: whole volumes (image + coordinate channels) in memory, cropped by
    `RandCropByLabelClassesd` (2 volumes x 64 crops per 128-patch batch)."""

    def __init__(self, pre: Path, manifest, case_ids: list[str], cached_indices: bool, seed: int = 0,
                 coordinates: bool = True) -> None:
        from monai.transforms import ClassesToIndicesd, RandCropByLabelClassesd

        from locseg_cli.location.vectors import volume_location_channels
        from locseg_cli.preprocessing import load_preprocessed_case

        self.num_classes = len(manifest.extra["labels"])
        self.volumes = []
        to_indices = ClassesToIndicesd(keys="label", num_classes=self.num_classes)
        for cid in case_ids:
            case = load_preprocessed_case(pre, manifest, cid, mmap=False)
            image = np.asarray(case.image, dtype=np.float32)[None]
            if coordinates:
                image = np.concatenate([image, volume_location_channels(case.location)])
            item = {"image": torch.from_numpy(image), "label": torch.from_numpy(case.label[None].copy())}
            if cached_indices:
                item = to_indices(item)
            self.volumes.append(item)
        self.crop = RandCropByLabelClassesd(
            keys=["image", "label"], label_key="label", spatial_size=PATCH, num_classes=self.num_classes,
            num_samples=BATCH // 2, indices_key="label_cls_indices" if cached_indices else None, warn=False)
        self.crop.set_random_state(seed)
        self.rng = np.random.default_rng(seed)

    def __call__(self) -> dict[str, torch.Tensor]:
        crops = []
        for v in self.rng.integers(len(self.volumes), size=2):
            crops.extend(self.crop(dict(self.volumes[v])))
        image = torch.stack([torch.as_tensor(c["image"]) for c in crops])
        label = torch.stack([torch.as_tensor(c["label"]) for c in crops]).long()
        return {"image": image[:, :1], "location": image[:, 1:], "label": label}


def batch_bytes(batch: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in batch.values())


def channel_batch_bytes(batch: dict[str, torch.Tensor]) -> int:
    """What the same batch took before it was lean: three float32 location channels, int64 labels."""
    image = batch["image"]
    return image.numel() * 4 + 3 * image.numel() * 4 + batch["label"].numel() * 8


def per_round_ratios(cpu: dict[str, list[float]], calls: dict[str, int], rounds: int, slow: str,
                     fast: str) -> list[float]:
    """Per round, the median CPU time of `slow` over that of `fast`: both measured within the same round, so
    load that changes between rounds (other jobs taking the memory bandwidth) hits both alike."""
    def chunk(name: str, r: int) -> list[float]:
        n = calls.get(name, 1)
        return cpu[name][r * n:(r + 1) * n]

    return [statistics.median(chunk(slow, r)) / statistics.median(chunk(fast, r)) for r in range(rounds)]


def run(workdir: Path, cases: int, shape_xyz: tuple[int, int, int], rounds: int, step_rounds: int,
        step_batches: tuple[int, int], calls: dict[str, int]) -> dict:
    from monai.data import set_track_meta

    from locseg_cli.io.manifest import read_manifest
    from locseg_cli.sampling import PatchBatches, PatchSampler

    t0 = time.perf_counter()
    pre = make_dataset(workdir, cases, shape_xyz)
    dataset_s = time.perf_counter() - t0
    manifest = read_manifest(pre, "preprocess")
    ids = sorted(manifest.cases)
    assert len(manifest.extra["labels"]) == len(LABELS)
    sampler = PatchSampler(pre, manifest, ids, PATCH, BATCH, seed=0, sampling="class_balanced")
    batches = PatchBatches(sampler)
    counter = iter(range(10**9))
    set_track_meta(False)  # MONAI without MetaTensor bookkeeping: its fastest setting
    monai_cached = MonaiCrops(pre, manifest, ids, cached_indices=True)
    monai_uncached = MonaiCrops(pre, manifest, ids, cached_indices=False)
    monai_no_coords = MonaiCrops(pre, manifest, ids, cached_indices=True, coordinates=False)
    step = TrainStep(len(LABELS))
    b1, b2 = step_batches
    fixed = batches[10**6]  # real patches for the step (the step's time does not depend on which)
    small = {k: v[:b1].contiguous() for k, v in fixed.items()}
    large = {k: v[:b2].contiguous() for k, v in fixed.items()}
    shapes = {}

    def sample():
        b = batches[next(counter)]
        shapes["sampler"] = {k: list(v.shape) for k, v in b.items()}

    def monai_c():
        shapes["monai"] = {k: list(v.shape) for k, v in monai_cached().items()}

    # the data path's contenders alternate within short rounds; the (much longer) train steps run apart
    data_tasks = {"sampler": sample, "monai_cached_indices": monai_c,
                  "monai_cached_indices_no_coordinates": monai_no_coords, "monai_per_call_indices": monai_uncached}
    step_tasks = {f"train_step_b{b1}": lambda: step(small), f"train_step_b{b2}": lambda: step(large)}
    cpu: dict[str, list[float]] = {}
    samples = interleaved(data_tasks, rounds, calls, log=lambda m: stderr(f"  data {m}"), cpu=cpu)
    samples.update(interleaved(step_tasks, step_rounds, log=lambda m: stderr(f"  step {m}"), cpu=cpu))
    med = {k: statistics.median(v) for k, v in cpu.items()}  # CPU seconds: other jobs taking the cores count less
    round_ratios = {f"sampler_over_{m}": per_round_ratios(cpu, calls, rounds, m, "sampler")
                    for m in ("monai_cached_indices", "monai_cached_indices_no_coordinates", "monai_per_call_indices")}
    lean = batches[0]
    t1, t2 = med[f"train_step_b{b1}"], med[f"train_step_b{b2}"]
    per_patch = t2 / b2
    fit = t2 + (t2 - t1) / (b2 - b1) * (BATCH - b2)
    step128 = min(fit, per_patch * BATCH)
    sampler_rate = 1 / med["sampler"]
    return {
        "dataset": {"cases": cases, "raw_shape_xyz": list(shape_xyz), "spacing_zyx": list(LOWRES),
                    "preprocessed_shapes": {c: manifest.cases[c]["meta"]["shape"] for c in ids},
                    "build_s": dataset_s, "classes": len(LABELS)},
        "patch": list(PATCH), "batch": BATCH, "batch_shapes": shapes, "model_features": step.features,
        "rounds": rounds, "step_rounds": step_rounds, "calls_per_round": calls, "cpu_s": cpu, "wall_s": samples, "median_s": med,
        "median_wall_s": medians(samples),
        "batch_bytes": {"lean": batch_bytes(lean), "as_channels_and_int64_labels": channel_batch_bytes(lean),
                        "per_key": {k: t.numel() * t.element_size() for k, t in lean.items()}},
        "train_step_128_estimate_s": {"linear_fit": fit, "per_patch_x128": per_patch * BATCH, "headline": step128},
        "batches_per_s": {"sampler": sampler_rate, "monai_cached_indices": 1 / med["monai_cached_indices"],
                          "monai_cached_indices_no_coordinates": 1 / med["monai_cached_indices_no_coordinates"],
                          "monai_per_call_indices": 1 / med["monai_per_call_indices"],
                          "train_steps": 1 / step128},
        "per_round_ratios": round_ratios,
        "median_of_per_round_ratios": {k: statistics.median(v) for k, v in round_ratios.items()},
        "ratios": {"sampler_over_train_step": step128 / med["sampler"],
                   "sampler_over_monai_cached_indices": med["monai_cached_indices"] / med["sampler"],
                   "sampler_over_monai_cached_indices_no_coordinates":
                       med["monai_cached_indices_no_coordinates"] / med["sampler"],
                   "sampler_over_monai_per_call_indices": med["monai_per_call_indices"] / med["sampler"]},
        "goals": {"sampler_over_train_step": 5.0, "sampler_over_monai_cached_indices": 10.0, "sampler_ms": 10.0,
                  "batch_mb": 25.0},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="2 smaller cases, batches 2/4 for the step, 4 rounds")
    ap.add_argument("--rounds", type=int, default=None, help="rounds of the data-path contenders (default 15)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    calls = {"sampler": 5}
    if args.quick:
        cases, shape, rounds, step_rounds, step_batches = 2, (200, 200, 120), 4, 2, (2, 4)
    else:
        cases, shape, rounds, step_rounds, step_batches = 4, (272, 272, 180), 15, 3, (4, 8)
    rounds = args.rounds or rounds
    result = {"benchmark": "sampling", "machine": machine(args.threads), "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="locseg-bench-") as tmp:
        result.update(run(Path(tmp), cases, shape, rounds, step_rounds, step_batches, calls))
    finish(args.out, result, t_start)
    med, rate, ratio = result["median_s"], result["batches_per_s"], result["ratios"]
    size = result["batch_bytes"]
    print(f"sampler (128 x 32^3, class-balanced, location): {med['sampler'] * 1000:.1f} ms CPU/batch = "
          f"{rate['sampler']:.1f} batches/s per core (goal <= 10 ms); {size['lean'] / 1e6:.1f} MB a batch "
          f"(as channels and int64 labels {size['as_channels_and_int64_labels'] / 1e6:.1f} MB; goal <= 25 MB)")
    print(f"train step, baseline at paper widths, 128 x 32^3 (from batches {step_batches}): "
          f"{result['train_step_128_estimate_s']['headline']:.1f} s -> sampler x{ratio['sampler_over_train_step']:.0f} "
          f"faster (goal >= 5)")
    per_round = result["median_of_per_round_ratios"]
    print(f"MONAI RandCropByLabelClassesd: cached indices {med['monai_cached_indices'] * 1000:.0f} ms/batch "
          f"(sampler x{ratio['sampler_over_monai_cached_indices']:.1f}, per round x"
          f"{per_round['sampler_over_monai_cached_indices']:.1f}, goal >= 10), CT and labels only "
          f"{med['monai_cached_indices_no_coordinates'] * 1000:.0f} ms/batch "
          f"(x{ratio['sampler_over_monai_cached_indices_no_coordinates']:.1f}, per round x"
          f"{per_round['sampler_over_monai_cached_indices_no_coordinates']:.1f}), per-call indices "
          f"{med['monai_per_call_indices'] * 1000:.0f} ms/batch (x{ratio['sampler_over_monai_per_call_indices']:.1f})")
    print(f"wrote {args.out} in {result['wall_s']:.0f}s")


if __name__ == "__main__":
    main()
