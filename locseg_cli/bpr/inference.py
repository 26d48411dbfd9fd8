"""Scoring raw CT volumes with a trained regressor: one bpreg-style JSON per case."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import config_dict
from ..datasets import CaseRef, open_dataset
from ..errors import LocsegError
from ..io.atomic import write_json
from ..io.manifest import StageWriter, file_fingerprint, folder_fingerprint, read_manifest
from ..io.nifti import Volume, load_volume
from ..io.stage_loop import CaseResult, pending_cases, run_cases
from ..progress import NullProgress, Progress
from .config import BprScoreConfig
from .network import build_regressor
from .records import RESERVED_IDS, STAGE, record_summary
from .scores import CleaningSettings, build_record, clean_scores
from .slices import prepare_slices
from .train import FORMAT, MODEL_FILE, load_checkpoint, predict_raw


@dataclass
class Regressor:
    """A trained regressor with everything needed to score a volume."""

    model: torch.nn.Module
    settings: dict[str, Any]
    device: str = "cpu"

    @property
    def cleaning(self) -> CleaningSettings:
        return CleaningSettings(**self.settings["cleaning"])

    def score_volume(self, volume: Volume, cfg: BprScoreConfig | None = None,
                     case_id: str | None = None) -> dict[str, Any]:
        """The score record of one volume (canonical slice order, inferior first)."""
        cfg = cfg or BprScoreConfig()
        s = self.settings
        stack = prepare_slices(volume, s["pixel_mm"], s["size"], tuple(s["hu_range"]))
        if len(stack) < 2:
            raise LocsegError(f"case {case_id!r}: needs at least 2 axial slices, has {len(stack)}")
        raw = predict_raw(self.model, stack.slices, self.device, cfg.batch_slices)
        cleaning = self.cleaning
        cleaning.smoothing_sigma = cfg.smoothing_sigma
        cleaning.r_slope_threshold = cfg.r_slope_threshold
        cleaned = clean_scores(raw, stack.z_spacing, cleaning, stack.empty)
        return build_record(cleaned, s["lookup_table"], stack.z_world_mm, stack.file_index, stack.axial_axis,
                            case_id)


def load_regressor(model: str | Path, device: str | None = None) -> Regressor:
    """A `locseg bpr train` output folder (or its model.pt file)."""
    model = Path(model)
    if model.is_dir():
        read_manifest(model, "bpr-train")
        path = model / MODEL_FILE
    else:
        path = model
    if not path.is_file():
        raise LocsegError("no trained body-part regressor here (expected a `locseg bpr train` output)", model)
    state = load_checkpoint(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise LocsegError("not a locseg body-part regressor file", path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    net = build_regressor(state["arch"], state["width"])
    net.load_state_dict(state.pop("state_dict"))
    net.to(device).eval()
    return Regressor(net, state, device)


def score_dataset(model: str | Path, data: str | Path, out: str | Path, cfg: BprScoreConfig,
                  force: bool = False, device: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Score every case of `data`; write `out/{case}.json` and the stage manifest.

    Returns {"out", "up_to_date", "scored", "reused", "cases": {case: summary}}.
    """
    progress = progress or NullProgress()
    data, out, model = Path(data), Path(out), Path(model)
    reg = load_regressor(model, device)
    ds = open_dataset(data)
    for c in ds.cases:
        if c.case_id in RESERVED_IDS:
            raise LocsegError(f"case id {c.case_id!r} is reserved in a bpr output folder", c.image)
    inputs = {"model": (model, folder_fingerprint(model) if model.is_dir() else file_fingerprint(model)),
              "data": (data, folder_fingerprint(data))}
    result: dict[str, Any] = {"out": out, "up_to_date": False, "scored": 0, "reused": 0, "cases": {}}
    with StageWriter(STAGE, out, config_dict(cfg), inputs, force) as w:
        if w.up_to_date:
            result["up_to_date"] = True
            result["cases"] = {k: v["meta"] for k, v in w.previous.cases.items()}
            return result

        def score_case(cid: str, case: CaseRef) -> CaseResult:
            record = reg.score_volume(load_volume(case.image), cfg, cid)
            write_json(w.path(f"{cid}.json"), record)
            return CaseResult({"scores": f"{cid}.json"}, record_summary(record))

        todo = pending_cases(w, progress, "bpr: scoring",
                             ((c.case_id, c, [c.case_id, file_fingerprint(c.image)]) for c in ds.cases))
        run_cases(w, progress, todo, score_case)
        result["scored"], result["reused"] = len(todo), len(ds.cases) - len(todo)
        result["cases"] = {c.case_id: w.manifest.cases[c.case_id]["meta"] for c in ds.cases}
        w.finish({"source": "locseg bpr score", "model": str(model.resolve())})
    return result

