"""The model card: everything another tool needs to run an exported network on a CT of its own.

It states the preprocessing as values and formulas (orientation, spacing, crop, intensity
normalisation), how to build the location input of a patch, what the inputs and outputs are, and
where the weights came from. The field meanings are documented in docs/export.md; a change to
them bumps `CARD_VERSION`.
"""

from __future__ import annotations

from typing import Any

from ..config import config_dict
from ..models.config import ModelConfig
from ..preprocessing.plan import PreprocessPlan

CARD_VERSION = 1
CARD_FILE = "card.json"
FORMAT_NAMES = ("onnx", "torchscript")  # `locseg export --format`; checked before torch is imported
INPUT_NAMES = ("image", "location")
OUTPUT_NAME = "logits"

_AXIS_NAMES = ("axial", "coronal", "sagittal")
_TOWARD = {"S": "superior (head)", "A": "anterior", "R": "right (the patient's)"}


def model_card(*, plan: PreprocessPlan, model_cfg: ModelConfig, patch_size: tuple[int, int, int],
               fmt: str, file: str, checkpoint: dict[str, Any], versions: dict[str, str],
               parameters: int, check: dict[str, Any]) -> dict[str, Any]:
    """The card of one export as a JSON-ready dict (the `card.json` next to the model file)."""
    batch_shape = ["batch", *patch_size]
    return {
        "card_version": CARD_VERSION,
        "format": fmt,
        "file": file,
        "versions": dict(versions),
        "model": {"name": model_cfg.model, "features": list(model_cfg.features), "parameters": parameters,
                  "options": config_dict(model_cfg)},
        "checkpoint": dict(checkpoint),
        "inputs": [
            {"name": INPUT_NAMES[0], "shape": [batch_shape[0], model_cfg.in_channels, *patch_size],
             "dtype": "float32", "what": "CT patches after `preprocessing` (orientation, spacing, crop, intensity)"},
            {"name": INPUT_NAMES[1], "shape": [batch_shape[0], 3, *patch_size], "dtype": "float32",
             "what": "the patches' location channels, built as `location` says (every model takes them; "
                     "the baseline ignores them)"},
        ],
        "outputs": [{"name": OUTPUT_NAME, "shape": [batch_shape[0], model_cfg.out_channels, *patch_size],
                     "dtype": "float32",
                     "what": "class logits; channel k is label value k. Take the argmax over the channels "
                             "that `labels` lists (other channels belong to classes left out and were never "
                             "trained)"}],
        "shapes": {"batch": "dynamic (any size >= 1)",
                   "patch_size": list(patch_size),
                   "patch": "fixed: the patch size the network was trained and is validated at. Cover a larger "
                            "volume with overlapping windows of this size (locseg: step half a window, "
                            "Gaussian weights with sigma = window / 8, logits averaged); pad a smaller one "
                            "(and extend its location vectors linearly over the padding)"},
        "labels": {str(k): v for k, v in sorted(plan.labels.items(), key=lambda kv: int(kv[0]))},
        "preprocessing": preprocessing_fields(plan),
        "location": location_fields(plan),
        "check": dict(check),
    }


def preprocessing_fields(plan: PreprocessPlan) -> dict[str, Any]:
    """Raw CT -> the network's image input, in the order locseg applies the steps."""
    cfg = plan.config
    axcodes = list(plan.orientation)
    return {
        "orientation": {"axcodes": axcodes,
                        "what": "array axis a runs toward " + ", ".join(
                            f"{a}: {_TOWARD.get(c, c)}" for a, c in enumerate(axcodes)) +
                        " (nibabel axis codes; reached by permuting and flipping the raw axes from the affine)"},
        "crop": {"body": bool(cfg.crop_body), "threshold_hu": float(cfg.body_threshold),
                 "what": "crop to the bounding box of the voxels above threshold_hu (before resampling)"
                         if cfg.crop_body else "no crop"},
        "spacing_mm": [float(s) for s in plan.spacing],
        "resampling": {"image": "cubic spline (order 3)", "anisotropy_threshold": float(cfg.anisotropy_threshold),
                       "what": "to spacing_mm along (axis 0, 1, 2); when the coarsest raw spacing exceeds "
                               "anisotropy_threshold x the finest, axis 0 is resampled separately (nnU-Net)"},
        "intensity": intensity_fields(plan),
    }


def intensity_fields(plan: PreprocessPlan) -> dict[str, Any]:
    """The intensity normalisation as the plan records it: a HU window, or clipping and a z-score."""
    cfg = plan.config
    if cfg.normalization == "window":
        lo, hi = (float(v) for v in cfg.window)
        return {"mode": "window", "window_hu": [lo, hi], "formula": "(clip(hu, window_hu[0], window_hu[1]) - window_hu[0]) / (window_hu[1] - window_hu[0])"}
    fp = plan.intensity or {}
    return {"mode": "zscore", "clip_hu": [fp.get("percentile_00_5"), fp.get("percentile_99_5")],
            "mean": fp.get("mean"), "std": fp.get("std"),
            "formula": "(clip(hu, clip_hu[0], clip_hu[1]) - mean) / max(std, 1e-8)"}


def location_fields(plan: PreprocessPlan) -> dict[str, Any]:
    """How the location input of a patch is computed, in words and fields (units: fractions of the volume)."""
    mode = plan.location
    axial = {
        "volume": "the same as the other axes: volume coordinates",
        "bpr": "body-part-regression score s of each slice (0 = start of the pelvis, 100 = end of the eyes), "
               "as (s - 50) / 100; "
               "interpolated in world z between scored slices, a least-squares line beyond them",
        "truth": "the synthetic cohort's true body position, as (s - 50) / 100 (synthetic data only)",
    }.get(mode, mode)
    return {
        "mode": mode,
        "channels": [f"{name} (array axis {a})" for a, name in enumerate(_AXIS_NAMES)],
        "units": "dimensionless: position along the axis as a fraction of the preprocessed (cropped, "
                 "resampled) volume's extent, -0.5 at its first voxel, +0.5 at its last",
        "vectors": "per axis a of a volume with L_a voxels: v_a[i] = -0.5 + i / (L_a - 1), i = 0..L_a-1 "
                   "(numpy.linspace(-0.5, 0.5, L_a); all 0 when L_a = 1)",
        "axial": axial,
        "patch": "for a patch whose first voxel is at index p = (p_0, p_1, p_2) of the volume: channel a at "
                 "patch voxel (i_0, i_1, i_2) is v_a[p_a + i_a], so it varies along axis a only; indices "
                 "beyond the volume extend the vector linearly (v_a[0] + (v_a[1] - v_a[0]) * j for j < 0, "
                 "likewise past the end)",
    }

