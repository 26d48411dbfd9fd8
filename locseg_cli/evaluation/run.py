"""`locseg evaluate`: score a folder of predictions against reference labels, nnU-Net style."""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..config import config_dict
from ..errors import LocsegError
from ..io.atomic import read_json, write_json
from ..io.manifest import StageWriter, file_fingerprint, folder_fingerprint
from ..io.stage_loop import CaseResult, pending_cases, run_cases
from ..progress import NullProgress, Progress
from .config import EvaluateConfig
from .metrics import case_metrics
from .sources import LabelFiles, check_same_grid, load_labels, open_predictions, open_references

SUMMARY = "summary.json"
OVERLAP = ("Dice", "IoU", "TP", "FP", "FN", "TN", "n_pred", "n_ref")


def metric_names(config: EvaluateConfig) -> list[str]:
    return list(OVERLAP) + (["NSD", config.hd_name] if config.surface else [])


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    if arr.size == 0 or np.isnan(arr).all():
        return math.nan
    return float(np.nanmean(arr))


def resolve_keys(config: EvaluateConfig, preds: LabelFiles, refs: LabelFiles,
                 ref_cases: Sequence[str]) -> tuple[dict[str, list[int]], dict[str, str], list[str]]:
    """(key -> label values, key -> display name, keys averaged into `foreground_mean`).

    Labels: the config's, else those the predictions or the reference dataset name, else every
    foreground value found in the reference files. Regions: the config's, else the reference
    dataset's (KiTS23 defines three).
    """
    names = preds.labels or refs.labels
    if config.labels is not None:
        values = sorted(set(config.labels))
    elif names:
        values = sorted(v for v in names if v != 0)
    else:
        found: set[int] = set()
        for cid in ref_cases:
            found.update(int(v) for v in np.unique(load_labels(refs.files[cid]).array))
        values = sorted(v for v in found if v != 0)
    keys: dict[str, list[int]] = {str(v): [v] for v in values}
    display = {str(v): (names or {}).get(v, str(v)) for v in values}
    regions = config.regions if config.regions is not None else refs.regions
    for name, vals in (regions or {}).items():
        keys[str(name)] = [int(v) for v in vals]
        display[str(name)] = str(name)
    if not keys:
        raise LocsegError("nothing to evaluate: no foreground labels or regions", refs.root)
    foreground = [str(n) for n in regions] if regions else [str(v) for v in values]
    return keys, display, foreground


def summarize(per_case: list[dict[str, Any]], keys: Sequence[str], foreground: Sequence[str],
              config: EvaluateConfig, class_groups: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """nnU-Net's summary: per-key nan-means over cases, and the mean of those over foreground keys;
    plus, per class group the reference dataset defines, the mean over its evaluated classes."""
    names = metric_names(config)
    mean = {k: {m: _nanmean([c["metrics"][k][m] for c in per_case]) for m in names} for k in keys}
    foreground_mean = {m: _nanmean([mean[k][m] for k in foreground]) for m in names}
    groups = {}
    for group, values in (class_groups or {}).items():
        members = [str(v) for v in values if str(v) in mean]
        if members:
            groups[group] = {"classes": members, **{m: _nanmean([mean[k][m] for k in members]) for m in names}}
    return {"foreground_mean": foreground_mean, "mean": mean, "class_groups": groups, "metric_per_case": per_case}


def _evaluate_case(case_id: str, job: tuple[Path, Path, dict[str, list[int]], EvaluateConfig, list[str]]) -> CaseResult:
    """Worker: the metrics of one prediction against its reference."""
    pred_path, ref_path, keys, config, foreground = job
    pred = load_labels(pred_path)
    ref = load_labels(ref_path)
    check_same_grid(pred, ref, pred_path, ref_path)
    metrics = case_metrics(pred.array, ref.array, keys, ref.spacing, config)
    meta = {"prediction_file": str(pred_path), "reference_file": str(ref_path),
            "spacing": [float(s) for s in ref.spacing], "metrics": metrics}
    return CaseResult({}, meta, {"Dice": _nanmean([metrics[k]["Dice"] for k in foreground])})


def evaluate(pred_dir: str | Path, ref_dir: str | Path, out: str | Path, config: EvaluateConfig | None = None,
             progress: Progress | None = None, force: bool = False) -> dict[str, Any]:
    """Score every prediction against its reference; write `out/summary.json`; return the summary."""
    config = config or EvaluateConfig()
    progress = progress or NullProgress()
    pred_dir, ref_dir, out = Path(pred_dir), Path(ref_dir), Path(out)
    preds = open_predictions(pred_dir)
    refs = open_references(ref_dir)
    missing_ref = sorted(set(preds.files) - set(refs.files))
    if missing_ref:
        more = f" and {len(missing_ref) - 3} more" if len(missing_ref) > 3 else ""
        raise LocsegError(f"no reference label for case(s) {', '.join(missing_ref[:3])}{more}", ref_dir)
    cases = sorted(preds.files)
    not_predicted = sorted(set(refs.files) - set(preds.files))
    keys, display, foreground = resolve_keys(config, preds, refs, cases)

    inputs = {"pred": (pred_dir, folder_fingerprint(pred_dir)), "ref": (ref_dir, folder_fingerprint(ref_dir))}
    with StageWriter("evaluate", out, config_dict(config), inputs, force) as w:
        summary_path = w.path(SUMMARY)
        if w.up_to_date and summary_path.is_file():
            progress.log(f"up to date: {summary_path}")
            return read_json(summary_path)
        jobs = ((cid, (preds.files[cid], refs.files[cid], keys, config, foreground),
                 [file_fingerprint(preds.files[cid]), file_fingerprint(refs.files[cid]), keys]) for cid in cases)
        todo = pending_cases(w, progress, "evaluate", jobs)
        if config.workers > 1 and len(todo) > 1:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(config.workers, len(todo)), mp_context=ctx) as pool:
                run_cases(w, progress, todo, _evaluate_case, pool)
        else:
            run_cases(w, progress, todo, _evaluate_case)

        per_case = []
        for cid in cases:
            meta = w.manifest.cases[cid]["meta"]
            per_case.append({"case_id": cid, "prediction_file": meta["prediction_file"],
                             "reference_file": meta["reference_file"], "metrics": meta["metrics"]})
        summary = summarize(per_case, list(keys), foreground, config, refs.class_groups)
        summary.update({"labels": display, "regions": {k: v for k, v in keys.items() if not k.isdigit()},
                        "foreground_keys": foreground, "nsd_tolerance_mm": config.nsd_tolerance_mm,
                        "hd_percentile": config.hd_percentile, "cases_without_prediction": not_predicted})
        write_json(summary_path, summary)
        w.finish({"summary": SUMMARY, "labels": display, "foreground_keys": foreground,
                  "cases_without_prediction": not_predicted})
    if not_predicted:
        progress.log(f"{len(not_predicted)} reference case(s) have no prediction and were not scored")
    return summary
