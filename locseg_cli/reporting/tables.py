"""The report's tables, each built from the collected stage outputs, with the files behind every row."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..preprocessing.plan import PreprocessPlan
from .collect import Collection, EvalRecord, RunRecord, Setup, nanmean, order_models

MISSING = "n/a"


@dataclass
class Table:
    key: str
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    sources: list[tuple[str, list[Path]]] = field(default_factory=list)  # (row label, files of its cells)
    note: str = ""

    def add(self, cells: list[str], label: str, files: list[Path]) -> None:
        self.rows.append(cells)
        self.sources.append((label, sorted(set(files), key=str)))


def fmt_dice(v: float) -> str:
    return MISSING if v is None or math.isnan(v) else f"{v:.4f}"


def fmt_gain(new: float, base: float) -> str:
    if any(v is None or math.isnan(v) for v in (new, base)) or base == 0:
        return MISSING
    return f"{100.0 * (new - base) / base:+.1f}%"


def fmt_percent(v: float | None) -> str:
    return MISSING if v is None or math.isnan(v) else f"{100.0 * v:.2f}%"


def ptvc(run: RunRecord) -> float | None:
    """Patch voxels / median volume voxels at the run's spacing (the paper's PtVC)."""
    median_shape = PreprocessPlan.of(run.pre_manifest).median_shape if run.pre_manifest is not None else None
    if not median_shape:
        return None
    return float(np.prod(run.setup.patch) / np.prod(median_shape))


def _files(evals: list[EvalRecord]) -> list[Path]:
    return [e.summary_path for e in evals]


def raw_evals(col: Collection) -> list[EvalRecord]:
    return [e for e in col.evals if e.method == "none"]


def runs_table(col: Collection) -> Table:
    t = Table("runs", "Runs", ["model", "dataset", "spacing", "patch", "fold", "validation cases",
                               "best validation Dice"])
    for r in col.runs:
        extra = r.manifest.extra
        t.add([r.model, r.setup.dataset, r.setup.spacing_text, r.setup.patch_text, str(extra.get("fold")),
               str(len(extra.get("val_cases") or [])), fmt_dice(_float(extra.get("best_mean_dice")))],
              f"{r.model} | {r.setup.label}", [r.path / "manifest.json"])
    return t


def table1(col: Collection) -> Table:
    """Models × datasets: foreground mean Dice of the (not post-processed) evaluations."""
    evals = raw_evals(col)
    datasets = sorted({e.run.setup.dataset for e in evals})
    t = Table("table1", "Table 1: foreground mean Dice, models × datasets",
              ["model", "spacing", "patch", *datasets])
    keys = sorted({(e.run.model, e.run.setup.spacing, e.run.setup.patch, e.run.setup.batch) for e in evals},
                  key=lambda k: (order_models([k[0], "baseline", "coordconv", "locbam"]).index(k[0]), k[1:]))
    averaged = False
    for model, spacing, patch, batch in keys:
        row = [e for e in evals if (e.run.model, e.run.setup.spacing, e.run.setup.patch, e.run.setup.batch)
               == (model, spacing, patch, batch)]
        s = row[0].run.setup
        cells = [fmt_dice(nanmean(e.foreground_dice for e in row if e.run.setup.dataset == d)) for d in datasets]
        averaged |= any(sum(e.run.setup.dataset == d for e in row) > 1 for d in datasets)
        t.add([model, s.spacing_text, s.patch_text, *cells], f"{model} | {s.spacing_text} | {s.patch_text}",
              _files(row))
    if averaged:
        t.note = "Cells with several evaluations (folds) show their mean."
    return t


def _setups(evals: list[EvalRecord]) -> list[Setup]:
    return sorted({e.run.setup for e in evals})


def table2(col: Collection) -> Table:
    """Spacing × patch setup: PtVC, baseline vs LocBAM and LocBAM's relative gain."""
    evals = raw_evals(col)
    t = Table("table2", "Table 2: baseline vs LocBAM per spacing and patch setup",
              ["dataset", "spacing", "patch", "PtVC", "baseline", "LocBAM", "gain"])
    for s in _setups(evals):
        here = [e for e in evals if e.run.setup == s]
        base = [e for e in here if e.run.model == "baseline"]
        loc = [e for e in here if e.run.model == "locbam"]
        if not base and not loc:
            continue
        with_pre = [e.run for e in here if ptvc(e.run) is not None]
        value = ptvc(with_pre[0]) if with_pre else None
        b, lb = nanmean(e.foreground_dice for e in base), nanmean(e.foreground_dice for e in loc)
        files = _files(base + loc)
        if with_pre:
            files += [with_pre[0].path / "manifest.json", with_pre[0].pre / "manifest.json"]
        t.add([s.dataset, s.spacing_text, s.patch_text, fmt_percent(value), fmt_dice(b), fmt_dice(lb),
               fmt_gain(lb, b)], s.label, files)
    t.note = "PtVC = patch voxels / median preprocessed volume voxels; gain = (LocBAM − baseline) / baseline."
    return t


