"""The paired comparisons, confusion counts and range-restricted BPR errors quoted in
docs/location-experiments.md, computed from the files `locseg evaluate`, `locseg bpr score` and
`locseg synth` write (not part of the package: analysis for the docs, run with the project's venv).
`paired` prints the figures of `locseg report`'s paired table for any two evaluations (e.g. two
location sources, or with classes left out), through the same code.

  python docs/scripts/compare_evals.py paired EVAL_ROOT RUN_A RUN_B [--exclude CLASS ...]
  python docs/scripts/compare_evals.py confusion PRED_DIR RAW_DIR CLASS [CLASS ...]
  python docs/scripts/compare_evals.py bpr-range SCORES_DIR RAW_DIR [--low 24 --high 44]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def paired(root: Path, a: str, b: str, exclude: list[str]) -> None:
    """The paired figures of `locseg report` (locseg_cli.reporting.paired) for two named evaluations,
    over all foreground classes but `exclude` and over the location-ambiguous ones."""
    from locseg_cli.reporting.paired import FOREGROUND, class_groups, paired_difference

    first, second = (json.loads((root / x / "summary.json").read_text()) for x in (a, b))
    groups = class_groups(first)
    keys = [k for k in groups[FOREGROUND] if first["labels"][k] not in exclude]
    ambiguous = set(groups["location_ambiguous"])
    for name, chosen in (("all classes", keys), ("location-ambiguous", [k for k in keys if k in ambiguous])):
        d = paired_difference(first, second, chosen, root / a, root / b)
        print(f"{a} - {b}, {name}: pairs {d.pair_mean:+.3f} ({d.pair_share:.2f} first better); per case "
              f"{d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}], {d.favour_first}/{len(d.cases)} cases first better")


def confusion(pred: Path, raw: Path, classes: list[str]) -> None:
    import nibabel as nib
    import numpy as np

    labels = json.loads((raw / "dataset.json").read_text())["labels"]
    names = {v: k for k, v in labels.items()}
    for cls in classes:
        counts: dict[str, int] = {}
        for f in sorted(pred.glob("*.nii.gz")):
            ref = np.asarray(nib.load(raw / "labelsTr" / f.name).dataobj)
            values, n = np.unique(np.asarray(nib.load(f).dataobj)[ref == labels[cls]], return_counts=True)
            for v, c in zip(values, n):
                counts[names.get(int(v), str(v))] = counts.get(names.get(int(v), str(v)), 0) + int(c)
        total = sum(counts.values())
        print(cls, {k: round(c / total, 2) for k, c in sorted(counts.items(), key=lambda kv: -kv[1])[:4]})


def bpr_range(scores: Path, raw: Path, low: float, high: float) -> None:
    import numpy as np

    maes = []
    for truth_file in sorted((raw / "bodypos").glob("*.json")):
        truth = json.loads(truth_file.read_text())
        pred = json.loads((scores / truth_file.name).read_text())
        order = np.argsort(truth["z_world_mm"])
        z = np.asarray(pred["z_world_mm"])  # both files carry world z: align on it, whatever the storage order
        true = np.interp(z, np.asarray(truth["z_world_mm"])[order], np.asarray(truth["scores"])[order])
        score = np.asarray(pred["cleaned slice scores"], dtype=float)
        inside = (true > low) & (true < high) & np.isfinite(score)
        if inside.any():
            err = score[inside] - true[inside]
            maes.append(float(np.abs(err).mean()))
            print(f"{truth['case_id']} {truth['fov']}: bias {err.mean():+.2f} MAE {np.abs(err).mean():.2f}")
    print(f"mean per-case MAE in ({low}, {high}): {sum(maes) / len(maes):.2f} over {len(maes)} cases")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("paired")
    p.add_argument("root", type=Path)
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--exclude", nargs="*", default=[])
    c = sub.add_parser("confusion")
    c.add_argument("pred", type=Path)
    c.add_argument("raw", type=Path)
    c.add_argument("classes", nargs="+")
    r = sub.add_parser("bpr-range")
    r.add_argument("scores", type=Path)
    r.add_argument("raw", type=Path)
    r.add_argument("--low", type=float, default=24.0)
    r.add_argument("--high", type=float, default=44.0)
    args = parser.parse_args()
    if args.command == "paired":
        paired(args.root, args.a, args.b, args.exclude)
    elif args.command == "confusion":
        confusion(args.pred, args.raw, args.classes)
    else:
        bpr_range(args.scores, args.raw, args.low, args.high)


if __name__ == "__main__":
    main()
