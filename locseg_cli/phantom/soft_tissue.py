"""Painters of the body wall, thighs, muscles, bowel and chest (lungs, heart, diaphragm dome)."""

from __future__ import annotations

import numpy as np

from .anatomy import LANDMARK_SCORES
from .canvas import Canvas
from .fields import Box, ellipsoid_r, smooth_field, tube_field


def paint_body(c: Canvas, rng: np.random.Generator) -> None:
    g, p = c.g, c.p
    X, Y = g.X, g.Y
    neck = c.neck[:, None, None]
    back = c.back[:, None, None]
    t_lat = (p.fat + p.muscle) * neck
    t_ant = (p.fat + p.fat_anterior + p.muscle) * neck
    t_post = (0.6 * p.fat + p.muscle) * neck + back
    A_out = c.A[:, None, None] + t_lat
    Ba = c.Bant[:, None, None] + t_ant
    Bp = c.Bpost[:, None, None] + t_post
    front = Y >= 0
    ax = np.abs(X) / A_out
    ay = np.abs(Y) / np.where(front, Ba, Bp)
    # superellipse radius: power 2.5 (boxy torso) computed as x*x*sqrt(x), power 2 (round) in the neck
    r = np.empty_like(ax)
    torso = c.neck >= 0.9
    for sel, power in ((torso, 2.5), (~torso, 2.0)):
        if not sel.any():
            continue
        a, b = ax[sel], ay[sel]
        if power == 2.5:
            r[sel] = (a * a * np.sqrt(a) + b * b * np.sqrt(b)) ** 0.4
        else:
            r[sel] = np.sqrt(a * a + b * b)
    rho = np.sqrt(X * X + Y * Y)
    cos2 = (X * X) / np.maximum(rho * rho, 1e-3)
    _thighs(c, X, Y, r, rho, A_out, Ba, Bp)
    depth = rho * (1.0 / np.maximum(r, 1e-3) - 1.0)  # mm from the skin, along the ray from the centre
    sin2 = 1.0 - cos2
    t_loc = t_lat * cos2 + np.where(front, t_ant, t_post) * sin2
    muscle_loc = p.muscle * neck + np.where(front, 0.0, back * sin2)
    inside = r < 1.0
    c.depth = depth
    c.cavity_depth = (depth - t_loc).astype(np.float32)
    c.wall_inner = (t_loc - muscle_loc)  # depth where the muscle layer starts
    everything = (slice(None),) * 3
    texture = smooth_field(rng, (g.z, g.y, g.x), 22.0)
    c.paint(everything, inside, -105.0 + 8.0 * texture)
    c.paint(everything, inside & (depth < 2.0), 25.0)
    c.paint(everything, inside & (depth >= c.wall_inner) & (c.cavity_depth < 0), 52.0)
    c.cavity = inside & (c.cavity_depth >= 0)
    # cavity default: visceral/mediastinal fat in the trunk, muscle in the neck
    neck_tissue = np.broadcast_to((neck < 0.9) | (c.score_of_slice < 0.5)[:, None, None], c.hu.shape)
    c.paint(everything, c.cavity, np.where(neck_tissue, 45.0, -92.0 - 10.0 * texture))
    # table under the patient: flat (not deformed), symmetric, just below the back
    body_y = np.where(inside, Y, np.float32(1e4))
    y_top = float(body_y.min()) - 1.0 if inside.any() else float(g.y[0])
    yy = g.y[None, :, None]
    table = (yy < y_top) & (yy > y_top - 14.0) & (np.abs(g.x[None, None, :]) < 220.0) & ~inside
    shell = table & ((yy > y_top - 2.5) | (yy < y_top - 11.5))
    c.paint(everything, table, -550.0)
    c.paint(everything, shell, 250.0)


def _thighs(c: Canvas, X, Y, r, rho, A_out, Ba, Bp) -> None:
    """Below the pelvis the body splits into two thighs: replace the torso's superellipse radius
    (and the ray length) there by the nearer thigh's, in place."""
    low = np.nonzero(c.score_of_slice < 2.0)[0]
    if low.size == 0:
        return
    sl = slice(int(low[0]), int(low[-1]) + 1)
    shrink = np.clip((2.0 - c.score_of_slice[sl]) / 5.0, 0.0, 1.0)[:, None, None].astype(np.float32)
    Xs, Ys = X[sl], Y[sl]
    a_out = A_out[sl] if A_out.shape[0] > 1 else A_out
    xt = 0.5 * a_out
    at = (0.5 - 0.07 * shrink) * a_out
    bt = 0.47 * (Ba[sl] + Bp[sl]) * (1.0 - 0.1 * shrink)
    yc = 0.5 * (Ba[sl] - Bp[sl])
    best_r = r[sl] / np.maximum(1.0 - 0.8 * shrink, 0.05)
    best_rho = rho[sl]
    for side in (1.0, -1.0):
        dx, dy = Xs - side * xt, Ys - yc
        rt = np.sqrt((dx / at) ** 2 + (dy / bt) ** 2)
        take = rt < best_r
        best_r = np.where(take, rt, best_r)
        best_rho = np.where(take, np.sqrt(dx * dx + dy * dy), best_rho)
    r[sl] = best_r
    rho[sl] = best_rho


