"""Reading a `bpr` output and turning a case's scores into the axial location signal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LocsegError
from ..io.atomic import read_json, validate_case_id
from ..io.manifest import case_path, read_manifest
from ..location.vectors import axial_from_scores

STAGE = "bpr"
RESERVED_IDS = {"manifest"}  # {out}/{case}.json must not overwrite the stage manifest


def load_scores(bpr_dir: str | Path, case_id: str) -> dict[str, Any]:
    """The score record of one case from a `locseg bpr score` / `locseg bpr import` output."""
    validate_case_id(case_id)
    manifest = read_manifest(bpr_dir, STAGE)
    entry = manifest.cases.get(case_id)
    if entry is None:
        raise LocsegError(f"no body-part scores for case {case_id!r} here ({len(manifest.cases)} cases)", bpr_dir)
    path = case_path(bpr_dir, entry["files"]["scores"])
    record = read_json(path)
    if not isinstance(record, dict) or "cleaned slice scores" not in record:
        raise LocsegError("not a body-part score record (no 'cleaned slice scores')", path)
    record.setdefault("case_id", case_id)
    return record


def record_world_z(record: dict[str, Any]) -> np.ndarray:
    """The world superior coordinate (mm) of each scored slice, in the record's slice order."""
    z = record.get("z_world_mm")
    where = f"body-part scores of case {record.get('case_id', '?')!r}"
    if z is None:
        raise LocsegError(f"{where} have no world z positions (bpreg files lack them): rerun "
                          "`locseg bpr import` with --data RAW")
    z = np.asarray(z, dtype=np.float64)
    if z.shape != (len(record["cleaned slice scores"]),):
        raise LocsegError(f"{where}: 'z_world_mm' has {z.size} values for "
                          f"{len(record['cleaned slice scores'])} slices")
    return z


def location_scores(record: dict[str, Any], z_world_mm: np.ndarray) -> np.ndarray:
    """Body-part scores (0..100 scale, unclipped) at world positions `z_world_mm`.

    Cleaned scores are interpolated inside their valid (finite, 0..100) range; outside it a
    least-squares line through the valid slices extrapolates (the paper's rule).
    """
    return axial_location(record, z_world_mm).astype(np.float64) * 100.0 + 50.0


def axial_location(record: dict[str, Any], z_world_mm: np.ndarray) -> np.ndarray:
    """The axial location signal (score - 50) / 100 at world positions `z_world_mm` (float32).

    A scan that lies wholly outside pelvis..eyes (fewer than two cleaned scores in 0..100) uses all
    its finite cleaned scores the same way: interpolated inside, least-squares line outside.
    """
    scores = np.asarray([np.nan if v is None else v for v in record["cleaned slice scores"]], dtype=np.float64)
    z = record_world_z(record)
    query = np.asarray(z_world_mm, dtype=np.float64)
    finite = np.isfinite(scores)
    in_range = finite & (scores >= 0) & (scores <= 100)
    if in_range.sum() >= 2 or finite.sum() < 2:
        try:
            return axial_from_scores(z, scores, query)
        except ValueError as exc:
            raise LocsegError(f"body-part scores of case {record.get('case_id', '?')!r}: {exc}") from None
    # interpolation and the least-squares line commute with an affine map of the scores: map the
    # finite scores onto 0..100, apply the one location rule, map back
    lo = float(scores[finite].min())
    k = 100.0 / max(float(scores[finite].max()) - lo, 1e-9)
    mapped = axial_from_scores(z, (scores - lo) * k, query).astype(np.float64) * 100.0 + 50.0
    return ((mapped / k + lo - 50.0) / 100.0).astype(np.float32)

def record_summary(record: dict[str, Any]) -> dict[str, Any]:
    """The per-case figures kept in the manifest (and printed by the CLI)."""
    cleaned = np.asarray([np.nan if v is None else v for v in record["cleaned slice scores"]], dtype=np.float64)
    ok = np.isfinite(cleaned)
    return {"slices": len(cleaned), "valid_slices": int(ok.sum()),
            "score_range": [float(cleaned[ok].min()), float(cleaned[ok].max())] if ok.any() else None,
            "valid z-spacing": record.get("valid z-spacing"), "observed slope": record.get("observed slope"),
            "body part examined tag": record.get("body part examined tag")}
