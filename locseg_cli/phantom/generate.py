"""One synthetic CT case: a torso from below the pelvis to the neck, in Hounsfield units, with labels
and the ground-truth body position of every slice.

Design for the location question (docs/phantom.md): a CNN tells left from right by whatever asymmetric
thing lies inside its patch, and tells vertebral levels apart by whatever differs between them.
So the phantom keeps
- the two kidneys identical objects (same shape, same orientation: hilum facing forward, tilted only
  in the sagittal plane, so a kidney and its mirror image are the same), drawn from the same
  distributions on both sides, with mirror-symmetric close surroundings (psoas, quadratus lumborum,
  erector spinae, perirenal fat, random bowel texture); liver and spleen both stop above the
  kidneys' upper poles at the same height; the adrenals are identical too;
- the lumbar vertebrae L1..L5 identical copies (same size, same spacing, no lordosis, same
  intensity), each labelled by its level, in a longer run of similar thoracic vertebrae;
- the organs' heights jittered against the spine per patient, so that no organ fixes a level.
Only the global position in the body disambiguates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from nibabel import orientations as nio
from scipy import ndimage

from .anatomy import (
    LABEL_OF,
    LANDMARK_SCORES,
    LEVELS,
    LUMBAR,
    LUMBAR_PITCH_SCORE,
    MM_PER_SCORE,
    level_pitch,
    level_scores,
)
from .config import SynthConfig, parse_spacing
from .fields import Box, Grid, ellipsoid_r, smooth_field, tube_bounds, tube_distance

# Storage orientations scanners and converters produce (nibabel axcodes of the stored array), with
# how often each is drawn; ("I", "P", "L") is KiTS23's axial-first layout.
ORIENTATIONS: tuple[tuple[tuple[str, str, str], float], ...] = (
    (("L", "P", "S"), 0.35), (("R", "A", "S"), 0.2), (("L", "A", "S"), 0.15), (("R", "P", "I"), 0.1),
    (("I", "P", "L"), 0.2),
)

# Body cross-section (inner boundary of the abdominal/chest wall, mm, before the patient's scaling)
# along the body-position scale: half-width, anterior and posterior half-depth.
_S = np.array([-15, -4, 3, 12, 22, 29, 36, 44, 52, 60, 68, 73, 76, 79, 95], dtype=np.float64)
_A = np.array([125, 132, 140, 143, 140, 132, 128, 130, 132, 135, 138, 134, 95, 48, 44], dtype=np.float64)
_BANT = np.array([80, 82, 85, 82, 78, 80, 86, 92, 92, 90, 84, 78, 60, 45, 43], dtype=np.float64)
_BPOST = np.array([88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 86, 66, 46, 44], dtype=np.float64)
_SPINE_DEPTH = np.array([55, 55, 55, 55, 55, 55, 55, 55, 48, 42, 40, 40, 36, 30, 30], dtype=np.float64)
_BACK_MUSCLE = np.array([0, 0, 0, 0, 0, 0, 0, 0, 4, 18, 24, 22, 12, 2, 0], dtype=np.float64)  # shoulder girdle
_NECK = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.7, 0.45, 0.4], dtype=np.float64)

FIXED_FOV_JITTER = 1.5
LEVEL_CUES = ("psoas", "quadratus", "bifurcation")
CT_MATRIX = 512  # reconstruction matrix of clinical CT: slices are at most 512 x 512
VARYING_FOV = (  # (name, score from, score to): AMOS22/KiTS23-like ranges, each jittered by +-4
    ("abdomen", 18.0, 57.0), ("abdomen-pelvis", -3.0, 55.0), ("chest-abdomen-pelvis", -4.0, 78.0),
    ("chest-abdomen", 22.0, 76.0), ("kidneys", 24.0, 50.0),
)


@dataclass
class SynthCase:
    """A generated case: stored-orientation HU image (int16), labels (uint8), affine, body position."""

    case_id: str
    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray
    bodypos: dict
    meta: dict = field(default_factory=dict)


@dataclass
class Patient:
    """The random draw that makes one patient differ from another."""

    mm_per_score: float
    width: float
    depth: float
    fat: float
    fat_anterior: float
    muscle: float
    contrast: float
    noise_hu: float
    vertebra_width: float
    marrow_hu: float
    cortex_hu: float
    organ_scale: dict[str, float]
    jitter: dict[str, np.ndarray]
    kidney_dz: tuple[float, float]
    fov_scores: tuple[float, float]
    fov_kind: str
    spacing: tuple[float, float, float]
    axcodes: tuple[str, str, str]
    table_z: float
    centre_xy: tuple[float, float]
    crest_dz: float = 0.0  # iliac crest height against the spine (at L4, or nearer L3/L5)
    # lumbar soft-tissue level cues moved against the spine (mm; SynthConfig.level_cue_jitter)
    cue_dz: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LEVEL_CUES, 0.0))

    def z(self, score: float) -> float:
        return float(score) * self.mm_per_score


CASE_STREAM = 0x5EED  # everything about a case but the level cues
LEVEL_CUE_STREAM = 0x1E7E1  # the level-cue shifts: a stream of their own


def case_rng(seed: int, index: int, stream: int = CASE_STREAM) -> np.random.Generator:
    """Each case's random stream depends on (seed, index) only: results do not depend on workers."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index), stream]))


