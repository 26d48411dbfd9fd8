"""Sliding-window inference: the project's path against MONAI's plain call, and peak memory on a 512x512x300 CT.

Time, side by side, interleaved, one torch thread (medians over rounds): the project's
`predict_volume` (MONAI's `sliding_window_inference` with `with_coord=True`, each window's location
cut from the 1D location vectors, Gaussian blending, stitching on CPU, logits) against MONAI's plain
`sliding_window_inference` on the SAME network (the model's U-Net, called on the image windows
alone, under `torch.no_grad()` as in MONAI's tutorials), the same volume (a synthetic CT case
preprocessed at the low-res spacing), window, overlap, window batch and blending (Gaussian, sigma
0.125 of the window, as nnU-Net). The ratio is ours / MONAI (goal <= 1.0), in wall and in CPU
seconds (CPU time is steadier when other jobs share the cores). Then a 1x1x1 convolution stands in
for the network, which leaves only the work around it (windowing, location, blending): the
project's extra cost in ms, against MONAI's plain call under `no_grad` and under
`torch.inference_mode()` (which the project's path runs in, so its share shows).

Peak memory: the whole `infer` stage (read a raw 512x512x300 CT, preprocess it, sliding window,
per-class restore to the raw geometry, write) with a small model trained for one iteration, in a
fresh process; its own peak RSS (VmHWM), and which phase set it (the peak before and after each
phase) with the sizes of the big arrays.

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
    GIB,
    LABELS,
    ct_case,
    finish,
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
from locseg_cli.inference import inputs, stage, predictor  # noqa: F401  (imports counted in the baseline)
from locseg_cli.preprocessing.geometry import CaseGeometry
import monai.inferers  # noqa: F401
after_imports = _rss()
PHASES = []

def _status(key):
    with open('/proc/self/status') as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith(key))

def _watch(owner, name, phase):
    inner = getattr(owner, name)
    def watched(*args, **kwargs):
        before = _status('VmHWM:')
        out = inner(*args, **kwargs)
        PHASES.append({{"phase": phase, "peak_before_bytes": before, "peak_after_bytes": _status('VmHWM:'),
                        "rss_after_bytes": _status('VmRSS:')}})
        return out
    setattr(owner, name, watched)

_watch(inputs, "load_volume", "read raw image")
_watch(stage, "prepare_case", "preprocess")
_watch(predictor.RunPredictor, "logits", "sliding window (logits on CPU)")
_watch(CaseGeometry, "restore_argmax", "restore arg-max to the raw grid")
_watch(stage, "save_volume", "write prediction")
man, _ = infer(Path({run!r}), Path({out!r}), InferConfig(threads=1, overlap={overlap!r}), data=Path({data!r}))
case = next(iter(man.cases.values()))
RESULT = {{"rss_after_imports_bytes": after_imports, "raw_shape": case["meta"]["shape"],
           "preprocessed_shape": case["meta"]["geometry"]["shape"], "box_shape": case["meta"]["geometry"]["crop"],
           "phases": PHASES}}
"""


def sliding_window_contenders(model: torch.nn.Module, network: torch.nn.Module, volume: np.ndarray,
                              location: list[np.ndarray], roi: tuple[int, int, int], overlap: float, sw_batch: int,
                              pad: float, results: dict[str, torch.Tensor]) -> dict:
    """The project's path and MONAI's plain call (under no_grad and inference_mode) on `network`."""
    from monai.inferers import sliding_window_inference

    from locseg_cli.inference import predict_volume
    from locseg_cli.inference.sliding_window import SIGMA_SCALE

    x = torch.from_numpy(volume)[None, None]

    def plain() -> torch.Tensor:
        return sliding_window_inference(x, roi, sw_batch, network, overlap=overlap, mode="gaussian",
                                        sigma_scale=SIGMA_SCALE, cval=pad)[0]

    def ours():
        results["ours"] = predict_volume(model, volume, location, roi, overlap=overlap, sw_batch_size=sw_batch,
                                         pad_value=pad)

    def monai_plain():
        with torch.no_grad():
            results["monai_plain"] = plain()

    def monai_plain_inference_mode():
        with torch.inference_mode():
            results["monai_plain_inference_mode"] = plain()

    return {"ours": ours, "monai_plain": monai_plain, "monai_plain_inference_mode": monai_plain_inference_mode}