def paint_muscles(c: Canvas) -> None:
    g, p = c.g, c.p
    z = p.z
    sy = c.at("spine_y", z(38))
    for side in (1.0, -1.0):
        # erector spinae along the whole back
        pts = [(side * 33, sy - 44, z(8)), (side * 33, sy - 44, z(44)), (side * 32, c.at("spine_y", z(60)) - 38, z(60)),
               (side * 28, c.at("spine_y", z(78)) - 32, z(82))]
        tube_paint(c, pts, (22, 25, 20, 16), 50.0, clip="wall")
        # psoas: from L1 along the spine to the groin (its lumbar part moved by the level-cue jitter)
        dp, dq = p.cue_dz["psoas"], p.cue_dz["quadratus"]
        pts = [(side * 28, sy + 4, z(44) + dp), (side * 40, sy + 6, z(34) + dp), (side * 52, sy + 14, z(24) + dp),
               (side * 62, 10, z(12)), (side * 68, 18, z(1))]
        tube_paint(c, pts, (7, 15, 21, 21, 16), 52.0)
        # quadratus lumborum
        pts = [(side * 55, sy - 14, z(46) + dq), (side * 66, sy - 18, z(29) + dq)]
        tube_paint(c, pts, (9, 13), 50.0)
        # gluteal muscles, lateral and behind the pelvis
        ctr = (side * 92 * p.width, -42.0, z(12))
        box = g.box((ctr[0] - 70, ctr[0] + 70), (ctr[1] - 60, ctr[1] + 60), (ctr[2] - 110, ctr[2] + 110))
        if box is not None:
            X, Y, Z = g.coords(box)
            m = (ellipsoid_r(X, Y, Z, ctr, (62, 55, 105)) < 1.0) & (c.depth[box] >= c.wall_inner[box])
            c.paint(box, m, 50.0)


def tube_paint(c: Canvas, pts, radii, value: float, label: int = 0, clip: str = "body",
                wall: float = 0.0, wall_value: float | None = None) -> tuple[Box, np.ndarray] | None:
    field = tube_field(c.g, pts, radii)
    if field is None:
        return None
    box, sd = field
    m = sd < 0
    if clip == "wall":
        m &= c.depth[box] >= c.wall_inner[box]
    elif clip == "cavity":
        m &= c.cavity[box]
    else:
        m &= c.depth[box] > 2.0
    c.paint(box, m, value, label)
    if wall > 0 and wall_value is not None:
        c.paint(box, m & (sd > -wall), wall_value, None)
    return box, sd


def paint_bowel(c: Canvas, rng: np.random.Generator, dome_low: float) -> None:
    """Random bowel loops (soft tissue with fluid and gas) filling the abdominal and pelvic cavity:
    statistically the same on both sides, so they carry no side information."""
    g, p = c.g, c.p
    box = g.box((-400, 400), (-400, 400), (p.z(2.0), dome_low))
    if box is None:
        return
    X, Y, Z = g.coords(box)
    lines = (g.z[box[0]], g.y[box[1]], g.x[box[2]])
    f1 = smooth_field(rng, lines, 16.0)
    f2 = smooth_field(rng, lines, 30.0)
    sy = c.spine_y[box[0]][:, None, None]
    keep = c.cavity[box] & ~((np.abs(X) < 75) & (Y < sy + 12))
    loops = keep & (f1 > 0.2)
    c.paint(box, loops, 55.0 * p.contrast + 6.0 * f2)  # enhancing bowel wall
    lumen = keep & (f1 > 0.55)
    content = np.where(f2 > 1.0, -880.0, np.where(f2 < -0.8, 5.0 + 25.0 * f1, 18.0 + 10.0 * f1))
    c.paint(box, lumen, content)


# --------------------------------------------------------------------------------------------------
# chest
# --------------------------------------------------------------------------------------------------