def level_cue_shifts(seed: int, index: int, levels: float, mm_per_score: float) -> dict[str, float]:
    """Per-structure shifts (mm) of the lumbar level cues, uniform in +-`levels` lumbar pitches.

    Drawn from a stream of their own, so that a cohort without jitter stays byte-identical to one
    generated before the option existed."""
    if levels <= 0:
        return dict.fromkeys(LEVEL_CUES, 0.0)
    rng = case_rng(seed, index, LEVEL_CUE_STREAM)
    reach = levels * LUMBAR_PITCH_SCORE * mm_per_score
    return {name: float(rng.uniform(-reach, reach)) for name in LEVEL_CUES}


def sample_patient(rng: np.random.Generator, config: SynthConfig) -> Patient:
    u = rng.uniform
    organs = ("liver", "spleen", "kidney", "stomach", "bladder", "pancreas", "heart", "gallbladder", "femur")
    organ_scale = {k: float(u(0.88, 1.12)) for k in organs}
    jitter = {k: rng.normal(0.0, 5.0, size=3) for k in organs + ("kidney_r", "kidney_l")}
    # kidney heights vary by up to about half a vertebra either way, independently per side, so a
    # kidney does not pin the level of the vertebra beside it
    kidney_dz = tuple(float(np.clip(rng.normal(0.0, 10.0), -20.0, 20.0)) for _ in range(2))
    spacing_opt = parse_spacing(config.spacing)
    if len(spacing_opt) == 3 and not isinstance(spacing_opt[0], tuple):
        spacing = tuple(float(s) for s in spacing_opt)
    else:
        (lo, hi), slices = spacing_opt  # type: ignore[misc]
        inplane = round(float(u(lo, hi)), 3)
        spacing = (float(rng.choice(np.asarray(slices))), inplane, inplane)
    if config.fov == "fixed":
        a, b = config.score_range
        fov = (a + u(-FIXED_FOV_JITTER, FIXED_FOV_JITTER), b + u(-FIXED_FOV_JITTER, FIXED_FOV_JITTER))
        kind = "fixed"
    else:
        kind, a, b = VARYING_FOV[int(rng.integers(len(VARYING_FOV)))]
        fov = (a + u(-4, 4), b + u(-4, 4))
    if config.orientation == "fixed":
        axcodes = ("R", "A", "S")
    else:
        probs = np.array([p for _, p in ORIENTATIONS])
        axcodes = ORIENTATIONS[int(rng.choice(len(ORIENTATIONS), p=probs / probs.sum()))][0]
    return Patient(
        mm_per_score=MM_PER_SCORE * float(u(0.93, 1.07)), width=float(u(0.9, 1.1)), depth=float(u(0.88, 1.12)),
        fat=float(u(8, 28)), fat_anterior=float(u(0, 22)), muscle=float(u(8, 13)), contrast=float(u(0.85, 1.15)),
        noise_hu=float(u(8, 18)), vertebra_width=float(u(0.92, 1.08)), marrow_hu=float(u(190, 260)),
        cortex_hu=float(u(650, 900)), organ_scale=organ_scale, jitter=jitter, kidney_dz=kidney_dz,
        fov_scores=(float(fov[0]), float(fov[1])), fov_kind=kind, spacing=spacing, axcodes=axcodes,
        table_z=float(u(-900, -300)), centre_xy=(float(u(-12, 12)), float(u(-10, 10))),
        crest_dz=float(u(-15.0, 15.0)),
    )