def time_windows(shape_xyz: tuple[int, int, int], roi: tuple[int, int, int], overlap: float, sw_batch: int,
                 rounds: int, overhead_rounds: int) -> dict:
    from locseg_cli.io.nifti import Volume
    from locseg_cli.models import ModelConfig, build_model
    from locseg_cli.preprocessing import PreprocessConfig, prepare_case

    image, _, affine = ct_case(shape_xyz, (0.8, 0.8, 2.5), seed=11)
    prep = prepare_case(Volume(image.astype(np.float32), affine), None, PreprocessConfig(spacing=LOWRES), LOWRES)
    volume, location = prep.image, prep.location
    torch.manual_seed(0)
    model = build_model(ModelConfig(model="baseline", out_channels=len(LABELS), features=TIMING_FEATURES)).eval()
    pad = float(volume.min())
    results: dict[str, torch.Tensor] = {}
    # the same U-Net the project's path runs, without the location wrapper
    tasks = sliding_window_contenders(model, model.unet, volume, location, roi, overlap, sw_batch, pad, results)
    del tasks["monai_plain_inference_mode"]  # timed around the network below: more rounds for the main pair
    cpu: dict[str, list[float]] = {}
    samples = interleaved(tasks, rounds, log=lambda m: stderr(f"  {m}"), cpu=cpu)
    ours, monai = results["ours"], results["monai_plain"]
    record = {
        "volume_shape": list(volume.shape), "roi": list(roi), "overlap": overlap, "sw_batch_size": sw_batch,
        "features": list(TIMING_FEATURES), "out_channels": len(LABELS), "rounds": rounds,
        **_ratios(samples, ""), **_ratios(cpu, "cpu_"),
        "max_abs_logit_difference": float((ours - monai).abs().max()),
        "same_logits_as_monai": bool(torch.allclose(ours, monai, atol=1e-5, rtol=1e-5)),
        "same_argmax_as_monai": bool(torch.equal(ours.argmax(0), monai.argmax(0))),
    }
    # the work around the network alone: a 1x1x1 convolution in place of the U-Net
    model.unet = torch.nn.Conv3d(1, len(LABELS), 1)
    tasks = sliding_window_contenders(model, model.unet, volume, location, roi, overlap, sw_batch, pad, results)
    cpu = {}
    samples = interleaved(tasks, overhead_rounds, cpu=cpu)
    record["around_network"] = {"rounds": overhead_rounds, **_differences(samples, ""), **_differences(cpu, "cpu_")}
    return record


def _ratios(samples: dict[str, list[float]], prefix: str) -> dict:
    """Medians, ours / MONAI's medians and the median of the per-round ratios (wall or CPU seconds)."""
    med = medians(samples)
    return {f"{prefix}samples_s": samples, f"{prefix}median_s": med,
            f"{prefix}ratio_ours_over_monai": med["ours"] / med["monai_plain"],
            f"{prefix}median_paired_ratio": float(np.median(np.divide(samples["ours"], samples["monai_plain"])))}


def _differences(samples: dict[str, list[float]], prefix: str) -> dict:
    """Medians and the median per-round difference ours - MONAI in ms (wall or CPU seconds)."""
    out = {f"{prefix}median_s": medians(samples)}
    for ref, suffix in (("monai_plain", ""), ("monai_plain_inference_mode", "_inference_mode")):
        diff = np.subtract(samples["ours"], samples[ref])
        out[f"{prefix}median_paired_difference{suffix}_ms"] = 1e3 * float(np.median(diff))
    return out


