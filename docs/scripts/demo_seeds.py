"""The key figures of several `make demo SEED=N` runs side by side (docs/results-demo/README.md).

For each demo folder: per model and patch setup the external test cohort's mean Dice (all foreground
classes, the location-ambiguous ones, the others), the paired per-scan difference against the
baseline of the same setup with its 95 % bootstrap interval and the scans favouring each side (the
report's paired table, through the same library code), and the shift curve's mean Dice on the
location-ambiguous classes at 0 % and 100 % axial shift. Markdown on stdout.

  python docs/scripts/demo_seeds.py demo demo-seed1 demo-seed2
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

RUNS = ("baseline-small", "coordconv-small", "locbam-small", "baseline-large", "locbam-large")


def _group_mean(summary: dict, keys: list[str]) -> float:
    vals = [summary["mean"][k]["Dice"] for k in keys if summary["mean"][k]["Dice"] is not None]
    vals = [v for v in vals if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def _mean_of(dice: dict[str, float], classes: list[str]) -> float:
    vals = [dice[c] for c in classes if not math.isnan(dice[c])]
    return sum(vals) / len(vals) if vals else math.nan


def seed_rows(demo: Path) -> list[str]:
    from locseg_cli.reporting.paired import FOREGROUND, class_groups, paired_difference

    evals = {r: json.loads((demo / "eval" / r / "summary.json").read_text()) for r in RUNS
             if (demo / "eval" / r / "summary.json").is_file()}
    seed = json.loads((demo / "raw" / "manifest.json").read_text())["config"]["seed"]
    rows = []
    for run, summary in evals.items():
        groups = class_groups(summary)
        others = [k for k in groups[FOREGROUND] if k not in groups["location_ambiguous"]]
        cells = [f"{_group_mean(summary, groups[g]):.3f}" for g in (FOREGROUND, "location_ambiguous")]
        cells.append(f"{_group_mean(summary, others):.3f}")
        base = "baseline-" + run.split("-")[1]
        if run != base and base in evals:
            d = paired_difference(summary, evals[base], groups["location_ambiguous"], demo / "eval" / run,
                                  demo / "eval" / base)
            cells.append(f"{d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}], {d.favour_first}/{len(d.cases)}")
        else:
            cells.append("")
        shift = demo / "shift" / run / "shift.json"
        if shift.is_file():
            table = json.loads(shift.read_text())
            amb = [table["labels"][k] for k in groups["location_ambiguous"]]
            by_shift = {r["shift"]: r["dice"] for r in table["shifts"]}
            ends = [_mean_of(by_shift[s], amb) for s in (0.0, 100.0)]
            cells.append(f"{ends[0]:.3f} → {ends[1]:.3f}")
        else:
            cells.append("")
        rows.append(f"| {seed} | {run} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("demos", nargs="+", type=Path)
    args = ap.parse_args()
    print("| seed | run | foreground | location-ambiguous | other | paired Δ ambiguous vs baseline "
          "[95 % CI], scans favouring | ambiguous Dice, shift 0 → 100 % |")
    print("|---|---|---|---|---|---|---|")
    for demo in args.demos:
        for row in seed_rows(demo):
            print(row)


if __name__ == "__main__":
    main()
