"""Preprocessing: time per case against MONAI `Spacingd` at equal order, and peak memory on a 512x512x300 CT.

Side by side, interleaved, in one process with one torch thread (medians over rounds):
- resample: the project's `resample_image(order=3)` against MONAI `Spacing(mode=3)` on the same
  canonical float32 volume, to the same spacing (the interpolation alone);
- case: `prepare_case` (reorient, body crop, order-3 image, per-class order-1 labels, window,
  location vectors) against the paper code's MONAI chain (Orientationd, Spacingd with image order 3
  and nearest labels, ScaleIntensityRanged, CropForegroundd) on the same in-memory image and label.
The test case is 512x512xN at (0.8, 0.8, 2.0) mm (x, y, z): anisotropy 2.5 < 3, so the project
also interpolates order 3 in 3D (no separate z) and the orders really are equal.

Peak memory: the `preprocess` stage on one raw 512x512x300 CT (0.8, 0.8, 2.5 mm, compressed NIfTI,
13 organ labels) at the paper's low-res spacing, in a fresh process; its own peak RSS (VmHWM).

Usage: python benchmarks/bench_preprocess.py --out bench-out/preprocess.json [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from benchlib import ct_case, finish, interleaved, machine, medians, peak_rss, stderr, write_raw_dataset

LOWRES = (2.0, 1.5, 1.5)  # z, y, x mm: the paper's low-res spacing
MEMORY_LIMIT_GIB = 6.0

MEMORY_PROBE = """
import sys, numpy as np
from pathlib import Path
from locseg_cli.preprocessing import PreprocessConfig, preprocess
from locseg_cli.preprocessing import pipeline  # noqa: F401  (imports counted in the baseline)
import locseg_cli.datasets.integrity  # noqa: F401
after_imports = _rss()
cfg = PreprocessConfig(spacing={spacing!r}, workers=1)
man, _ = preprocess(Path({data!r}), Path({out!r}), cfg)
case = next(iter(man.cases.values()))
RESULT = {{"rss_after_imports_bytes": after_imports, "shape": case["meta"]["shape"],
           "raw_shape": case["meta"]["geometry"]["raw_shape"], "separate_z": case["meta"]["geometry"]["separate_z"]}}
