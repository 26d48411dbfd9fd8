"""Full-volume, location-aware validation on preprocessed cases (not patch pseudo-Dice)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..evaluation.metrics import class_overlaps, dice_summary
from ..inference.sliding_window import predict_volume
from ..io.manifest import Manifest
from ..preprocessing.store import load_preprocessed_case


def validate(model: torch.nn.Module, pre: Path, manifest: Manifest, case_ids: Sequence[str],
             labels: dict[str, str], roi: Sequence[int], overlap: float, sw_batch_size: int,
             device: torch.device, amp: bool = False,
             layout: torch.memory_format = torch.contiguous_format) -> dict:
    """Per-class Dice (nan-mean over cases, nnU-Net convention) of sliding-window predictions."""
    per_case = []
    for cid in case_ids:
        case = load_preprocessed_case(pre, manifest, cid, mmap=False)
        probs = predict_volume(model, case.image, case.location, roi, overlap=overlap, sw_batch_size=sw_batch_size,
                               device=device, pad_value=case.pad_value, amp=amp, layout=layout)
        pred = probs.argmax(0).numpy().astype(np.uint8)
        per_case.append(class_overlaps(pred, case.label, labels))
    return dice_summary(per_case, labels)