def group_dice(e: EvalRecord, group: str) -> float:
    return _float(((e.summary.get("class_groups") or {}).get(group) or {}).get("Dice"))


def class_group_table(col: Collection) -> Table | None:
    """Mean Dice over each class group the reference dataset defines (the synthetic cohort's
    location-ambiguous classes vs the others), and its difference to the same setup's baseline."""
    evals = raw_evals(col)
    groups = sorted({g for e in evals for g in (e.summary.get("class_groups") or {})})
    if not groups:
        return None
    t = Table("class_groups", "Class groups: mean Dice", ["model", "dataset", "spacing", "patch",
                                                          *[h for g in groups for h in (g, f"{g} − baseline")]])
    for s in _setups(evals):
        here = [e for e in evals if e.run.setup == s]
        base = [e for e in here if e.run.model == "baseline"]
        for model in order_models({e.run.model for e in here}):
            mine = [e for e in here if e.run.model == model]
            cells = []
            for g in groups:
                v = nanmean(group_dice(e, g) for e in mine)
                b = nanmean(group_dice(e, g) for e in base)
                cells += [fmt_dice(v), MISSING if model == "baseline" or not base else _fmt_delta(v - b)]
            t.add([model, s.dataset, s.spacing_text, s.patch_text, *cells], f"{model} | {s.label}",
                  _files(mine + (base if model != "baseline" else [])))
    t.note = "Group Dice = mean over the group's classes of their mean Dice over cases (evaluate's summary.json)."
    return t


def _fmt_delta(v: float) -> str:
    return MISSING if v is None or math.isnan(v) else f"{v:+.4f}"


def postprocess_table(col: Collection) -> Table:
    """Foreground mean Dice of each run's predictions before and after each post-processing."""
    methods = sorted({e.method for e in col.evals if e.method != "none"})
    t = Table("postprocess", "Post-processing: foreground mean Dice", ["model", "dataset", "spacing", "patch",
                                                                       "none", *methods])
    for run in col.runs:
        mine = [e for e in col.evals if e.run is run]
        if not any(e.method != "none" for e in mine):
            continue
        cells = [fmt_dice(nanmean(e.foreground_dice for e in mine if e.method == m)) for m in ["none", *methods]]
        s = run.setup
        t.add([run.model, s.dataset, s.spacing_text, s.patch_text, *cells], f"{run.model} | {s.label}",
              _files(mine))
    return t


def class_sizes(run: RunRecord, values: list[int]) -> float | None:
    """Mean voxels of the labels `values` per labelled case of the run's preprocessed dataset."""
    if run.pre_manifest is None:
        return None
    counts = [sum(int((c["meta"].get("class_voxels") or {}).get(str(v), 0)) for v in values)
              for c in run.pre_manifest.cases.values() if c["meta"].get("labelled")]
    return float(np.mean(counts)) if counts else None


def label_values(summary: dict, key: str) -> list[int]:
    return [int(key)] if key.isdigit() else [int(v) for v in summary.get("regions", {}).get(key, [])]


@dataclass
class ClassGain:
    setup: Setup
    key: str
    name: str
    voxels: float | None
    baseline: float
    dice: dict[str, float]  # model -> class Dice