"""


def time_per_case(slices: int, rounds: int) -> dict:
    from monai.data import MetaTensor
    from monai.transforms import (
        Compose,
        CropForegroundd,
        Orientationd,
        ScaleIntensityRanged,
        Spacing,
        Spacingd,
    )

    from locseg_cli.io.nifti import Volume, canonical_orientation, voxel_sizes
    from locseg_cli.preprocessing import PreprocessConfig, prepare_case
    from locseg_cli.preprocessing.resample import resample_image, target_shape

    spacing_xyz = (0.8, 0.8, 2.0)
    image, label, affine = ct_case((512, 512, slices), spacing_xyz, seed=1)
    image_f = image.astype(np.float32)
    label_f = label.astype(np.float32)  # as the stage reads labels
    cfg = PreprocessConfig(spacing=LOWRES)
    orient, can_affine = canonical_orientation(affine, image.shape)
    canonical = orient.to_canonical(image_f)
    new_shape = target_shape(canonical.shape, voxel_sizes(can_affine), LOWRES)
    can_meta = MetaTensor(torch.from_numpy(canonical)[None], affine=torch.from_numpy(can_affine))
    monai_spacing = Spacing(pixdim=LOWRES, mode=3, padding_mode="border", dtype=np.float32)
    lo, hi = cfg.window
    monai_chain = Compose([
        Orientationd(keys=["image", "label"], axcodes="SAR"),
        Spacingd(keys=["image", "label"], pixdim=LOWRES, mode=(3, "nearest"), padding_mode="border",
                 dtype=np.float32),
        ScaleIntensityRanged(keys=["image"], a_min=lo, a_max=hi, b_min=0.0, b_max=1.0, clip=True),
        CropForegroundd(keys=["image", "label"], source_key="image", select_fn=lambda x: x > 0, margin=2,
                        allow_smaller=True),  # keep the box inside the image, as body_box does
    ])
    aff_t = torch.from_numpy(affine)
    outputs: dict[str, tuple] = {}

    def ours_resample():
        outputs["ours_resample"] = resample_image(canonical, new_shape, order=3).shape

    def monai_resample():
        outputs["monai_resample"] = tuple(monai_spacing(can_meta).shape[1:])

    def ours_case():
        prep = prepare_case(Volume(image_f, affine), Volume(label_f, affine), cfg, LOWRES)
        outputs["ours_case"] = prep.image.shape

    def monai_case():
        d = monai_chain({"image": MetaTensor(torch.from_numpy(image_f)[None], affine=aff_t),
                         "label": MetaTensor(torch.from_numpy(label_f)[None], affine=aff_t)})
        outputs["monai_case"] = tuple(d["image"].shape[1:])

    tasks = {"ours_resample": ours_resample, "monai_resample": monai_resample,
             "ours_case": ours_case, "monai_case": monai_case}
    samples = interleaved(tasks, rounds, log=lambda m: stderr(f"  per case: {m}"))
    med = medians(samples)
    return {
        "raw_shape_xyz": list(image.shape), "raw_spacing_xyz": list(spacing_xyz), "target_spacing_zyx": list(LOWRES),
        "output_shapes": {k: list(v) for k, v in outputs.items()},
        "rounds": rounds, "samples_s": samples, "median_s": med,
        "ratio_resample_ours_over_monai": med["ours_resample"] / med["monai_resample"],
        "ratio_case_ours_over_monai": med["ours_case"] / med["monai_case"],
        "note": "ours_case includes the label (per-class order-1 one-hot, arg-max) and crops to the body before "
                "resampling; monai_case resamples the label nearest-neighbour and crops after resampling",
    }


def peak_memory(workdir: Path, slices: int) -> dict:
    data = workdir / "raw_ct"
    t0 = time.perf_counter()
    write_raw_dataset(data, 1, (512, 512, slices), (0.8, 0.8, 2.5), seed=7)
    written = time.perf_counter() - t0
    rec = peak_rss(MEMORY_PROBE.format(spacing=LOWRES, data=str(data), out=str(workdir / "pre")))
    rec["raw_write_s"] = written
    rec["limit_gib"] = MEMORY_LIMIT_GIB
    rec["under_limit"] = rec["peak_rss_gib"] < MEMORY_LIMIT_GIB
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="smaller case, fewer rounds, 120-slice memory case")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--slices", type=int, default=None, help="slices of the timed 512x512xN case")
    ap.add_argument("--memory-slices", type=int, default=None, help="slices of the memory case (default 300)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)  # MONAI's notice on Orientationd defaults
    rounds = args.rounds or (2 if args.quick else 3)
    slices = args.slices or (24 if args.quick else 64)
    memory_slices = args.memory_slices or (120 if args.quick else 300)
    t_start = time.perf_counter()
    result = {"benchmark": "preprocess", "machine": machine(args.threads), "quick": args.quick}
    stderr(f"per-case time, 512x512x{slices}, {rounds} rounds")
    result["per_case"] = time_per_case(slices, rounds)
    stderr(f"peak memory of `preprocess` on a 512x512x{memory_slices} CT")
    with tempfile.TemporaryDirectory(prefix="locseg-bench-") as tmp:
        result["memory"] = peak_memory(Path(tmp), memory_slices)
    finish(args.out, result, t_start)
    pc, mem = result["per_case"], result["memory"]
    print(f"resample order 3 (512x512x{slices} -> {pc['output_shapes']['ours_resample']}): ours "
          f"{pc['median_s']['ours_resample']:.2f}s, MONAI Spacing {pc['median_s']['monai_resample']:.2f}s "
          f"-> x{pc['ratio_resample_ours_over_monai']:.2f}")
    print(f"whole case (image+label): ours {pc['median_s']['ours_case']:.2f}s, MONAI chain "
          f"{pc['median_s']['monai_case']:.2f}s -> x{pc['ratio_case_ours_over_monai']:.2f}")
    print(f"peak RSS preprocessing 512x512x{memory_slices}: {mem['peak_rss_gib']:.2f} GiB "
          f"(imports {mem['rss_after_imports_gib']:.2f} GiB; limit {MEMORY_LIMIT_GIB} GiB) in {mem['wall_s']:.0f}s")
    print(f"wrote {args.out} in {result['wall_s']:.0f}s")


if __name__ == "__main__":
    main()
