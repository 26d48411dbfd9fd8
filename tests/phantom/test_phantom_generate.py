"""The phantom generator: determinism, labels, body positions, the location-ambiguity design."""

from __future__ import annotations

import numpy as np
import pytest
from nibabel import orientations as nio

from locseg_cli.config import resolve_config
from locseg_cli.errors import LocsegError
from locseg_cli.phantom import LABELS, LANDMARK_SCORES, SynthConfig, generate_case
from locseg_cli.phantom.anatomy import LABEL_OF, LUMBAR

COARSE = "5,4,4"  # z, y, x mm: tiny volumes, fast tests


@pytest.fixture(scope="module")
def case0():
    return generate_case(0, SynthConfig(spacing=COARSE, orientation="fixed"))


def canonical(case):
    """(image, label) as canonical (z, y, x) = S, A, R arrays."""
    t = nio.ornt_transform(nio.io_orientation(case.affine), nio.axcodes2ornt(("S", "A", "R")))
    return nio.apply_orientation(case.image, t), nio.apply_orientation(case.label, t)


def test_same_seed_same_case_other_seed_differs():
    cfg = SynthConfig(spacing=COARSE, seed=3)
    a, b = generate_case(1, cfg), generate_case(1, cfg)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.label, b.label)
    assert np.array_equal(a.affine, b.affine) and a.bodypos == b.bodypos
    c = generate_case(1, SynthConfig(spacing=COARSE, seed=4))
    assert c.image.shape != a.image.shape or not np.array_equal(c.image, a.image)


def test_image_is_ct_like(case0):
    img, lab = canonical(case0)
    assert case0.image.dtype == np.int16 and case0.label.dtype == np.uint8
    assert img.min() >= -1024 and img.max() <= 3071
    assert np.median(img[0]) < -900  # air around the body
    means = {name: float(img[lab == v].mean()) for v, name in LABELS.items() if v and (lab == v).any()}
    assert means["liver"] > 60 and means["spleen"] > 60
    assert means["L3"] > 180  # bone
    assert means["aorta"] > means["liver"]  # contrast-enhanced blood
    assert means["bladder"] < 40  # urine
    assert means["right_kidney"] > means["liver"] - 40


def test_labels_present_and_in_table(case0):
    values = set(np.unique(case0.label).tolist())
    assert values <= set(LABELS)
    for name in ("liver", "spleen", "right_kidney", "left_kidney", "aorta", "inferior_vena_cava", "stomach",
                 "pancreas", "bladder", "esophagus", *LUMBAR):
        assert LABEL_OF[name] in values, name
    assert sorted(LABELS) == list(range(len(LABELS))) and LABELS[0] == "background"


def test_body_position_is_monotonic_and_has_the_bpr_slope(case0):
    bp = case0.bodypos
    k = bp["axial_axis"]
    assert len(bp["scores"]) == case0.image.shape[k] == len(bp["z_world_mm"])
    s = np.asarray(bp["scores"])
    z = np.asarray(bp["z_world_mm"])
    ds = np.diff(s)
    assert np.all(ds > 0) or np.all(ds < 0)
    slope = np.polyfit(z, s, 1)[0]
    assert 0.118 / 1.08 < slope < 0.118 / 0.92  # score per mm, patient height varies
    assert s.min() < 0 and s.max() > 70  # below the pelvis to the neck
    marks = bp["landmarks"]
    for name in ("pelvis_start", "femur_end", "L5", "L3", "L1", "Th12", "liver_end", "lung_start"):
        assert name in marks, name
    order = sorted(marks, key=lambda n: marks[n]["score"])
    idx = [marks[n]["index"] for n in order]
    sign = np.sign(s[-1] - s[0])
    assert all(sign * (b - a) >= 0 for a, b in zip(idx, idx[1:]))
    for name in ("pelvis_start", "femur_end", "L5", "L3", "L1", "Th12"):
        assert marks[name]["score"] == pytest.approx(LANDMARK_SCORES[name], abs=0.5), name
        assert s[marks[name]["index"]] == pytest.approx(marks[name]["score"], abs=0.6), name
    assert marks["lung_start"]["score"] == pytest.approx(LANDMARK_SCORES["lung_start"], abs=3.0)
    assert marks["liver_end"]["score"] == pytest.approx(LANDMARK_SCORES["liver_end"], abs=2.0)


def test_vertebrae_stack_in_order_at_their_levels(case0):
    _, lab = canonical(case0)
    bp = case0.bodypos
    s = np.asarray(bp["scores"])  # orientation fixed: R,A,S -> stored axis 2 is the axial one, increasing
    centres = []
    for name in LUMBAR:
        zs = np.nonzero((lab == LABEL_OF[name]).any(axis=(1, 2)))[0]
        centres.append(s[int(round(zs.mean()))])
    assert centres == sorted(centres, reverse=True)  # L1 highest
    assert np.allclose(np.diff(centres), -4.0, atol=1.0)  # evenly spaced, identical pitch


def test_left_and_right_kidneys_look_alike_on_their_sides(case0):
    """The two kidneys (and adrenals) are drawn alike: about equal size, each on its own side."""
    img, lab = canonical(case0)
    r, lft = lab == LABEL_OF["right_kidney"], lab == LABEL_OF["left_kidney"]
    assert abs(int(r.sum()) - int(lft.sum())) < 0.25 * r.sum()
    ra, la = lab == LABEL_OF["right_adrenal"], lab == LABEL_OF["left_adrenal"]
    assert ra.any() and la.any()
    xr = np.nonzero(r.any(axis=(0, 1)))[0]
    xl = np.nonzero(lft.any(axis=(0, 1)))[0]
    assert xr.mean() > xl.mean()  # canonical x increases toward the patient's right


