"""Full-volume, location-aware validation on preprocessed cases (not patch pseudo-Dice)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..evaluation.metrics import overlap_counts
from ..inference.sliding_window import predict_volume
from ..io.manifest import Manifest
from ..preprocessing.store import load_preprocessed_case


def validate(model: torch.nn.Module, pre: Path, manifest: Manifest, case_ids: Sequence[str],
             labels: dict[str, str], roi: Sequence[int], overlap: float, sw_batch_size: int,
             device: torch.device, amp: bool = False) -> dict:
    """Per-class Dice (nan-mean over cases, nnU-Net convention) of sliding-window predictions."""
    per_class: dict[str, list[float]] = {labels[k]: [] for k in labels if k != "0"}
    for cid in case_ids:
        case = load_preprocessed_case(pre, manifest, cid, mmap=False)
        probs = predict_volume(model, case.image, case.location, roi, overlap=overlap, sw_batch_size=sw_batch_size,
                               device=device, pad_value=case.pad_value, amp=amp)
        pred = probs.argmax(0).numpy().astype(np.uint8)
        for k, name in labels.items():
            if k == "0":
                continue
            d = overlap_counts(pred == int(k), case.label == int(k))["Dice"]
            if not math.isnan(d):
                per_class[name].append(d)
    dice = {name: float(np.mean(v)) if v else math.nan for name, v in per_class.items()}
    finite = [v for v in dice.values() if not math.isnan(v)]
    return {"dice": dice, "mean_dice": float(np.mean(finite)) if finite else math.nan}
