"""Painters of the skeleton: the spine (identical lumbar vertebrae labelled by level), ribs, pelvis, femurs,
shoulder girdle."""

from __future__ import annotations

import numpy as np

from .anatomy import LABEL_OF, LANDMARK_SCORES, LEVELS, LUMBAR, LUMBAR_PITCH_SCORE, level_pitch, level_scores
from .canvas import Canvas
from .fields import Box, ellipsoid_r, tube_distance, tube_field
from .organs import ellipsoid_paint
from .patient import Patient


def _bone(c: Canvas, box: Box, sd: np.ndarray, label: int, shell: float = 2.0, marrow: float | None = None,
          clip: np.ndarray | None = None) -> None:
    """Cortical shell of `shell` mm over marrow, from a signed distance (mm, < 0 inside)."""
    p = c.p
    m = sd < 0
    if clip is not None:
        m &= clip
    c.paint(box, m, p.cortex_hu, label)
    c.paint(box, m & (sd < -shell), p.marrow_hu if marrow is None else marrow, None)


def _vertebra_size(name: str) -> float:
    knots = {"L": 1.0, "Th12": 0.92, "Th8": 0.8, "Th1": 0.68, "C7": 0.6, "C3": 0.55}
    if name in LUMBAR:
        return 1.0
    order = list(LEVELS)
    keys = [k for k in knots if k != "L"]
    xs = [order.index(k) for k in keys]
    return float(np.interp(order.index(name), xs, [knots[k] for k in keys]))


def paint_spine(c: Canvas) -> dict[str, float]:
    g, p = c.g, c.p
    L = LABEL_OF
    scores = level_scores()
    centres: dict[str, float] = {}
    vw = p.vertebra_width
    zlo, zhi = float(g.z[0]) - 40, float(g.z[-1]) + 40
    prev = None
    for name in LEVELS:
        zc = p.z(scores[name])
        centres[name] = zc
        f = _vertebra_size(name)
        pitch_mm = level_pitch(name) * p.mm_per_score
        half_h = 0.37 * pitch_mm
        # disc to the vertebra below
        if prev is not None and zlo < zc < zhi + 60:
            pz, pf, ph = prev
            gap_c = 0.5 * ((pz + ph) + (zc - half_h))
            gap_h = 0.5 * ((zc - half_h) - (pz + ph))
            sy_d = c.at("spine_y", gap_c)
            ellipsoid_paint(c, (0.0, sy_d, gap_c), (21 * f * vw, 15 * f * vw, gap_h), 85.0, 0, clip="none")
        prev = (zc, f, half_h)
        if not (zlo < zc < zhi):
            continue
        sy = c.at("spine_y", zc)
        label = L[name] if name in LUMBAR else 0
        semi = (23 * f * vw, 17 * f * vw, half_h)
        box = g.box((-60 * f - 10, 60 * f + 10), (sy - 75 * f, sy + semi[1]), (zc - half_h - 22, zc + half_h + 8))
        if box is None:
            continue
        X, Y, Z = g.coords(box)
        r = ellipsoid_r(X, Y, Z, (0.0, sy, zc), semi, power=3.0)
        sd_body = (r - 1.0) * min(semi[0], semi[1], semi[2])
        thoracic = name.startswith("Th") or name.startswith("C")
        tp = 45 * f if not thoracic else 36 * f
        drop = 8.0 if not thoracic else 18.0
        post = [
            ([(11 * f, sy - 12 * f, zc), (11 * f, sy - 30 * f, zc)], (5 * f, 5 * f)),
            ([(-11 * f, sy - 12 * f, zc), (-11 * f, sy - 30 * f, zc)], (5 * f, 5 * f)),
            ([(11 * f, sy - 30 * f, zc), (0, sy - 40 * f, zc - 3)], (4.5 * f, 4.5 * f)),
            ([(-11 * f, sy - 30 * f, zc), (0, sy - 40 * f, zc - 3)], (4.5 * f, 4.5 * f)),
            ([(0, sy - 40 * f, zc - 3), (0, sy - 62 * f, zc - 3 - drop)], (5.5 * f, 4.5 * f)),
            ([(11 * f, sy - 28 * f, zc + 2), (tp, sy - 32 * f, zc + 2)], (5 * f, 4 * f)),
            ([(-11 * f, sy - 28 * f, zc + 2), (-tp, sy - 32 * f, zc + 2)], (5 * f, 4 * f)),
        ]
        sd_post = None
        for pts, rad in post:
            d = tube_distance(X, Y, Z, pts, rad)
            sd_post = d if sd_post is None else np.minimum(sd_post, d)
        # spinal canal (fluid) between body and arch
        canal = ((X / (10 * f)) ** 2 + ((Y - (sy - 27 * f)) / (8.5 * f)) ** 2) < 1.0
        canal &= np.abs(Z - zc) < pitch_mm * 0.6
        c.paint(box, canal & (c.depth[box] > 2), 25.0)
        _bone(c, box, np.minimum(sd_body, sd_post), label, shell=2.2)
        if thoracic and name.startswith("Th"):
            _ribs(c, name, zc, sy, f)
    return centres


