"""`locseg shift-eval`: Dice of a run's held-out cases when the location signal is shifted.

For each shift s (% of the signal's full range, 1.0) the location vectors are moved by s/100 through
the one definition in `locseg_cli.location.apply_shift` (one predictor, the shift passed to each
prediction), the cases are predicted in preprocessed space and scored against the preprocessed labels
with the per-class Dice that validation uses. The cases are either the run's validation cases of its
preprocessed dataset (`--pre`) or every labelled case of a raw dataset (`--data`, an external test
cohort), prepared with the run's own plan exactly as `infer` prepares raw images. Each shift is one
entry of the manifest with its own fingerprint, so a rerun with more shifts computes only the new ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import config_dict, resolve_config
from ..errors import LocsegError
from ..evaluation.metrics import class_overlaps, dice_summary
from ..inference.config import InferConfig
from ..io.atomic import read_json, write_json
from ..io.manifest import Manifest, StageWriter, read_manifest
from ..io.stage_loop import CaseResult, pending_cases, run_cases
from ..preprocessing.plan import PreprocessPlan
from ..preprocessing.store import PreprocessedCase, load_preprocessed_case
from ..progress import NullProgress, Progress
from .config import ShiftEvalConfig

if TYPE_CHECKING:  # torch loads only when a shift needs computing
    from ..inference import RunPredictor

SHIFT_JSON = "shift.json"


@dataclass
class ShiftEvalResult:
    table: dict[str, Any]  # the content of shift.json
    computed: list[float]  # shifts evaluated in this call (the others came from the cache)
    manifest: Manifest


def shift_case_id(shift: float) -> str:
    """The manifest entry of one shift, e.g. `shift-5` or `shift-2.5`."""
    return f"shift-{shift:g}"


def _infer_config(cfg: ShiftEvalConfig) -> InferConfig:
    """The inference options of every shift (the shift itself is passed to each prediction)."""
    return resolve_config(InferConfig, overrides={
        "checkpoint": cfg.checkpoint, "overlap": cfg.overlap, "sw_batch_size": cfg.sw_batch_size,
        "device": cfg.device, "amp": cfg.amp, "threads": cfg.threads, "shift_axes": cfg.axes})


def _score(predictor: RunPredictor, cases: list[PreprocessedCase], labels: dict[str, str],
           shift: float) -> dict[str, Any]:
    """Per-case overlap counts and the nnU-Net summary (empty-empty pairs skipped) of one shift."""
    per_case: dict[str, dict[str, dict[str, float]]] = {}
    for case in cases:
        logits = predictor.logits(case.image, case.location, case.pad_value, shift)  # the arg-max needs no softmax
        pred = logits.argmax(0).numpy().astype(np.uint8)
        per_case[case.case_id] = class_overlaps(pred, case.label, labels)
    return {**dice_summary(list(per_case.values()), labels), "per_case": per_case}


class _ValidationCases:
    """The run's validation cases of the preprocessed dataset it was trained on."""

    def __init__(self, run: Path, run_manifest: Manifest, pre: Path) -> None:
        self.pre, self.pman = pre, read_manifest(pre, "preprocess")
        trained_on = run_manifest.inputs.get("pre", {}).get("fingerprint")
        if trained_on and trained_on != self.pman.fingerprint:
            raise LocsegError("this preprocessed dataset is not the one the run was trained on "
                              f"(fingerprint {self.pman.fingerprint}, the run's {trained_on}); "
                              "for another cohort give its raw images with --data", pre)
        self.ids = list(run_manifest.extra.get("val_cases") or [])
        if not self.ids:
            raise LocsegError("this run has no validation cases (trained with --fold -1): give a labelled test "
                              "cohort with --data", run)
        missing = [c for c in self.ids if c not in self.pman.cases or "label" not in self.pman.cases[c]["files"]]
        if missing:
            raise LocsegError(f"validation case(s) without a preprocessed label: {', '.join(missing[:3])}", pre)
        self.input = ("pre", (pre, self.pman.fingerprint))

    def load(self, plan: PreprocessPlan) -> list[PreprocessedCase]:
        return [load_preprocessed_case(self.pre, self.pman, c, mmap=False) for c in self.ids]


class _RawCases:
    """Every labelled case of a raw dataset, prepared with the run's plan (as `infer` prepares images) and
    its labels mapped to the run's classes (the others become background, as in training)."""

    def __init__(self, plan: PreprocessPlan, data: Path) -> None:
        from ..datasets import open_dataset
        from ..datasets.base import layout_detects
        from ..io.manifest import folder_fingerprint

        self.data = data
        # the run's layout where it recognises the cohort, else whatever layout the cohort is in
        ds = open_dataset(data, plan.dataset_layout if layout_detects(data, plan.dataset_layout) else None)
        _same_label_values(plan, ds.labels, data)
        self.cases = [c for c in ds.cases if c.label is not None]
        if not self.cases:
            raise LocsegError("no labelled case in this dataset: shift-eval scores against reference labels", data)
        self.ids = [c.case_id for c in self.cases]
        self.input = ("data", (data, folder_fingerprint(data)))

    def load(self, plan: PreprocessPlan) -> list[PreprocessedCase]:
        from ..io.nifti import load_volume
        from ..preprocessing import prepare_case
        from ..preprocessing.pipeline import axial_source, load_label_subset

        keep = [int(k) for k in plan.labels if k != "0"]
        out = []
        for case in self.cases:
            label = load_label_subset(case.label, keep)
            prep = prepare_case(load_volume(case.image), label, plan.config, plan.spacing, plan.intensity,
                                axial_source(plan.config, self.data, None, case.case_id))
            out.append(PreprocessedCase(case.case_id, prep.image, prep.label, list(prep.location), {},
                                        float(prep.image.min())))
        return out


