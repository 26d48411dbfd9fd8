"""Where `infer`'s time goes on a raw 512x512xN CT, at the low-res and the isotropic spacing.

For each spacing, a small run (an 8-wide baseline trained one iteration at that spacing, 64^3 windows)
predicts one raw CT (512 x 512 x N at 0.8 x 0.8 x 2.5 mm, stored L,P,S like DICOM-derived NIfTI) with
the whole `infer` stage, in this process, one torch thread, and each phase is timed by wrapping the
function that does it: the integrity check of the image, reading it, preprocessing (reorient, crop,
resample, normalise), the sliding windows (the network's forward passes, blending, stitching), the
restore of the arg-max to the raw grid, writing the label map; "other" is the rest (model load,
fingerprints, manifest), in wall and in CPU seconds (steadier when other jobs share the cores).
Interleaved with it, round by round: MONAI's plain `sliding_window_inference` on the same network (the
run's U-Net, on the image windows alone) over the same preprocessed volume with the same window,
overlap, window batch and blending, so the ratios say what the whole stage and its windows cost over
that plain call; and the restore alone, as `infer` does it (torch's bilinear kernel, slab by slab) and
as the numpy definition (every class resampled to the raw box with `linear_resize`), with the share of
raw voxels whose label the two give alike (they may differ only at float32 near-ties). The goal is
every phase but the windows <= 25 % of the total.

Usage: python benchmarks/bench_infer_phases.py --out bench-out/infer_phases.json [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from bench_infer import make_run
from benchlib import ct_case, finish, interleaved, machine, stderr, write_result

SPACINGS = {"lowres": (2.0, 1.5, 1.5), "isotropic": (1.0, 1.0, 1.0)}
PATCH = 64
OVERLAP = 0.5
PHASES = ("check image", "read", "preprocess", "sliding windows", "restore to raw grid", "write")


def _timed(owner, name: str, phase: str, seconds: dict[str, float], cpu: dict[str, float]) -> None:
    """Wrap `owner.name` so that its wall and CPU seconds add to `seconds[phase]` and `cpu[phase]`."""
    inner = getattr(owner, name)

    def timed(*args, **kwargs):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds[phase] += time.perf_counter() - t0
            cpu[phase] += time.process_time() - c0

    setattr(owner, name, timed)


def spacing_case(workdir: Path, spacing: tuple[float, float, float], slices: int, rounds: int,
                 warmup: bool = True) -> dict:
    from monai.inferers import sliding_window_inference

    from locseg_cli.inference import InferConfig, infer, inputs, predictor, stage
    from locseg_cli.inference.sliding_window import SIGMA_SCALE
    from locseg_cli.io.nifti import load_volume, save_volume
    from locseg_cli.preprocessing import prepare_case
    from locseg_cli.preprocessing.geometry import CaseGeometry
    from locseg_cli.preprocessing.plan import PreprocessPlan
    run = make_run(workdir, PATCH, spacing)
    data = workdir / "ct"
    data.mkdir()
    image, _, affine = ct_case((512, 512, slices), (0.8, 0.8, 2.5), seed=9)
    save_volume(data / "ct_000.nii.gz", image, affine)
    del image
    cfg = InferConfig(threads=1, overlap=OVERLAP)
    seconds: dict[str, float] = defaultdict(float)
    cpu: dict[str, float] = defaultdict(float)
    for owner, name, phase in ((stage, "check_inputs", "check image"), (inputs, "load_volume", "read"),
                               (stage, "prepare_case", "preprocess"),
                               (predictor.RunPredictor, "logits", "sliding windows"),
                               (CaseGeometry, "restore_argmax", "restore to raw grid"),
                               (stage, "save_volume", "write")):
        _timed(owner, name, phase, seconds, cpu)
    # MONAI's plain call on the same network and preprocessed volume
    pred = predictor.RunPredictor.load(run, cfg)
    plan = PreprocessPlan.of(pred.manifest, run)
    prep = prepare_case(load_volume(data / "ct_000.nii.gz"), None, plan.config, plan.spacing, plan.intensity)
    x = torch.from_numpy(prep.image)[None, None]
    pad = float(prep.image.min())
    # the restore alone, as `infer` does it and as the numpy definition (every class resampled to the raw box)
    logits = pred.logits(prep.image, prep.location, pad).numpy()
    classes = sorted(int(k) for k in pred.labels)
    rounds_done: list[dict[str, dict[str, float]]] = []

    def stage_call() -> None:
        seconds.clear()
        cpu.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        infer(run, workdir / "pred", cfg, data=data, force=True)
        total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
        rounds_done.append({"wall": {**{p: seconds.get(p, 0.0) for p in PHASES}, "total": total},
                            "cpu": {**{p: cpu.get(p, 0.0) for p in PHASES}, "total": total_cpu}})

    restores = _restores(classes, logits.__getitem__, prep.geometry.box_shape, prep.geometry.separate_z,
                         border_only=False)

    def monai_plain() -> None:
        with torch.no_grad():
            sliding_window_inference(x, (PATCH,) * 3, cfg.sw_batch_size, pred.model.unet, overlap=OVERLAP,
                                     mode="gaussian", sigma_scale=SIGMA_SCALE, cval=pad)

    cpu_samples: dict[str, list[float]] = {}
    samples = interleaved({"infer": stage_call, "monai_plain": monai_plain, **restores}, rounds,
                          warmup=warmup, log=lambda m: stderr(f"  {m}"), cpu=cpu_samples)
    timed_rounds = rounds_done[1:] if warmup else rounds_done  # the warm-up call is not timed
    record = {"spacing": list(spacing), "raw_shape": [512, 512, slices], "preprocessed_shape": list(prep.image.shape),
              "box_shape": list(prep.geometry.box_shape), "separate_z": prep.geometry.separate_z,
              "patch": [PATCH] * 3, "overlap": OVERLAP, "features": list(pred.model_cfg.features),
              "out_channels": pred.model_cfg.out_channels, "rounds": rounds, "warmup": warmup, "rounds_s": timed_rounds,
              "contenders_s": samples, "contenders_cpu_s": cpu_samples,
              "restore_label_agreement": _agreement(restores)}
    for kind, contenders in (("wall", samples), ("cpu", cpu_samples)):
        timed = [r[kind] for r in timed_rounds]
        med = {k: statistics.median(r[k] for r in timed) for k in (*PHASES, "total")}
        med["other"] = statistics.median(r["total"] - sum(r[p] for p in PHASES) for r in timed)
        monai = statistics.median(contenders["monai_plain"])
        record[kind] = {"median_s": med, "share_of_total": {k: v / med["total"] for k, v in med.items() if k != "total"},
                        "outside_windows_share": 1 - med["sliding windows"] / med["total"],
                        "ratio_total_over_monai_plain": med["total"] / monai,
                        "ratio_windows_over_monai_plain": med["sliding windows"] / monai,
                        "monai_plain_median_s": monai,
                        "restore_every_class_over_restore": (statistics.median(contenders["restore_every_class"])
                                                             / statistics.median(contenders["restore"]))}
    return record


def _restores(classes: list[int], channel, shape, separate_z: bool, border_only: bool) -> dict:
    """The restore as `infer` does it, the numpy definition, and (border_only) `argmax_resample`'s
    border-only path, each a callable giving the label box."""
    from locseg_cli.preprocessing.resample import argmax_resample, interpolate_argmax

    def numpy_path(dense: bool):
        return lambda: argmax_resample(classes, channel, shape, order=1, separate_z=separate_z, dense=dense)

    out = {"restore": lambda: interpolate_argmax(classes, channel, shape, separate_z=separate_z),
           "restore_every_class": numpy_path(True)}
    if border_only:
        out["restore_border_only"] = numpy_path(False)
    return out


def _agreement(restores: dict) -> dict:
    """Share of voxels each restore labels as the numpy definition does."""
    reference = restores["restore_every_class"]()
    return {k: float(np.mean(f() == reference)) for k, f in restores.items() if k != "restore_every_class"}


def restore_only(slices: int, rounds: int) -> dict:
    """The restore alone on the geometry of a raw 512x512xN CT at low-res: `infer`'s, the numpy definition
    (every class) and the border-only numpy path.

    Logit-like maps without a trained network: each class 6 where the CT's own label map (13 BTCV-like
    organs) has it, plus unit Gaussian noise, so class borders lie where organs meet, as in a prediction.
    """
    from locseg_cli.io.nifti import Volume
    from locseg_cli.preprocessing import PreprocessConfig, prepare_case

    image, label, affine = ct_case((512, 512, slices), (0.8, 0.8, 2.5), seed=9)
    spacing = SPACINGS["lowres"]
    prep = prepare_case(Volume(image.astype(np.float32), affine), Volume(label, affine), PreprocessConfig(spacing=spacing),
                        spacing)
    del image, label
    rng = np.random.default_rng(0)
    classes = sorted(int(v) for v in np.unique(prep.label))
    logits = np.stack([6 * (prep.label == c).astype(np.float32) + rng.standard_normal(prep.label.shape, np.float32)
                       for c in classes])
    g = prep.geometry

    restores = _restores(classes, lambda c: logits[classes.index(c)], g.box_shape, g.separate_z, border_only=True)
    cpu: dict[str, list[float]] = {}
    samples = interleaved(restores, rounds, cpu=cpu, log=lambda m: stderr(f"  {m}"))
    return {"raw_shape": [512, 512, slices], "preprocessed_shape": list(prep.label.shape), "box_shape": list(g.box_shape),
            "separate_z": g.separate_z, "classes": len(classes), "rounds": rounds, "samples_s": samples,
            "cpu_samples_s": cpu, "label_agreement": _agreement(restores),
            "cpu_ratio_over_restore": {k: statistics.median(v) / statistics.median(cpu["restore"])
                                       for k, v in cpu.items() if k != "restore"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="40 slices, 1 round: a smoke run")
    ap.add_argument("--slices", type=int, default=None, help="slices of the raw 512x512xN CT (default 300)")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3)")
    ap.add_argument("--spacings", default=",".join(SPACINGS), help="which of lowres,isotropic")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-warmup", action="store_true",
                    help="no untimed first call of each contender (halves a one-round run at the isotropic spacing)")
    ap.add_argument("--part", choices=("all", "restore"), default="all",
                    help="restore: only the restore, against the numpy paths (no run, no network)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    slices = args.slices or (40 if args.quick else 300)
    rounds = args.rounds or (1 if args.quick else 3)
    t_start = time.perf_counter()
    result = {"benchmark": "infer_phases", "machine": machine(args.threads), "quick": args.quick, "spacings": {}}
    if args.part == "restore":
        stderr(f"restore to the raw grid of a 512x512x{slices} CT at low-res, {rounds} rounds")
        rec = result["restore"] = restore_only(slices, rounds)
        ratios = ", ".join(f"{k} x{v:.1f}" for k, v in rec["cpu_ratio_over_restore"].items())
        print(f"restore {rec['preprocessed_shape']} -> box {rec['box_shape']}, {rec['classes']} classes, CPU over "
              f"infer's restore: {ratios}; labels as the definition: {rec['label_agreement']}")
    for name in (args.spacings.split(",") if args.part == "all" else []):
        stderr(f"infer phases at {name} {SPACINGS[name]} mm on a raw 512x512x{slices} CT, {rounds} rounds")
        with tempfile.TemporaryDirectory(prefix="locseg-bench-") as tmp:
            rec = spacing_case(Path(tmp), SPACINGS[name], slices, rounds, warmup=not args.no_warmup)
        result["spacings"][name] = rec
        write_result(args.out, result)
        print_case(name, rec)
    finish(args.out, result, t_start)


def print_case(name: str, rec: dict) -> None:
    print(f"{name} {rec['spacing']} mm: raw {rec['raw_shape']} -> {rec['preprocessed_shape']} "
          f"(box {rec['box_shape']}, separate z {rec['separate_z']}); restore's labels as the numpy "
          f"definition's: {rec['restore_label_agreement']}")
    for kind in ("wall", "cpu"):
        r = rec[kind]
        med, share = r["median_s"], r["share_of_total"]
        print(f"  {kind}: infer {med['total']:.1f}s = x{r['ratio_total_over_monai_plain']:.2f} MONAI plain windows "
              f"({r['monai_plain_median_s']:.1f}s); our windows x{r['ratio_windows_over_monai_plain']:.2f}; "
              f"outside the windows {100 * r['outside_windows_share']:.0f}% (goal <= 25%); numpy restore (every "
              f"class) x{r['restore_every_class_over_restore']:.1f} infer's")
        print("    " + ", ".join(f"{p} {med[p]:.2f}s ({100 * share[p]:.1f}%)" for p in (*PHASES, "other")))


if __name__ == "__main__":
    main()