def test_level_cue_jitter_moves_the_soft_tissue_level_cues_not_the_spine():
    """--level-cue-jitter moves the aortic bifurcation (and the psoas, quadratus lumborum) against the
    spine by up to one lumbar pitch per structure; the vertebrae stay where they were, and without it
    nothing moves."""
    from locseg_cli.phantom.anatomy import LUMBAR_PITCH_SCORE
    from locseg_cli.phantom.patient import level_cue_shifts

    shifts = [level_cue_shifts(0, i, 1.0, 8.0) for i in range(8)]
    reach = LUMBAR_PITCH_SCORE * 8.0
    assert all(abs(v) <= reach for d in shifts for v in d.values())
    assert max(abs(d["bifurcation"]) for d in shifts) > 0.5 * reach
    assert len({round(v, 6) for v in shifts[0].values()}) == 3  # independent per structure
    assert level_cue_shifts(0, 3, 0.0, 8.0) == dict.fromkeys(shifts[0], 0.0)

    plain = SynthConfig(spacing=COARSE, orientation="fixed")
    index = max(range(8), key=lambda i: abs(level_cue_shifts(0, i, 1.0, 8.0)["bifurcation"]))
    a = generate_case(index, plain)
    b = generate_case(index, resolve_config(SynthConfig, None, {"spacing": COARSE, "orientation": "fixed",
                                                                 "level_cue_jitter": 1.0}))
    _, lab_a = canonical(a)
    _, lab_b = canonical(b)
    for name in LUMBAR:
        assert np.array_equal(lab_a == LABEL_OF[name], lab_b == LABEL_OF[name]), name
    z = np.asarray(a.bodypos["scores"]) * a.meta["mm_per_score"]  # patient-frame mm of each slice

    def aorta_bottom(lab):
        return z[np.nonzero((lab == LABEL_OF["aorta"]).any(axis=(1, 2)))[0].min()]

    moved = level_cue_shifts(0, index, 1.0, a.meta["mm_per_score"])["bifurcation"]
    assert aorta_bottom(lab_b) - aorta_bottom(lab_a) == pytest.approx(moved, abs=6.0)


def test_varying_fov_crops_differ():
    from locseg_cli.phantom.patient import case_rng, sample_patient

    cfg = SynthConfig(spacing="6,6,6", fov="varying", cases=12, seed=1)
    ranges = [sample_patient(case_rng(cfg.seed, i), cfg).fov_scores for i in range(12)]
    lows = [lo for lo, _ in ranges]
    highs = [hi for _, hi in ranges]
    assert max(lows) - min(lows) > 10 and max(highs) - min(highs) > 10
    fixed = SynthConfig(spacing="6,6,6", cases=12, seed=1)
    lows_fixed = [sample_patient(case_rng(fixed.seed, i), fixed).fov_scores[0] for i in range(12)]
    assert max(lows_fixed) - min(lows_fixed) <= 3.0
    case = generate_case(int(np.argmax(lows)), cfg)  # the most cranial crop
    assert min(case.bodypos["scores"]) == pytest.approx(max(lows), abs=1.0)


def test_orientations_vary_including_axial_first():
    from locseg_cli.phantom.patient import case_rng, sample_patient

    cfg = SynthConfig(spacing="8,8,8", cases=30, seed=2)
    drawn = [sample_patient(case_rng(cfg.seed, i), cfg).axcodes for i in range(30)]
    assert len(set(drawn)) >= 3
    first = next(i for i, codes in enumerate(drawn) if codes[0] in ("I", "S"))
    case = generate_case(first, cfg)
    assert tuple(nio.aff2axcodes(case.affine)) == drawn[first]
    assert case.bodypos["axial_axis"] == 0


def test_bad_options_are_user_errors():
    with pytest.raises(LocsegError):
        resolve_config(SynthConfig, None, {"spacing": "bogus"})
    with pytest.raises(LocsegError):
        resolve_config(SynthConfig, None, {"layout": "nope"})
    with pytest.raises(LocsegError):
        resolve_config(SynthConfig, None, {"cases": 0})
    with pytest.raises(LocsegError):
        resolve_config(SynthConfig, None, {"level_cue_jitter": 3.0})


def test_varying_fov_landmarks_lie_inside_the_crop():
    cfg = SynthConfig(spacing="7,6,6", fov="varying", cases=5, seed=3)
    for i in range(5):
        bp = generate_case(i, cfg).bodypos
        s = np.asarray(bp["scores"])
        for name, mark in bp["landmarks"].items():
            assert s.min() - 0.5 <= mark["score"] <= s.max() + 0.5, name
            assert abs(s[mark["index"]] - mark["score"]) < 1.0, name
        if "liver_end" in bp["landmarks"]:  # the dome, never the top of a crop through the liver
            assert bp["landmarks"]["liver_end"]["index"] not in (0, len(s) - 1)


def test_location_ambiguity_is_measurable_at_a_fine_grid():
    """At 32-voxel patches of 2 mm the kidneys' patches carry no side cue (the left kidney's patch,
    translated, matches the right one as well as mirrored) and adjacent lumbar levels look at least
    as alike as one level does across patients."""
    from locseg_cli.phantom.ambiguity import patch_similarity

    cfg = SynthConfig(spacing="2.5,2,2", orientation="fixed", score_range=(24.0, 47.0))
    sim = patch_similarity(cfg, (2.5, 2.0, 2.0), 32, cases=(0, 1))
    assert sim["kidney_translated"] > sim["kidney_mirrored"] - 0.1
    assert sim["adjacent_levels"] > sim["same_level_other_case"] - 0.05
    assert sim["adjacent_levels"] > 0.5