def _ribs(c: Canvas, name: str, zc: float, sy: float, f: float) -> None:
    """A rib pair: from the vertebra along the inner chest wall, sloping down toward the front."""
    n = int(name[2:])
    A = c.at("A", zc) - 2.0
    Ba, Bp = c.at("Bant", zc) + 2.0, c.at("Bpost", zc) + 2.0
    power = 2.5
    phi_end = {11: 1.6, 12: 1.15}.get(n, 2.55)  # floating ribs are short
    drop = {11: 30.0, 12: 22.0}.get(n, 30.0 + 3.0 * n)
    phis = np.linspace(0.55, phi_end, 7)
    for side in (1.0, -1.0):
        pts = [(side * 18 * f, sy - 4 * f, zc + 6), (side * 40 * f, sy - 30 * f, zc + 4)]
        for k, phi in enumerate(phis):
            dx, dy = np.sin(phi), -np.cos(phi)
            B = Bp if dy < 0 else Ba
            rho = 1.0 / ((abs(dx) / A) ** power + (abs(dy) / B) ** power) ** (1.0 / power)
            frac = k / (len(phis) - 1)
            pts.append((side * rho * dx, rho * dy, zc - drop * frac ** 1.3))
        _tube_paint_bone(c, pts, 4.3 * max(f, 0.8), shell=1.5)


def _tube_paint_bone(c: Canvas, pts, radius: float, label: int = 0, shell: float = 1.8,
                     marrow: float | None = None) -> bool | None:
    field = tube_field(c.g, pts, [radius] * len(pts))
    if field is None:
        return None
    box, sd = field
    _bone(c, box, sd, label, shell=shell, marrow=marrow, clip=c.depth[box] > 2.0)
    return True


