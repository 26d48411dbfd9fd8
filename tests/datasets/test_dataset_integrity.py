"""Each defect class of the integrity check, with its exact one-line message."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from dataset_trees import RAS_AFFINE, SHAPE, label, save, volume

from locseg_cli.datasets.base import CaseRef, Dataset
from locseg_cli.datasets.integrity import check_case, check_dataset
from locseg_cli.errors import LocsegError

TABLE = {0: "background", 1: "a", 2: "b"}


def _case(tmp_path: Path, image=None, lab=None, affine=RAS_AFFINE, label_affine=None, name="c1",
          ext=".nii.gz") -> CaseRef:
    img_path = save(tmp_path / f"{name}_img{ext}", volume() if image is None else image, affine)
    lab_path = save(tmp_path / f"{name}_lab{ext}", label() if lab is None else lab,
                    affine if label_affine is None else label_affine)
    return CaseRef(name, img_path, lab_path)


def _lines(case: CaseRef, **kw) -> list[str]:
    return [p.line() for p in check_case(case, sorted(TABLE), **kw)]


def _raw_header_edit(path: Path, **fields) -> None:
    img = nib.load(str(path))
    hdr = img.header.copy()
    arr = np.asanyarray(img.dataobj)
    for k, v in fields.items():
        hdr[k] = v
    out = nib.Nifti1Image(arr, None, hdr)
    out.header["qform_code"], out.header["sform_code"] = hdr["qform_code"], hdr["sform_code"]
    for k, v in fields.items():
        out.header[k] = v
    nib.save(out, str(path))


def test_clean_case_has_no_problem(tmp_path):
    ds = Dataset(tmp_path, "folder", TABLE, [_case(tmp_path, name="c1"), _case(tmp_path, name="c2")])
    report = check_dataset(ds)
    assert report.problems == [] and report.invalid_cases() == set()
    assert report.summary() == "2 cases, all valid"
    assert report.excluded(skip_invalid=False) == {}


def test_missing_file(tmp_path):
    case = _case(tmp_path)
    case.label.unlink()
    assert _lines(case) == [f"{case.label}: file not found"]


def test_not_nifti(tmp_path):
    case = _case(tmp_path)
    case.image.write_bytes(b"this is not an image")
    assert _lines(case) == [f"{case.image}: unreadable: not a NIfTI file"]


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_truncated(tmp_path, ext):
    case = _case(tmp_path, image=volume(shape=(20, 20, 20)), lab=label(shape=(20, 20, 20)), ext=ext)
    data = case.image.read_bytes()
    if ext == ".nii.gz":  # cut the compressed stream in the middle of the voxel data
        raw = gzip.decompress(data)
        case.image.write_bytes(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    else:
        case.image.write_bytes(data[: len(data) // 2])
    assert _lines(case) == [f"{case.image}: truncated: the file ends before its image data do"]


def test_not_3d(tmp_path):
    case = _case(tmp_path)
    save(case.image, volume(shape=(4, 5)))
    save(case.label, np.zeros(SHAPE + (2,), np.uint8))
    assert _lines(case) == [f"{case.image}: not 3D: shape (4, 5)",
                            f"{case.label}: not 3D: shape (4, 5, 6, 2) has 2 frames"]


def test_single_frame_4d_is_fine(tmp_path):
    case = _case(tmp_path, image=volume()[..., None], lab=label()[..., None])
    assert _lines(case) == []


def test_non_finite_voxels(tmp_path):
    img = volume()
    img[0, 0, 0], img[1, 2, 3] = np.nan, np.inf
    case = _case(tmp_path, image=img)
    assert _lines(case) == [f"{case.image}: 2 non-finite voxels (NaN or Inf)"]
    assert _lines(case, read_data=False) == []  # a data check: skipped in header-only mode


def test_spacing_not_positive(tmp_path):
    case = _case(tmp_path, ext=".nii")
    _raw_header_edit(case.image, pixdim=[1, 0.8, 0.8, 0, 0, 0, 0, 0], qform_code=1, sform_code=0)
    assert _lines(case, read_data=False) == [f"{case.image}: spacing (0.8, 0.8, 0) mm: not positive"]


def test_spacing_implausible(tmp_path):
    aff = np.diag([0.8, 0.8, 25.0, 1.0])
    case = _case(tmp_path, affine=aff)
    assert _lines(case) == [f"{case.image}: spacing (0.8, 0.8, 25) mm: implausible (each axis must be 0.1-20 mm)"]


def test_shape_mismatch(tmp_path):
    case = _case(tmp_path, lab=label(shape=(4, 5, 7)))
    assert _lines(case) == [f"{case.label}: shape (4, 5, 7) differs from the image's (4, 5, 6)"]


def test_affine_mismatch(tmp_path):
    moved = RAS_AFFINE.copy()
    moved[2, 3] += 2.5
    case = _case(tmp_path, label_affine=moved)
    assert _lines(case) == [f"{case.label}: affine differs from the image's: voxel grid displaced by up to 2.5 mm "
                            "(tolerance 0.08 mm)"]
    tiny = RAS_AFFINE.copy()
    tiny[2, 3] += 0.01  # within tolerance
    assert _lines(_case(tmp_path, label_affine=tiny, name="c2")) == []


def test_label_not_integer(tmp_path):
    lab = label().astype(np.float32)
    lab[0, 0, 0] = 0.5
    case = _case(tmp_path, lab=lab)
    assert _lines(case) == [f"{case.label}: label values are not integers (e.g. 0.5)"]
    assert _lines(_case(tmp_path, lab=label().astype(np.float32), name="c2")) == []  # float but integral: fine


def test_label_outside_table(tmp_path):
    case = _case(tmp_path, lab=label((0, 1, 7, 9)))
    assert _lines(case) == [f"{case.label}: label values 7, 9 not in the label table (0-2)"]


def test_degenerate_orientation(tmp_path):
    aff = np.array([[0.8, 0.8, 0, 0], [0, 0, 0.8, 0], [0, 0.0, 0.0, 0], [0, 0, 0, 1]], float)
    aff[2, 1] = 0.01  # both first axes run along R-L
    case = _case(tmp_path, ext=".nii")
    _raw_header_edit(case.image, qform_code=0, sform_code=2, srow_x=aff[0], srow_y=aff[1], srow_z=aff[2])
    assert _lines(case, read_data=False) == [f"{case.image}: orientation: two voxel axes run along the same "
                                             "patient axis (degenerate affine)"]


def test_sheared_affine(tmp_path):
    aff = RAS_AFFINE.copy()
    aff[0, 2] = 2.5 * np.tan(np.radians(10))  # the slice axis leans 10 degrees toward R-L
    case = _case(tmp_path, ext=".nii")
    _raw_header_edit(case.image, qform_code=0, sform_code=2, srow_x=aff[0], srow_y=aff[1], srow_z=aff[2])
    _raw_header_edit(case.label, qform_code=0, sform_code=2, srow_x=aff[0], srow_y=aff[1], srow_z=aff[2])
    assert _lines(case) == [f"{case.image}: orientation: sheared affine (voxel axes 10.0° from perpendicular)"]


def test_oblique_is_a_warning(tmp_path):
    c, s = np.cos(np.radians(12)), np.sin(np.radians(12))
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([0.8, 0.8, 2.5])
    problems = check_case(_case(tmp_path, affine=aff), sorted(TABLE))
    assert [(p.severity, p.message) for p in problems] == [
        ("warning", "orientation: oblique (voxel axes up to 12.0° off the patient axes; reoriented to the nearest)")]
    report = check_dataset(Dataset(tmp_path, "folder", TABLE, [_case(tmp_path, affine=aff, name="c2")]))
    assert report.invalid_cases() == set() and report.summary() == "1 case, all valid; 1 warning"


def test_qform_sform_disagree_is_a_warning(tmp_path):
    case = _case(tmp_path, ext=".nii")
    q = RAS_AFFINE.copy()
    q[0, 3] += 5.0
    img = nib.load(str(case.image))
    img.set_qform(q, code=1)
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine, img.header), str(case.image))
    problems = check_case(case, sorted(TABLE))
    assert [(p.severity, p.line()) for p in problems] == [
        ("warning", f"{case.image}: orientation: qform and sform disagree by up to 5 mm "
                    "(nibabel reads the sform, ITK the qform)")]


def test_suspicious_slice_spacing(tmp_path):
    thick = _case(tmp_path, affine=np.diag([0.8, 0.8, 12.0, 1.0]), name="thick")
    assert _lines(thick) == [f"{thick.image}: spacing (0.8, 0.8, 12) mm: suspicious slice spacing of 12 mm "
                             "(over 10 mm)"]
    thin = _case(tmp_path, affine=np.diag([3.0, 3.0, 0.5, 1.0]), name="thin")
    assert _lines(thin) == [f"{thin.image}: spacing (3, 3, 0.5) mm: suspicious slice spacing of 0.5 mm, under a "
                            "quarter of the in-plane 3 mm"]


def test_slice_axis_found_by_the_affine_not_the_array_order(tmp_path):
    # KiTS23 style: axial axis first. 3 mm slices along axis 0 are normal, not "in-plane"
    aff = np.array([[0, 0, -0.8, 0], [0, -0.8, 0, 0], [-3.0, 0, 0, 0], [0, 0, 0, 1]], float)
    assert _lines(_case(tmp_path, affine=aff)) == []


def test_non_square_ct_pixels_is_a_warning(tmp_path):
    problems = check_case(_case(tmp_path, affine=np.diag([0.7, 0.9, 2.5, 1.0])), sorted(TABLE))
    assert [(p.severity, p.message) for p in problems] == [
        ("warning", "spacing (0.7, 0.9, 2.5) mm: unusual in-plane spacing 0.7 x 0.9 mm (CT pixels are square)")]
    assert check_case(_case(tmp_path, affine=np.diag([0.7, 0.9, 2.5, 1.0]), name="mr"), sorted(TABLE), ct=False) == []


def test_report_invalid_cases_and_skip_invalid(tmp_path):
    good = _case(tmp_path, name="good")
    bad = _case(tmp_path, lab=label((0, 4)), name="bad")
    ds = Dataset(tmp_path, "folder", TABLE, [good, bad], skipped={"old": "MRI"})
    report = check_dataset(ds)
    assert report.invalid_cases() == {"bad"} and report.valid_cases() == ["good"]
    assert report.skipped == {"old": "MRI"}
    assert report.summary() == "1 of 2 cases invalid (1 error)"
    with pytest.raises(LocsegError, match="1 of 2 cases invalid .*--skip-invalid"):
        report.excluded(skip_invalid=False)
    assert report.excluded(skip_invalid=True) == {"bad": f"{bad.label}: label value 4 not in the label table (0-2)"}


def test_workers_give_the_same_report(tmp_path):
    cases = [_case(tmp_path, name="ok"), _case(tmp_path, lab=label((0, 3)), name="bad"),
             _case(tmp_path, lab=label(shape=(4, 5, 7)), name="shape")]
    ds = Dataset(tmp_path, "folder", TABLE, cases)
    assert check_dataset(ds, workers=2).problems == check_dataset(ds).problems
    assert check_dataset(ds).invalid_cases() == {"bad", "shape"}


def test_check_command_exit_codes(tmp_path):
    import typer
    from typer.testing import CliRunner

    from locseg_cli.commands import check

    app = typer.Typer()
    check.register(app, "check")
    app.command("noop")(lambda: None)  # a second command keeps "check" a subcommand
    root = tmp_path / "data"
    for cid in ("p1", "p2"):
        save(root / "images" / f"{cid}.nii.gz", volume())
        save(root / "labels" / f"{cid}.nii.gz", label())
    (root / "labels.yaml").write_text("0: background\n1: a\n2: b\n")
    runner = CliRunner()
    ok = runner.invoke(app, ["check", "--data", str(root)])
    assert ok.exit_code == 0, ok.output
    assert "2 cases, all valid" in ok.output
    save(root / "labels/p2.nii.gz", label((0, 9)))
    bad = runner.invoke(app, ["check", "--data", str(root), "--workers", "1"])
    assert bad.exit_code == 1
    assert "label value 9 not in the label table" in bad.output and "1 of 2 cases invalid" in bad.output
    assert runner.invoke(app, ["check", "--data", str(root / "missing")]).exit_code == 2


def test_empty_axis(tmp_path):
    case = _case(tmp_path, image=np.zeros((4, 0, 6), np.float32))
    assert _lines(case) == [f"{case.image}: empty: shape (4, 0, 6)"]


def test_non_finite_affine(tmp_path):
    case = _case(tmp_path, ext=".nii")
    _raw_header_edit(case.image, qform_code=0, sform_code=2, srow_x=[np.nan, 0, 0, 0])
    assert _lines(case) == [f"{case.image}: affine has non-finite values"]


def test_check_command_reads_dicom_series_as_infer_does(tmp_path):
    pytest.importorskip("pydicom")
    import typer
    from synthdata import write_dicom_series
    from typer.testing import CliRunner

    from locseg_cli.commands import check

    app = typer.Typer()
    check.register(app, "check")
    app.command("noop")(lambda: None)
    ct = np.full((12, 10, 6), -1000, np.int16)
    ct[3:9, 3:7, 1:5] = 40
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    root = tmp_path / "series"
    write_dicom_series(root / "good", ct, affine)
    runner = CliRunner()
    one = runner.invoke(app, ["check", "--data", str(root / "good")])
    assert one.exit_code == 0, one.output
    assert "1 case, all valid" in one.output
    write_dicom_series(root / "gap", ct, affine, skip=(3,))
    both = runner.invoke(app, ["check", "--data", str(root)], terminal_width=200)
    assert both.exit_code == 1, both.output
    assert "uneven slice spacing" in both.output and "1 of 2 cases invalid" in both.output
    assert "gap" in both.output and "Traceback" not in both.output
