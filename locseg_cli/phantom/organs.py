"""Painters of the abdominal organs (identical kidneys, liver, spleen, ...) and the great vessels."""

from __future__ import annotations

import numpy as np

from .anatomy import LABEL_OF, LANDMARK_SCORES
from .canvas import Canvas
from .fields import Box, ellipsoid_r, smooth_field, tube_bounds, tube_distance
from .soft_tissue import dome_surface, tube_paint


def paint_organs(c: Canvas, rng: np.random.Generator) -> dict[str, float]:
    g, p = c.g, c.p
    z = p.z
    ct = p.contrast
    L = LABEL_OF
    found: dict[str, float] = {}
    sy = c.at("spine_y", z(38))
    A38 = c.at("A", z(38))
    # kidneys: identical objects on both sides (see module docstring)
    ks = p.organ_scale["kidney"]
    semi_k = np.array([25.0, 19.0, 50.0]) * ks
    zk = {1.0: z(LANDMARK_SCORES["kidney"]) + p.kidney_dz[0], -1.0: z(LANDMARK_SCORES["kidney"]) + p.kidney_dz[1]}
    kidney_top = max(zk.values()) + semi_k[2] * 0.97
    found["kidney"] = float(np.mean(list(zk.values())))
    tex_box = g.box((-400, 400), (-400, 400), (z(-2.0), z(58.0)))
    tex = None
    if tex_box is not None:
        tex = smooth_field(rng, (g.z[tex_box[0]], g.y[tex_box[1]], g.x[tex_box[2]]), 9.0)

    def texture(box: Box) -> np.ndarray | float:
        if tex is None:
            return 0.0
        sl = tuple(slice(b.start - t.start, b.stop - t.start) for b, t in zip(box, tex_box))
        out = np.zeros(tuple(b.stop - b.start for b in box), np.float32)
        src = tex[tuple(slice(max(s.start, 0), max(s.stop, 0)) for s in sl)]
        dst = tuple(slice(max(-s.start, 0), max(-s.start, 0) + n) for s, n in zip(sl, src.shape))
        out[dst] = src
        return out

    # liver: right lobe + left lobe under the right dome; stops above the kidneys at the back
    ls = p.organ_scale["liver"]
    top = z(LANDMARK_SCORES["liver_end"])
    jl = p.jitter["liver"]
    Bm = 0.5 * (c.at("Bant", z(48)) + c.at("Bpost", z(48)))
    rl_c = (0.36 * A38 + jl[0], -0.05 * Bm + jl[1], top - 78 * ls)
    rl_s = (0.62 * A38 * ls, 0.82 * Bm, 82 * ls)
    ll_c = (-0.14 * A38 + jl[0], 0.42 * c.at("Bant", z(50)) + jl[1], top - 40)
    ll_s = (0.45 * A38 * ls, 0.40 * c.at("Bant", z(50)), 36 * ls)
    z_cut = kidney_top + 8.0
    box = g.box((-0.7 * A38, A38), (-Bm - 10, Bm + 20), (rl_c[2] - rl_s[2], top + 5))
    if box is not None:
        X, Y, Z = g.coords(box)
        dome = dome_surface(c, X, Y)
        syb = c.spine_y[box[0]][:, None, None]
        liver = ((ellipsoid_r(X, Y, Z, rl_c, rl_s, 2.2) < 1.0) | (ellipsoid_r(X, Y, Z, ll_c, ll_s, 2.2) < 1.0))
        liver &= c.cavity_depth[box] > 1.0
        liver &= Z < dome - 1.5
        liver &= ~((Y < syb + 38) & (Z < z_cut) & (X > 40))
        liver &= ~((np.abs(X) < 38) & (Y < syb + 42))
        t = texture(box)
        c.paint(box, liver, 102.0 * ct + 5.0 * t, L["liver"])
        vessels = liver & (np.abs(t) < 0.09)
        c.paint(box, vessels, 150.0 * ct, None)
        if liver.any():
            found["liver_top"] = float(Z[liver].max())
    # gallbladder under the liver
    gs = p.organ_scale["gallbladder"]
    gc = (0.28 * A38 + p.jitter["gallbladder"][0], 0.45 * c.at("Bant", z(43)), z(42.5) + p.jitter["gallbladder"][2])
    ellipsoid_paint(c, gc, (14 * gs, 16 * gs, 34 * gs), 12.0, L["gallbladder"], tilt=0.5)
    # spleen: posterolateral left, its lower pole at the same height as the liver's back
    ss = p.organ_scale["spleen"]
    semi_s = (0.22 * A38 * ss, 0.36 * Bm * ss, 50 * ss)
    sz = max(z(48.5), z_cut + semi_s[2] * 0.98)
    sc = (-0.64 * A38 + p.jitter["spleen"][0], -0.42 * Bm + p.jitter["spleen"][1], sz)
    box = g.box((sc[0] - 60, sc[0] + 60), (sc[1] - 70, sc[1] + 70), (sc[2] - 60, sc[2] + 60))
    if box is not None:
        X, Y, Z = g.coords(box)
        m = ellipsoid_r(X, Y, Z, sc, semi_s, tilt_yz=0.4) < 1.0
        m &= ellipsoid_r(X, Y, Z, (sc[0] + 1.45 * semi_s[0], sc[1] + 0.6 * semi_s[1], sc[2]),
                         (semi_s[0] * 0.9, semi_s[1] * 0.8, semi_s[2] * 1.2)) > 1.0
        # the lung's posterior recess lies behind and beside the spleen: let it reach above the dome
        m &= (c.cavity_depth[box] > 1.0) & (Z < dome_surface(c, X, Y) + 30.0) & (Z > z_cut)
        c.paint(box, m, 112.0 * ct + 4.0 * texture(box), L["spleen"])
    # stomach: fundus under the left dome, body and antrum crossing forward to the right; gas in front
    st = p.organ_scale["stomach"]
    Ba = c.at("Bant", z(46))
    fc = (-0.36 * A38 + p.jitter["stomach"][0], 0.08 * Ba, z(50.0) + p.jitter["stomach"][2])
    pts = [fc, (-0.30 * A38, 0.42 * Ba, z(46)), (-0.08 * A38, 0.58 * Ba, z(43.2)), (0.14 * A38, 0.48 * Ba, z(42.5))]
    radii = (36 * st, 30 * st, 24 * st, 15 * st)
    xr, yr, zr = tube_bounds(pts, radii)
    box = g.box(xr, yr, zr)
    if box is not None:
        X, Y, Z = g.coords(box)
        sd = tube_distance(X, Y, Z, pts, radii)
        m = (sd < 0) & (c.cavity_depth[box] > 2.0) & (Z < dome_surface(c, X, Y) - 1.5)
        gas_level = 0.40 * Ba
        c.paint(box, m, 60.0 * ct, L["stomach"])
        lumen = m & (sd < -4.0)
        t = texture(box)
        c.paint(box, lumen, np.where(Y > gas_level, -930.0, 22.0 + 15.0 * t), None)
    # duodenum (unlabelled bowel) around the pancreatic head, well in front of the right kidney
    dpts = [(0.14 * A38, 0.48 * Ba, z(42.5)), (0.30 * A38, sy + 64, z(41)), (0.32 * A38, sy + 60, z(37)),
            (0.12 * A38, sy + 56, z(35)), (-0.12 * A38, sy + 56, z(35.5))]
    res = tube_paint(c, dpts, (12, 12, 12, 11, 10), 40.0 * ct, clip="cavity")
    if res is not None:
        box, sd = res
        c.paint(box, (sd < -3.5) & c.cavity[box], 10.0, None)
    # pancreas: head in the duodenal loop, tail toward the spleen, lobulated
    ps = p.organ_scale["pancreas"]
    pz = z(40.0) + p.jitter["pancreas"][2]
    ppts = [(0.17 * A38, sy + 60, pz - 12), (0.0, sy + 68, pz), (-0.18 * A38, sy + 62, pz + 8),
            (-0.33 * A38, sy + 50, pz + 20)]
    pr = (14 * ps, 9 * ps, 9 * ps, 8 * ps)
    xr, yr, zr = tube_bounds(ppts, pr)
    box = g.box(xr, yr, zr)
    if box is not None:
        X, Y, Z = g.coords(box)
        t = texture(box)
        sd = tube_distance(X, Y, Z, ppts, pr) + 2.5 * t
        m = (sd < 0) & c.cavity[box]
        c.paint(box, m, 95.0 * ct + 6 * t, L["pancreas"])
    # kidneys and adrenals
    for side, lab_k, lab_a, jkey in ((1.0, L["right_kidney"], L["right_adrenal"], "kidney_r"),
                                     (-1.0, L["left_kidney"], L["left_adrenal"], "kidney_l")):
        j = p.jitter[jkey] * np.array([0.6, 0.4, 0.0])
        kc = (side * 0.70 * A38 + j[0], sy + 8 + j[1], zk[side])
        _kidney(c, kc, semi_k, lab_k, ct)
        ac = (side * (0.70 * A38 - 30.0) + j[0], sy + 22 + j[1], zk[side] + semi_k[2] + 8.0)
        for off, semi, tilt in (((0, 0, 0), (4.0, 13.0, 12.0), 0.5), ((0, -7, -3), (4.0, 9.0, 14.0), -0.45)):
            ellipsoid_paint(c, (ac[0] + off[0], ac[1] + off[1], ac[2] + off[2]), semi, 42.0 * ct, lab_a, tilt=tilt)
    # bladder behind the pubic symphysis
    bs = p.organ_scale["bladder"]
    bc = (p.jitter["bladder"][0] * 0.5, 0.2 * c.at("Bant", z(8)), z(8.0) + p.jitter["bladder"][2])
    res = ellipsoid_paint(c, bc, (44 * bs, 36 * bs, 36 * bs), 42.0, L["bladder"], clip="cavity")
    if res is not None:
        box, r = res
        c.paint(box, (r < 1.0 - 3.0 / (36 * bs)) & c.cavity[box], 9.0, None)
    # rectum and sigmoid (unlabelled): gas and stool in front of the sacrum
    rpts = [(0, sy + 4, z(-3)), (0, sy - 2, z(8)), (4, sy + 12, z(17)), (-25, sy + 38, z(23)), (-45, sy + 40, z(27))]
    res = tube_paint(c, rpts, (13, 16, 16, 14, 13), 40.0, clip="cavity")
    if res is not None:
        box, sd = res
        t = texture(box)
        c.paint(box, (sd < -3.0) & c.cavity[box], np.where(t > 0.6, -900.0, -40.0 + 60.0 * t), None)
    return found


