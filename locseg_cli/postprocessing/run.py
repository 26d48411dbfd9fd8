"""`locseg postprocess`: filter a folder of predictions (largest component, atlas, body-position range)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..config import config_dict
from ..errors import LocsegError
from ..io.manifest import Manifest, StageWriter, file_fingerprint, folder_fingerprint, read_manifest
from ..io.nifti import load_volume, save_volume
from ..io.stage_loop import CaseResult, pending_cases, run_cases
from ..progress import NullProgress, Progress
from .components import largest_component, mask_outside
from .config import PostprocessConfig

PREDICTION_STAGES = ("infer", "postprocess")


class _AtlasFilter:
    """The atlas's chosen supports, brought to each case's raw geometry."""

    def __init__(self, atlas_dir: Path):
        from ..atlas import Atlas

        self.atlas = Atlas.load(atlas_dir)
        self.distances = {c: self.atlas.distance(c) for c in self.atlas.probability}

    def allowed(self, labels: np.ndarray, geometry_meta: dict[str, Any], classes: list[int]) -> dict[int, np.ndarray]:
        from ..atlas.build import raw_support, restore_support_distance
        from ..preprocessing.geometry import CaseGeometry

        geometry = CaseGeometry.from_meta(geometry_meta)
        out = {}
        for c in classes:
            if c not in self.distances or not (labels == c).any():
                continue
            r = self.atlas.dilation[c]
            raw = restore_support_distance(self.distances[c], geometry, r + 1)
            out[c] = raw_support(raw, r)
        return out


def _ranges(atlas_dir: Path | None) -> dict[int, list[float] | None]:
    if atlas_dir is None:
        raise LocsegError("--method bpr-range needs --atlas DIR (its class score ranges) and --bpr DIR")
    from ..atlas import Atlas

    info = Atlas.load(atlas_dir).info
    ranges = {int(c): v.get("bpr_range") for c, v in info["classes"].items()}
    if not any(r is not None for r in ranges.values()):
        raise LocsegError("this atlas records no body-position ranges: build it with --bpr DIR "
                          "or from a preprocess with --location bpr", atlas_dir)
    return ranges


def _source_series(cid: str, meta: dict[str, Any], src: Manifest, pred: Path):
    """The DICOM series an `infer` prediction lies on, to write the filtered labels as DICOM SEG too:
    the folder `infer` recorded (or the case's folder under its `--data`), checked to be the same series."""
    from ..inference.inputs import open_inputs
    from ..io.dicom import scan_series

    folder = meta.get("series_folder")
    if folder is None and "data" in src.inputs:
        found = [i.path for i in open_inputs(src.inputs["data"]["path"]) if i.case_id == cid and i.dicom]
        folder = found[0] if found else None
    if folder is None or not Path(folder).is_dir():
        raise LocsegError(f"case {cid!r}: its DICOM series ({folder or 'unrecorded'}) is not there any more: "
                          "the filtered DICOM SEG needs it", pred)
    series = scan_series(folder)
    if series.series_uid != meta.get("series_uid"):
        raise LocsegError(f"case {cid!r}: the series in {folder} is not the one predicted "
                          f"({series.series_uid} != {meta.get('series_uid')})", pred)
    return series


def postprocess(pred: str | Path, out: str | Path, config: PostprocessConfig | None = None,
                atlas: str | Path | None = None, bpr: str | Path | None = None,
                progress: Progress | None = None, force: bool = False) -> tuple[Manifest, bool]:
    """Apply `config.method` in order to every prediction; write the same layout as `infer`.

    Returns (manifest, whether anything was (re)done).
    """
    config = config or PostprocessConfig()
    progress = progress or NullProgress()
    pred, out = Path(pred), Path(out)
    src = read_manifest(pred, PREDICTION_STAGES)
    methods = list(config.method)
    atlas_dir = Path(atlas) if atlas is not None else None
    bpr_dir = Path(bpr) if bpr is not None else None
    if "atlas" in methods and atlas_dir is None:
        raise LocsegError("--method atlas needs --atlas DIR (a `locseg atlas` output)")
    if "bpr-range" in methods and bpr_dir is None:
        raise LocsegError("--method bpr-range needs --bpr DIR (body-part scores of these cases)")
    atlas_filter = _AtlasFilter(atlas_dir) if "atlas" in methods else None
    ranges = _ranges(atlas_dir) if "bpr-range" in methods else None

    inputs = {"pred": (pred, src.fingerprint)}
    if atlas_dir is not None and ("atlas" in methods or "bpr-range" in methods):
        inputs["atlas"] = (atlas_dir, folder_fingerprint(atlas_dir))
    if bpr_dir is not None and "bpr-range" in methods:
        inputs["bpr"] = (bpr_dir, folder_fingerprint(bpr_dir))
    cfg = {**config_dict(config), "pred": str(pred.resolve()),
           "run": (src.config or {}).get("run"), "pre": (src.config or {}).get("pre")}
    with StageWriter("postprocess", out, cfg, inputs, force) as w:
        if w.up_to_date:
            return w.keep_previous(), False
        def filter_case(cid: str, entry: dict[str, Any]) -> CaseResult:
            vol = load_volume(pred / entry["files"]["prediction"], dtype=None)
            labels = np.asarray(vol.array).astype(np.uint8, copy=False)
            classes = config.classes if config.classes is not None else \
                [int(v) for v in np.unique(labels) if v != 0]
            meta = dict(entry.get("meta") or {})
            removed: dict[str, dict[str, int]] = {}
            for method in methods:
                if method == "lcf":
                    labels, rm = largest_component(labels, classes, config.connectivity)
                elif method == "atlas":
                    if "geometry" not in meta:
                        raise LocsegError(f"case {cid!r} has no geometry in the manifest (atlas masking needs "
                                          "an `infer` output)", pred)
                    labels, rm = mask_outside(labels, atlas_filter.allowed(labels, meta["geometry"], classes))
                else:
                    from ..bpr import load_scores
                    from .bpr_range import out_of_range, voxel_scores

                    scores = voxel_scores(load_scores(bpr_dir, cid), vol.affine, labels.shape)
                    wanted = {c: ranges.get(c) for c in classes}
                    labels, rm = mask_outside(labels, out_of_range(labels, scores, wanted, config.bpr_margin))
                removed[method] = {str(c): n for c, n in rm.items() if n}
            files = {"prediction": f"{cid}.nii.gz"}
            series = _source_series(cid, meta, src, pred) if "dicom_seg" in entry["files"] else None
            save_volume(w.path(files["prediction"]), labels, vol.affine, header=vol.header, dtype=np.uint8)
            if series is not None:  # a DICOM input: its SEG filtered as well, so both files say the same
                from ..io.dicom_seg import write_dicom_seg

                files["dicom_seg"] = f"{cid}.seg.dcm"
                write_dicom_seg(w.path(files["dicom_seg"]), labels, series, (src.extra or {}).get("labels", {}),
                                description="locseg postprocess")
            meta["postprocess"] = {"methods": methods, "removed_voxels": removed}
            return CaseResult(files, meta, {"removed": sum(n for per in removed.values() for n in per.values())})

        input_fps = {k: v[1] for k, v in inputs.items()}
        keys = ((cid, entry, [cid, file_fingerprint(pred / entry["files"]["prediction"]), input_fps])
                for cid, entry in src.cases.items())
        run_cases(w, progress, pending_cases(w, progress, "postprocess", keys), filter_case)
        extra = {**(src.extra or {}), "postprocess": {"methods": methods, "from": str(pred.resolve())}}
        return w.finish(extra), True
