"""The `infer` stage: predictions for raw images (or a preprocessed dataset) in each raw geometry.

Raw images are whatever `inputs.open_inputs` accepts (a dataset, NIfTI files, DICOM series). Several
runs make an ensemble: their softmax probabilities are averaged on the one preprocessed volume (as
nnU-Net ensembles its folds), so the runs must share the preprocessing (`ensemble.check_ensemble`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import config_dict
from ..errors import LocsegError
from ..io.atomic import atomic_path
from ..io.manifest import Manifest, StageWriter, file_fingerprint, folder_fingerprint, read_manifest
from ..io.nifti import Volume, save_volume, voxel_sizes
from ..io.space import ensure_free_space
from ..io.stage_loop import CaseResult, pending_cases, run_cases
from ..preprocessing import CaseGeometry, prepare_case
from ..preprocessing.pipeline import AxialSource, axial_source
from ..preprocessing.plan import PreprocessPlan
from ..preprocessing.store import load_preprocessed_case
from ..progress import NullProgress, Progress
from .config import InferConfig
from .ensemble import check_ensemble, recorded_bpr_model
from .inputs import ImageInput, check_inputs, data_fingerprint, open_inputs

RunArg = str | Path | Sequence[str | Path]


def infer(run: RunArg, out: str | Path, cfg: InferConfig, data: str | Path | None = None,
          pre: str | Path | None = None, bpr: str | Path | None = None, cases: list[str] | None = None,
          force: bool = False, progress: Progress | None = None) -> tuple[Manifest, bool]:
    """Predict every case of `data` (raw images, preprocessed exactly as in training) or of `pre`.

    `run` is one run or several (an ensemble). Predictions are uint8 label maps with each raw image's
    shape, affine and header; DICOM series also get a DICOM SEG on the series' grid.
    """
    progress = progress or NullProgress()
    if (data is None) == (pre is None):
        raise LocsegError("give exactly one of --data (raw images) or --pre (a preprocessed dataset)")
    runs = [Path(run)] if isinstance(run, (str, Path)) else [Path(r) for r in run]
    if not runs:
        raise LocsegError("give at least one --run")
    run_manifests = [read_manifest(r, "train") for r in runs]  # cheap: models load only if there is work
    plans = [PreprocessPlan.of(m, r) for m, r in zip(run_manifests, runs)]
    check_ensemble(runs, plans)
    plan = plans[0]
    inputs = {("run" if i == 0 else f"run-{i + 1}"): (r, m.fingerprint)
              for i, (r, m) in enumerate(zip(runs, run_manifests))}
    bpr_model = None
    if data is not None:
        data = Path(data)
        items: dict[str, Any] = {i.case_id: i for i in open_inputs(data, plan.dataset_layout)}
        inputs["data"] = (data, data_fingerprint(data))
        if plan.location == "bpr" and bpr is not None:
            inputs["bpr"] = (Path(bpr), folder_fingerprint(bpr))
        elif plan.location == "bpr":  # score the images here, with the regressor the run was trained with
            bpr_model = recorded_bpr_model(plan, runs[0])
            inputs["bpr-model"] = (bpr_model, folder_fingerprint(bpr_model) if bpr_model.is_dir()
                                   else file_fingerprint(bpr_model))
    else:
        pman = read_manifest(pre, "preprocess")
        items = dict(pman.cases)
        inputs["pre"] = (Path(pre), pman.fingerprint)
    if cfg.subset == "val" and len(runs) > 1:
        raise LocsegError("--subset val with several runs: each run holds out other cases, so one run's validation "
                          "cases trained another; predict a test set with an ensemble")
    if cases is None and cfg.subset == "val":
        cases = list(run_manifests[0].extra.get("val_cases") or [])
        if not cases:
            raise LocsegError("--subset val: this run has no validation cases (trained with --fold -1)", runs[0])
    if cases is not None:
        missing = sorted(set(cases) - set(items))
        if missing:
            raise LocsegError(f"cases not found: {', '.join(missing)}", data or pre)
        items = {k: items[k] for k in cases}
    config = {**config_dict(cfg), "run": str(runs[0].resolve())}
    if len(runs) > 1:
        config["ensemble"] = [str(r.resolve()) for r in runs]
    done = StageWriter("infer", out, config, inputs, force).already_done()
    if done is not None:
        return done, False
    if data is not None:  # every image readable before the first prediction: a bad one stops nothing half-done
        items = {i.case_id: i for i in check_inputs(data, list(items.values()), progress)}
    # torch and the models load only now, once there is work to do (an up-to-date rerun never imports torch)
    from .predictor import RunPredictor

    labels = run_manifests[0].extra["labels"]
    ensure_free_space(out, _estimated_bytes(items, data is not None, len(labels), cfg.save_probabilities),
                      f"{len(items)} predictions")
    predictors = [RunPredictor.load(r, cfg) for r in runs]
    scorer = _bpr_scorer(plan, bpr_model, cfg) if bpr_model is not None else None
    classes = sorted(int(k) for k in labels)
    with StageWriter("infer", out, config, inputs, force) as w:
        if w.up_to_date:
            return w.keep_previous(), False

        def predict_case(cid: str, item) -> CaseResult:
            if data is not None:
                image = item.load()
                axial = scorer(cid, image) if scorer else axial_source(plan.config, data, Path(bpr) if bpr else None,
                                                                      cid)
                prep = prepare_case(image, None, plan.config, plan.spacing, plan.intensity, axial)
                volume, location, geometry = prep.image, prep.location, prep.geometry
                pad, header = float(prep.image.min()), image.header
                del image, prep  # the raw voxels (float32) are not needed past preprocessing
            else:
                case = load_preprocessed_case(pre, pman, cid, mmap=False)
                volume, location, pad = case.image, case.location, case.pad_value
                geometry = CaseGeometry.from_meta(item["meta"]["geometry"])
                header = None
            scores, probabilities = ensemble_scores(predictors, volume, location, pad)
            # arg-max of the scores resampled to the raw grid (nnU-Net's way), over the run's classes only
            # (a class subset leaves channels that are never a label)
            label_map = geometry.restore_argmax(classes, lambda c: scores[c].numpy())
            files = {"prediction": f"{cid}.nii.gz"}
            save_volume(w.path(files["prediction"]), label_map, geometry.affine, header=header, dtype=np.uint8)
            meta = {"spacing": list(voxel_sizes(geometry.affine)), "geometry": geometry.to_meta(),
                    "shape": list(geometry.raw_shape)}
            if data is not None and item.dicom:
                from ..io.dicom_seg import write_dicom_seg

                files["dicom_seg"] = f"{cid}.seg.dcm"
                write_dicom_seg(w.path(files["dicom_seg"]), label_map, item.series, labels)
                meta["series_uid"] = item.series.series_uid
                meta["series_folder"] = str(item.path.resolve())  # postprocess writes its own SEG from it
            if cfg.save_probabilities:
                files["probabilities"] = f"probabilities/{cid}.npz"
                with atomic_path(w.path("probabilities", f"{cid}.npz")) as tmp, open(tmp, "wb") as f:
                    np.savez_compressed(f, probabilities=probabilities().numpy().astype(np.float16))
            return CaseResult(files, meta)

        keys = ((cid, item, [cid, item.fingerprint() if data is not None else item["fingerprint"]])
                for cid, item in items.items())
        run_cases(w, progress, pending_cases(w, progress, "infer", keys), predict_case)
        models = [p.model_cfg.model for p in predictors]
        extra = {"labels": labels, "model": models[0] if len(set(models)) == 1 else "+".join(models),
                 "preprocess": plan.config_json}
        if len(runs) > 1:
            extra["ensemble"] = {"runs": [str(r.resolve()) for r in runs], "models": models,
                                 "combine": "mean softmax probability"}
        return w.finish(extra), True


def ensemble_scores(predictors: list, volume: np.ndarray, location: list[np.ndarray], pad: float):
    """(scores to arg-max, a function giving the probabilities) of one run or of an ensemble.

    One run: its logits (the softmax runs only if probabilities are saved). Several: the mean of their
    softmax probabilities, nnU-Net's ensemble; each run's probabilities are added in place, so memory
    holds two volumes of C channels whatever the number of runs.
    """
    import torch

    from .sliding_window import softmax_

    if len(predictors) == 1:
        logits = predictors[0].logits(volume, location, pad)
        return logits, lambda: softmax_(logits)
    total = None
    with torch.inference_mode():
        for p in predictors:
            probs = p.probabilities(volume, location, pad)
            if total is None:
                total = probs
            else:
                total += probs
                del probs
        total /= len(predictors)
    return total, lambda: total


def _bpr_scorer(plan: PreprocessPlan, model: Path, cfg: InferConfig) -> Callable[[str, Volume], AxialSource]:
    """Case id, raw volume -> its axial location from BPR scores computed now with the recorded regressor."""
    from ..bpr import axial_location
    from ..bpr.config import BprScoreConfig
    from ..bpr.inference import load_regressor
    from ..config import resolve_config

    regressor = load_regressor(model, cfg.device)
    score_cfg = resolve_config(BprScoreConfig, base=(plan.bpr_scoring or {}).get("config") or {})

    def axial(cid: str, image: Volume) -> AxialSource:
        record = regressor.score_volume(image, score_cfg, cid)
        return lambda g: axial_location(record, g.axial_world_mm())

    return axial


def _estimated_bytes(items: dict, raw: bool, n_classes: int, probabilities: bool) -> float:
    """Upper bound of the output size: one uint8 per raw voxel (+ float16 per class and preprocessed voxel,
    + one bit per class and voxel for a DICOM SEG)."""
    total = 0.0
    for item in items.values():
        if raw:
            raw_voxels = item.voxels()
            pre_voxels = raw_voxels  # not known before preprocessing: the raw grid bounds it for usual spacings
            if isinstance(item, ImageInput) and item.dicom:
                total += raw_voxels * n_classes / 8
        else:
            raw_voxels = float(np.prod(item["meta"]["geometry"]["raw_shape"]))
            pre_voxels = float(np.prod(item["meta"]["shape"]))
        total += raw_voxels + (2 * n_classes * pre_voxels if probabilities else 0)
    return total