def ellipsoid_paint(c: Canvas, ctr, semi, value: float, label: int, tilt: float = 0.0,
                     clip: str = "cavity") -> tuple[Box, np.ndarray] | None:
    g = c.g
    r_ = max(semi)
    box = g.box((ctr[0] - semi[0], ctr[0] + semi[0]), (ctr[1] - r_, ctr[1] + r_), (ctr[2] - r_, ctr[2] + r_))
    if box is None:
        return None
    X, Y, Z = g.coords(box)
    r = ellipsoid_r(X, Y, Z, ctr, semi, tilt_yz=tilt)
    m = r < 1.0
    if clip == "cavity":
        m &= c.cavity[box]
    c.paint(box, m, value, label)
    return box, r


def _kidney(c: Canvas, ctr, semi, label: int, ct: float) -> None:
    """Cortex brighter than medulla, pyramids with columns between them, a renal sinus with fat and
    urine, the hilum opening forward. Symmetric in x: the left kidney is a translated copy."""
    g = c.g
    box = g.box((ctr[0] - semi[0], ctr[0] + semi[0]), (ctr[1] - semi[2], ctr[1] + semi[2]),
                (ctr[2] - semi[2], ctr[2] + semi[2]))
    if box is None:
        return
    X, Y, Z = g.coords(box)
    tilt = 0.25
    cs, sn = np.cos(tilt), np.sin(tilt)
    dy0, dz0 = Y - ctr[1], Z - ctr[2]
    dx = (X - ctr[0]) / semi[0]
    dy = (cs * dy0 - sn * dz0) / semi[1]
    dz = (sn * dy0 + cs * dz0) / semi[2]
    r = np.sqrt(dx * dx + dy * dy + dz * dz)
    kid = (r < 1.0) & c.cavity[box]
    c.paint(box, kid, 175.0 * ct, label)
    phi = np.arctan2(dz, dy)
    column = np.cos(7.0 * phi) > 0.55
    medulla = kid & (r < 0.74) & (r >= 0.42) & ~column
    c.paint(box, medulla, 105.0 * ct, None)
    sinus = kid & (r < 0.42)
    c.paint(box, sinus, -70.0, None)
    c.paint(box, kid & (r < 0.22), 12.0, None)
    hilum = kid & (dy > 0.2) & (np.sqrt(dx * dx + dz * dz) < 0.28)
    c.paint(box, hilum, -70.0, 0)


