"""Tiny body-position phantoms for the bpr tests: a bright disc whose place moves with body height.

Score s = 100 * height / 850 mm (0 = pelvis start, 100 = eyes end, as bpreg's scale). Each case is
a water ellipse (HU 0) in air with a bone disc (HU 700) whose left-right position moves linearly
with s and a lung-like dark disc (HU -800) whose size grows with s: the regressor can read s from
one slice. Cases can be stored with the axial axis last (default), first, or reversed, always with
a consistent affine, plus a `bodypos/{case}.json` with the ground truth the synthetic cohort writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from locseg_cli.datasets.writers import DatasetWriter

MM_PER_UNIT = 8.5  # 850 mm from pelvis start to eyes end


def phantom_array(scores: np.ndarray, shape_yx: tuple[int, int] = (48, 48), pixel_mm: float = 8.0) -> np.ndarray:
    """(n, y, x) HU slices for body scores `scores` (slice 0 first)."""
    ny, nx = shape_yx
    y = (np.arange(ny) - (ny - 1) / 2) * pixel_mm
    x = (np.arange(nx) - (nx - 1) / 2) * pixel_mm
    yy, xx = np.meshgrid(y, x, indexing="ij")
    out = np.full((len(scores), ny, nx), -1000.0, dtype=np.float32)
    for i, s in enumerate(scores):
        body = (yy / 110.0) ** 2 + (xx / 150.0) ** 2 <= 1
        sl = out[i]
        sl[body] = 0.0
        bx = -110 + 2.2 * np.clip(s, -10, 110)  # bone disc moves right with s
        sl[(yy - 40) ** 2 + (xx - bx) ** 2 <= 22 ** 2] = 700.0
        r = 10 + 0.45 * np.clip(s, -10, 110)  # dark disc grows with s
        sl[body & ((yy + 40) ** 2 + xx ** 2 <= r ** 2)] = -800.0
    return out


def write_phantom_case(root: Path, writer: DatasetWriter, case_id: str, start_score: float, n: int, dz: float,
                       layout: str = "last", pixel_mm: float = 8.0) -> dict:
    """Write one case; `layout`: last (axial axis last, toward S), first (axial first, toward I, like KiTS23),
    reversed (axial last, stored toward I)."""
    scores = start_score + np.arange(n) * dz / MM_PER_UNIT  # slice i is higher than slice i-1
    z_world = 100.0 + np.arange(n) * dz + start_score * MM_PER_UNIT
    canon = phantom_array(scores, pixel_mm=pixel_mm)  # (z up, y, x)
    ny, nx = canon.shape[1:]
    if layout == "last":
        arr = np.transpose(canon, (2, 1, 0))  # (x, y, z) RAS
        aff = np.diag([pixel_mm, pixel_mm, dz, 1.0])
        aff[:3, 3] = [-(nx - 1) / 2 * pixel_mm, -(ny - 1) / 2 * pixel_mm, z_world[0]]
        axis, raw_index = 2, np.arange(n)
    elif layout == "reversed":
        arr = np.transpose(canon[::-1], (2, 1, 0))
        aff = np.diag([pixel_mm, pixel_mm, -dz, 1.0])
        aff[:3, 3] = [-(nx - 1) / 2 * pixel_mm, -(ny - 1) / 2 * pixel_mm, z_world[-1]]
        axis, raw_index = 2, np.arange(n)[::-1]
    elif layout == "first":  # (z toward I, y toward P, x toward L): axcodes I, P, L
        arr = np.ascontiguousarray(canon[::-1, ::-1, ::-1])
        aff = np.zeros((4, 4))
        aff[0, 2] = -pixel_mm
        aff[1, 1] = -pixel_mm
        aff[2, 0] = -dz
        aff[3, 3] = 1
        aff[:3, 3] = [(nx - 1) / 2 * pixel_mm, (ny - 1) / 2 * pixel_mm, z_world[-1]]
        axis, raw_index = 0, np.arange(n)[::-1]
    else:
        raise ValueError(layout)
    writer.write_case(case_id, np.ascontiguousarray(arr), np.zeros(arr.shape, np.uint8), aff)
    # ground truth per raw slice (file order), as the synthetic cohort writes it
    file_scores = np.empty(n)
    file_z = np.empty(n)
    file_scores[raw_index] = scores
    file_z[raw_index] = z_world
    lm = {}
    for name, target in (("pelvis_start", 0.0), ("eyes_end", 100.0)):
        c = int(np.argmin(np.abs(scores - target)))
        if abs(scores[c] - target) < dz / MM_PER_UNIT:
            lm[name] = {"index": int(raw_index[c]), "score": float(target)}
    pos = {"axial_axis": axis, "spacing_mm": [pixel_mm, pixel_mm, dz], "z_world_mm": file_z.tolist(),
           "scores": file_scores.tolist(), "landmarks": lm}
    (root / "bodypos").mkdir(parents=True, exist_ok=True)
    (root / "bodypos" / f"{case_id}.json").write_text(json.dumps(pos))
    return pos


def make_cohort(root: Path, cases: list[tuple[str, float, int, float, str]]) -> Path:
    """A nnU-Net-layout raw dataset of phantom cases (case_id, start score, slices, dz, layout)."""
    w = DatasetWriter(root, {0: "background"})
    for cid, start, n, dz, layout in cases:
        write_phantom_case(root, w, cid, start, n, dz, layout)
    w.finish()
    return root


@pytest.fixture(scope="session")
def phantom_cohort():
    return make_cohort


@pytest.fixture(scope="session")
def phantom_slices():
    """`phantom_array`, for test modules (a `from conftest import` could find another folder's conftest)."""
    return phantom_array
