"""Find the stage outputs under the report's input folders and link them by their manifests.

Everything that groups a number into a table (dataset, spacing, patch setup, model, post-processing
method) is read from manifests, never from folder names: an `evaluate` output names the predictions
it scored, the predictions (`infer`, possibly behind `postprocess`) name the run, and the run names
its preprocessed dataset and config.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import LocsegError
from ..io.atomic import read_json
from ..io.manifest import MANIFEST, Manifest, read_manifest
from ..preprocessing.plan import PreprocessPlan

MODEL_ORDER = ("baseline", "coordconv", "locbam")
MAX_DEPTH = 4


@dataclass(frozen=True, order=True)
class Setup:
    """What a run's numbers are comparable within: dataset, target spacing and patch setup."""

    dataset: str
    spacing: tuple[float, ...]
    patch: tuple[int, ...]
    batch: int

    @property
    def spacing_text(self) -> str:
        return "×".join(f"{s:g}" for s in self.spacing) + " mm"

    @property
    def patch_text(self) -> str:
        return "×".join(str(p) for p in self.patch) + f" (batch {self.batch})"

    @property
    def label(self) -> str:
        return f"{self.dataset}, {self.spacing_text}, {self.patch_text}"


@dataclass
class RunRecord:
    path: Path
    manifest: Manifest
    setup: Setup
    model: str
    pre: Path | None  # the preprocessed dataset, if it can still be found
    pre_manifest: Manifest | None
    location: str = "volume"  # the axial location source of its preprocessed data: volume, bpr, truth

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    def validation_curve(self) -> list[tuple[int, float]]:
        """(iteration, validation mean Dice) from metrics.jsonl."""
        if not self.metrics.is_file():
            return []
        curve = []
        for line in self.metrics.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            if "val_mean_dice" in rec:
                curve.append((int(rec["iteration"]), float(rec["val_mean_dice"])))
        return curve


@dataclass
class EvalRecord:
    path: Path
    summary_path: Path
    summary: dict[str, Any]
    run: RunRecord
    method: str  # "none", or the post-processing methods joined with "+"
    pred: Path
    ref: Path | None
    checkpoint: str = "best"  # the run's checkpoint that predicted (infer's --checkpoint; older outputs: best)

    @property
    def foreground_dice(self) -> float:
        return float(self.summary["foreground_mean"]["Dice"])


@dataclass
class ShiftRecord:
    path: Path
    table_path: Path
    table: dict[str, Any]
    run: RunRecord
    axes: str
    checkpoint: str = "best"


@dataclass
class BprEvalRecord:
    """A `locseg bpr eval` output: body-part scores against the synthetic ground truth."""

    path: Path
    summary_path: Path
    summary: dict[str, Any]
    scores: Path  # the `bpr score` / `bpr import` folder it evaluated


