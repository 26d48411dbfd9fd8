"""Storage: a painted case turned to its stored orientation, with its affine and ground-truth body position."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from nibabel import orientations as nio

from .canvas import Canvas
from .patient import Patient


@dataclass
class SynthCase:
    """A generated case: stored-orientation HU image (int16), labels (uint8), affine, body position."""

    case_id: str
    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray
    bodypos: dict
    meta: dict = field(default_factory=dict)


def store_case(case_id: str, image: np.ndarray, label: np.ndarray, c: Canvas, p: Patient,
               centres: dict[str, float], found: dict[str, float]) -> SynthCase:
    """Turn the canonical arrays to the patient's stored orientation; record the landmark slices."""
    g = c.g
    sz, sy, sx = p.spacing
    # canonical array (z, y, x) with axcodes S, A, R; world = patient frame shifted to the table
    aff_c = np.array([[0, 0, sx, g.x[0]], [0, sy, 0, g.y[0]], [sz, 0, 0, g.z[0] + p.table_z], [0, 0, 0, 1]],
                     dtype=np.float64)
    transform = nio.ornt_transform(nio.axcodes2ornt(("S", "A", "R")), nio.axcodes2ornt(p.axcodes))
    img = np.ascontiguousarray(nio.apply_orientation(image, transform))
    lab = np.ascontiguousarray(nio.apply_orientation(label, transform))
    affine = aff_c @ nio.inv_ornt_aff(transform, image.shape)
    # ground-truth landmark positions (patient-frame z, mm)
    z_marks: dict[str, float] = {"pelvis_start": 0.0, "femur_end": found.get("femur_top", p.z(13.6)),
                                 "pelvis_end": found["pelvis_end"], "kidney": found["kidney"]}
    for lm, lev in (("L5", "L5"), ("L4", "L4"), ("L3", "L3"), ("L2", "L2"), ("L1", "L1"), ("Th12", "Th12"),
                    ("Th8", "Th8"), ("Th5", "Th5"), ("Th2", "Th2"), ("Th1", "Th1"), ("C6", "C6")):
        z_marks[lm] = centres[lev]
    if "liver_top" in found and found["liver_top"] < g.z[-1] - 0.5 * sz:  # the dome itself, not the crop
        z_marks["liver_end"] = found["liver_top"]
    lungs = getattr(c, "lung_rows", None)
    if lungs is not None:
        if lungs[0] > 0:
            z_marks["lung_start"] = float(g.z[lungs[0]])
        if lungs[1] < len(g.z) - 1:
            z_marks["lung_end"] = float(g.z[lungs[1]])
    bodypos = bodypos_from_affine(affine, img.shape, p.table_z, p.mm_per_score, z_marks)
    meta = {"fov": p.fov_kind, "fov_scores": [round(v, 3) for v in p.fov_scores], "table_z": p.table_z,
            "mm_per_score": p.mm_per_score, "axcodes": list(p.axcodes), "z_marks": z_marks}
    return SynthCase(case_id, img, lab, affine, bodypos, meta)


def bodypos_from_affine(affine: np.ndarray, shape: tuple[int, ...], table_z: float, mm_per_score: float,
                        z_marks: dict[str, float]) -> dict:
    """The per-slice body position of a stored volume, read from its affine (works for any layout's
    reorientation): which array axis is axial, the world superior coordinate and BPR score of each
    index along it, and the landmark slices inside the volume."""
    affine = np.asarray(affine, dtype=np.float64)
    ornt = nio.io_orientation(affine)
    k = int(np.argmax(np.abs(affine[2, :3])))
    idx = np.arange(shape[k])
    z_world = affine[2, k] * idx + affine[2, 3]
    scores = (z_world - table_z) / mm_per_score
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    landmarks = {}
    for name, zp in sorted(z_marks.items(), key=lambda kv: kv[1]):
        zw = zp + table_z
        i = int(np.argmin(np.abs(z_world - zw)))
        if abs(z_world[i] - zw) <= spacing[k] * 0.5 + 1e-6:
            landmarks[name] = {"index": i, "score": round(float(zp / mm_per_score), 4),
                               "z_world_mm": round(float(zw), 3)}
    del ornt
    return {
        "axial_axis": k,
        "spacing_mm": [round(float(s), 6) for s in spacing],
        "z_world_mm": [round(float(v), 4) for v in z_world],
        "scores": [round(float(v), 4) for v in scores],
        "mm_per_score": round(float(mm_per_score), 6),
        "landmarks": landmarks,
    }