def _same_label_values(plan: PreprocessPlan, labels: dict[int, str], data: Path) -> None:
    """A cohort scores the run's classes by label value: refuse one whose label table names a value otherwise
    (spelling aside: "gall bladder" is "gallbladder")."""
    def spelt(name: str) -> str:
        return "".join(ch for ch in name.lower() if ch.isalnum())

    for key, name in plan.labels.items():
        theirs = labels.get(int(key))
        if key != "0" and theirs is not None and spelt(theirs) != spelt(name):
            raise LocsegError(f"label {key} is {theirs!r} in this cohort but {name!r} in the run: give a cohort "
                              "labelled with the run's values", data)


def shift_eval(run: str | Path, pre: str | Path | None, out: str | Path, cfg: ShiftEvalConfig, force: bool = False,
               progress: Progress | None = None, data: str | Path | None = None) -> ShiftEvalResult:
    """Evaluate `run` for every shift in `cfg.shifts` on its validation cases of `pre`, or on every labelled
    case of the raw dataset `data` (an external cohort); write shift.json."""
    progress = progress or NullProgress()
    if (data is None) == (pre is None):
        raise LocsegError("give exactly one of --pre (the run's validation cases) or --data (a labelled raw cohort)")
    run, out = Path(run), Path(out)
    run_manifest = read_manifest(run, "train")  # the model loads only if a shift needs computing
    plan = PreprocessPlan.of(run_manifest, run)
    source = _ValidationCases(run, run_manifest, Path(pre)) if pre is not None else _RawCases(plan, Path(data))
    val_ids = source.ids
    labels = plan.labels

    # `shifts` stays out of the stage config so that each shift keeps its fingerprint when the list grows
    config = {k: v for k, v in config_dict(cfg).items() if k not in ("shifts", "threads")}
    inputs = {"run": (run, run_manifest.fingerprint), source.input[0]: source.input[1]}
    done = StageWriter("shift-eval", out, config, inputs, force).already_done()
    if done is not None and done.extra.get("shifts") == list(cfg.shifts) and (out / SHIFT_JSON).is_file():
        return ShiftEvalResult(read_json(out / SHIFT_JSON), [], done)
    from ..inference import RunPredictor

    predictor = RunPredictor.load(run, _infer_config(cfg))
    with StageWriter("shift-eval", out, config, inputs, force) as w:
        cases: list[PreprocessedCase] = []  # loaded once, by the first shift to compute

        def score_shift(cid: str, shift: float) -> CaseResult:
            if not cases:
                cases.extend(source.load(plan))
            scored = _score(predictor, cases, labels, shift)
            files = {"cases": f"shifts/{cid}.json"}
            write_json(w.path(files["cases"]), {"shift": shift, "axes": cfg.axes, "per_case": scored["per_case"]})
            return CaseResult(files, {"shift": shift, "dice": scored["dice"], "mean_dice": scored["mean_dice"]},
                              {"shift": shift, "mean_dice": scored["mean_dice"]})

        todo = pending_cases(w, progress, "shift-eval",
                             ((shift_case_id(s), s, [s, val_ids]) for s in cfg.shifts))
        run_cases(w, progress, todo, score_shift)
        computed = [case.item for case in todo]
        metas = [w.manifest.cases[shift_case_id(s)]["meta"] for s in cfg.shifts]
        rows = [{"shift": s, "dice": m["dice"], "mean_dice": m["mean_dice"]} for s, m in zip(cfg.shifts, metas)]
        table = {"run": str(run.resolve()), "model": predictor.model_cfg.model, "axes": cfg.axes,
                 "checkpoint": cfg.checkpoint, "cases": val_ids, "labels": labels, "shifts": rows}
        write_json(w.path(SHIFT_JSON), table)
        # entries of shifts no longer asked for are dropped from the manifest (their files stay until --force)
        w.manifest.cases = {shift_case_id(s): w.manifest.cases[shift_case_id(s)] for s in cfg.shifts}
        man = w.finish({"shifts": list(cfg.shifts), "model": predictor.model_cfg.model, "val_cases": val_ids,
                        "table": SHIFT_JSON})
    return ShiftEvalResult(table, computed, man)


__all__ = ["shift_eval", "ShiftEvalResult", "SHIFT_JSON", "shift_case_id"]
