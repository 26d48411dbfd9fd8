"""`infer --data` on what users have: one NIfTI file, a folder of them, DICOM series (with DICOM SEG)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from synthdata import make_case, rotation, write_dicom_series

from locseg_cli.config import resolve_config
from locseg_cli.errors import LocsegError
from locseg_cli.inference import InferConfig, infer
from locseg_cli.inference.inputs import open_inputs
from locseg_cli.io.nifti import load_volume, save_volume

CFG = {"threads": 1}


def _case(seed: int = 5) -> np.ndarray:
    """A test case as (column, row, slice) HU."""
    img, _ = make_case((24, 20, 18), seed=seed)
    return img.transpose(2, 1, 0).astype(np.float32)


def _oblique_flipped() -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] = rotation(0, 12.0) @ rotation(1, -8.0) @ np.diag([-1.5, 1.5, -2.0])
    aff[:3, 3] = (30.0, -10.0, 120.0)
    return aff


def _predict(run, out, data, **kw):
    return infer(run / "run", out, resolve_config(InferConfig, None, CFG), data=data, **kw)


def test_one_nifti_file_is_predicted_like_the_same_file_in_a_folder(run, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    save_volume(folder / "scan_0000.nii.gz", _case(), np.diag([1.5, 1.5, 2.0, 1.0]), dtype=np.int16)
    man, did = _predict(run, tmp_path / "one", folder / "scan_0000.nii.gz")
    assert did and list(man.cases) == ["scan"]
    _predict(run, tmp_path / "all", folder)
    one, ref = load_volume(tmp_path / "one/scan.nii.gz", dtype=None), load_volume(tmp_path / "all/scan.nii.gz", dtype=None)
    np.testing.assert_array_equal(one.array, ref.array)
    np.testing.assert_allclose(one.affine, ref.affine)
    assert not _predict(run, tmp_path / "one", folder / "scan_0000.nii.gz")[1]  # up to date


def test_a_folder_without_the_runs_layout_is_read_as_plain_images(run, tmp_path):
    (tmp_path / "a.nii.gz").write_bytes((run / "raw/imagesTr/case_000_0000.nii.gz").read_bytes())
    assert [i.case_id for i in open_inputs(tmp_path, "nnunet")] == ["a"]
    assert [i.case_id for i in open_inputs(run / "raw", "nnunet")] == [f"case_{i:03d}" for i in range(4)]


def test_dicom_series_prediction_lies_on_the_series_grid_with_a_dicom_seg(run, tmp_path):
    pydicom = pytest.importorskip("pydicom")
    hd = pytest.importorskip("highdicom")
    arr, aff = _case(), _oblique_flipped()
    series = write_dicom_series(tmp_path / "in" / "CT 1", arr, aff, reverse_numbers=True)
    man, did = _predict(run, tmp_path / "pred", series)
    assert did and list(man.cases) == ["CT_1"]
    pred = load_volume(tmp_path / "pred/CT_1.nii.gz", dtype=None)
    assert pred.array.shape == arr.shape
    np.testing.assert_allclose(pred.affine, aff, atol=1e-4)
    # the same voxels given as NIfTI in the same geometry: the same prediction
    save_volume(tmp_path / "nifti" / "CT_1.nii.gz", arr, aff, dtype=np.int16)
    _predict(run, tmp_path / "pred-nifti", tmp_path / "nifti")
    np.testing.assert_array_equal(pred.array, load_volume(tmp_path / "pred-nifti/CT_1.nii.gz", dtype=None).array)
    assert pred.array.max() > 0  # the tiny run finds something: the SEG check below is not about empty frames
    # the DICOM SEG: opens with pydicom and highdicom, one segment per class named as the run's labels,
    # and holds the same label map on the series' slices
    ds = pydicom.dcmread(tmp_path / "pred" / man.cases["CT_1"]["files"]["dicom_seg"])
    assert [s.SegmentLabel for s in ds.SegmentSequence] == ["upper", "lower"]
    seg = hd.seg.Segmentation.from_dataset(ds)
    sources = sorted(series.glob("*.dcm"), key=lambda p: -float(pydicom.dcmread(p).InstanceNumber))
    uids = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in sources]
    back = seg.get_pixels_by_source_instance(uids, combine_segments=True)  # (slice, row, column)
    np.testing.assert_array_equal(back.transpose(2, 1, 0), pred.array)


def test_postprocess_of_a_dicom_prediction_writes_its_seg_filtered_too(run, tmp_path):
    """The filtered NIfTI and the filtered DICOM SEG say the same; a series moved away is one clear line."""
    pydicom = pytest.importorskip("pydicom")
    hd = pytest.importorskip("highdicom")
    from locseg_cli.postprocessing import PostprocessConfig, postprocess

    series = write_dicom_series(tmp_path / "in" / "s1", _case(), _oblique_flipped())
    _predict(run, tmp_path / "pred", series)
    cfg = resolve_config(PostprocessConfig, None, {"method": ["lcf"]})
    man, _ = postprocess(tmp_path / "pred", tmp_path / "post", cfg)
    files = man.cases["s1"]["files"]
    labels = load_volume(tmp_path / "post" / files["prediction"], dtype=None).array
    seg = hd.seg.Segmentation.from_dataset(pydicom.dcmread(tmp_path / "post" / files["dicom_seg"]))
    uids = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
            for p in sorted(series.glob("*.dcm"), key=lambda p: float(pydicom.dcmread(p).InstanceNumber))]
    back = seg.get_pixels_by_source_instance(uids, combine_segments=True)
    np.testing.assert_array_equal(back.transpose(2, 1, 0), labels)
    shutil.move(series, tmp_path / "elsewhere")
    with pytest.raises(LocsegError, match=r"case 's1': its DICOM series .* is not there any more"):
        postprocess(tmp_path / "pred", tmp_path / "post2", cfg)
    assert not (tmp_path / "post2" / "s1.nii.gz").exists()


def test_a_folder_of_series_folders_gives_one_case_per_series(run, tmp_path):
    pytest.importorskip("pydicom")
    aff = np.diag([1.5, 1.5, 2.0, 1.0])
    write_dicom_series(tmp_path / "in" / "a", _case(1), aff)
    write_dicom_series(tmp_path / "in" / "b", _case(2), aff)
    man, _ = _predict(run, tmp_path / "pred", tmp_path / "in")
    assert sorted(man.cases) == ["a", "b"]
    assert all(set(c["files"]) == {"prediction", "dicom_seg"} for c in man.cases.values())


@pytest.mark.parametrize("bad", ["two-series", "missing-slice", "not-an-image"])
def test_bad_inputs_stop_before_anything_is_written(bad, run, tmp_path):
    pytest.importorskip("pydicom")
    aff = np.diag([1.5, 1.5, 2.0, 1.0])
    good = write_dicom_series(tmp_path / "in" / "a_good", _case(1), aff)
    if bad == "two-series":
        data = write_dicom_series(tmp_path / "in" / "b_bad", _case(2), aff, series_uid="1.2.9.1")
        write_dicom_series(data, _case(3), aff, series_uid="1.2.9.2", prefix="B")
        data, message = tmp_path / "in", f"{data}: holds 2 DICOM series (1.2.9.1, 1.2.9.2)"
    elif bad == "missing-slice":
        data = write_dicom_series(tmp_path / "in" / "b_bad", _case(2), aff, skip=(3,))
        data, message = tmp_path / "in", f"{data}: uneven slice spacing"
    else:
        data = tmp_path / "notes.txt"
        data.write_text("a report, not a scan\n")
        message = f"{data}: not an image"
    with pytest.raises(LocsegError) as err:
        _predict(run, tmp_path / "pred", data)
    assert str(err.value).startswith(message)
    assert not (tmp_path / "pred").exists() and good.is_dir()


def test_ensemble_prediction_is_the_argmax_of_the_mean_probability(run, tmp_path):
    """Two runs: each case's label map equals the arg-max (on the raw grid, as infer resamples) of the mean of
    the two runs' softmax probabilities computed here directly; the manifest says it is an ensemble."""
    import torch

    from locseg_cli.inference import RunPredictor
    from locseg_cli.io.manifest import read_manifest
    from locseg_cli.preprocessing import CaseGeometry
    from locseg_cli.preprocessing.store import load_preprocessed_case

    cfg = resolve_config(InferConfig, None, CFG)
    man, _ = infer([run / "run", run / "run2"], tmp_path / "pred", cfg, pre=run / "pre", cases=["case_001"])
    assert man.extra["ensemble"]["models"] == ["locbam", "baseline"] and man.extra["model"] == "locbam+baseline"
    from locseg_cli.reporting.collect import _Linker  # the report names the ensemble, not its first run

    assert _Linker([]).prediction_source(tmp_path / "pred")[0].model == "ensemble (locbam+baseline)"
    pman = read_manifest(run / "pre", "preprocess")
    case = load_preprocessed_case(run / "pre", pman, "case_001", mmap=False)
    probs = []
    for r in ("run", "run2"):
        p = RunPredictor.load(run / r, cfg)
        logits = p.logits(case.image, case.location, case.pad_value)
        probs.append(torch.softmax(logits.clone(), dim=0).numpy())
    mean = (probs[0] + probs[1]) / 2
    geometry = CaseGeometry.from_meta(pman.cases["case_001"]["meta"]["geometry"])
    expected = geometry.restore_argmax(range(mean.shape[0]), lambda c: mean[c])
    got = load_volume(tmp_path / "pred/case_001.nii.gz", dtype=None).array
    assert np.mean(got == expected) > 0.999  # float rounding of in-place vs direct sums may tip a voxel
    # not one run's answer in disguise: where the runs disagree, the mean decides
    assert not np.array_equal(probs[0].argmax(0), probs[1].argmax(0))