def class_gains(col: Collection) -> list[ClassGain]:
    """Per setup with a baseline evaluation: each class's Dice per model, classes ordered by size."""
    out = []
    evals = raw_evals(col)
    for s in _setups(evals):
        here = [e for e in evals if e.run.setup == s]
        base = [e for e in here if e.run.model == "baseline"]
        if not base:
            continue
        models = [m for m in order_models({e.run.model for e in here}) if m != "baseline"]
        if not models:
            continue
        summary = base[0].summary
        rows = []
        for key in summary["mean"]:
            size_run = next((e.run for e in here if e.run.pre_manifest is not None), None)
            voxels = class_sizes(size_run, label_values(summary, key)) if size_run else None
            per_model = {m: nanmean(e.summary["mean"][key]["Dice"] for e in here if e.run.model == m
                                    and key in e.summary["mean"]) for m in models}
            rows.append(ClassGain(s, key, str(summary.get("labels", {}).get(key, key)), voxels,
                                  nanmean(e.summary["mean"][key]["Dice"] for e in base), per_model))
        rows.sort(key=lambda r: (math.inf if r.voxels is None else r.voxels, r.key))
        out.extend(rows)
    return out


def class_gain_table(col: Collection, gains: list[ClassGain]) -> Table:
    models = order_models({m for g in gains for m in g.dice})
    t = Table("fig3", "Figure 3 data: class-wise Dice gain over the baseline (classes by size)",
              ["dataset", "spacing", "patch", "class", "voxels", "baseline", *(f"Δ {m}" for m in models)])
    evals = raw_evals(col)
    for g in gains:
        files = [e.summary_path for e in evals if e.run.setup == g.setup]
        size_run = next((e.run for e in evals if e.run.setup == g.setup and e.run.pre_manifest is not None), None)
        if size_run is not None:
            files.append(size_run.pre / "manifest.json")
        deltas = [MISSING if m not in g.dice or math.isnan(g.dice[m]) or math.isnan(g.baseline)
                  else f"{g.dice[m] - g.baseline:+.4f}" for m in models]
        t.add([g.setup.dataset, g.setup.spacing_text, g.setup.patch_text, g.name,
               MISSING if g.voxels is None else f"{g.voxels:.0f}", fmt_dice(g.baseline), *deltas],
              f"{g.setup.label} | {g.name}", files)
    t.note = "voxels: mean count per labelled case in the preprocessed dataset; Δ = model Dice − baseline Dice."
    return t


def shift_table(col: Collection) -> Table:
    shifts = sorted({float(r["shift"]) for rec in col.shifts for r in rec.table["shifts"]})
    t = Table("fig4", "Figure 4 data: validation mean Dice per location shift (% of the full range)",
              ["model", "dataset", "spacing", "patch", "axes", *(f"{s:g}%" for s in shifts)])
    recs = sorted(col.shifts, key=lambda r: (r.run.setup, order_models([r.run.model, "baseline", "coordconv",
                                                                         "locbam"]).index(r.run.model), r.axes))
    for rec in recs:
        by_shift = {float(r["shift"]): float(r["mean_dice"]) for r in rec.table["shifts"]}
        s = rec.run.setup
        t.add([rec.run.model, s.dataset, s.spacing_text, s.patch_text, rec.axes,
               *(fmt_dice(by_shift.get(x, math.nan)) for x in shifts)],
              f"{rec.run.model} | {s.label} | {rec.axes}", [rec.table_path])
    return t


def bpr_table(col: Collection) -> Table:
    """Body part regression against the ground-truth body position (bpreg scale, 0..100), pooled over slices."""
    t = Table("bpr", "Body part regression: scores vs ground-truth body position (pooled over slices)",
              ["scores", "cases", "failed", "slices", "MAE", "max abs error", "Spearman ρ", "bias"])
    for rec in sorted(col.bpr_evals, key=lambda r: str(r.scores)):
        pooled = rec.summary["pooled"]
        loc = pooled["location"]
        t.add([rec.scores.name, str(pooled.get("cases", MISSING)), str(len(pooled.get("failed", []))),
               str(pooled.get("slices", MISSING)), f"{loc['mae']:.2f}", f"{loc['max_abs_error']:.2f}",
               f"{loc['spearman']:.4f}", f"{loc['bias']:+.2f}"], rec.scores.name, [rec.summary_path])
    return t


def _float(v) -> float:
    return math.nan if v is None else float(v)
