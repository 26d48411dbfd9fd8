"""The report's tables, each built from the collected stage outputs, with the files behind every row."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..preprocessing.plan import PreprocessPlan
from .collect import MODEL_ORDER, Collection, EvalRecord, RunRecord, Setup, nanmean, order_models
from .paired import class_groups, paired_difference

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

    def on_screen(self) -> tuple[str, list[str], list[list[str]]]:
        """(title, header, rows) for a terminal: a column with one value in every row (of two or more) moves
        into the title as "name: value", so that the columns that differ fit the width."""
        same = [i for i in range(len(self.header)) if len(self.rows) > 1 and len({r[i] for r in self.rows}) == 1]
        fixed = ", ".join(f"{self.header[i]}: {self.rows[0][i]}" for i in same)
        keep = [i for i in range(len(self.header)) if i not in same]
        return (self.title + (f" ({fixed})" if fixed else ""), [self.header[i] for i in keep],
                [[r[i] for i in keep] for r in self.rows])


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


def evaluations_table(col: Collection) -> Table:
    """Which checkpoint of which run produced each evaluation and shift curve, scored against what."""
    t = Table("evaluations", "Evaluations: the checkpoint behind each number",
              ["kind", "model", "setup", "post-processing", "reference", "checkpoint"])
    for e in col.evals:
        t.add(["evaluation", e.run.model, e.run.setup.label, e.method, e.ref.name if e.ref else "?", e.checkpoint],
              f"{e.run.model} | {e.run.setup.label} | {e.path.name}", [e.path / "manifest.json"])
    for sh in col.shifts:
        cases = sh.table.get("cases") or []
        t.add(["shift-eval", sh.run.model, sh.run.setup.label, "none", f"{len(cases)} cases", sh.checkpoint],
              f"{sh.run.model} | {sh.run.setup.label} | {sh.path.name}", [sh.path / "manifest.json"])
    t.note = ("best: the checkpoint with the best validation Dice during training (chosen on validation cases; "
              "optimistic if those are the cases reported); last: the final weights (nnU-Net's default).")
    return t


def table1(col: Collection) -> Table:
    """Models × datasets: foreground mean Dice of the (not post-processed) evaluations."""
    evals = raw_evals(col)
    datasets = sorted({e.run.setup.dataset for e in evals})
    t = Table("table1", "Table 1: foreground mean Dice, models × datasets",
              ["model", "spacing", "patch", *datasets])
    keys = sorted({(e.run.model, e.run.setup.spacing, e.run.setup.patch, e.run.setup.batch) for e in evals},
                  key=lambda k: (_model_rank(k[0]), k[1:]))
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


def _model_rank(model: str) -> int:
    return order_models([model, *MODEL_ORDER]).index(model)


def _fold(e: EvalRecord) -> str:
    return str(e.run.manifest.extra.get("fold"))


def baseline_partner(e: EvalRecord, evals: list[EvalRecord]) -> tuple[EvalRecord | None, str]:
    """The baseline evaluation `e` is paired with: same setup, fold and reference scans, and the same
    axial location source; failing that, the one baseline location source of that setup (a baseline
    reads no location, so the source only names its preprocessed copy). (None, why) if none or several."""
    same = [b for b in evals if b.run.model == "baseline" and b.run.setup == e.run.setup
            and _fold(b) == _fold(e) and b.ref == e.ref]
    exact = [b for b in same if b.run.location == e.run.location]
    if not exact and len({b.run.location for b in same}) == 1:
        exact = same
    if len(exact) == 1:
        return exact[0], ""
    what = "no" if not exact else f"{len(exact)}"
    return None, (f"{e.run.model}, {e.run.setup.label}, fold {_fold(e)} (`{e.path.name}`): {what} baseline "
                  "evaluation(s) of the same setup, fold, scans and location source")


def paired_table(col: Collection, rounds: int, seed: int) -> Table:
    """Per model and class group: the per-scan Dice difference to the same setup's baseline, its
    bootstrap interval over scans and how many scans favour each side."""
    evals = raw_evals(col)
    t = Table("paired", "Paired per-scan difference against the baseline",
              ["model", "baseline", "dataset", "spacing", "patch", "fold", "reference", "class group", "scans",
               "mean difference", "95 % interval", "favour model", "favour baseline"])
    omitted = []
    others = sorted((e for e in evals if e.run.model != "baseline"),
                    key=lambda e: (e.run.setup, _fold(e), str(e.ref), _model_rank(e.run.model), str(e.path)))
    for e in others:
        base, why = baseline_partner(e, evals)
        if base is None:
            omitted.append(why)
            continue
        against = "baseline" if base.run.location == e.run.location else f"baseline ({base.run.location} location)"
        s = e.run.setup
        ref = e.ref.name if e.ref else MISSING
        for group, classes in class_groups(e.summary).items():
            d = paired_difference(e.summary, base.summary, classes, e.path, base.path, rounds, seed)
            n = len(d.cases)
            t.add([e.run.model, against, s.dataset, s.spacing_text, s.patch_text, _fold(e), ref, group, str(n),
                   _fmt_delta(d.mean), f"[{_fmt_delta(d.low)}, {_fmt_delta(d.high)}]", f"{d.favour_first}/{n}",
                   f"{d.favour_second}/{n}"], f"{e.run.model} − {against} | {s.label} | {ref} | {group}",
                  [e.summary_path, base.summary_path])
    t.note = (f"Per scan (paired by case id): mean over the group's classes of model Dice − baseline Dice, over the "
              "classes finite on both sides (Dice is NaN where a class is empty in both reference and prediction, "
              "nnU-Net's convention); mean difference over scans with its 95 % percentile bootstrap interval "
              f"({rounds:,} resamples of the scans, seed {seed}); favour: scans with a positive / negative "
              "difference. foreground = every class of foreground_mean.")
    if omitted:
        t.note += " Omitted (no single baseline to pair with): " + "; ".join(omitted) + "."
    return t


def _fmt_delta(v: float) -> str:
    """Signed, 4 decimals; a rounding residue of zero shows as +0.0000, not -0.0000."""
    return MISSING if v is None or math.isnan(v) else f"{round(v, 4) + 0.0:+.4f}"


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
    t = Table("fig4", "Figure 4 data: mean Dice of the held-out cases per location shift (% of the full range)",
              ["model", "dataset", "spacing", "patch", "axes", *(f"{s:g}%" for s in shifts)])
    recs = sorted(col.shifts, key=lambda r: (r.run.setup, _model_rank(r.run.model), r.axes))
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
