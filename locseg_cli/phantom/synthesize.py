"""`locseg synth` as a library call: generate the cohort in parallel and write it as a raw dataset
(any layout `DatasetWriter` knows), plus per-case ground-truth body positions, a montage and the
stage manifest. The dataset and the manifest share the output folder."""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..config import config_dict
from ..errors import LocsegError
from ..io.atomic import read_json, safe_join
from ..io.bodypos import BODYPOS_DIR, write_bodypos
from ..io.manifest import MANIFEST, Manifest, StageWriter, case_path, fingerprint
from ..io.nifti import load_header, load_volume
from ..io.stage_loop import CaseResult, PendingCase, pending_cases, run_cases
from ..progress import Progress
from .anatomy import CLASS_GROUPS, LABELS, LANDMARK_SCORES
from .config import SynthConfig

MONTAGE = "montage.png"
# Options that change no case's content: left out of the per-case fingerprint, so changing them
# (or adding cases) regenerates nothing that exists.
_NOT_CASE_CONTENT = ("cases", "workers", "montage_cases", "name")


def case_fingerprint(config: SynthConfig, index: int) -> str:
    cfg = {k: v for k, v in config_dict(config).items() if k not in _NOT_CASE_CONTENT}
    return fingerprint({"synth_case": cfg, "index": index, "generator": GENERATOR_VERSION})


GENERATOR_VERSION = 5  # bump when the phantom changes, so existing outputs are regenerated