def _edited_run(run, tmp_path, edit) -> object:
    """A copy of the run whose embedded preprocessing plan `edit` changes (as another run's would be)."""
    import json

    copy = tmp_path / "other-run"
    shutil.copytree(run / "run2", copy)
    m = json.loads((copy / "manifest.json").read_text())
    edit(m["extra"]["preprocess"])
    (copy / "manifest.json").write_text(json.dumps(m))
    return copy


@pytest.mark.parametrize("what, edit, shown", [
    ("labels", lambda p: p["extra"]["labels"].pop("2"), "{0: background, 1: upper, 2: lower} vs "
                                                        "{0: background, 1: upper}"),
    ("spacing", lambda p: p["extra"].update(spacing=[3.0, 2.0, 2.0]), "2.0,2.0,2.0 vs 3.0,2.0,2.0"),
    ("location source", lambda p: p["config"].update(location="truth"), "volume vs truth"),
])
def test_runs_that_disagree_are_refused_naming_both(what, edit, shown, run, tmp_path):
    other = _edited_run(run, tmp_path, edit)
    with pytest.raises(LocsegError) as err:
        infer([run / "run", other], tmp_path / "pred", resolve_config(InferConfig), pre=run / "pre")
    assert str(err.value) == (f"runs {run / 'run'} and {other} disagree on {what} ({shown}): an ensemble needs "
                              "runs trained on the same preprocessing")
    assert not (tmp_path / "pred").exists()


def test_an_ensemble_refuses_validation_subsets(run, tmp_path):
    cfg = resolve_config(InferConfig, None, {"subset": "val"})
    with pytest.raises(LocsegError, match="--subset val with several runs: each run holds out other cases"):
        infer([run / "run", run / "run2"], tmp_path / "pred", cfg, data=run / "raw")