class Canvas:
    """The canonical (z, y, x) HU and label arrays being painted, with the body's geometry."""

    def __init__(self, grid: Grid, p: Patient):
        self.g = grid
        self.p = p
        self.hu = np.full(grid.shape, -1000.0, dtype=np.float32)
        self.lab = np.zeros(grid.shape, dtype=np.uint8)
        s = grid.z / p.mm_per_score
        self.score_of_slice = s
        w, d = p.width, p.depth
        self.A = np.interp(s, _S, _A).astype(np.float32) * w
        self.Bant = np.interp(s, _S, _BANT).astype(np.float32) * d
        self.back = np.interp(s, _S, _BACK_MUSCLE).astype(np.float32)  # posterior wall muscle, inward
        self.Bpost = np.interp(s, _S, _BPOST).astype(np.float32) * d - self.back
        neck = np.interp(s, _S, _NECK).astype(np.float32)
        self.spine_y = (-np.interp(s, _S, _BPOST).astype(np.float32) * d + p.fat * 0.6 * neck + np.interp(s, _S, _SPINE_DEPTH) * np.sqrt(d)).astype(
            np.float32)
        self.neck = neck

    # profile values at a patient-frame z (mm)
    def at(self, name: str, z: float) -> float:
        s = z / self.p.mm_per_score
        w, d = self.p.width, self.p.depth
        if name == "A":
            return float(np.interp(s, _S, _A) * w)
        if name == "Bant":
            return float(np.interp(s, _S, _BANT) * d)
        if name == "Bpost":  # inner boundary of the back wall
            return float(np.interp(s, _S, _BPOST) * d - np.interp(s, _S, _BACK_MUSCLE))
        if name == "spine_y":
            neck = float(np.interp(s, _S, _NECK))
            return float(-np.interp(s, _S, _BPOST) * d + self.p.fat * 0.6 * neck
                         + np.interp(s, _S, _SPINE_DEPTH) * np.sqrt(d))
        raise KeyError(name)

    def paint(self, box: Box, mask: np.ndarray, value, label: int | None = 0) -> None:
        """Set HU (scalar or array over the box) where `mask`; set the label too unless `label` is None."""
        sub = self.hu[box]
        if np.ndim(value):
            sub[mask] = value[mask]
        else:
            sub[mask] = value
        if label is not None:
            self.lab[box][mask] = label


# --------------------------------------------------------------------------------------------------
# body wall, cavity contents, muscles
# --------------------------------------------------------------------------------------------------

def _body(c: Canvas, rng: np.random.Generator) -> None:
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


