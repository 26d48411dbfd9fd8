"""The `preprocess` stage and `prepare_case`, the single raw -> network-space transformation."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import config_dict
from ..datasets import CaseRef, Dataset, open_dataset
from ..errors import LocsegError
from ..io.atomic import write_json
from ..io.bodypos import bodypos_path, read_bodypos
from ..io.manifest import (
    Manifest,
    StageWriter,
    file_fingerprint,
    fingerprint,
    folder_fingerprint,
    read_manifest,
)
from ..io.nifti import Volume, canonical_orientation, load_volume, voxel_sizes
from ..io.space import ensure_free_space
from ..io.stage_loop import CaseResult, pending_cases, run_cases
from ..location import location_vectors
from ..location.vectors import axial_from_scores
from ..progress import NullProgress, Progress
from .config import PreprocessConfig
from .geometry import CaseGeometry, body_box
from .plan import PreprocessPlan
from .resample import needs_separate_z, resample_image, resample_labels, target_shape
from .splits import kfold_splits
from .store import save_preprocessed_case

# Patch setups of the paper and of the CPU presets, for the patch-to-volume coverage table.
PATCH_SETUPS = {"small": (32, 32, 32), "large": (128, 128, 128), "median-large": (48, 192, 192),
                "cpu-small": (32, 32, 32), "cpu-large": (64, 64, 64)}

AxialSource = Callable[[CaseGeometry], np.ndarray]  # preprocessed geometry -> axial location vector


@dataclass
class PreparedCase:
    image: np.ndarray  # float32 (z, y, x), normalised
    label: np.ndarray | None  # uint8 (z, y, x)
    geometry: CaseGeometry
    location: list[np.ndarray]  # three per-axis vectors


def normalise(image: np.ndarray, cfg: PreprocessConfig, intensity: dict | None = None) -> np.ndarray:
    """Fixed HU window to [0, 1] (the paper's code) or nnU-Net's CT z-score with percentile clipping."""
    if cfg.normalization == "window":
        lo, hi = cfg.window
        return ((np.clip(image, lo, hi) - lo) / (hi - lo)).astype(np.float32)
    if not intensity:
        raise LocsegError("z-score normalisation needs the dataset's intensity fingerprint")
    clipped = np.clip(image, intensity["percentile_00_5"], intensity["percentile_99_5"])
    return ((clipped - intensity["mean"]) / max(intensity["std"], 1e-8)).astype(np.float32)


def prepare_case(image: Volume, label: Volume | None, cfg: PreprocessConfig, spacing: tuple[float, float, float],
                 intensity: dict | None = None, axial: AxialSource | None = None) -> PreparedCase:
    """Raw image (+label) -> canonical, body-cropped, resampled, normalised, with location vectors."""
    orient, can_affine = canonical_orientation(image.affine, image.array.shape)
    img = orient.to_canonical(image.array.astype(np.float32, copy=False))
    lab = orient.to_canonical(label.array) if label is not None else None
    raw_spacing = voxel_sizes(can_affine)
    crop = body_box(img, cfg.body_threshold) if cfg.crop_body else tuple((0, n) for n in img.shape)
    sl = tuple(slice(a, b) for a, b in crop)
    box_img = img[sl]
    shape = target_shape(box_img.shape, raw_spacing, spacing)
    sep_z = needs_separate_z(raw_spacing, spacing, cfg.anisotropy_threshold)
    geometry = CaseGeometry(
        raw_shape=tuple(int(n) for n in image.array.shape[:3]),
        raw_affine=tuple(tuple(float(x) for x in row) for row in image.affine),
        orientation=tuple(tuple(float(x) for x in row) for row in orient.transform),
        canonical_shape=tuple(int(n) for n in img.shape), crop=crop, raw_spacing=raw_spacing,
        spacing=tuple(float(s) for s in spacing), shape=shape, separate_z=sep_z)
    out_img = normalise(resample_image(box_img, shape, order=3, separate_z=sep_z), cfg, intensity)
    out_lab = None
    if lab is not None:
        out_lab = resample_labels(np.rint(lab[sl]).astype(np.int16), shape, separate_z=sep_z).astype(np.uint8)
    ax = axial(geometry) if axial is not None else None
    return PreparedCase(out_img, out_lab, geometry, location_vectors(shape, axial=ax))


# ------------------------------------------------------------------------------------------------
# the stage
# ------------------------------------------------------------------------------------------------

def axial_source(cfg: PreprocessConfig, data: Path, bpr: Path | None, case_id: str) -> AxialSource | None:
    """The axial location of a case for `cfg.location`, as a function of its preprocessed geometry."""
    if cfg.location == "volume":
        return None
    if cfg.location == "truth":
        rec = read_bodypos(data, case_id)
        if rec is None:
            raise LocsegError("--location truth needs the synthetic cohort's bodypos/<case>.json",
                              bodypos_path(data, case_id))
        return lambda g: axial_from_scores(np.asarray(rec["z_world_mm"]), np.asarray(rec["scores"]),
                                           g.axial_world_mm())
    from .. import bpr as bpr_mod

    record = bpr_mod.load_scores(bpr, case_id)
    return lambda g: bpr_mod.axial_location(record, g.axial_world_mm())


def _bpr_scoring(cfg: PreprocessConfig, bpr: Path | None) -> dict | None:
    """The regressor and options behind a `bpr score` output (it records them), for BPR-location runs."""
    if cfg.location != "bpr" or bpr is None:
        return None
    man = read_manifest(bpr, "bpr")
    model = (man.extra or {}).get("model")
    return {"model": str(model), "config": dict(man.config)} if model else None


def _case_inputs(case: CaseRef, cfg: PreprocessConfig, data: Path, bpr: Path | None) -> list:
    fp = [case.case_id, file_fingerprint(case.image), file_fingerprint(case.label) if case.label else None]
    if cfg.location == "truth":
        fp.append(file_fingerprint(bodypos_path(data, case.case_id)))
    elif cfg.location == "bpr":
        fp.append(file_fingerprint(Path(bpr) / f"{case.case_id}.json"))
    return fp


def _sample_class_locations(label: np.ndarray, n: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
    out = {}
    for v in np.unique(label):
        idx = np.flatnonzero(label.ravel() == v)
        if len(idx) > n:
            idx = rng.choice(idx, n, replace=False)
            idx.sort()
        out[int(v)] = np.stack(np.unravel_index(idx, label.shape), axis=1).astype(np.int32)
    return out


def load_label_subset(path: Path, keep: list[int] | None) -> Volume:
    """A raw label map as float32, the classes outside `keep` set to background (None keeps every class):
    how preprocess reads training labels, and how shift-eval reads a test cohort's."""
    label = load_volume(path, dtype=np.float32)
    if keep is not None:
        label.array = np.where(np.isin(label.array, keep), label.array, 0).astype(np.float32)
    return label


def _process_case(case_id: str, job: dict) -> CaseResult:
    """Worker: one case from raw files to the preprocessed files (written atomically)."""
    cfg: PreprocessConfig = job["cfg"]
    case: CaseRef = job["case"]
    out = Path(job["out"])
    image = load_volume(case.image)
    label = load_label_subset(case.label, job.get("keep")) if case.label else None
    prep = prepare_case(image, label, cfg, tuple(job["spacing"]), job["intensity"],
                        axial_source(cfg, Path(job["data"]), job["bpr"], case.case_id))
    cid = case.case_id
    locs = None
    if prep.label is not None:
        rng = np.random.default_rng([job["seed"], int(fingerprint(cid), 16) % (2**31)])
        locs = _sample_class_locations(prep.label, cfg.class_samples, rng)
    files = save_preprocessed_case(out, cid, prep.image, prep.label, prep.location, locs,
                                   prep.geometry.preprocessed_affine())
    meta = {"shape": list(prep.image.shape), "spacing": list(prep.geometry.spacing),
            "geometry": prep.geometry.to_meta(), "labelled": prep.label is not None,
            "axial_location_range": [float(prep.location[0][0]), float(prep.location[0][-1])],
            "pad_value": float(prep.image.min())}
    if prep.label is not None:
        counts = np.bincount(prep.label.ravel(), minlength=1)
        meta["class_voxels"] = {str(i): int(c) for i, c in enumerate(counts) if c}
    return CaseResult(files, meta)


def _raw_spacing(case: CaseRef) -> tuple[float, float, float]:
    from ..io.nifti import load_header

    img = load_header(case.image)
    orient, aff = canonical_orientation(img.affine, img.shape)
    return voxel_sizes(aff)


def _estimated_bytes(cases: list[CaseRef], cfg: PreprocessConfig) -> float:
    """Upper bound of the output size from the headers: float32 image + uint8 label per resampled voxel."""
    from ..io.nifti import load_header

    raw = [(np.prod(load_header(c.image).shape[:3]), np.asarray(_raw_spacing(c)), c.label is not None) for c in cases]
    target = np.asarray(cfg.spacing, dtype=np.float64)
    if cfg.spacing_mode == "dataset-median":
        target = np.median([sp for _, sp, _ in raw], axis=0)
    return float(sum(n * np.prod(sp / target) * (4 + labelled) for n, sp, labelled in raw))


def _intensity_fingerprint(cases: list[CaseRef], progress: Progress, seed: int) -> dict:
    """nnU-Net's CT fingerprint: foreground intensities' percentiles, mean and std (sampled)."""
    rng = np.random.default_rng(seed)
    samples = []
    progress.start("intensity fingerprint", len(cases))
    for c in cases:
        img = load_volume(c.image).array
        lab = load_volume(c.label, dtype=None).array
        fg = img[lab > 0]
        if len(fg):
            samples.append(rng.choice(fg, min(len(fg), 10000), replace=False))
        progress.advance()
    progress.stop()
    if not samples:
        raise LocsegError("no foreground voxels in any label: cannot compute the intensity fingerprint")
    s = np.concatenate(samples).astype(np.float64)
    return {"mean": float(s.mean()), "std": float(s.std()), "percentile_00_5": float(np.percentile(s, 0.5)),
            "percentile_99_5": float(np.percentile(s, 99.5))}


def _check_integrity(ds: Dataset, cfg: PreprocessConfig, progress: Progress) -> dict[str, str]:
    """Run the dataset integrity check; errors stop the stage unless `skip_invalid`."""
    from ..datasets.integrity import check_dataset

    report = check_dataset(ds, progress=progress, workers=cfg.workers)
    invalid = report.invalid_cases()
    if invalid and not cfg.skip_invalid:
        first = next(p for p in report.problems if p.case_id in invalid and p.severity == "error")
        more = f" (and {len(invalid) - 1} more invalid cases; see `locseg check`)" if len(invalid) > 1 else ""
        raise LocsegError(first.line() + more + "; use --skip-invalid to go on without them")
    return {cid: "; ".join(p.message for p in report.problems if p.case_id == cid) for cid in sorted(invalid)}


def preprocess(data: str | Path, out: str | Path, cfg: PreprocessConfig, bpr: str | Path | None = None,
               force: bool = False, progress: Progress | None = None) -> tuple[Manifest, bool]:
    """Run the stage. Returns (manifest, did_work); cases already done are kept (resume)."""
    progress = progress or NullProgress()
    data = Path(data)
    ds = open_dataset(data, cfg.dataset)
    if cfg.location == "bpr" and bpr is None:
        raise LocsegError("--location bpr needs --bpr DIR (a `locseg bpr score` output)")
    inputs = {"data": (data, folder_fingerprint(data))}
    if bpr is not None:
        inputs["bpr"] = (Path(bpr), folder_fingerprint(bpr))
    done = StageWriter("preprocess", out, config_dict(cfg), inputs, force).already_done()
    if done is not None:  # nothing changed: skip the integrity check and everything else
        return done, False
    excluded = {cid: "excluded by the preset/--exclude" for cid in cfg.exclude}
    excluded.update(ds.skipped)
    cases = [c for c in ds.cases if c.case_id not in excluded]
    invalid = _check_integrity(Dataset(ds.root, ds.layout, ds.labels, cases, ds.modality, ds.name), cfg, progress)
    excluded.update(invalid)
    cases = [c for c in cases if c.case_id not in invalid]
    if not cases:
        raise LocsegError("no cases left to preprocess", data)
    ensure_free_space(out, _estimated_bytes(cases, cfg), f"{len(cases)} preprocessed cases")
    labels = cfg.kept_labels(ds.labels, data)
    keep = sorted(labels) if len(labels) < len(ds.labels) else None
    with StageWriter("preprocess", out, config_dict(cfg), inputs, force) as w:
        if w.up_to_date:
            return w.keep_previous(), False
        out = Path(out)
        spacing = tuple(cfg.spacing)
        if cfg.spacing_mode == "dataset-median":
            spacing = tuple(float(v) for v in np.median([_raw_spacing(c) for c in cases], axis=0))
        intensity = None
        labelled = [c for c in cases if c.label is not None]
        if cfg.normalization == "zscore":
            intensity = _intensity_fingerprint(labelled, progress, cfg.seed)
        jobs = ((c.case_id, {"cfg": cfg, "case": c, "out": str(out), "spacing": spacing, "intensity": intensity,
                             "data": str(data), "bpr": str(bpr) if bpr else None, "seed": cfg.seed, "keep": keep},
                 [_case_inputs(c, cfg, data, bpr), list(spacing), intensity, keep]) for c in cases)
        todo = pending_cases(w, progress, "preprocess", jobs)
        if cfg.workers > 1 and len(todo) > 1:
            with ProcessPoolExecutor(cfg.workers) as pool:
                run_cases(w, progress, todo, _process_case, pool)
        else:
            run_cases(w, progress, todo, _process_case)
        man = w.manifest
        shapes = np.array([c["meta"]["shape"] for c in man.cases.values()])
        median_shape = [int(v) for v in np.median(shapes, axis=0)]
        ptvc = {name: float(np.prod(p) / np.prod(median_shape)) for name, p in PATCH_SETUPS.items()}
        ids = sorted(cid for cid, c in man.cases.items() if c["meta"]["labelled"])
        splits = kfold_splits(ids, cfg.folds, cfg.split_seed) if len(ids) >= 2 else []
        write_json(out / "splits_final.json", splits)
        plan = PreprocessPlan(cfg, spacing, {str(k): v for k, v in labels.items()}, intensity,
                              {"layout": ds.layout, "name": ds.name, "modality": ds.modality}, splits,
                              tuple(median_shape), config_dict(cfg), _bpr_scoring(cfg, bpr))
        extra = {**plan.values(), "median_shape": median_shape, "ptvc": ptvc, "excluded": excluded}
        return w.finish(extra), True