def dome_surface(c: Canvas, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Height (mm) of the diaphragm above each (x, y): two domes, the right one at liver_end."""
    p = c.p
    A = c.at("A", p.z(50))
    Ba, Bp = c.at("Bant", p.z(50)), c.at("Bpost", p.z(50))
    yd = 0.1 * Ba
    out = None
    for side, top in ((1.0, p.z(LANDMARK_SCORES["liver_end"])), (-1.0, p.z(LANDMARK_SCORES["liver_end"] - 1.2))):
        post_target = (-0.85 * Bp - yd) / Bp
        drop_post = (top - p.z(LANDMARK_SCORES["lung_start"])) / post_target ** 2
        v = (Y - yd) / np.where(Y < yd, Bp, Ba)
        u = (X - side * 0.42 * A) / (0.9 * A)
        h = top - 45.0 * u * u - np.where(Y < yd, drop_post, 0.45 * drop_post) * v * v
        out = h if out is None else np.maximum(out, h)
    return out


def paint_chest(c: Canvas, rng: np.random.Generator) -> None:
    g, p = c.g, c.p
    z = p.z
    box = g.box((-400, 400), (-400, 400), (z(42.0), z(80.0)))
    if box is None:
        return
    X, Y, Z = g.coords(box)
    dome = dome_surface(c, X, Y)
    A = c.A[box[0]][:, None, None]
    sy = c.spine_y[box[0]][:, None, None]
    Bm = 0.5 * (c.Bant[box[0]] + c.Bpost[box[0]])[:, None, None]
    cav = c.cavity_depth[box]
    apex_c = z(62.0)
    apex = (((np.abs(X) - 0.45 * A) / (0.58 * A)) ** 2 + (Y / Bm) ** 2
            + ((Z - apex_c) / (z(LANDMARK_SCORES["lung_end"]) - apex_c)) ** 2) < 1.0
    # mediastinum and paravertebral gutters as rounded shapes (the lungs wrap around them)
    mediastinum = (((X + 8) / 26) ** 2 + ((Y - sy - 70) / 75) ** 2 < 1.0) \
        | ((X / 38) ** 2 + ((Y - sy - 8) / 30) ** 2 < 1.0) \
        | ((X / 70) ** 2 + ((Y - sy + 34) / 30) ** 2 < 1.0)
    lung = (cav > 9.0) & (Z > dome + 2.0) & ((Z < apex_c) | apex) & ~mediastinum
    lines = (g.z[box[0]], g.y[box[1]], g.x[box[2]])
    f1 = smooth_field(rng, lines, 11.0)
    f2 = smooth_field(rng, lines, 11.0)
    hilum = np.sqrt(((np.abs(X) - 45) / 1.0) ** 2 + (Y - sy - 35) ** 2 + (Z - z(60)) ** 2)
    thr = 0.07 + 0.12 * np.exp(-hilum / 70.0)
    vessel = (np.abs(f1) < thr) & (np.abs(f2) < thr)
    c.paint(box, lung, np.where(vessel, -40.0, -860.0 + 12.0 * f1))
    rows = np.nonzero(lung.any(axis=(1, 2)))[0]
    if rows.size:
        c.lung_rows = (int(rows[0] + box[0].start), int(rows[-1] + box[0].start))
    c.chest_box, c.dome_box = box, dome
    # heart on the central diaphragm, left of the midline
    hs = p.organ_scale["heart"]
    semi = (56 * hs * p.width, 44 * hs, 50 * hs)
    ctr = (-0.14 * c.at("A", z(58)), c.at("spine_y", z(58)) + 36 + semi[1], z(58.3)) + p.jitter["heart"] * (1, 0.3, 0.5)
    r = ellipsoid_r(X, Y, Z, ctr, semi)
    above = Z > dome - 2.0
    c.paint(box, (r < 1.1) & (r >= 1.0) & above & (cav > 0), -85.0)
    c.paint(box, (r < 1.0) & above, 95.0 * p.contrast)
    # chambers: a thick-walled left ventricle (left, behind), the right ventricle as a crescent in
    # front of it, the atria at the back; blood brighter than myocardium
    sx, sy_h, sz_h = semi
    lv = ellipsoid_r(X, Y, Z, (ctr[0] - 0.28 * sx, ctr[1] - 0.05 * sy_h, ctr[2] - 0.1 * sz_h),
                     (0.36 * sx, 0.42 * sy_h, 0.55 * sz_h)) < 1.0
    lv_wall = ellipsoid_r(X, Y, Z, (ctr[0] - 0.28 * sx, ctr[1] - 0.05 * sy_h, ctr[2] - 0.1 * sz_h),
                          (0.36 * sx + 9, 0.42 * sy_h + 9, 0.55 * sz_h + 9)) < 1.0
    rv = (ellipsoid_r(X, Y, Z, (ctr[0] + 0.22 * sx, ctr[1] + 0.3 * sy_h, ctr[2] - 0.15 * sz_h),
                      (0.5 * sx, 0.45 * sy_h, 0.5 * sz_h)) < 1.0) & ~lv_wall
    atria = (ellipsoid_r(X, Y, Z, (ctr[0] + 0.1 * sx, ctr[1] - 0.55 * sy_h, ctr[2] + 0.35 * sz_h),
                         (0.7 * sx, 0.3 * sy_h, 0.4 * sz_h)) < 1.0) & ~lv_wall
    blood = (lv | rv | atria) & (r < 0.93) & above
    c.paint(box, blood, (160.0 + 10.0 * lv) * p.contrast)
    # trachea and main bronchi
    ty = c.at("spine_y", z(66)) + 42
    pts = [(0, ty, z(92)), (0, ty, z(64.5))]
    tube_paint(c, pts, (9.5, 9.5), 40.0, clip="body")
    tube_paint(c, pts, (7.5, 7.5), -1000.0, clip="body")
    for side in (1.0, -1.0):
        bp = [(0, ty, z(64.5)), (side * 40, ty - 8, z(60.5))]
        tube_paint(c, bp, (6.5, 5.0), 40.0, clip="body")
        tube_paint(c, bp, (4.8, 3.4), -1000.0, clip="body")