def _muscles(c: Canvas) -> None:
    g, p = c.g, c.p
    z = p.z
    sy = c.at("spine_y", z(38))
    for side in (1.0, -1.0):
        # erector spinae along the whole back
        pts = [(side * 33, sy - 44, z(8)), (side * 33, sy - 44, z(44)), (side * 32, c.at("spine_y", z(60)) - 38, z(60)),
               (side * 28, c.at("spine_y", z(78)) - 32, z(82))]
        _tube_paint(c, pts, (22, 25, 20, 16), 50.0, clip="wall")
        # psoas: from L1 along the spine to the groin (its lumbar part moved by the level-cue jitter)
        dp, dq = p.cue_dz["psoas"], p.cue_dz["quadratus"]
        pts = [(side * 28, sy + 4, z(44) + dp), (side * 40, sy + 6, z(34) + dp), (side * 52, sy + 14, z(24) + dp),
               (side * 62, 10, z(12)), (side * 68, 18, z(1))]
        _tube_paint(c, pts, (7, 15, 21, 21, 16), 52.0)
        # quadratus lumborum
        pts = [(side * 55, sy - 14, z(46) + dq), (side * 66, sy - 18, z(29) + dq)]
        _tube_paint(c, pts, (9, 13), 50.0)
        # gluteal muscles, lateral and behind the pelvis
        ctr = (side * 92 * p.width, -42.0, z(12))
        box = g.box((ctr[0] - 70, ctr[0] + 70), (ctr[1] - 60, ctr[1] + 60), (ctr[2] - 110, ctr[2] + 110))
        if box is not None:
            X, Y, Z = g.coords(box)
            m = (ellipsoid_r(X, Y, Z, ctr, (62, 55, 105)) < 1.0) & (c.depth[box] >= c.wall_inner[box])
            c.paint(box, m, 50.0)


def _tube_paint(c: Canvas, pts, radii, value: float, label: int = 0, clip: str = "body",
                wall: float = 0.0, wall_value: float | None = None) -> tuple[Box, np.ndarray] | None:
    g = c.g
    xr, yr, zr = tube_bounds(pts, radii)
    box = g.box(xr, yr, zr)
    if box is None:
        return None
    X, Y, Z = g.coords(box)
    sd = tube_distance(X, Y, Z, pts, radii)
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


def _bowel(c: Canvas, rng: np.random.Generator, dome_low: float) -> None:
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

