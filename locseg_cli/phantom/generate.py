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

from .canvas import Canvas
from .config import SynthConfig
from .organs import paint_organs, paint_vessels
from .patient import case_rng, level_cue_shifts, sample_patient
from .scanner import acquire, scanner_grid
from .skeleton import paint_pelvis, paint_spine, paint_upper_skeleton
from .soft_tissue import paint_body, paint_bowel, paint_chest, paint_muscles
from .storage import SynthCase, store_case


def generate_case(index: int, config: SynthConfig) -> SynthCase:
    """Generate case `index` of the cohort described by `config` (deterministic in (seed, index))."""
    rng = case_rng(config.seed, index)
    p = sample_patient(rng, config)
    p.cue_dz = level_cue_shifts(config.seed, index, config.level_cue_jitter, p.mm_per_score)
    case_id = config.case_ids[index] if index < config.cases else f"{config.prefix}_{index:03d}"
    grid = scanner_grid(p, rng)
    c = Canvas(grid, p)
    paint_body(c, rng)
    paint_muscles(c)
    paint_bowel(c, rng, p.z(52.0))
    paint_chest(c, rng)
    found = paint_organs(c, rng)
    paint_vessels(c)
    centres = paint_spine(c)
    found.update(paint_pelvis(c, centres))
    paint_upper_skeleton(c)
    image_f = acquire(c, rng)
    label = c.lab
    return store_case(case_id, image_f, label, c, p, centres, found)