@dataclass
class Collection:
    runs: list[RunRecord] = field(default_factory=list)
    evals: list[EvalRecord] = field(default_factory=list)
    shifts: list[ShiftRecord] = field(default_factory=list)
    bpr_evals: list[BprEvalRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # inputs that were found but could not be used

    def models(self) -> list[str]:
        return order_models({r.model for r in self.runs})


def order_models(models) -> list[str]:
    """baseline, coordconv, locbam first (the paper's order), then any other registry name."""
    known = [m for m in MODEL_ORDER if m in models]
    return known + sorted(m for m in models if m not in MODEL_ORDER)


def find_stage_outputs(root: Path, stages: tuple[str, ...]) -> list[Path]:
    """Folders at or below `root` (a few levels) whose manifest is one of `stages`."""
    found = []

    def walk(folder: Path, depth: int) -> None:
        m = folder / MANIFEST
        if m.is_file():
            try:
                stage = read_json(m).get("stage")
            except (LocsegError, AttributeError):
                return
            if stage in stages:
                found.append(folder)
            return  # a stage output's subfolders are its own files
        if depth >= MAX_DEPTH:
            return
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            walk(sub, depth + 1)

    if not root.is_dir():
        raise LocsegError("not a folder", root)
    walk(root, 0)
    return found


class _Linker:
    """Resolves manifests by path and by fingerprint, reading each once."""

    def __init__(self, pres: list[Path]):
        self.runs_by_fp: dict[str, RunRecord] = {}
        self.runs_by_path: dict[Path, RunRecord] = {}
        self.pres_by_fp: dict[str, Path] = {}
        for p in pres:
            self.pres_by_fp[read_manifest(p, "preprocess").fingerprint] = p

    def run(self, path: Path) -> RunRecord:
        path = path.resolve()
        if path in self.runs_by_path:
            return self.runs_by_path[path]
        man = read_manifest(path, "train")
        pre_in = man.inputs.get("pre", {})
        pre = self.pres_by_fp.get(pre_in.get("fingerprint", ""))
        if pre is None and pre_in.get("path") and (Path(pre_in["path"]) / MANIFEST).is_file():
            pre = Path(pre_in["path"])
        pre_man = None
        if pre is not None:
            pre_man = read_manifest(pre, "preprocess")
            if pre_man.fingerprint != pre_in.get("fingerprint"):
                pre, pre_man = None, None  # re-made since: its sizes are not the run's
        plan = PreprocessPlan.of(man, path)
        cfg = man.config
        setup = Setup(plan.dataset_name, plan.spacing, tuple(int(p) for p in cfg["patch_size"]),
                      int(cfg["batch_size"]))
        location = plan.location
        rec = RunRecord(path, man, setup, str(cfg["model"]), pre, pre_man, str(location))
        self.runs_by_path[path] = rec
        self.runs_by_fp[man.fingerprint] = rec
        return rec

    def prediction_source(self, pred: Path) -> tuple[RunRecord, str, str]:
        """The run behind a prediction folder, the post-processing applied on the way and the checkpoint."""
        methods: list[str] = []
        for _ in range(8):
            man = read_manifest(pred, ("infer", "postprocess"))
            if man.stage == "infer":
                fp = man.inputs.get("run", {}).get("fingerprint")
                checkpoint = str(man.config.get("checkpoint", "best"))
                run = self.runs_by_fp[fp] if fp in self.runs_by_fp else self.run(Path(man.config["run"]))
                models = (man.extra or {}).get("ensemble", {}).get("models")
                if models:  # the first run's setup and path, named for what predicted: every run's model
                    run = replace(run, model=f"ensemble ({'+'.join(models)})")
                return run, "+".join(methods) or "none", checkpoint
            methods = [*man.config.get("method", []), *methods]
            pred = Path(man.inputs["pred"]["path"])
        raise LocsegError("post-processing chain too long", pred)


def collect(runs: Path | None, evals: Path | None = None, shifts: Path | None = None,
            pres: Path | None = None, bpr_evals: Path | None = None) -> Collection:
    """Every train / evaluate / shift-eval / bpr-eval output under the given folders, linked to its run."""
    linker = _Linker(find_stage_outputs(pres, ("preprocess",)) if pres else [])
    col = Collection()
    if runs is not None:
        for folder in find_stage_outputs(runs, ("train",)):
            try:
                col.runs.append(linker.run(folder))
            except LocsegError as exc:
                col.notes.append(f"skipped run {folder}: {exc}")
    if evals is not None:
        for folder in find_stage_outputs(evals, ("evaluate",)):
            try:
                man = read_manifest(folder, "evaluate")
                pred = Path(man.inputs["pred"]["path"])
                run, method, checkpoint = linker.prediction_source(pred)
                summary_path = folder / man.extra.get("summary", "summary.json")
                ref = man.inputs.get("ref", {}).get("path")
                col.evals.append(EvalRecord(folder, summary_path, read_json(summary_path), run, method, pred,
                                            Path(ref) if ref else None, checkpoint))
            except (LocsegError, KeyError) as exc:
                col.notes.append(f"skipped evaluation {folder}: {exc}")
    if shifts is not None:
        for folder in find_stage_outputs(shifts, ("shift-eval",)):
            try:
                man = read_manifest(folder, "shift-eval")
                fp = man.inputs["run"]["fingerprint"]
                run = linker.runs_by_fp.get(fp) or linker.run(Path(man.inputs["run"]["path"]))
                table_path = folder / man.extra.get("table", "shift.json")
                col.shifts.append(ShiftRecord(folder, table_path, read_json(table_path), run,
                                              str(man.config.get("axes", "axial")),
                                              str(man.config.get("checkpoint", "best"))))
            except (LocsegError, KeyError) as exc:
                col.notes.append(f"skipped shift evaluation {folder}: {exc}")
    if bpr_evals is not None:
        for folder in find_stage_outputs(bpr_evals, ("bpr-eval",)):
            try:
                man = read_manifest(folder, "bpr-eval")
                summary_path = folder / man.extra.get("summary", "bpr_eval.json")
                summary = read_json(summary_path)
                summary["pooled"]["location"]  # noqa: B018 -- the table's cells; a KeyError skips the folder
                col.bpr_evals.append(BprEvalRecord(folder, summary_path, summary, Path(man.inputs["scores"]["path"])))
            except (LocsegError, KeyError, TypeError) as exc:
                col.notes.append(f"skipped bpr evaluation {folder}: {exc}")
    known = {r.path for r in col.runs}
    for rec in [*col.evals, *col.shifts]:  # runs reached only through their evaluations
        if rec.run.path not in known:
            col.runs.append(rec.run)
            known.add(rec.run.path)
    name_location_variants(col.runs)
    col.runs.sort(key=lambda r: (r.setup, order_models([r.model, *MODEL_ORDER]).index(r.model), str(r.path)))
    return col


def name_location_variants(runs: list[RunRecord]) -> None:
    """Runs of one location-aware model in one setup that differ in their axial location source
    (`make fov-experiment`: volume coordinates, BPR scores, the true body position) are different
    rows: their model name gets the source. A model with one source keeps its plain name (Table 1's
    LocBAM is BPR-located on AMOS22 and KiTS23); the baseline ignores its location."""
    sources: dict[tuple[Setup, str], set[str]] = {}
    for r in runs:
        sources.setdefault((r.setup, r.model), set()).add(r.location)
    for r in runs:
        if r.model != "baseline" and len(sources[(r.setup, r.model)]) > 1:
            r.model = f"{r.model} ({r.location} location)"


def nanmean(values) -> float:
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return sum(vals) / len(vals) if vals else math.nan