def _dome(c: Canvas, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
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


def _chest(c: Canvas, rng: np.random.Generator) -> None:
    g, p = c.g, c.p
    z = p.z
    box = g.box((-400, 400), (-400, 400), (z(42.0), z(80.0)))
    if box is None:
        return
    X, Y, Z = g.coords(box)
    dome = _dome(c, X, Y)
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
    _tube_paint(c, pts, (9.5, 9.5), 40.0, clip="body")
    _tube_paint(c, pts, (7.5, 7.5), -1000.0, clip="body")
    for side in (1.0, -1.0):
        bp = [(0, ty, z(64.5)), (side * 40, ty - 8, z(60.5))]
        _tube_paint(c, bp, (6.5, 5.0), 40.0, clip="body")
        _tube_paint(c, bp, (4.8, 3.4), -1000.0, clip="body")


# --------------------------------------------------------------------------------------------------
# abdominal organs
# --------------------------------------------------------------------------------------------------

def _organs(c: Canvas, rng: np.random.Generator) -> dict[str, float]:
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
        dome = _dome(c, X, Y)
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
    _ellipsoid_paint(c, gc, (14 * gs, 16 * gs, 34 * gs), 12.0, L["gallbladder"], tilt=0.5)
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
        m &= (c.cavity_depth[box] > 1.0) & (Z < _dome(c, X, Y) + 30.0) & (Z > z_cut)
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
        m = (sd < 0) & (c.cavity_depth[box] > 2.0) & (Z < _dome(c, X, Y) - 1.5)
        gas_level = 0.40 * Ba
        c.paint(box, m, 60.0 * ct, L["stomach"])
        lumen = m & (sd < -4.0)
        t = texture(box)
        c.paint(box, lumen, np.where(Y > gas_level, -930.0, 22.0 + 15.0 * t), None)
    # duodenum (unlabelled bowel) around the pancreatic head, well in front of the right kidney
    dpts = [(0.14 * A38, 0.48 * Ba, z(42.5)), (0.30 * A38, sy + 64, z(41)), (0.32 * A38, sy + 60, z(37)),
            (0.12 * A38, sy + 56, z(35)), (-0.12 * A38, sy + 56, z(35.5))]
    res = _tube_paint(c, dpts, (12, 12, 12, 11, 10), 40.0 * ct, clip="cavity")
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
            _ellipsoid_paint(c, (ac[0] + off[0], ac[1] + off[1], ac[2] + off[2]), semi, 42.0 * ct, lab_a, tilt=tilt)
    # bladder behind the pubic symphysis
    bs = p.organ_scale["bladder"]
    bc = (p.jitter["bladder"][0] * 0.5, 0.2 * c.at("Bant", z(8)), z(8.0) + p.jitter["bladder"][2])
    res = _ellipsoid_paint(c, bc, (44 * bs, 36 * bs, 36 * bs), 42.0, L["bladder"], clip="cavity")
    if res is not None:
        box, r = res
        c.paint(box, (r < 1.0 - 3.0 / (36 * bs)) & c.cavity[box], 9.0, None)
    # rectum and sigmoid (unlabelled): gas and stool in front of the sacrum
    rpts = [(0, sy + 4, z(-3)), (0, sy - 2, z(8)), (4, sy + 12, z(17)), (-25, sy + 38, z(23)), (-45, sy + 40, z(27))]
    res = _tube_paint(c, rpts, (13, 16, 16, 14, 13), 40.0, clip="cavity")
    if res is not None:
        box, sd = res
        t = texture(box)
        c.paint(box, (sd < -3.0) & c.cavity[box], np.where(t > 0.6, -900.0, -40.0 + 60.0 * t), None)
    return found


def _ellipsoid_paint(c: Canvas, ctr, semi, value: float, label: int, tilt: float = 0.0,
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


def _vessels(c: Canvas) -> None:
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
    _tube_paint(c, apts, ar, 175.0 * ct, L["aorta"], clip="cavity")
    # inferior vena cava: from the iliac confluence at L5 through the liver into the right atrium
    ipts = [(21, sy + 28, z(27.0) + db), (23, sy + 32, z(44)), (27, sy + 44, z(50)), (22, sy + 56, z(54.0))]
    _tube_paint(c, ipts, (11, 12, 13, 14), 122.0 * ct, L["inferior_vena_cava"], clip="cavity")
    # esophagus: behind the trachea, left of the aorta low down, into the stomach's cardia
    A38 = c.at("A", z(38))
    epts = [(-3, c.at("spine_y", z(85)) + 26, z(92)), (-4, syc + 28, z(66)), (-10, syc + 34, z(56)),
            (-22, sy + 48, z(50.5)), (-0.30 * A38, 0.1 * c.at("Bant", z(48)), z(49.0))]
    res = _tube_paint(c, epts, (8, 8.5, 8.5, 8.5, 9), 42.0 * ct, L["esophagus"], clip="cavity")
    if res is not None:
        box, sd = res
        c.paint(box, (sd < -7.0) & c.cavity[box] & (Z_of(c, box) > p.z(60)), -900.0, None)
    # iliac arteries and veins (unlabelled)
    for side in (1.0, -1.0):
        pts = [(-12, sy + 30, z(29.5) + db), (side * 50 * p.width, sy + 34, z(20)), (side * 72 * p.width, 22, z(6)),
               (side * 80 * p.width, 30, z(-10))]
        _tube_paint(c, pts, (7, 6.5, 6, 6), 175.0 * ct, clip="body")
        pts = [(21, sy + 28, z(27.0) + db), (side * 46 * p.width, sy + 28, z(20)), (side * 70 * p.width, 12, z(6)),
               (side * 78 * p.width, 18, z(-10))]
        _tube_paint(c, pts, (8, 7.5, 7, 7), 120.0 * ct, clip="body")
    # portal vein into the liver (unlabelled, bright)
    _tube_paint(c, [(8, sy + 64, z(40)), (35, sy + 60, z(44)), (55, sy + 50, z(46))], (7, 7, 5), 160.0 * ct,
                None, clip="cavity")


# --------------------------------------------------------------------------------------------------
# skeleton
# --------------------------------------------------------------------------------------------------

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


def _spine(c: Canvas) -> dict[str, float]:
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
            _ellipsoid_paint(c, (0.0, sy_d, gap_c), (21 * f * vw, 15 * f * vw, gap_h), 85.0, 0, clip="none")
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
    g = c.g
    radii = [radius] * len(pts)
    xr, yr, zr = tube_bounds(pts, radii)
    box = g.box(xr, yr, zr)
    if box is None:
        return None
    X, Y, Z = g.coords(box)
    sd = tube_distance(X, Y, Z, pts, radii)
    _bone(c, box, sd, label, shell=shell, marrow=marrow, clip=c.depth[box] > 2.0)
    return True


def _pelvis(c: Canvas, centres: dict[str, float]) -> dict[str, float]:
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
    from .anatomy import LUMBAR_PITCH_SCORE

    return LUMBAR_PITCH_SCORE * p.mm_per_score


def _upper_skeleton(c: Canvas) -> None:
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


# --------------------------------------------------------------------------------------------------
# the case
# --------------------------------------------------------------------------------------------------

def generate_case(index: int, config: SynthConfig) -> SynthCase:
    """Generate case `index` of the cohort described by `config` (deterministic in (seed, index))."""
    rng = case_rng(config.seed, index)
    p = sample_patient(rng, config)
    p.cue_dz = level_cue_shifts(config.seed, index, config.level_cue_jitter, p.mm_per_score)
    case_id = config.case_ids[index] if index < config.cases else f"{config.prefix}_{index:03d}"
    sz, sy_, sx = p.spacing
    z0, z1 = p.z(p.fov_scores[0]), p.z(p.fov_scores[1])
    nz = int(round((z1 - z0) / sz)) + 1
    zline = z0 + np.arange(nz) * sz
    half_w = float(np.max(_A) * p.width + p.fat + p.muscle)
    half_d = float(np.max(_BANT + _BPOST) * p.depth + 1.6 * p.fat + p.fat_anterior + 2 * p.muscle) / 2 + 16
    side = 2.0 * max(half_w, half_d) + 30.0
    n_xy = min(int(np.ceil(side / sx / 8.0) * 8), CT_MATRIX)  # small pixels: the FOV may clip the skin
    cx, cy = p.centre_xy
    ymid = 0.5 * (float(np.max(_BANT)) * p.depth + p.fat + p.fat_anterior - float(np.max(_BPOST)) * p.depth
                  - 0.6 * p.fat - 14.0)
    xline = cx + (np.arange(n_xy) - (n_xy - 1) / 2.0) * sx
    yline = ymid + cy + (np.arange(n_xy) - (n_xy - 1) / 2.0) * sy_
    grid = Grid(zline, yline, xline, rng, deform_mm=(2.5, 3.0, 4.5), deform_ctrl_mm=70.0)
    c = Canvas(grid, p)
    _body(c, rng)
    _muscles(c)
    _bowel(c, rng, p.z(52.0))
    _chest(c, rng)
    found = _organs(c, rng)
    _vessels(c)
    centres = _spine(c)
    found.update(_pelvis(c, centres))
    _upper_skeleton(c)
    image_f = _acquire(c, rng)
    label = c.lab
    return _store(case_id, image_f, label, c, p, centres, found)


def _acquire(c: Canvas, rng: np.random.Generator) -> np.ndarray:
    """Partial-volume blur and scanner noise, then HU as int16."""
    p = c.p
    hu = ndimage.gaussian_filter(c.hu, sigma=(0.5, 0.6, 0.6), mode="nearest")
    noise = rng.standard_normal(hu.shape, dtype=np.float32)
    noise = ndimage.gaussian_filter(noise, sigma=(0.0, 0.7, 0.7), mode="wrap")
    noise *= p.noise_hu / max(float(noise.std()), 1e-6)
    hu += noise
    np.clip(hu, -1024, 3071, out=hu)
    return np.rint(hu).astype(np.int16)


def _store(case_id: str, image: np.ndarray, label: np.ndarray, c: Canvas, p: Patient, centres: dict[str, float],
           found: dict[str, float]) -> SynthCase:
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
