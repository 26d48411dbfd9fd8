"""Accuracy of body-part scores against the synthetic cohort's ground-truth body position.

Each case's `bodypos/{case}.json` gives the true score and world z of every raw slice. The scores
compared are what `preprocess --location bpr` uses: the cleaned scores, interpolated at each raw
slice's world z, linearly extrapolated outside their valid range (`location_scores`); the
unprocessed (only transformed) scores are reported beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from ..errors import LocsegError
from ..io.atomic import read_json, write_json
from ..io.bodypos import bodypos_path, read_bodypos
from ..io.manifest import StageWriter, folder_fingerprint, read_manifest
from ..progress import NullProgress, Progress
from .records import STAGE, load_scores, location_scores, record_world_z


def _unprocessed_at(record: dict[str, Any], z_query: np.ndarray) -> np.ndarray:
    z = record_world_z(record)
    s = np.asarray(record["unprocessed slice scores"], dtype=np.float64)
    order = np.argsort(z)
    return np.interp(z_query, z[order], s[order])


def _metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    rho = spearmanr(pred, truth).statistic if len(pred) > 2 else float("nan")
    return {"mae": float(np.mean(np.abs(pred - truth))), "max_abs_error": float(np.max(np.abs(pred - truth))),
            "spearman": float(rho), "bias": float(np.mean(pred - truth))}


def evaluate_scores(scores_dir: str | Path, data: str | Path, progress: Progress | None = None) -> dict[str, Any]:
    """MAE and Spearman rho of the scores in `scores_dir` against `data/bodypos/*.json`, per case and pooled."""
    progress = progress or NullProgress()
    manifest = read_manifest(scores_dir, STAGE)
    per_case: dict[str, Any] = {}
    pooled: dict[str, list[np.ndarray]] = {"pred": [], "raw": [], "truth": []}
    progress.start("bpr: evaluating", total=len(manifest.cases))
    for cid in manifest.cases:
        truth = read_bodypos(data, cid)
        if truth is None:
            progress.advance(1)
            continue
        if "z_world_mm" not in truth or "scores" not in truth:
            raise LocsegError("needs 'z_world_mm' and 'scores'", bodypos_path(data, cid))
        z = np.asarray(truth["z_world_mm"], dtype=np.float64)
        t = np.asarray(truth["scores"], dtype=np.float64)
        record = load_scores(scores_dir, cid)
        try:
            pred = location_scores(record, z)
        except LocsegError as exc:  # a case without usable scores counts as failed, not as a crash
            per_case[cid] = {"error": str(exc), "slices": len(t)}
            progress.advance(1)
            continue
        raw = _unprocessed_at(record, z)
        per_case[cid] = {"location": _metrics(pred, t), "unprocessed": _metrics(raw, t), "slices": len(t),
                         "truth_range": [float(t.min()), float(t.max())],
                         "valid z-spacing": record.get("valid z-spacing")}
        pooled["pred"].append(pred)
        pooled["raw"].append(raw)
        pooled["truth"].append(t)
        progress.advance(1)
    progress.stop()
    if not per_case:
        raise LocsegError("no case here has a ground-truth bodypos/<case>.json", data)
    failed = sorted(c for c, m in per_case.items() if "error" in m)
    if not pooled["truth"]:
        raise LocsegError(f"no case has usable scores ({len(failed)} failed)", scores_dir)
    t = np.concatenate(pooled["truth"])
    return {"cases": per_case, "pooled": {"location": _metrics(np.concatenate(pooled["pred"]), t),
                                          "unprocessed": _metrics(np.concatenate(pooled["raw"]), t),
                                          "slices": int(len(t)), "cases": len(per_case) - len(failed),
                                          "failed": failed}}


EVAL_JSON = "bpr_eval.json"


def bpr_eval(scores_dir: str | Path, data: str | Path, out: str | Path, force: bool = False,
             progress: Progress | None = None) -> dict[str, Any]:
    """The `bpr eval` stage: `evaluate_scores` written to `out/bpr_eval.json`, recomputed only when its inputs
    changed."""
    inputs = {"scores": (Path(scores_dir), folder_fingerprint(scores_dir)), "data": (Path(data), folder_fingerprint(data))}
    with StageWriter("bpr-eval", out, {}, inputs, force) as w:
        if w.up_to_date and w.path(EVAL_JSON).is_file():
            return read_json(w.path(EVAL_JSON))
        summary = evaluate_scores(scores_dir, data, progress)
        write_json(w.path(EVAL_JSON), summary)
        w.finish({"summary": EVAL_JSON, "pooled": summary["pooled"]})
    return summary