def Z_of(c: Canvas, box: Box) -> np.ndarray:  # noqa: N802 (the Z coordinate array, like X, Y, Z)
    return c.g.Z[box]


def paint_vessels(c: Canvas) -> None:
    p = c.p
    z = p.z
    ct = p.contrast
    L = LABEL_OF
    sy = c.at("spine_y", z(38))
    syc = c.at("spine_y", z(60))
    ja = p.jitter["heart"][0] * 0.3
    db = p.cue_dz["bifurcation"]  # the bifurcation and the iliac confluence, moved by the level-cue jitter
    # aorta: ascending, arch, descending, abdominal down to the bifurcation at L4
    apts = [(14 + ja, syc + 78, z(59.5)), (15 + ja, syc + 80, z(64.5)), (4, syc + 64, z(68.8)), (-12, syc + 40, z(69.5)),
            (-22, syc + 22, z(66.5)), (-22, syc + 22, z(54)), (-14, sy + 30, z(46)), (-12, sy + 30, z(29.5) + db)]
    ar = (15, 15, 13, 12, 12, 12, 11, 10)
    tube_paint(c, apts, ar, 175.0 * ct, L["aorta"], clip="cavity")
    # inferior vena cava: from the iliac confluence at L5 through the liver into the right atrium
    ipts = [(21, sy + 28, z(27.0) + db), (23, sy + 32, z(44)), (27, sy + 44, z(50)), (22, sy + 56, z(54.0))]
    tube_paint(c, ipts, (11, 12, 13, 14), 122.0 * ct, L["inferior_vena_cava"], clip="cavity")
    # esophagus: behind the trachea, left of the aorta low down, into the stomach's cardia
    A38 = c.at("A", z(38))
    epts = [(-3, c.at("spine_y", z(85)) + 26, z(92)), (-4, syc + 28, z(66)), (-10, syc + 34, z(56)),
            (-22, sy + 48, z(50.5)), (-0.30 * A38, 0.1 * c.at("Bant", z(48)), z(49.0))]
    res = tube_paint(c, epts, (8, 8.5, 8.5, 8.5, 9), 42.0 * ct, L["esophagus"], clip="cavity")
    if res is not None:
        box, sd = res
        c.paint(box, (sd < -7.0) & c.cavity[box] & (Z_of(c, box) > p.z(60)), -900.0, None)
    # iliac arteries and veins (unlabelled)
    for side in (1.0, -1.0):
        pts = [(-12, sy + 30, z(29.5) + db), (side * 50 * p.width, sy + 34, z(20)), (side * 72 * p.width, 22, z(6)),
               (side * 80 * p.width, 30, z(-10))]
        tube_paint(c, pts, (7, 6.5, 6, 6), 175.0 * ct, clip="body")
        pts = [(21, sy + 28, z(27.0) + db), (side * 46 * p.width, sy + 28, z(20)), (side * 70 * p.width, 12, z(6)),
               (side * 78 * p.width, 18, z(-10))]
        tube_paint(c, pts, (8, 7.5, 7, 7), 120.0 * ct, clip="body")
    # portal vein into the liver (unlabelled, bright)
    tube_paint(c, [(8, sy + 64, z(40)), (35, sy + 60, z(44)), (55, sy + 50, z(46))], (7, 7, 5), 160.0 * ct,
                None, clip="cavity")
