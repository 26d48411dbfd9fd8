"""Sliding-window inference: the project's path against MONAI's plain call, and peak memory on a 512x512x300 CT.

Time, side by side, interleaved, one torch thread (medians over rounds): the project's
`predict_volume` (volume padded to the window, per-window location channels through `condition=`,
Gaussian blending, stitching on CPU, softmax) against MONAI's plain `sliding_window_inference` on
the SAME network (the model's U-Net, called on the image windows alone), the same volume (a
synthetic CT case preprocessed at the low-res spacing), window, overlap, window batch and blending
(Gaussian, sigma 0.125 of the window, as nnU-Net). The ratio is ours / MONAI (goal <= 1.0).

Peak memory: the whole `infer` stage (read a raw 512x512x300 CT, preprocess it, sliding window,
per-class restore to the raw geometry, write) with a small model trained for one iteration, in a
fresh process; its own peak RSS (VmHWM).

Usage: python benchmarks/bench_infer.py --out bench-out/infer.json [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from benchlib import (
    LABELS,
    ct_case,
    interleaved,
    machine,
    medians,
    peak_rss,
    stderr,
    write_raw_dataset,
    write_result,
)

LOWRES = (2.0, 1.5, 1.5)
TIMING_FEATURES = (16, 16, 32, 64, 128, 16)
MEMORY_FEATURES = (8, 8, 16, 32, 64, 8)

INFER_PROBE = """
from pathlib import Path
from locseg_cli.inference import InferConfig, infer
from locseg_cli.inference import stage, predictor  # noqa: F401  (imports counted in the baseline)
import monai.inferers  # noqa: F401
after_imports = _rss()
man, _ = infer(Path({run!r}), Path({out!r}), InferConfig(threads=1, overlap={overlap!r}), data=Path({data!r}))
case = next(iter(man.cases.values()))
RESULT = {{"rss_after_imports_bytes": after_imports, "raw_shape": case["meta"]["shape"],
           "preprocessed_shape": case["meta"]["geometry"]["shape"]}}
