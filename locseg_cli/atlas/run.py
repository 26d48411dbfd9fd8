"""`locseg atlas`: build per-class atlases from one fold's training labels and choose each class's
dilation on that fold's validation cases."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import config_dict
from ..errors import LocsegError
from ..io.atomic import write_json
from ..io.manifest import Manifest, StageWriter, case_path, folder_fingerprint, read_manifest
from ..io.nifti import load_volume
from ..preprocessing.plan import PreprocessPlan
from ..progress import NullProgress, Progress
from .build import (
    atlas_shape,
    choose_by_coverage,
    choose_by_score,
    class_score_ranges,
    coverage_curves,
    probability_atlas,
    raw_support,
    restore_support_distance,
    support_distance,
)
from .config import AtlasConfig
from .store import ATLAS_JSON, ATLAS_NPZ, Atlas


def _fold(m: Manifest, fold: int, pre: Path) -> tuple[list[str], list[str]]:
    plan = PreprocessPlan.of(m, pre)
    try:
        fold_train, fold_val = plan.fold(fold)
    except IndexError:
        raise LocsegError(f"--fold {fold}: this preprocessed dataset has {len(plan.splits)} fold(s)", pre) from None
    labelled = {c for c, e in m.cases.items() if (e.get("files") or {}).get("label")}
    train = [c for c in fold_train if c in labelled]
    val = [c for c in fold_val if c in labelled]
    if not train:
        raise LocsegError(f"fold {fold} has no labelled training cases", pre)
    return train, val


def _labels(pre: Path, m: Manifest, cases: Sequence[str], progress: Progress) -> Iterator[np.ndarray]:
    for cid in cases:
        yield np.asarray(load_volume(case_path(pre, m.cases[cid]["files"]["label"]), dtype=None).array)
        progress.advance(1)


def dice_curves(distances: dict[int, np.ndarray], pred_dir: Path, ref_dir: Path, cases: Sequence[str],
                dilations: Sequence[int], progress: Progress) -> tuple[dict[int, dict[int, float]], list[str]]:
    """Per class and dilation: mean validation Dice of the predictions masked by the dilated support.

    Predictions and references are compared in the raw geometry, where `postprocess` works too.
    """
    from ..evaluation.metrics import overlap_counts
    from ..evaluation.sources import check_same_grid, load_labels, open_predictions, open_references
    from ..preprocessing.geometry import CaseGeometry

    preds = open_predictions(pred_dir)
    if preds.manifest is None:
        raise LocsegError("needs an `infer` output (its manifest holds each case's geometry)", pred_dir)
    refs = open_references(ref_dir)
    used = [c for c in cases if c in preds.files]
    if not used:
        raise LocsegError("holds no prediction for this fold's validation cases", pred_dir)
    missing = [c for c in used if c not in refs.files]
    if missing:
        raise LocsegError(f"no reference label for validation case {missing[0]!r}", ref_dir)
    limit = max(dilations)
    scores: dict[int, dict[int, list[float]]] = {c: {r: [] for r in dilations} for c in distances}
    progress.start("validation Dice per dilation", total=len(used))
    for cid in used:
        meta = preds.manifest.cases[cid].get("meta") or {}
        if "geometry" not in meta:
            raise LocsegError(f"case {cid!r} has no geometry in the manifest", pred_dir)
        geometry = CaseGeometry.from_meta(meta["geometry"])
        pred, ref = load_labels(preds.files[cid]), load_labels(refs.files[cid])
        check_same_grid(pred, ref, preds.files[cid], refs.files[cid])
        for c, dist in distances.items():
            p, t = pred.array == c, ref.array == c
            raw = restore_support_distance(dist, geometry, limit)
            for r in dilations:
                scores[c][r].append(overlap_counts(p & raw_support(raw, r), t)["Dice"])
        progress.advance(1)
    progress.stop()
    curves = {c: {r: _nanmean(v) for r, v in per.items()} for c, per in scores.items()}
    return curves, used


def bpr_ranges(pre: Path, m: Manifest, cases: Sequence[str], classes: Sequence[int],
               bpr: Path | None) -> tuple[dict[int, list[float] | None] | None, str | None]:
    """Per class, the body-part score range of its training slices, for `postprocess --method bpr-range`.

    Scores come from `bpr` (a `locseg bpr` output) or, when the preprocessed axial location is
    itself a body position (--location bpr/truth), from that signal. (None, None) without either.
    """

    location = (m.config or {}).get("location")
    if bpr is None and location not in ("bpr", "truth"):
        return None, None

    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for cid in cases:
            entry = m.cases[cid]
            labels = np.asarray(load_volume(case_path(pre, entry["files"]["label"]), dtype=None).array)
            if bpr is not None:
                from ..bpr import load_scores, location_scores
                from ..preprocessing.geometry import CaseGeometry

                geometry = CaseGeometry.from_meta(entry["meta"]["geometry"])
                scores = location_scores(load_scores(bpr, cid), geometry.axial_world_mm())
            else:
                with np.load(case_path(pre, entry["files"]["location"])) as z:
                    scores = np.asarray(z["axial"], dtype=np.float64) * 100.0 + 50.0
            yield labels, scores

    source = f"bpr scores in {bpr}" if bpr is not None else f"preprocessed axial location ({location})"
    return class_score_ranges(pairs(), classes), source


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def build_atlas(pre: str | Path, out: str | Path, config: AtlasConfig | None = None, pred: str | Path | None = None,
                ref: str | Path | None = None, bpr: str | Path | None = None, progress: Progress | None = None,
                force: bool = False) -> dict[str, Any]:
    """Build the atlas of `config.fold`, choose each class's dilation, write `out`; returns atlas.json.

    `pred` (validation predictions, `infer` output) with `ref` (raw labels; default: the dataset
    `pre` was made from) chooses dilations on Dice, otherwise on label coverage. Each class's
    training body-position range is recorded too, from `bpr` or a bpr/truth location signal.
    """
    config = config or AtlasConfig()
    progress = progress or NullProgress()
    pre, out = Path(pre), Path(out)
    m = read_manifest(pre, "preprocess")
    train, val = _fold(m, config.fold, pre)
    names = {int(k): v for k, v in PreprocessPlan.of(m, pre).labels.items()}
    classes = sorted(c for c in names if c != 0)
    if not classes:
        raise LocsegError("the preprocessed dataset names no foreground labels", pre)
    if pred is not None and ref is None:
        ref = ((m.inputs or {}).get("data") or {}).get("path")
        if not ref or not Path(ref).is_dir():
            raise LocsegError("give --ref: the raw dataset this was preprocessed from is not at hand", pre)
    inputs = {"pre": (pre, folder_fingerprint(pre))}
    if pred is not None:
        inputs["pred"] = (Path(pred), folder_fingerprint(pred))
        inputs["ref"] = (Path(ref), folder_fingerprint(ref))
    if bpr is not None:
        inputs["bpr"] = (Path(bpr), folder_fingerprint(bpr))
    with StageWriter("atlas", out, config_dict(config), inputs, force) as w:
        if w.up_to_date and w.path(ATLAS_JSON).is_file() and w.path(ATLAS_NPZ).is_file():
            progress.log(f"up to date: {out}")
            return w.previous.extra["atlas"]
        shape = atlas_shape([m.cases[c]["meta"]["shape"] for c in train], config.max_voxels)
        progress.start("atlas from training labels", total=len(train))
        probability, n_train = probability_atlas(_labels(pre, m, train, progress), classes, shape)
        progress.stop()
        dilations = list(range(config.max_dilation + 1))
        distances = {c: support_distance(p, config.kernel, limit=config.max_dilation) for c, p in probability.items()}
        if pred is not None:
            curves, scored = dice_curves(distances, Path(pred), Path(ref), val, dilations, progress)
            chosen = {c: choose_by_score(curves[c]) for c in classes}
            criterion = "validation Dice of atlas-masked predictions"
        else:
            if not val:
                raise LocsegError(f"fold {config.fold} has no labelled validation cases to choose dilations on", pre)
            progress.start("validation coverage per dilation", total=len(val))
            curves = coverage_curves(distances, _labels(pre, m, val, progress), dilations)
            progress.stop()
            chosen = {c: choose_by_coverage(curves[c], config.coverage) for c in classes}
            criterion = f"smallest dilation covering >= {config.coverage:g} of validation label voxels"
            scored = val
        ranges, range_source = bpr_ranges(pre, m, train, classes, Path(bpr) if bpr is not None else None)
        info = {
            "shape": list(shape), "kernel": config.kernel, "fold": config.fold, "criterion": criterion,
            "train_cases": train, "val_cases": list(scored), "bpr_range_source": range_source,
            "classes": {str(c): {"name": names[c], "dilation": chosen[c],
                                 "support_voxels": int((probability[c] > 0).sum()),
                                 "bpr_range": ranges.get(c) if ranges else None,
                                 "curve": {str(r): curves[c][r] for r in dilations}} for c in classes},
        }
        atlas = Atlas(shape, probability, chosen, config.kernel, info)
        atlas.save_arrays(w.out)
        write_json(w.path(ATLAS_JSON), info)
        w.finish({"atlas": info, "files": [ATLAS_NPZ, ATLAS_JSON], "labels": {str(k): v for k, v in names.items()},
                  "pre": str(pre.resolve()), "n_train": n_train})
    return info
