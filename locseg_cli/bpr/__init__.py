"""Body part regression: a slice -> 0..100 body-position score, trained here, scored, cleaned.

`locseg bpr train` trains a self-supervised slice regressor (bpreg's recipe) and anchors it with
landmark slices; `locseg bpr score` writes one bpreg-compatible JSON per case; `locseg bpr import`
accepts bpreg's own files. `preprocess --location bpr` reads them through `load_scores` and
`axial_location` (light imports here; the torch parts live in `train` and `inference`).
"""

from .records import axial_location, load_scores, location_scores

__all__ = ["load_scores", "axial_location", "location_scores"]