"""


def time_windows(shape_xyz: tuple[int, int, int], roi: tuple[int, int, int], overlap: float, sw_batch: int,
                 rounds: int) -> dict:
    from monai.inferers import sliding_window_inference

    from locseg_cli.inference import predict_volume
    from locseg_cli.io.nifti import Volume
    from locseg_cli.models import ModelConfig, build_model
    from locseg_cli.preprocessing import PreprocessConfig, prepare_case

    image, _, affine = ct_case(shape_xyz, (0.8, 0.8, 2.5), seed=11)
    prep = prepare_case(Volume(image.astype(np.float32), affine), None, PreprocessConfig(spacing=LOWRES), LOWRES)
    volume, location = prep.image, prep.location
    torch.manual_seed(0)
    model = build_model(ModelConfig(model="baseline", out_channels=len(LABELS), features=TIMING_FEATURES)).eval()
    network = model.unet  # the same U-Net the project's path runs, without the location wrapper
    x = torch.from_numpy(volume)[None, None]
    pad = float(volume.min())
    results: dict[str, torch.Tensor] = {}

    def ours():
        results["ours"] = predict_volume(model, volume, location, roi, overlap=overlap, sw_batch_size=sw_batch,
                                         pad_value=pad)

    def monai_plain():
        with torch.no_grad():
            results["monai"] = sliding_window_inference(x, roi, sw_batch, network, overlap=overlap, mode="gaussian",
                                                        sigma_scale=0.125)

    samples = interleaved({"ours": ours, "monai_plain": monai_plain}, rounds, log=lambda m: stderr(f"  {m}"))
    med = medians(samples)
    # the volume is larger than the window, so no padding: both must give the same probabilities
    same = bool(torch.allclose(results["ours"], torch.softmax(results["monai"][0], 0), atol=1e-5))
    return {
        "volume_shape": list(volume.shape), "roi": list(roi), "overlap": overlap, "sw_batch_size": sw_batch,
        "features": list(TIMING_FEATURES), "out_channels": len(LABELS), "rounds": rounds,
        "samples_s": samples, "median_s": med, "ratio_ours_over_monai": med["ours"] / med["monai_plain"],
        "median_paired_ratio": float(np.median([a / b for a, b in zip(samples["ours"], samples["monai_plain"])])),
        "same_probabilities_as_monai_softmax": same,
    }


def make_run(workdir: Path, patch: int) -> Path:
    """A tiny run: two small synthetic cases preprocessed at low-res, one training iteration."""
    from locseg_cli.preprocessing import PreprocessConfig, preprocess
    from locseg_cli.training import train
    from locseg_cli.training.config import TrainConfig

    raw = write_raw_dataset(workdir / "train_raw", 2, (128, 128, 96), (LOWRES[2], LOWRES[1], LOWRES[0]), seed=5)
    preprocess(raw, workdir / "pre", PreprocessConfig(spacing=LOWRES))
    cfg = TrainConfig(model="baseline", features=MEMORY_FEATURES, patch_size=(patch,) * 3, batch_size=2, epochs=1,
                      iterations_per_epoch=1, fold=-1, workers=0, val_every=0, threads=1, device="cpu")
    train(workdir / "pre", workdir / "run", cfg)
    return workdir / "run"


def peak_memory(workdir: Path, slices: int, patch: int, overlap: float) -> dict:
    t0 = time.perf_counter()
    run = make_run(workdir, patch)
    run_s = time.perf_counter() - t0
    data = workdir / "ct"
    data.mkdir()
    image, _, affine = ct_case((512, 512, slices), (0.8, 0.8, 2.5), seed=9)
    from locseg_cli.io.nifti import save_volume

    save_volume(data / "ct_000.nii.gz", image, affine)
    del image
    rec = peak_rss(INFER_PROBE.format(run=str(run), out=str(workdir / "pred"), data=str(data), overlap=overlap))
    rec.update({"model_features": list(MEMORY_FEATURES), "patch": [patch] * 3, "overlap": overlap,
                "out_channels": len(LABELS), "tiny_run_s": run_s, "device": "cpu"})
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="smaller volume, 2 rounds, 120-slice memory case")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--memory-slices", type=int, default=None, help="slices of the raw 512x512xN CT (default 300)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    rounds = args.rounds or (2 if args.quick else 3)
    shape = (160, 160, 48) if args.quick else (192, 192, 64)
    memory_slices = args.memory_slices or (120 if args.quick else 300)
    result = {"benchmark": "infer", "machine": machine(args.threads), "quick": args.quick}
    stderr(f"sliding window, ours vs MONAI plain, {rounds} rounds")
    result["sliding_window"] = time_windows(shape, (32, 32, 32), 0.5, 4, rounds)
    stderr(f"peak memory of `infer` on a raw 512x512x{memory_slices} CT")
    with tempfile.TemporaryDirectory(prefix="locseg-bench-") as tmp:
        result["memory"] = peak_memory(Path(tmp), memory_slices, 64, 0.5)
    result["wall_s"] = time.perf_counter() - t_start
    write_result(args.out, result)
    sw, mem = result["sliding_window"], result["memory"]
    print(f"sliding window {sw['volume_shape']} roi {sw['roi']} overlap {sw['overlap']}: ours "
          f"{sw['median_s']['ours']:.2f}s, MONAI plain {sw['median_s']['monai_plain']:.2f}s -> "
          f"x{sw['ratio_ours_over_monai']:.3f} (goal <= 1.0)")
    print(f"peak RSS of infer on raw 512x512x{memory_slices}: {mem['peak_rss_gib']:.2f} GiB "
          f"(imports {mem['rss_after_imports_gib']:.2f} GiB) in {mem['wall_s']:.0f}s")
    print(f"wrote {args.out} in {result['wall_s']:.0f}s")


if __name__ == "__main__":
    main()