def make_case(config: SynthConfig, index: int, out: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Generate case `index` and write its files under `out`; returns (case id, files, meta).

    Runs in a worker process. The body position is read back from the written image's affine, so it
    matches the file whatever reorientation the layout applied (KiTS23 stores axial-first)."""
    from ..datasets.writers import DatasetWriter
    from .generate import generate_case
    from .storage import bodypos_from_affine

    case = generate_case(index, config)
    writer = DatasetWriter(out, LABELS, layout=config.layout, name=config.name, class_groups=CLASS_GROUPS)
    files = writer.write_case(case.case_id, case.image, case.label, case.affine)
    img = load_header(safe_join(out, *Path(files["image"]).parts))
    affine = np.asarray(img.affine, dtype=np.float64)
    shape = tuple(int(s) for s in img.shape[:3])
    bodypos = bodypos_from_affine(affine, shape, case.meta["table_z"], case.meta["mm_per_score"],
                                  case.meta["z_marks"])
    bodypos["case_id"] = case.case_id
    bodypos["fov"] = case.meta["fov"]
    rel = write_bodypos(out, case.case_id, bodypos)
    from nibabel import orientations as nio

    scores = bodypos["scores"]
    meta = {
        "shape": list(shape),
        "spacing": bodypos["spacing_mm"],
        "axcodes": list(nio.aff2axcodes(affine)),
        "axial_axis": bodypos["axial_axis"],
        "score_range": [round(float(min(scores)), 3), round(float(max(scores)), 3)],
        "fov": case.meta["fov"],
    }
    return case.case_id, {**files, "bodypos": rel}, meta


def _previous_run(out: Path) -> tuple[dict[str, set[str]], str | None]:
    """Files each case had in an earlier run here (to remove those a new run no longer writes) and
    that run's layout."""
    path = out / MANIFEST
    if not path.is_file():
        return {}, None
    try:
        data = read_json(path)
        files = {cid: set(entry.get("files", {}).values()) for cid, entry in (data.get("cases") or {}).items()}
        return files, (data.get("config") or {}).get("layout")
    except Exception:  # an unreadable old manifest: StageWriter reports it
        return {}, None


# Metadata files the layouts write beside the cases (removed when a folder changes layout).
_LAYOUT_METADATA = ("dataset.json", "labels.json", "labels.yaml")


def synthesize(config: SynthConfig, out: str | Path, progress: Progress | None = None,
               force: bool = False) -> Manifest:
    """Write the synthetic cohort to `out`; a rerun with the same config does nothing."""
    progress = progress or Progress()
    out = Path(out)
    previous_files, previous_layout = _previous_run(out)
    if previous_layout is not None and previous_layout != config.layout:
        if not force:
            raise LocsegError(f"holds a synthetic dataset in the {previous_layout} layout; use another --out "
                              f"for --layout {config.layout}, or --force to replace it", out)
        for name in _LAYOUT_METADATA:
            (out / name).unlink(missing_ok=True)
    with StageWriter("synth", out, config_dict(config), {}, force) as w:
        if w.up_to_date:
            progress.log(f"up to date: {out}")
            return w.keep_previous()
        ids = config.case_ids
        # a case's fingerprint is its own generation settings (`case_fingerprint`), not the whole config
        todo = pending_cases(w, progress, "synth", ((cid, (config, i, str(out)), case_fingerprint(config, i))
                                                    for i, cid in enumerate(ids)), fingerprint=str)
        _run(w, progress, config, todo)
        _remove_stale(out, previous_files, w.manifest.cases)
        from ..datasets.writers import DatasetWriter

        DatasetWriter(out, LABELS, layout=config.layout, name=config.name, class_groups=CLASS_GROUPS).finish(ids)
        extra: dict[str, Any] = {
            "labels": {str(k): v for k, v in LABELS.items()},
            "fov": config.fov,
            "layout": config.layout,
            "bodypos_dir": BODYPOS_DIR,
            "landmark_scores": dict(LANDMARK_SCORES),
        }
        shown = ids[: config.montage_cases]
        if shown:
            progress.log(f"montage of {len(shown)} case(s): {out / MONTAGE}")
            _montage(out, shown, w.manifest.cases)
            extra["montage"] = MONTAGE
        return w.finish(extra)


BYTES_PER_VOXEL = 90  # measured peak memory of generate_case is about 80 bytes per raw voxel


def largest_case_voxels(config: SynthConfig) -> int:
    """An upper bound of a case's raw voxel count under `config` (for sizing the worker pool)."""
    from .anatomy import MM_PER_SCORE
    from .config import parse_spacing
    from .patient import VARYING_FOV
    from .scanner import CT_MATRIX

    spacing = parse_spacing(config.spacing)
    if isinstance(spacing[0], tuple):
        (inplane, _), slices = spacing  # type: ignore[misc]
        slice_mm = min(slices)  # type: ignore[arg-type]
    else:
        slice_mm, inplane = float(spacing[0]), float(min(spacing[1], spacing[2]))  # type: ignore[arg-type]
    lo, hi = config.score_range
    if config.fov == "varying":
        lo, hi = min(a for _, a, _ in VARYING_FOV) - 4, max(b for _, _, b in VARYING_FOV) + 4
    length = (hi - lo + 3.0) * MM_PER_SCORE * 1.07
    side = 440.0
    return int((length / slice_mm + 1) * min(side / inplane + 8, CT_MATRIX) ** 2)


def worker_count(config: SynthConfig, n_todo: int) -> int:
    """`config.workers`, fewer if that many cases at once would not fit in the free memory."""
    want = max(1, min(config.workers, n_todo))
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return want
    per_case = largest_case_voxels(config) * BYTES_PER_VOXEL
    return max(1, min(want, int(0.8 * free // max(per_case, 1))))


def _make_case(case_id: str, job: tuple[SynthConfig, int, str]) -> CaseResult:
    """Worker: `make_case` as the stage loop records it."""
    cid, files, meta = make_case(*job)
    return CaseResult(files, meta, {"case": cid})


def _run(w: StageWriter, progress: Progress, config: SynthConfig, todo: list[PendingCase]) -> None:
    """Generate the pending cases, in as many worker processes as memory allows."""
    workers = worker_count(config, len(todo)) if todo else 1
    if todo and workers < min(config.workers, len(todo)):
        progress.log(f"using {workers} worker(s) instead of {config.workers}: a case may need "
                     f"{largest_case_voxels(config) * BYTES_PER_VOXEL / 2**30:.1f} GiB")
    if workers <= 1:
        run_cases(w, progress, todo, _make_case)
        return
    ctx = mp.get_context("spawn")  # the parent may hold threads (progress bars): never fork them
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        run_cases(w, progress, todo, _make_case, pool)


def _remove_stale(out: Path, previous: dict[str, set[str]], current: dict[str, dict]) -> None:
    """Delete files of an earlier run that this run did not write, and folders left empty."""
    keep = {f for entry in current.values() for f in entry.get("files", {}).values()}
    for files in previous.values():
        for rel in files - keep:
            try:
                p = case_path(out, rel)
            except LocsegError:
                continue
            if p.is_file():
                p.unlink()
            parent = p.parent
            while parent != out.resolve() and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent


def _montage(out: Path, case_ids: list[str], cases: dict[str, dict]) -> None:
    from .montage import write_montage

    shown = []
    for cid in case_ids:
        files = cases[cid]["files"]
        img = load_volume(case_path(out, files["image"]), dtype=None)
        lab = load_volume(case_path(out, files["label"]), dtype=None)
        bodypos = read_json(case_path(out, files["bodypos"]))
        shown.append((cid, img.array, lab.array, img.affine, bodypos))
    write_montage(out / MONTAGE, shown, LABELS)
