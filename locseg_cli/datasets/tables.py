"""What the public datasets' files do not say themselves: label tables, regions, known bad cases.

Sources: the datasets' own documentation and the paper's public code (compai-lab/2026-ISBI-hooft,
BasicUNet/kits_*_cleaned_files.py). Readers use these tables; presets/datasets/*.yaml repeat the
exclusions so a user sees (and can change) them.
"""

from __future__ import annotations

BTCV_LABELS: dict[int, str] = {
    0: "background", 1: "spleen", 2: "right kidney", 3: "left kidney", 4: "gallbladder", 5: "esophagus",
    6: "liver", 7: "stomach", 8: "aorta", 9: "inferior vena cava", 10: "portal and splenic vein",
    11: "pancreas", 12: "right adrenal", 13: "left adrenal",
}

# AMOS22 ships its own table in dataset.json (with the typo "arota"); this one is the fallback.
AMOS22_LABELS: dict[int, str] = {
    0: "background", 1: "spleen", 2: "right kidney", 3: "left kidney", 4: "gall bladder", 5: "esophagus",
    6: "liver", 7: "stomach", 8: "arota", 9: "postcava", 10: "pancreas", 11: "right adrenal gland",
    12: "left adrenal gland", 13: "duodenum", 14: "bladder", 15: "prostate/uterus",
}
AMOS22_FIRST_MRI_ID = 500  # amos_0500 and above are MRI scans; the paper uses CT only

KITS23_LABELS: dict[int, str] = {0: "background", 1: "kidney", 2: "tumor", 3: "cyst"}

# KiTS23's official evaluation regions (HEC: hierarchical evaluation classes).
KITS23_REGIONS: dict[str, tuple[int, ...]] = {"kidney_and_masses": (1, 2, 3), "masses": (2, 3), "tumor": (2,)}

_PAPER_BOTH = ("left out by both public KiTS23 training scripts of the paper (kits_baseline_cleaned_files.py, "
               "kits_loc_context_cleaned_files.py): corrupted orientation or spacing")
_PAPER_BASELINE = ("left out by the paper's baseline KiTS23 script (kits_baseline_cleaned_files.py), one of the "
                   "nine scans the paper excluded for corrupted orientation or spacing")

# case id -> why it is left out. The paper excluded nine scans; its location-aware script lists four of them.
KITS23_EXCLUDED: dict[str, str] = {
    "case_00088": _PAPER_BOTH,
    "case_00223": _PAPER_BOTH,
    "case_00516": _PAPER_BOTH,
    "case_00560": _PAPER_BOTH,
    "case_00051": _PAPER_BASELINE,
    "case_00188": _PAPER_BASELINE,
    "case_00279": _PAPER_BASELINE,
    "case_00479": _PAPER_BASELINE,
    "case_00537": _PAPER_BASELINE,
}

# Layouts whose download has no label-table file: a `labels.json` ({"value": "name"}) at the dataset
# root overrides the built-in table (DatasetWriter writes one for synthetic cohorts).
LABELS_OVERRIDE_FILE = "labels.json"