def paint_pelvis(c: Canvas, centres: dict[str, float]) -> dict[str, float]:
    g, p = c.g, c.p
    z = p.z
    w = p.width
    found: dict[str, float] = {}
    sy = c.at("spine_y", z(20))
    # sacrum: a tapering, backward-curving wedge below L5
    l5 = centres["L5"]
    top = l5 - 0.5 * LUMBAR_PITCH_MM(p) - 2.0
    bottom = z(5.5)
    n = 9
    ts = np.linspace(0, 1, n)
    box = g.box((-60, 60), (sy - 60, sy + 30), (bottom - 10, top + 5))
    if box is not None:
        X, Y, Z = g.coords(box)
        sd = None
        for t in ts:
            ctr = (0.0, sy - 3 - 38 * t ** 1.5, top - 16 - t * (top - 16 - bottom - 6))
            semi = (48 - 36 * t, 18 - 9 * t, 18 - 8 * t)
            r = ellipsoid_r(X, Y, Z, ctr, semi, power=2.5)
            d = (r - 1.0) * min(semi)
            sd = d if sd is None else np.minimum(sd, d)
        _bone(c, box, sd, 0, shell=2.0, clip=c.depth[box] > 2.0)
    # iliac wings: the lateral half of an ellipsoidal shell, crest at pelvis_end
    crest = z(LANDMARK_SCORES["pelvis_end"]) + p.crest_dz
    found["pelvis_end"] = crest
    for side in (1.0, -1.0):
        ctr = (side * 30 * w, sy + 18, crest - 70 - p.crest_dz)
        semi = (100 * w, 72, 70 + p.crest_dz)
        box = g.box((ctr[0] - 110 * w, ctr[0] + 110 * w), (sy - 60, sy + 95), (z(11), crest + 3))
        if box is None:
            continue
        X, Y, Z = g.coords(box)
        r = ellipsoid_r(X, Y, Z, ctr, semi)
        sd = np.maximum((r - 1.0) * 70.0, -((r - 1.0) * 70.0 + 6.0))  # a 6 mm thick shell
        keep = (side * X > 36 * w) & (Z > ctr[2] - 28.0) & (Y > sy - 42) & (Y < sy + 74)
        _bone(c, box, np.where(keep, sd, 1.0), 0, shell=1.8, clip=c.depth[box] > 2.0)
    # hips: femoral head (top = femur_end), neck, trochanter, shaft; acetabulum; pubis; ischium
    fs = p.organ_scale["femur"]
    rh = 23.0 * fs
    zh = z(LANDMARK_SCORES["femur_end"]) - rh
    found["femur_top"] = zh + rh
    ysym = c.at("Bant", z(4)) - 22.0
    for side in (1.0, -1.0):
        hc = (side * 88 * w, -6.0, zh)
        troch = (side * 118 * w, -16.0, zh - 26)
        _tube_paint_bone(c, [hc, hc], rh, shell=1.8)
        _tube_paint_bone(c, [hc, troch], 14 * fs, shell=2.0)
        _tube_paint_bone(c, [troch, (side * 112 * w, -8.0, zh - 60), (side * 104 * w, 0.0, zh - 260)], 14 * fs,
                         shell=4.5, marrow=60.0)
        box = g.box((hc[0] - 35, hc[0] + 35), (hc[1] - 35, hc[1] + 35), (zh - 35, zh + 35))
        if box is not None:
            X, Y, Z = g.coords(box)
            d = np.sqrt((X - hc[0]) ** 2 + (Y - hc[1]) ** 2 + (Z - hc[2]) ** 2)
            cup = (d > rh + 2.5) & (d < rh + 10) & ((side * (X - hc[0]) < 6) | (Z > zh + 4))
            _bone(c, box, np.where(cup, -3.0, 1.0), 0, shell=1.8)
        # the ilium's body: from the wing down to the acetabulum roof
        _tube_paint_bone(c, [(side * 86 * w, -8.0, zh + rh + 3), (side * 98 * w, sy + 14, crest - 96 - p.crest_dz)],
                         13.0)
        # pubic rami to the symphysis, ischium down to the tuberosity (lowest point = pelvis_start)
        tub = (side * 56 * w, -34.0, 12.0)
        _tube_paint_bone(c, [(side * 70 * w, 6.0, zh - 2), (side * 22, ysym, z(4.5)), (side * 4, ysym, z(4.0))], 8.5)
        _tube_paint_bone(c, [(side * 80 * w, -14.0, zh - 10), tub], 12.0)
        _tube_paint_bone(c, [tub, (side * 12, ysym - 6, z(4.5))], 7.0)
    found["pelvis_bottom"] = 0.0
    return found


def LUMBAR_PITCH_MM(p: Patient) -> float:  # noqa: N802 (reads as a constant of the patient)

    return LUMBAR_PITCH_SCORE * p.mm_per_score


def paint_upper_skeleton(c: Canvas) -> None:
    p = c.p
    z = p.z
    # sternum and clavicles
    pts = [(0.0, c.at("Bant", z(59)) + 3, z(58.5)), (0.0, c.at("Bant", z(71)) + 3, z(72.0))]
    _tube_paint_bone(c, pts, 8.0, shell=1.5)
    for side in (1.0, -1.0):
        pts = [(side * 16, c.at("Bant", z(73)) + 4, z(73.5)), (side * 80 * p.width, c.at("Bant", z(75)) - 10, z(76)),
               (side * 135 * p.width, -20.0, z(77.5))]
        _tube_paint_bone(c, pts, 7.5, shell=2.0)
        # scapula: a thin plate behind the upper ribs
        ctr = (side * 105 * p.width, -c.at("Bpost", z(66)) - 14, z(66))
        box = c.g.box((ctr[0] - 60, ctr[0] + 60), (ctr[1] - 30, ctr[1] + 30), (ctr[2] - 80, ctr[2] + 80))
        if box is not None:
            X, Y, Z = c.g.coords(box)
            r = ellipsoid_r(X, Y, Z, ctr, (45, 40, 75))
            plate = (r < 1.0) & (np.abs((Y - ctr[1]) + 0.35 * side * (X - ctr[0])) < 3.0)
            plate &= (c.cavity_depth[box] < -6.0) & (c.depth[box] >= c.wall_inner[box] + 2.0)
            _bone(c, box, np.where(plate, -2.0, 1.0), 0, shell=3.0)