def make_run(workdir: Path, patch: int, spacing: tuple[float, float, float] = LOWRES) -> Path:
    """A tiny run: two small synthetic cases preprocessed at `spacing` (low-res), one training iteration."""
    from locseg_cli.preprocessing import PreprocessConfig, preprocess
    from locseg_cli.training import train
    from locseg_cli.training.config import TrainConfig

    raw = write_raw_dataset(workdir / "train_raw", 2, (128, 128, 96), (LOWRES[2], LOWRES[1], LOWRES[0]), seed=5)
    preprocess(raw, workdir / "pre", PreprocessConfig(spacing=spacing))
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
    # a generous limit: on a machine shared with training runs the probe has taken over 15 minutes
    rec = peak_rss(INFER_PROBE.format(run=str(run), out=str(workdir / "pred"), data=str(data), overlap=overlap),
                   timeout=3600)
    rec.update({"model_features": list(MEMORY_FEATURES), "patch": [patch] * 3, "overlap": overlap,
                "out_channels": len(LABELS), "tiny_run_s": run_s, "device": "cpu"})
    pre_voxels = float(np.prod(rec["preprocessed_shape"]))
    box_voxels = float(np.prod([b - a for a, b in rec["box_shape"]]))
    rec["array_gib"] = {  # the big arrays, from the shapes this run had
        "raw_image_float32": float(np.prod(rec["raw_shape"])) * 4 / GIB,
        "logits_float32_classes_x_preprocessed": len(LABELS) * pre_voxels * 4 / GIB,
        "blend_weights_float32_preprocessed": pre_voxels * 4 / GIB,
        "one_class_resampled_float32_raw_box": box_voxels * 4 / GIB,
    }
    for phase in rec["phases"]:
        phase["peak_rise_gib"] = (phase["peak_after_bytes"] - phase["peak_before_bytes"]) / GIB
        phase["peak_after_gib"] = phase["peak_after_bytes"] / GIB
        phase["rss_after_gib"] = phase["rss_after_bytes"] / GIB
    # the peak only grows: the first phase that ends at the final peak is the one that reached it
    top = max(rec["phases"], key=lambda p: p["peak_after_bytes"])
    rec["peak_set_by"] = top["phase"] if top["peak_after_bytes"] >= rec["peak_rss_bytes"] else "outside the phases"
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="smaller volume, 2 rounds, 120-slice memory case")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--memory-slices", type=int, default=None, help="slices of the raw 512x512xN CT (default 300)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--part", choices=("both", "timing", "memory"), default="both",
                    help="only the sliding-window timing or only the peak memory")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    rounds = args.rounds or (2 if args.quick else 10)
    shape = (160, 160, 48) if args.quick else (192, 192, 64)
    memory_slices = args.memory_slices or (120 if args.quick else 300)
    result = {"benchmark": "infer", "machine": machine(args.threads), "quick": args.quick}
    if args.part != "memory":
        stderr(f"sliding window, ours vs MONAI plain, {rounds} rounds")
        result["sliding_window"] = time_windows(shape, (32, 32, 32), 0.5, 4, rounds, 5 if args.quick else 20)
        write_result(args.out, result)  # kept if the memory case fails
        print_timing(result["sliding_window"], rounds)
    if args.part != "timing":
        stderr(f"peak memory of `infer` on a raw 512x512x{memory_slices} CT")
        with tempfile.TemporaryDirectory(prefix="locseg-bench-") as tmp:
            result["memory"] = peak_memory(Path(tmp), memory_slices, 64, 0.5)
        print_memory(result["memory"], memory_slices)
    finish(args.out, result, t_start)


def print_timing(sw: dict, rounds: int) -> None:
    print(f"sliding window {sw['volume_shape']} roi {sw['roi']} overlap {sw['overlap']}, medians of {rounds}; "
          f"same logits as MONAI {sw['same_logits_as_monai']} (max diff {sw['max_abs_logit_difference']:.1e}), "
          f"same arg-max {sw['same_argmax_as_monai']}")
    for prefix, what in (("", "wall"), ("cpu_", "CPU")):
        med = sw[f"{prefix}median_s"]
        print(f"  {what}: ours {med['ours']:.2f}s, MONAI plain {med['monai_plain']:.2f}s -> "
              f"x{sw[f'{prefix}ratio_ours_over_monai']:.3f} (paired x{sw[f'{prefix}median_paired_ratio']:.3f}; "
              f"goal <= 1.0)")
    around = sw["around_network"]
    for prefix, what in (("", "wall"), ("cpu_", "CPU")):
        med = around[f"{prefix}median_s"]
        print(f"  around the network (1x1x1 conv), {what}: ours {1e3 * med['ours']:.0f} ms, MONAI plain "
              f"{1e3 * med['monai_plain']:.0f} ms, paired difference "
              f"{around[f'{prefix}median_paired_difference_ms']:+.1f} ms "
              f"({around[f'{prefix}median_paired_difference_inference_mode_ms']:+.1f} ms against inference mode)")


def print_memory(mem: dict, slices: int) -> None:
    print(f"peak RSS of infer on raw 512x512x{slices}: {mem['peak_rss_gib']:.2f} GiB "
          f"(imports {mem['rss_after_imports_gib']:.2f} GiB) in {mem['wall_s']:.0f}s, set in: {mem['peak_set_by']}")
    for phase in mem["phases"]:
        print(f"  {phase['phase']}: peak {phase['peak_after_gib']:.2f} GiB (+{phase['peak_rise_gib']:.2f}), "
              f"RSS after {phase['rss_after_gib']:.2f} GiB")
    print("  arrays: " + ", ".join(f"{k} {v:.2f} GiB" for k, v in mem["array_gib"].items()))


if __name__ == "__main__":
    main()
