"""Per-case segmentation metrics: overlap counts with numpy, surface metrics with MONAI.

Conventions (nnU-Net's for overlap): a label absent from both prediction and reference has Dice,
IoU, NSD and HD NaN, and is skipped by the means; a label absent from the reference but predicted
has Dice, IoU and NSD 0. When exactly one of the two masks is empty, HD is the length of the
image diagonal in mm (the largest distance the image allows), so a missed organ is penalised
instead of silently skipped.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .config import EvaluateConfig

LabelKeys = Mapping[str, Sequence[int]]


def label_keys(labels: Sequence[int] | LabelKeys) -> dict[str, list[int]]:
    """`[1, 2]` -> {"1": [1], "2": [2]}; a mapping key -> label values is taken as it is."""
    if isinstance(labels, Mapping):
        return {str(k): [int(v) for v in vals] for k, vals in labels.items()}
    return {str(int(v)): [int(v)] for v in labels}


def overlap_counts(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Dice, IoU, TP, FP, FN, TN, n_pred, n_ref of two boolean masks."""
    tp = int(np.count_nonzero(pred & ref))
    n_pred = int(np.count_nonzero(pred))
    n_ref = int(np.count_nonzero(ref))
    fp, fn = n_pred - tp, n_ref - tp
    tn = int(pred.size) - tp - fp - fn
    union = tp + fp + fn
    dice = 2 * tp / (2 * tp + fp + fn) if union else math.nan
    iou = tp / union if union else math.nan
    return {"Dice": dice, "IoU": iou, "TP": tp, "FP": fp, "FN": fn, "TN": tn, "n_pred": n_pred, "n_ref": n_ref}


def class_overlaps(pred: np.ndarray, ref: np.ndarray, labels: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """`overlap_counts` of each foreground class (label value -> name; "0" is background), by name."""
    return {name: overlap_counts(pred == int(k), ref == int(k)) for k, name in labels.items() if k != "0"}


def dice_summary(per_case: Sequence[Mapping[str, Mapping[str, float]]], labels: Mapping[str, str]) -> dict[str, Any]:
    """Per-class Dice averaged over cases and their mean (nnU-Net: a case with the class in neither
    prediction nor reference, Dice nan, is skipped). Validation and shift-eval both score this way."""
    names = [name for k, name in labels.items() if k != "0"]
    per_class = {name: [c[name]["Dice"] for c in per_case if not math.isnan(c[name]["Dice"])] for name in names}
    dice = {name: float(np.mean(v)) if v else math.nan for name, v in per_class.items()}
    finite = [v for v in dice.values() if not math.isnan(v)]
    return {"dice": dice, "mean_dice": float(np.mean(finite)) if finite else math.nan}


def _union_box(a: np.ndarray, b: np.ndarray) -> tuple[slice, ...]:
    """Bounding box of a | b widened by one voxel, so edges and distances are those of the full image."""
    both = a | b
    box = []
    for axis in range(both.ndim):
        other = tuple(i for i in range(both.ndim) if i != axis)
        idx = np.flatnonzero(both.any(axis=other))
        box.append(slice(max(0, int(idx[0]) - 1), min(both.shape[axis], int(idx[-1]) + 2)))
    return tuple(box)


def surface_metrics(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], tolerance_mm: float,
                    percentile: float) -> tuple[float, float]:
    """(NSD at `tolerance_mm`, HD at `percentile`) of two boolean masks with voxel size `spacing` (mm).

    MONAI's surface definition: edge voxels are the mask minus its erosion; distances are Euclidean
    in mm between edge voxels, symmetric.
    """
    import torch
    from monai.metrics import compute_hausdorff_distance, compute_surface_dice

    p_any, r_any = bool(pred.any()), bool(ref.any())
    if not p_any and not r_any:
        return math.nan, math.nan
    if not p_any or not r_any:
        diagonal = float(np.linalg.norm(np.asarray(pred.shape, float) * np.asarray(spacing, float)))
        return 0.0, diagonal
    box = _union_box(pred, ref)
    p = torch.from_numpy(np.ascontiguousarray(pred[box]))[None, None]
    r = torch.from_numpy(np.ascontiguousarray(ref[box]))[None, None]
    spacing = [float(s) for s in spacing]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's deprecation notices about its own internals
        nsd = compute_surface_dice(p, r, class_thresholds=[float(tolerance_mm)], include_background=True,
                                   spacing=spacing)
        hd = compute_hausdorff_distance(p, r, include_background=True, percentile=float(percentile),
                                        spacing=spacing)
    return float(nsd.reshape(-1)[0]), float(hd.reshape(-1)[0])


def case_metrics(pred: np.ndarray, ref: np.ndarray, labels: Sequence[int] | LabelKeys,
                 spacing: Sequence[float], config: EvaluateConfig | None = None) -> dict[str, dict[str, Any]]:
    """Metrics of one case: {key: {Dice, IoU, TP, FP, FN, TN, n_pred, n_ref, NSD, HD95}}.

    `labels` lists label values, or maps a key to the label values merged into it (a region);
    `spacing` is the voxel size in mm along the array's axes.
    """
    config = config or EvaluateConfig()
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    if len(spacing) != pred.ndim:
        raise ValueError(f"spacing has {len(spacing)} values for a {pred.ndim}D image")
    out: dict[str, dict[str, Any]] = {}
    for key, values in label_keys(labels).items():
        p = np.isin(pred, values) if len(values) > 1 else pred == values[0]
        r = np.isin(ref, values) if len(values) > 1 else ref == values[0]
        m = overlap_counts(p, r)
        if config.surface:
            m["NSD"], m[config.hd_name] = surface_metrics(p, r, spacing, config.nsd_tolerance_mm,
                                                          config.hd_percentile)
        out[key] = m
    return out
