"""The `infer` stage: predictions for raw images (or a preprocessed dataset) in each raw geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import config_dict
from ..datasets import CaseRef, Dataset, open_dataset
from ..errors import LocsegError
from ..io.atomic import atomic_path
from ..io.manifest import Manifest, StageWriter, file_fingerprint, folder_fingerprint, read_manifest
from ..io.nifti import load_header, load_volume, save_volume, voxel_sizes
from ..io.space import ensure_free_space
from ..io.stage_loop import CaseResult, pending_cases, run_cases
from ..preprocessing import CaseGeometry, prepare_case
from ..preprocessing.pipeline import axial_source
from ..preprocessing.plan import PreprocessPlan
from ..preprocessing.store import load_preprocessed_case
from ..progress import NullProgress, Progress
from .config import InferConfig


def infer(run: str | Path, out: str | Path, cfg: InferConfig, data: str | Path | None = None,
          pre: str | Path | None = None, bpr: str | Path | None = None, cases: list[str] | None = None,
          force: bool = False, progress: Progress | None = None) -> tuple[Manifest, bool]:
    """Predict every case of `data` (raw images, preprocessed exactly as in training) or of `pre`.

    Predictions are uint8 label maps with each raw image's shape, affine and header.
    """
    progress = progress or NullProgress()
    if (data is None) == (pre is None):
        raise LocsegError("give exactly one of --data (raw images) or --pre (a preprocessed dataset)")
    run_manifest = read_manifest(run, "train")  # cheap: the model loads only if there is work to do
    plan = PreprocessPlan.of(run_manifest, run)
    inputs = {"run": (Path(run), run_manifest.fingerprint)}
    if data is not None:
        ds = open_dataset(data, plan.dataset_layout)
        items = {c.case_id: c for c in ds.cases}
        inputs["data"] = (Path(data), folder_fingerprint(data))
        if plan.location == "bpr":
            if bpr is None:
                raise LocsegError("this run uses BPR location: give --bpr DIR (`locseg bpr score` of these images)")
            inputs["bpr"] = (Path(bpr), folder_fingerprint(bpr))
    else:
        pman = read_manifest(pre, "preprocess")
        items = dict(pman.cases)
        inputs["pre"] = (Path(pre), pman.fingerprint)
    if cases is None and cfg.subset == "val":
        cases = list(run_manifest.extra.get("val_cases") or [])
        if not cases:
            raise LocsegError("--subset val: this run has no validation cases (trained with --fold -1)", run)
    if cases is not None:
        missing = sorted(set(cases) - set(items))
        if missing:
            raise LocsegError(f"cases not found: {', '.join(missing)}", data or pre)
        items = {k: items[k] for k in cases}
    config = {**config_dict(cfg), "run": str(Path(run).resolve())}
    done = StageWriter("infer", out, config, inputs, force).already_done()
    if done is not None:
        return done, False
    if data is not None:  # every image readable before the first prediction: a bad one stops nothing half-done
        _check_images(ds, list(items.values()), progress)
    # torch and the model load only now, once there is work to do (an up-to-date rerun never imports torch)
    from .predictor import RunPredictor
    from .sliding_window import softmax_

    n_labels = len(run_manifest.extra["labels"])
    ensure_free_space(out, _estimated_bytes(items, data is not None, n_labels, cfg.save_probabilities),
                      f"{len(items)} predictions")
    predictor = RunPredictor.load(run, cfg)
    classes = sorted(int(k) for k in predictor.labels)
    with StageWriter("infer", out, config, inputs, force) as w:
        if w.up_to_date:
            return w.keep_previous(), False

        def predict_case(cid: str, item) -> CaseResult:
            if data is not None:
                image = load_volume(item.image)
                prep = prepare_case(image, None, plan.config, plan.spacing, plan.intensity,
                                    axial_source(plan.config, Path(data), Path(bpr) if bpr else None, cid))
                volume, location, geometry = prep.image, prep.location, prep.geometry
                pad, header = float(prep.image.min()), image.header
                del image, prep  # the raw voxels (float32) are not needed past preprocessing
            else:
                case = load_preprocessed_case(pre, pman, cid, mmap=False)
                volume, location, pad = case.image, case.location, case.pad_value
                geometry = CaseGeometry.from_meta(item["meta"]["geometry"])
                header = None
            logits = predictor.logits(volume, location, pad)
            # arg-max of the logits resampled to the raw grid (nnU-Net's way); no softmax unless it is saved
            # over the run's classes only (a class subset leaves channels that are never a label)
            labels = geometry.restore_argmax(classes, lambda c: logits[c].numpy())
            files = {"prediction": f"{cid}.nii.gz"}
            save_volume(w.path(files["prediction"]), labels, geometry.affine, header=header, dtype=np.uint8)
            if cfg.save_probabilities:
                files["probabilities"] = f"probabilities/{cid}.npz"
                with atomic_path(w.path("probabilities", f"{cid}.npz")) as tmp, open(tmp, "wb") as f:
                    np.savez_compressed(f, probabilities=softmax_(logits).numpy().astype(np.float16))
            return CaseResult(files, {"spacing": list(voxel_sizes(geometry.affine)),
                                      "geometry": geometry.to_meta(), "shape": list(geometry.raw_shape)})

        keys = ((cid, item, [cid, [file_fingerprint(item.image)] if data is not None else item["fingerprint"]])
                for cid, item in items.items())
        run_cases(w, progress, pending_cases(w, progress, "infer", keys), predict_case)
        extra = {"labels": predictor.labels, "model": predictor.model_cfg.model,
                 "preprocess": plan.config_json}
        return w.finish(extra), True


def _check_images(ds: Dataset, cases: list[CaseRef], progress: Progress) -> None:
    """The integrity check of the images to predict (headers and voxels; labels play no part)."""
    from ..datasets.integrity import check_dataset

    images = [CaseRef(c.case_id, c.image) for c in cases]
    report = check_dataset(Dataset(ds.root, ds.layout, ds.labels, images, ds.modality, ds.name), progress=progress)
    if report.errors:
        first, n = report.errors[0], len(report.errors)
        more = f" (and {n - 1} more problem{'s' * (n > 2)}: see `locseg check`)" if n > 1 else ""
        raise LocsegError(first.message + more, first.path)


def _estimated_bytes(items: dict, raw: bool, n_classes: int, probabilities: bool) -> float:
    """Upper bound of the output size: one uint8 per raw voxel (+ float16 per class and preprocessed voxel)."""
    total = 0.0
    for item in items.values():
        if raw:
            raw_voxels = float(np.prod(load_header(item.image).shape[:3]))
            pre_voxels = raw_voxels  # not known before preprocessing: the raw grid bounds it for usual spacings
        else:
            raw_voxels = float(np.prod(item["meta"]["geometry"]["raw_shape"]))
            pre_voxels = float(np.prod(item["meta"]["shape"]))
        total += raw_voxels + (2 * n_classes * pre_voxels if probabilities else 0)
    return total
